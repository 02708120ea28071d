"""The wire format: what travels through SQS, as typed, frozen objects.

`Outgoing` is what a sender hands to the transport; `Envelope` is what a receiver gets back.
`Request`, `Reply` and `Push` encode to an `Outgoing` and decode from an `Envelope`; anything
that cannot be decoded raises `DecodeError`, the only error this module raises for bad input.
Every limit of the contract is a named constant here, checked before AWS is called.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .errors import DecodeError

# --- limits -------------------------------------------------------------------------------
WAIT_TIME_SECONDS = 20
MAX_RECEIVE_MESSAGES = 10
MAX_BATCH_ENTRIES = 10
MAX_SQS_MESSAGE_BYTES = 262_144  # the size every SQS queue accepts; also one batch's total
MAX_TEXT_CHARS = 10_000
NAME_MIN_CHARS, NAME_MAX_CHARS = 1, 50
PASSWORD_MIN_CHARS, PASSWORD_MAX_CHARS = 8, 128
EMAIL_MAX_CHARS = 254
SEARCH_QUERY_MAX_CHARS = 100
SEARCH_MAX_RESULTS = 50
SELECT_LIMIT = 20
HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT = 50, 100
LOGIN_HISTORY_LIMIT = 100
ATTACHMENT_PREFIX = "attachments/"
ATTACHMENT_NAME_MAX_CHARS = 255
MAX_JSON_DEPTH = 32
ID_MAX_CHARS = 128
# groups (v1.1, additive): members counted with the creator, names as user names
GROUP_MIN_MEMBERS, GROUP_MAX_MEMBERS = 2, 50
GROUP_NAME_MIN_CHARS, GROUP_NAME_MAX_CHARS = 1, 50

STATUS_OK = 200


class Action(StrEnum):
    """The `action` attribute of a push."""

    MESSAGE = "message"
    HISTORY_END = "historyEnd"
    SEARCH_USER = "searchUser"
    SELECT_SEARCH_USER = "selectSearchUser"
    HISTORY = "history"
    SENT = "sent"
    READ = "read"
    ERROR = "error"
    GROUP_CREATED = "groupCreated"  # v1.1: a group the session's user belongs to
    GROUP_UPDATED = "groupUpdated"  # v1.1: a group's members changed (someone left)


# (controller, method) pairs of the contract; register and login are answered by a reply.
METHODS: frozenset[tuple[str, str]] = frozenset(
    {
        ("user", "register"),
        ("user", "login"),
        ("user", "logout"),
        ("user", "setDarkModeState"),
        ("user", "searchUser"),
        ("message", "add"),
        ("message", "selectSearchUser"),
        ("message", "markMessagesAsRead"),
        ("message", "history"),
        ("group", "create"),  # v1.1
        ("group", "leave"),  # v1.1
    }
)
REPLY_METHODS: frozenset[tuple[str, str]] = frozenset({("user", "register"), ("user", "login")})


@dataclass(frozen=True)
class Outgoing:
    """A message about to be sent: body text and String message attributes."""

    body: str
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes SQS counts against its size limit: body plus attribute names, types, values."""
        attrs = sum(
            len(k.encode()) + len(v.encode()) + len("String") for k, v in self.attributes.items()
        )
        return len(self.body.encode()) + attrs


@dataclass(frozen=True)
class Envelope:
    """A received message: what the transport hands to whoever polls a queue."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    receive_count: int = 1
    queue_url: str = ""
    sent_timestamp: int | None = None  # SQS SentTimestamp, epoch milliseconds, when known


def now_iso(moment: datetime | None = None) -> str:
    """An ISO-8601 UTC time with milliseconds and a `Z`, as every `dateTime` on the wire."""
    moment = moment or datetime.now(UTC)
    # isoformat, not strftime("%Y"): glibc's %Y does not pad years before 1000 to 4 digits.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def dumps(value: Any) -> str:
    """Compact JSON that SQS accepts: characters it refuses are written as `\\uXXXX` escapes.

    SQS takes only #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF. json escapes the
    C0 controls itself, but with ensure_ascii=False U+FFFE/U+FFFF (which a client may send
    escaped) and lone surrogates would go out raw, and SQS would refuse the whole message.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _SQS_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_SQS_REFUSED = re.compile("[\ud800-\udfff\ufffe\uffff]")


def loads(text: str) -> Any:
    """Parse JSON from a queue, refusing what would hurt: bad syntax, deep nesting, NaN.

    Also refused: numbers that overflow to infinity (`1e400`) and escaped lone surrogates
    (`"\\ud800"`), which parse but cannot be encoded again as JSON or UTF-8.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"body is not valid JSON: {_short(exc)}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise DecodeError(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    if _SURROGATE.search(text) and _has_surrogate(value):
        raise DecodeError("body is not valid JSON: a string holds a lone surrogate")
    return value


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is out of range")
    return number


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _status(text: str | None, what: str) -> int:
    # Three ASCII digits: int() alone would also take " 200", "+200" and "2_00".
    if not text or not re.fullmatch(r"[1-5][0-9][0-9]", text):
        raise DecodeError(f"{what} has no valid statusCode")
    return int(text)


@dataclass(frozen=True)
class Request:
    """A client -> worker message on the requests queue."""

    controller: str
    method: str
    body: Any = field(default_factory=dict)
    token: str | None = None
    session_url: str | None = None
    message_id: str = ""  # the SQS MessageId, set when decoded; replies quote it in resTo

    @property
    def key(self) -> tuple[str, str]:
        return (self.controller, self.method)

    def encode(self) -> Outgoing:
        attrs = {"controller": self.controller, "method": self.method}
        if self.token:
            attrs["token"] = self.token
        if self.session_url:
            attrs["sessionUrl"] = self.session_url
        return Outgoing(dumps(self.body), attrs)

    @classmethod
    def decode(cls, envelope: Envelope) -> Request:
        attrs = envelope.attributes
        hints: dict[str, str] = {
            k: attrs[k] for k in ("controller", "method", "token") if k in attrs
        }
        controller, method = attrs.get("controller", ""), attrs.get("method", "")
        if not controller or not method:
            raise DecodeError("request has no controller or method attribute", hints)
        if (controller, method) not in METHODS:
            raise DecodeError(f"unknown method {controller}/{method}", hints)
        try:
            body = loads(envelope.body)
        except DecodeError as exc:
            raise DecodeError(str(exc), hints) from None
        if not isinstance(body, dict):
            raise DecodeError("request body must be a JSON object", hints)
        return cls(
            controller=controller,
            method=method,
            body=body,
            token=attrs.get("token") or None,
            session_url=attrs.get("sessionUrl") or None,
            message_id=envelope.message_id,
        )


@dataclass(frozen=True)
class Reply:
    """A worker -> client answer to register/login on the shared responses queue."""

    res_to: str
    status: int
    body: dict[str, Any]

    def encode(self) -> Outgoing:
        return Outgoing(dumps(self.body), {"resTo": self.res_to, "statusCode": str(self.status)})

    @classmethod
    def decode(cls, envelope: Envelope) -> Reply:
        res_to = envelope.attributes.get("resTo", "")
        if not res_to:
            raise DecodeError("reply has no resTo attribute")
        body = loads(envelope.body)
        if not isinstance(body, dict):
            raise DecodeError("reply body must be a JSON object")
        return cls(res_to, _status(envelope.attributes.get("statusCode"), "reply"), body)


@dataclass(frozen=True)
class Push:
    """A worker -> session message on a session queue."""

    action: str
    body: Any
    status: int = STATUS_OK

    def encode(self) -> Outgoing:
        return Outgoing(dumps(self.body), {"action": self.action, "statusCode": str(self.status)})

    @classmethod
    def decode(cls, envelope: Envelope) -> Push:
        action = envelope.attributes.get("action", "")
        if not action:
            raise DecodeError("push has no action attribute")
        status = _status(envelope.attributes.get("statusCode"), "push")
        return cls(action, loads(envelope.body), status)

    @classmethod
    def error(cls, status: int, message: str, method: str) -> Push:
        return cls(Action.ERROR, {"message": message, "method": method}, status)


@dataclass(frozen=True)
class WireMessage:
    """A chat message as one session sees it: `user_id`/`name` are the other party.

    In a group message (v1.1) `group_id` is set, `user_id`/`name` are the sender and `to` is
    the group id for the session user's own messages; 1:1 messages never carry `groupID`.
    """

    message_id: str
    body: str | dict[str, Any]
    user_id: str
    name: str
    to: str | None
    date_time: str
    is_read: bool
    order: int
    group_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "messageID": self.message_id,
            "body": self.body,
            "userID": self.user_id,
            "name": self.name,
            "to": self.to,
            "dateTime": self.date_time,
            "isMessageRead": self.is_read,
            "order": self.order,
        }
        if self.group_id is not None:
            data["groupID"] = self.group_id
        return data

    @classmethod
    def from_json(cls, data: Any) -> WireMessage:
        try:
            body = data["body"]
            if not isinstance(body, str | dict):
                raise TypeError("body")
            to, group = data.get("to"), data.get("groupID")
            return cls(
                message_id=_nonempty(data["messageID"]),
                body=body,
                user_id=_nonempty(data["userID"]),
                name=str(data.get("name") or ""),
                to=str(to) if to is not None else None,
                date_time=str(data["dateTime"]),
                is_read=bool(data.get("isMessageRead", False)),
                order=_order(data["order"]),
                group_id=None if group is None else _nonempty(group),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"malformed message: {_short(exc)}") from None


def _order(value: Any) -> int:
    # int() would turn 1.9 into 1, True into 1 and "7" into 7: an order is a JSON integer.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("order must be an integer")
    return value


def _nonempty(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("id must be a non-empty string")
    return value
