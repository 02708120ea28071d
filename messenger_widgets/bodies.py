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


def _name(body: dict[str, Any], field: str) -> str:
    value = _str(body, field).strip()
    if not NAME_MIN_CHARS <= len(value) <= NAME_MAX_CHARS:
        raise BadRequest(f"{field} must be {NAME_MIN_CHARS}-{NAME_MAX_CHARS} characters")
    # Cc: C0 (U+0000-001F), DEL (U+007F) and C1 (U+0080-009F), not only the first.
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise BadRequest(f"{field} must not contain control characters")
    return value


def _user_id(body: dict[str, Any]) -> str:
    value = _str(body, "userID")
    if not value or len(value) > ID_MAX_CHARS:
        raise BadRequest("userID must be a non-empty string")
    return value


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
        client_id = _str(body, "clientMessageId", required=False)
        if len(client_id) > ID_MAX_CHARS:
            raise BadRequest(f"clientMessageId must be at most {ID_MAX_CHARS} characters")
        content = body.get("body")
        if isinstance(content, str):
            if len(content) > MAX_TEXT_CHARS:
                raise PayloadTooLarge(f"message text is longer than {MAX_TEXT_CHARS} characters")
            if not content.strip():
                raise BadRequest("body must not be empty")
            return cls(recipient, content, None, client_id)
        if isinstance(content, dict):
            return cls(recipient, None, _attachment(content), client_id)
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
