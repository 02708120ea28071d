"""The store interface: what the worker needs to remember, whatever database holds it.

Designed around access patterns, not tables, so SQLite (local) and DynamoDB (cloud) can both
implement it: users by id and by email, sessions by id and by user, a conversation's
messages by order, a user's messages since a time, idempotency by (sender, client id), and
an atomic per-conversation order counter. Every implementation passes the same contract
suite in `tests/unit/store/contract.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Activity(StrEnum):
    ACCOUNT_CREATED = "account_created"
    LOGIN = "login"
    LOGOUT = "logout"
    LOGIN_FAILED = "login_failed"
    SESSION_EXPIRED = "session_expired"


@dataclass(frozen=True)
class User:
    user_id: str
    first_name: str
    last_name: str
    email: str  # as registered; lookups compare case-insensitively
    password_hash: str
    dark_mode: bool
    created_at: datetime
    last_logout_at: datetime | None = None
    created_by: str = ""  # id of the request that created it, for idempotent redelivery

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    user_id: str
    queue_url: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None  # set by logout or expiry
    reaped: bool = False  # the queue has been deleted

    def is_live(self, now: datetime) -> bool:
        return self.ended_at is None and self.expires_at > now


@dataclass(frozen=True)
class StoredMessage:
    message_id: str
    sender_id: str
    recipient_id: str
    body: str | dict[str, Any]  # text, or an attachment {key, name, type, size}
    order: int  # 1, 2, 3 ... per conversation, no gaps
    created_at: datetime
    is_read: bool = False
    client_message_id: str = ""

    def other_party(self, user_id: str) -> str:
        return self.recipient_id if self.sender_id == user_id else self.sender_id


@dataclass(frozen=True)
class ActivityRecord:
    user_id: str
    kind: Activity
    at: datetime
    detail: str = ""


def conversation_key(a: str, b: str) -> str:
    """The same key for both directions of a conversation."""
    return "|".join(sorted((a, b)))


class Store(Protocol):
    """Every method is atomic on its own; errors are `StoreError` or its subclasses."""

    # users
    def create_user(
        self,
        first_name: str,
        last_name: str,
        email: str,
        password_hash: str,
        dark_mode: bool,
        now: datetime,
        created_by: str = "",
    ) -> User:
        """Raise `AlreadyExists` when the email (compared case-insensitively) is taken."""
        ...

    def get_user(self, user_id: str) -> User | None: ...

    def get_user_by_email(self, email: str) -> User | None: ...

    def search_users(self, text: str, exclude_user_id: str, limit: int) -> list[User]:
        """Literal, case-insensitive substring of first name, last name or full name."""
        ...

    def set_dark_mode(self, user_id: str, enabled: bool) -> None: ...

    # sessions
    def create_session(
        self, session_id: str, user_id: str, queue_url: str, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        """Raise `AlreadyExists` when the session id is taken."""
        ...

    def get_session(self, session_id: str) -> SessionRecord | None: ...

    def live_sessions(self, user_id: str, now: datetime) -> list[SessionRecord]: ...

    def end_session(self, session_id: str, now: datetime, logout: bool) -> SessionRecord | None:
        """Mark ended (idempotent); with `logout`, also set the user's `last_logout_at`."""
        ...

    def sessions_to_reap(self, expired_before: datetime, limit: int) -> list[SessionRecord]:
        """Sessions whose queue is not yet deleted and that ended or expired before the time."""
        ...

    def mark_reaped(self, session_id: str, now: datetime) -> None: ...

    # messages
    def add_message(
        self,
        sender_id: str,
        recipient_id: str,
        body: str | dict[str, Any],
        client_message_id: str,
        now: datetime,
    ) -> tuple[StoredMessage, bool]:
        """Store once per (sender, client_message_id); return the message and whether it is new.

        `order` is the conversation's next number, assigned atomically even with several
        writers.
        """
        ...

    def conversation(
        self, a: str, b: str, limit: int, before_order: int | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """The `limit` newest messages older than `before_order`, oldest first, and has_more."""
        ...

    def messages_since(
        self, user_id: str, since: datetime | None, limit: int
    ) -> list[StoredMessage]:
        """Messages to or from the user created after `since` (all when None), oldest first,
        at most `limit` of the newest."""
        ...

    def count_messages_since(self, user_id: str, since: datetime | None) -> int: ...

    def mark_read(self, reader_id: str, sender_id: str) -> int:
        """Messages from sender to reader become read; return the highest order from sender
        in that conversation (0 when there is none)."""
        ...

    # activity and throttling
    def record_activity(
        self, user_id: str, kind: Activity, at: datetime, detail: str = ""
    ) -> None: ...

    def activity(self, user_id: str) -> list[ActivityRecord]: ...

    def record_failed_login(self, email: str, at: datetime) -> None: ...

    def failed_logins_since(self, email: str, since: datetime) -> int: ...

    def clear_failed_logins(self, email: str) -> None: ...

    def close(self) -> None: ...
