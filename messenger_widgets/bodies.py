"""Typed request bodies: each method's JSON object checked field by field.

A body that fails a check raises `BadRequest` naming the field (or `PayloadTooLarge` for
text over the limit), so every handler starts from values it can trust.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, PayloadTooLarge
from .protocol import (
    ATTACHMENT_NAME_MAX_CHARS,
    EMAIL_MAX_CHARS,
    GROUP_MAX_MEMBERS,
    GROUP_NAME_MAX_CHARS,
    GROUP_NAME_MIN_CHARS,
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    ID_MAX_CHARS,
    MAX_TEXT_CHARS,
    NAME_MAX_CHARS,
    NAME_MIN_CHARS,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    SEARCH_QUERY_MAX_CHARS,
)

# One @, no spaces, a dot in the domain: what registration forms everywhere accept.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
CONTENT_TYPE_PATTERN = re.compile(r"^[\w.+-]+/[\w.+-]+$")


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def _name(
    body: dict[str, Any], field: str, low: int = NAME_MIN_CHARS, high: int = NAME_MAX_CHARS
) -> str:
    value = _str(body, field).strip()
    if not low <= len(value) <= high:
        raise BadRequest(f"{field} must be {low}-{high} characters")
    # Cc: C0 (U+0000-001F), DEL (U+007F) and C1 (U+0080-009F), not only the first.
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise BadRequest(f"{field} must not contain control characters")
    return value


def _user_id(body: dict[str, Any], field: str = "userID") -> str:
    value = _str(body, field)
    if not value or len(value) > ID_MAX_CHARS:
        raise BadRequest(f"{field} must be a non-empty string")
    return value


def _group_id(body: dict[str, Any]) -> str:
    if "userID" in body:
        raise BadRequest("send userID or groupID, not both")
    return _user_id(body, "groupID")


def _bool(body: dict[str, Any], name: str, default: bool | None = None) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return value


def normalize_email(email: str) -> str:
    return email.strip().casefold()


@dataclass(frozen=True)
class Register:
    first_name: str
    last_name: str
    email: str
    password: str
    dark_mode: bool

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Register:
        first, last = _name(body, "fName"), _name(body, "lName")
        email = _str(body, "email").strip()
        if len(email) > EMAIL_MAX_CHARS or not EMAIL_PATTERN.match(email):
            raise BadRequest("email must be a valid email address")
        password = _str(body, "password")
        if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
            raise BadRequest(
                f"password must be {PASSWORD_MIN_CHARS}-{PASSWORD_MAX_CHARS} characters"
            )
        return cls(first, last, email, password, _bool(body, "darkModeState", False))


@dataclass(frozen=True)
class Login:
    email: str
    password: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Login:
        email, password = _str(body, "email"), _str(body, "password")
        if len(email) > EMAIL_MAX_CHARS or len(password) > PASSWORD_MAX_CHARS:
            raise BadRequest("email or password is too long")
        return cls(email, password)


@dataclass(frozen=True)
class DarkMode:
    enabled: bool

    @classmethod
    def parse(cls, body: dict[str, Any]) -> DarkMode:
        return cls(_bool(body, "darkModeState"))


@dataclass(frozen=True)
class Search:
    text: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Search:
        text = _str(body, "name").strip()
        if len(text) > SEARCH_QUERY_MAX_CHARS:
            raise BadRequest(f"name must be at most {SEARCH_QUERY_MAX_CHARS} characters")
        return cls(text)


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment named by the client: its S3 key (or a URL into the bucket) and labels."""

    key: str
    url: str
    name: str
    content_type: str
    size: int


@dataclass(frozen=True)
class AddMessage:
    recipient_id: str
    text: str | None
    attachment: AttachmentRef | None
    client_message_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> AddMessage:
        recipient = _user_id(body)
        client_id = _client_id(body, "clientMessageId")
        return cls(recipient, *_content(body), client_id)


def _client_id(body: dict[str, Any], field: str) -> str:
    value = _str(body, field, required=False)
    if len(value) > ID_MAX_CHARS:
        raise BadRequest(f"{field} must be at most {ID_MAX_CHARS} characters")
    return value


def _content(body: dict[str, Any]) -> tuple[str | None, AttachmentRef | None]:
    """A message's `body`: a text (exactly one of the pair is set) or an attachment."""
    content = body.get("body")
    if isinstance(content, str):
        if len(content) > MAX_TEXT_CHARS:
            raise PayloadTooLarge(f"message text is longer than {MAX_TEXT_CHARS} characters")
        if not content.strip():
            raise BadRequest("body must not be empty")
        return content, None
    if isinstance(content, dict):
        return None, _attachment(content)
    raise BadRequest("body must be a text string or an attachment object")


def _attachment(data: dict[str, Any]) -> AttachmentRef:
    key, url = _str(data, "key", required=False), _str(data, "url", required=False)
    if not key and not url:
        raise BadRequest("attachment needs a key")
    name = _str(data, "name").strip()
    if not name or len(name) > ATTACHMENT_NAME_MAX_CHARS:
        raise BadRequest(f"attachment name must be 1-{ATTACHMENT_NAME_MAX_CHARS} characters")
    content_type = _str(data, "type", required=False).strip() or "application/octet-stream"
    if len(content_type) > 127 or not CONTENT_TYPE_PATTERN.match(content_type):
        raise BadRequest("attachment type must be a media type such as image/png")
    size = data.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BadRequest("attachment size must be a whole number of bytes")
    return AttachmentRef(key, url, name, content_type, size)


@dataclass(frozen=True)
class Conversation:
    """Bodies that only name the other party: selectSearchUser, markMessagesAsRead."""

    other_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Conversation:
        return cls(_user_id(body))


@dataclass(frozen=True)
class History:
    other_id: str
    before_order: int | None
    limit: int

    @classmethod
    def parse(cls, body: dict[str, Any]) -> History:
        before = _int(body, "beforeOrder", 1, 2**53)
        limit = _int(body, "limit", 1, HISTORY_MAX_LIMIT)
        return cls(_user_id(body), before, limit or HISTORY_DEFAULT_LIMIT)


# --- groups (v1.1) ------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateGroup:
    name: str
    member_ids: tuple[str, ...]  # as sent, duplicates removed, order kept; may name the caller
    client_group_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CreateGroup:
        name = _name(body, "name", GROUP_NAME_MIN_CHARS, GROUP_NAME_MAX_CHARS)
        members = body.get("memberIDs")
        if not isinstance(members, list):
            raise BadRequest("memberIDs must be a list of userIDs")
        if len(members) > GROUP_MAX_MEMBERS:
            raise BadRequest(f"memberIDs must name at most {GROUP_MAX_MEMBERS} users")
        if not all(isinstance(m, str) and 0 < len(m) <= ID_MAX_CHARS for m in members):
            raise BadRequest("memberIDs must hold non-empty userID strings")
        return cls(name, tuple(dict.fromkeys(members)), _client_id(body, "clientGroupId"))


@dataclass(frozen=True)
class GroupTarget:
    """Bodies that only name a group: group/leave, selectSearchUser, markMessagesAsRead."""

    group_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> GroupTarget:
        return cls(_group_id(body))


@dataclass(frozen=True)
class AddGroupMessage:
    group_id: str
    text: str | None
    attachment: AttachmentRef | None
    client_message_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> AddGroupMessage:
        group_id = _group_id(body)
        client_id = _client_id(body, "clientMessageId")
        return cls(group_id, *_content(body), client_id)


@dataclass(frozen=True)
class GroupHistory:
    group_id: str
    before_order: int | None
    limit: int

    @classmethod
    def parse(cls, body: dict[str, Any]) -> GroupHistory:
        group_id = _group_id(body)
        page = History.parse({**body, "userID": group_id})
        return cls(group_id, page.before_order, page.limit)
