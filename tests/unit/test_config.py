"""Settings: where each value comes from, the original system's names, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from messenger_widgets.config import (
    CLIENT_REQUIRED,
    DEFAULT_SESSION_TTL,
    DEFAULT_STORE,
    LOCAL_REGION,
    SETTINGS,
    WORKER_REQUIRED,
    Settings,
)
from messenger_widgets.errors import ConfigError

REQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/req"
RES = "https://sqs.eu-west-1.amazonaws.com/123456789012/res"
SECRET = "k" * 40

# One valid value per setting, under its primary name.
VALID: dict[str, str] = {
    "MESSENGER_REQUEST_QUEUE_URL": REQ,
    "MESSENGER_RESPONSE_QUEUE_URL": RES,
    "MESSENGER_BUCKET": "primary-bucket",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIAPRIMARY",
    "AWS_SECRET_ACCESS_KEY": "primary-secret",
    "MESSENGER_TOKEN_SECRET": SECRET,
    "MESSENGER_SESSION_TTL": "3600",
    "MESSENGER_STORE": "sqlite:///data/primary.db",
}

# A different valid value per field, to show an alias was the one read.
OTHER: dict[str, str] = {
    "request_queue_url": "http://localhost:4566/000000000000/other-req",
    "response_queue_url": "http://localhost:4566/000000000000/other-res",
    "bucket": "other-bucket",
    "region": "ap-south-1",
    "access_key_id": "AKIAOTHER",
    "secret_access_key": "other-secret",
    "endpoint_url": "http://localhost:4566",
    "token_secret": "o" * 48,
    "token_secret_parameter": "/other/token-secret",
    "token_secret_arn": "arn:aws:secretsmanager:ap-south-1:000000000000:secret:other",
    "session_ttl": "7200",
    "store": "sqlite:////var/lib/other.db",
    "session_queue_prefix": "other-prefix-",
    "users_table": "other-users",
    "messages_table": "other-messages",
}


def write_env(directory: Path, values: dict[str, str]) -> Path:
    path = directory / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


def load(
    environ: dict[str, str], dotenv: dict[str, str] | None, tmp_path: Path, **kwargs: object
) -> Settings:
    env_file = write_env(tmp_path, dotenv) if dotenv is not None else tmp_path / "absent.env"
    return Settings.load(environ=environ, env_file=env_file, **kwargs)  # type: ignore[arg-type]


def config_error(
    environ: dict[str, str], dotenv: dict[str, str] | None, tmp_path: Path, **kwargs: object
) -> str:
    with pytest.raises(ConfigError) as info:
        load(environ, dotenv, tmp_path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


# --- precedence --------------------------------------------------------------------------


def test_environment_alias_beats_dotenv_primary_name(tmp_path: Path) -> None:
    environ = {"SERVER_REQ_QUEUE": "http://env.example/req", "AWS_REGION": "eu-west-1"}
    settings = load(environ, {"MESSENGER_REQUEST_QUEUE_URL": "http://dotenv.example/req"}, tmp_path)
    assert settings.request_queue_url == "http://env.example/req"


def test_dotenv_fills_what_the_environment_lacks(tmp_path: Path) -> None:
    settings = load({"MESSENGER_BUCKET": "env-bucket"}, {"BUCKET": "x", "REGION": "r1"}, tmp_path)
    assert settings.bucket == "env-bucket"
    assert settings.region == "r1"


@pytest.mark.parametrize("source", ["environment", ".env"])
def test_within_a_source_names_are_searched_in_settings_order(tmp_path: Path, source: str) -> None:
    values = {
        "REACT_APP_SERVER_REQ_QUEUE": "http://third.example/q",
        "SERVER_REQ_QUEUE": "http://second.example/q",
        "AWS_REGION": "eu-west-1",
    }
    environ, dotenv = (values, None) if source == "environment" else ({}, values)
    assert load(environ, dotenv, tmp_path).request_queue_url == "http://second.example/q"
    values["MESSENGER_REQUEST_QUEUE_URL"] = "http://first.example/q"
    assert load(environ, dotenv, tmp_path).request_queue_url == "http://first.example/q"


def test_blank_environment_value_falls_through_to_dotenv(tmp_path: Path) -> None:
    settings = load({"MESSENGER_BUCKET": "   ", "BUCKET": ""}, {"BUCKET": "from-file"}, tmp_path)
    assert settings.bucket == "from-file"


def test_values_are_stripped(tmp_path: Path) -> None:
    settings = load({"MESSENGER_BUCKET": "  spaced  "}, None, tmp_path)
    assert settings.bucket == "spaced"


def test_explicit_environ_ignores_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESSENGER_BUCKET", "process-bucket")
    monkeypatch.setenv("SESSIONEXP", "12h")  # would fail if it were read
    assert load({}, {"BUCKET": "file-bucket"}, tmp_path).bucket == "file-bucket"


def test_no_dotenv_file_and_nothing_set_gives_defaults(tmp_path: Path) -> None:
    settings = load({}, None, tmp_path)
    assert settings == Settings()
    assert settings.session_ttl == DEFAULT_SESSION_TTL
    assert settings.store == DEFAULT_STORE


# --- aliases: a .env written for the original system --------------------------------------

ALIASES = [(field, name) for field, names in SETTINGS.items() for name in names]


@pytest.mark.parametrize(("field", "name"), ALIASES, ids=[n for _, n in ALIASES])
def test_every_name_of_every_setting_is_read_from_dotenv(
    tmp_path: Path, field: str, name: str
) -> None:
    values = {k: v for k, v in VALID.items() if k not in SETTINGS[field]}
    values[name] = OTHER[field]
    settings = load({}, values, tmp_path)
    expected: object = int(OTHER[field]) if field == "session_ttl" else OTHER[field]
    assert getattr(settings, field) == expected


def test_original_react_and_node_dotenv_loads_as_a_worker(tmp_path: Path) -> None:
    original = (
        "# written for the React client and the Node worker\n"
        f"REACT_APP_SERVER_REQ_QUEUE={REQ}\n"
        f'REACT_APP_SERVER_RES_QUEUE="{RES}"\n'
        "REACT_APP_BUCKET='media-bucket'\n"
        "REACT_APP_REGION=eu-west-1\n"
        "REACT_APP_ACCESS_KEY=AKIAEXAMPLE\n"
        "REACT_APP_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG\n"
        f"KEY={SECRET}\n"
        "SESSIONEXP=86400\n"
    )
    env_file = tmp_path / ".env"
    env_file.write_text(original, encoding="utf-8")
    settings = Settings.load(environ={}, env_file=env_file, require=WORKER_REQUIRED)
    assert settings == Settings(
        request_queue_url=REQ,
        response_queue_url=RES,
        bucket="media-bucket",
        region="eu-west-1",
        access_key_id="AKIAEXAMPLE",
        secret_access_key="wJalrXUtnFEMI/K7MDENG",
        token_secret=SECRET,
        session_ttl=86400,
    )


def test_plain_node_names_load_too(tmp_path: Path) -> None:
    values = {
        "SERVER_REQ_QUEUE": REQ,
        "SERVER_RES_QUEUE": RES,
        "BUCKET": "b",
        "REGION": "us-west-2",
        "ACCESS_KEY": "AK",
        "SECRET_ACCESS_KEY": "SK",
    }
    settings = load({}, values, tmp_path, require=CLIENT_REQUIRED)
    assert (settings.access_key_id, settings.secret_access_key) == ("AK", "SK")
    assert (settings.region, settings.bucket) == ("us-west-2", "b")


# --- missing required settings -----------------------------------------------------------


@pytest.mark.parametrize("field", WORKER_REQUIRED)
def test_missing_required_setting_names_its_primary_variable(tmp_path: Path, field: str) -> None:
    values = {k: v for k, v in VALID.items() if k not in SETTINGS[field]}
    message = config_error({}, values, tmp_path, require=WORKER_REQUIRED)
    primary = SETTINGS[field][0]
    assert message.startswith(f"{primary} is not set")
    for alias in SETTINGS[field][1:]:
        assert alias in message


def test_client_does_not_require_the_token_secret(tmp_path: Path) -> None:
    values = {k: v for k, v in VALID.items() if k != "MESSENGER_TOKEN_SECRET"}
    assert load({}, values, tmp_path, require=CLIENT_REQUIRED).token_secret == ""


def test_nothing_set_at_all_names_the_first_required_variable(tmp_path: Path) -> None:
    message = config_error({}, None, tmp_path, require=CLIENT_REQUIRED)
    assert message.startswith("MESSENGER_REQUEST_QUEUE_URL is not set")


# --- malformed values --------------------------------------------------------------------

MALFORMED = [
    # (variables, primary name in the message, the variable that is blamed as the source)
    ({"SESSIONEXP": "12h"}, "MESSENGER_SESSION_TTL", "SESSIONEXP"),
    ({"SESSIONEXP": "0"}, "MESSENGER_SESSION_TTL", "SESSIONEXP"),
    ({"MESSENGER_SESSION_TTL": "-60"}, "MESSENGER_SESSION_TTL", "MESSENGER_SESSION_TTL"),
    ({"SESSIONEXP": "1_000"}, "MESSENGER_SESSION_TTL", "SESSIONEXP"),
    ({"SESSIONEXP": "3600.5"}, "MESSENGER_SESSION_TTL", "SESSIONEXP"),
    ({"SESSIONEXP": "9" * 30}, "MESSENGER_SESSION_TTL", "SESSIONEXP"),
    ({"SERVER_REQ_QUEUE": "my-queue"}, "MESSENGER_REQUEST_QUEUE_URL", "SERVER_REQ_QUEUE"),
    (
        {"REACT_APP_SERVER_RES_QUEUE": "ftp://h/q"},
        "MESSENGER_RESPONSE_QUEUE_URL",
        "REACT_APP_SERVER_RES_QUEUE",
    ),
    ({"AWS_ENDPOINT_URL": "localhost:4566"}, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
    ({"KEY": "too-short"}, "MESSENGER_TOKEN_SECRET", "KEY"),
    ({"MESSENGER_STORE": "postgres://db/x"}, "MESSENGER_STORE", "MESSENGER_STORE"),
    ({"MESSENGER_STORE": "sqlite://rel.db"}, "MESSENGER_STORE", "MESSENGER_STORE"),
    ({"MESSENGER_STORE": "sqlite:///"}, "MESSENGER_STORE", "MESSENGER_STORE"),
    ({"ACCESS_KEY": "AKIAONLY"}, "AWS_SECRET_ACCESS_KEY", "ACCESS_KEY"),
    ({"REACT_APP_SECRET_ACCESS_KEY": "only"}, "AWS_ACCESS_KEY_ID", "REACT_APP_SECRET_ACCESS_KEY"),
]


@pytest.mark.parametrize("source", ["environment", ".env"])
@pytest.mark.parametrize(("bad", "primary", "blamed"), MALFORMED)
def test_malformed_value_names_variable_and_source(
    tmp_path: Path, source: str, bad: dict[str, str], primary: str, blamed: str
) -> None:
    replaced = {name for names in SETTINGS.values() if set(bad) & set(names) for name in names}
    optional = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MESSENGER_TOKEN_SECRET"}
    base = {k: v for k, v in VALID.items() if k not in replaced | optional}
    environ, dotenv = (bad, base) if source == "environment" else ({}, {**base, **bad})
    message = config_error(environ, dotenv, tmp_path)
    assert message.startswith(primary), message
    assert f"{blamed} in {source}" in message, message


def test_multiline_value_still_gives_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('SERVER_REQ_QUEUE="not\na url"\nREGION=r\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Settings.load(environ={}, env_file=tmp_path / ".env")
    assert "\n" not in str(info.value)
    assert "SERVER_REQ_QUEUE in .env" in str(info.value)


def test_dynamodb_store_needs_both_tables(tmp_path: Path) -> None:
    message = config_error({"MESSENGER_STORE": "dynamodb"}, None, tmp_path)
    assert "MESSENGER_USERS_TABLE" in message and "MESSENGER_MESSAGES_TABLE" in message
    settings = load(
        {
            "MESSENGER_STORE": "dynamodb",
            "MESSENGER_USERS_TABLE": "u",
            "MESSENGER_MESSAGES_TABLE": "m",
        },
        None,
        tmp_path,
    )
    assert (settings.users_table, settings.messages_table) == ("u", "m")


def test_token_secret_length_counts_utf8_bytes(tmp_path: Path) -> None:
    assert load({"KEY": "é" * 16}, None, tmp_path).token_secret == "é" * 16  # 32 bytes
    assert "MESSENGER_TOKEN_SECRET" in config_error({"KEY": "k" * 31}, None, tmp_path)


def test_largest_accepted_session_ttl_is_many_years(tmp_path: Path) -> None:
    assert load({"SESSIONEXP": "315360000"}, None, tmp_path).session_ttl == 315_360_000


# --- region ------------------------------------------------------------------------------


def test_region_defaults_to_local_region_with_an_endpoint(tmp_path: Path) -> None:
    environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "SERVER_REQ_QUEUE": REQ}
    assert load(environ, None, tmp_path).region == LOCAL_REGION == "us-east-1"


def test_explicit_region_wins_over_the_local_default(tmp_path: Path) -> None:
    environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    assert load(environ, {"REACT_APP_REGION": "eu-central-1"}, tmp_path).region == "eu-central-1"


def test_no_region_stays_empty_without_queues(tmp_path: Path) -> None:
    assert load({"MESSENGER_BUCKET": "b"}, None, tmp_path).region == ""


def test_queues_without_region_or_endpoint_fail_naming_every_region_name(tmp_path: Path) -> None:
    message = config_error({"SERVER_REQ_QUEUE": REQ}, None, tmp_path)
    assert message.startswith("AWS_REGION is not set")
    for name in ("REGION", "REACT_APP_REGION"):
        assert name in message


# --- to_env and sqlite_path --------------------------------------------------------------


def test_to_env_uses_primary_names_and_round_trips(tmp_path: Path) -> None:
    settings = load({}, VALID | {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, tmp_path)
    env = settings.to_env()
    assert set(env) <= {names[0] for names in SETTINGS.values()}
    assert env["MESSENGER_SESSION_TTL"] == "3600"
    assert "MESSENGER_USERS_TABLE" not in env  # empty settings are left out
    assert Settings.load(environ=env, env_file=None) == settings


def test_to_env_round_trips_settings_read_from_aliases(tmp_path: Path) -> None:
    aliased = {SETTINGS[field][-1]: value for field, value in OTHER.items()}
    settings = load({}, aliased | {"MESSENGER_STORE": "dynamodb"}, tmp_path)
    assert settings.store == "dynamodb"
    assert Settings.load(environ=settings.to_env(), env_file=None) == settings


def test_sqlite_path_relative_and_absolute() -> None:
    relative = Settings(store="sqlite:///rel/x.db").sqlite_path
    absolute = Settings(store="sqlite:////abs/x.db").sqlite_path
    assert relative == Path("rel/x.db") and not relative.is_absolute()
    assert absolute == Path("/abs/x.db") and absolute.is_absolute()
    assert not Settings().sqlite_path.is_absolute()


def test_sqlite_path_of_a_dynamodb_store_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MESSENGER_STORE"):
        _ = Settings(store="dynamodb").sqlite_path
