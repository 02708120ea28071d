"""Settings from the environment and a `.env` file, with the original system's aliases.

Every process reads the same settings. For each one the environment is searched first, then
`.env`; within each, the names in the order of `SETTINGS`. A missing or malformed value fails
at start with one line naming the variable, never a traceback from inside boto3.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

from .errors import ConfigError

DEFAULT_STORE = "sqlite:///.messenger/messenger.sqlite3"
DEFAULT_SESSION_TTL = 12 * 3600
DEFAULT_SESSION_QUEUE_PREFIX = "messenger-session-"
LOCAL_REGION = "us-east-1"
MIN_TOKEN_SECRET_BYTES = 32
MAX_SESSION_TTL = 10 * 366 * 24 * 3600  # ten years: far beyond any session, far below overflow

# field name -> accepted variable names, in search order
SETTINGS: dict[str, tuple[str, ...]] = {
    "request_queue_url": (
        "MESSENGER_REQUEST_QUEUE_URL",
        "SERVER_REQ_QUEUE",
        "REACT_APP_SERVER_REQ_QUEUE",
    ),
    "response_queue_url": (
        "MESSENGER_RESPONSE_QUEUE_URL",
        "SERVER_RES_QUEUE",
        "REACT_APP_SERVER_RES_QUEUE",
    ),
    "bucket": ("MESSENGER_BUCKET", "BUCKET", "REACT_APP_BUCKET"),
    "region": ("AWS_REGION", "REGION", "REACT_APP_REGION"),
    "access_key_id": ("AWS_ACCESS_KEY_ID", "ACCESS_KEY", "REACT_APP_ACCESS_KEY"),
    "secret_access_key": (
        "AWS_SECRET_ACCESS_KEY",
        "SECRET_ACCESS_KEY",
        "REACT_APP_SECRET_ACCESS_KEY",
    ),
    "endpoint_url": ("AWS_ENDPOINT_URL",),
    "token_secret": ("MESSENGER_TOKEN_SECRET", "KEY"),
    "token_secret_parameter": ("MESSENGER_TOKEN_SECRET_PARAMETER",),
    "token_secret_arn": ("MESSENGER_TOKEN_SECRET_ARN",),
    "session_ttl": ("MESSENGER_SESSION_TTL", "SESSIONEXP"),
    "store": ("MESSENGER_STORE",),
    "session_queue_prefix": ("MESSENGER_SESSION_QUEUE_PREFIX",),
    "users_table": ("MESSENGER_USERS_TABLE",),
    "messages_table": ("MESSENGER_MESSAGES_TABLE",),
}

CLIENT_REQUIRED = ("request_queue_url", "response_queue_url", "bucket")
WORKER_REQUIRED = (*CLIENT_REQUIRED, "token_secret")


@dataclass(frozen=True)
class Settings:
    request_queue_url: str = ""
    response_queue_url: str = ""
    bucket: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    endpoint_url: str = ""
    token_secret: str = ""
    token_secret_parameter: str = ""  # SSM SecureString name: the Lambda fetches the secret
    token_secret_arn: str = ""  # Secrets Manager secret: the Lambda fetches the secret
    session_ttl: int = DEFAULT_SESSION_TTL
    store: str = DEFAULT_STORE
    session_queue_prefix: str = DEFAULT_SESSION_QUEUE_PREFIX
    users_table: str = ""
    messages_table: str = ""

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | os.PathLike[str] | None = ".env",
        require: Iterable[str] = (),
    ) -> Settings:
        """Read, validate and return the settings; raise `ConfigError` naming the variable."""
        env = os.environ if environ is None else environ
        dotenv: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            dotenv = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        raw: dict[str, tuple[str, str]] = {}  # field -> (value, where it came from)
        for field, names in SETTINGS.items():
            found = _lookup(names, env, "environment") or _lookup(names, dotenv, ".env")
            if found is not None:
                raw[field] = found
        return cls._build(raw, tuple(require))

    @classmethod
    def _build(cls, raw: dict[str, tuple[str, str]], require: tuple[str, ...]) -> Settings:
        values: dict[str, object] = {k: v for k, (v, _) in raw.items()}
        if "session_ttl" in raw:
            values["session_ttl"] = _positive_int("session_ttl", *raw["session_ttl"])
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.region and settings.endpoint_url:
            settings = replace(settings, region=LOCAL_REGION)
        settings.validate(require, raw)
        return settings

    def validate(
        self, require: Iterable[str] = (), raw: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        where = {k: f" (from {src})" for k, (_, src) in (raw or {}).items()}
        for field in require:
            if not getattr(self, field):
                raise ConfigError(f"{_name(field)} is not set{_aliases(field)}")
        for field in ("request_queue_url", "response_queue_url", "endpoint_url"):
            value = getattr(self, field)
            if value and not _is_http_url(value):
                raise ConfigError(
                    f"{_name(field)} must be an http(s) URL, got {value!r}{where.get(field, '')}"
                )
        if (self.request_queue_url or self.response_queue_url) and not self.region:
            raise ConfigError(f"{_name('region')} is not set{_aliases('region')}")
        if bool(self.access_key_id) != bool(self.secret_access_key):
            missing, present = (
                ("secret_access_key", "access_key_id")
                if self.access_key_id
                else ("access_key_id", "secret_access_key")
            )
            raise ConfigError(
                f"{_name(missing)} is not set but {_name(present)} is{where.get(present, '')}"
            )
        if self.token_secret and len(self.token_secret.encode()) < MIN_TOKEN_SECRET_BYTES:
            raise ConfigError(
                f"{_name('token_secret')} must be at least {MIN_TOKEN_SECRET_BYTES} bytes"
                f"{where.get('token_secret', '')}"
            )
        sqlite_file = self.store.startswith("sqlite:///") and self.store[len("sqlite:///") :].strip(
            "/"
        )
        if not (self.store == "dynamodb" or sqlite_file):
            raise ConfigError(
                f"{_name('store')} must be 'sqlite:///path' or 'dynamodb', got {self.store!r}"
                f"{where.get('store', '')}"
            )
        if self.store == "dynamodb" and not (self.users_table and self.messages_table):
            raise ConfigError("MESSENGER_USERS_TABLE and MESSENGER_MESSAGES_TABLE must be set")

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file named by `store`: relative to the working directory unless absolute."""
        if not self.store.startswith("sqlite:///"):
            raise ConfigError(f"MESSENGER_STORE is {self.store!r}, not a sqlite URL")
        return Path(self.store[len("sqlite:///") :])

    def to_env(self) -> dict[str, str]:
        """The settings under their primary names, for `.env` files and child processes."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in ("", None):
                out[SETTINGS[f.name][0]] = str(value)
        return out


def _lookup(
    names: tuple[str, ...], source: Mapping[str, str], label: str
) -> tuple[str, str] | None:
    for name in names:
        value = source.get(name)
        if value is not None and value.strip() != "":
            return value.strip(), f"{name} in {label}"
    return None


def _name(field: str) -> str:
    return SETTINGS[field][0]


def _aliases(field: str) -> str:
    names = SETTINGS[field]
    return f" (also accepted: {', '.join(names[1:])})" if len(names) > 1 else ""


def _positive_int(field: str, value: str, source: str) -> int:
    # ASCII digits only: int() would also take "1_000", "+5" and other scripts' digits.
    number = int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else 0
    if not 0 < number <= MAX_SESSION_TTL:
        raise ConfigError(
            f"{_name(field)} must be a whole number of seconds from 1 to {MAX_SESSION_TTL}, "
            f"got {value!r} (from {source})"
        )
    return number


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
