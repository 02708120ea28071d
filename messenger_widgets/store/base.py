"""The store interface: what the worker needs to remember, whatever database holds it.

Designed around access patterns, not tables, so SQLite (local) and DynamoDB (cloud) can both
implement it: users by id and by email, sessions by id and by user, a conversation's
messages by order, a user's messages since a time, idempotency by (sender, client id), and
an atomic per-conversation order counter; groups (v1.1) by id and by member, a group's
messages by order and by time, and each member's read mark. Every implementation passes the
same contract suite in `tests/unit/store/contract.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True)
class GroupMember:
    user_id: str
    read_up_to: int = 0  # this member has read the group's messages up to this order


@dataclass(frozen=True)
class Group:
    """A group conversation (v1.1): `members` are the current ones, in user id order."""

    group_id: str
    name: str
    created_by: str
    created_at: datetime
    members: tuple[GroupMember, ...]
    former: tuple[str, ...] = ()  # ids of users who left, in user id order
    client_key: str = ""  # the creator's idempotency key

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(m.user_id for m in self.members)

    def is_member(self, user_id: str) -> bool:
        return any(m.user_id == user_id for m in self.members)

    def read_up_to(self, user_id: str) -> int:
        return next((m.read_up_to for m in self.members if m.user_id == user_id), 0)


@dataclass(frozen=True)
class GroupMessage:
    message_id: str
    group_id: str
    sender_id: str
    body: str | dict[str, Any]
    order: int  # 1, 2, 3 ... per group, no gaps
    created_at: datetime
    client_message_id: str = ""


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

    # groups (v1.1)
    def create_group(
        self, creator_id: str, name: str, member_ids: Sequence[str], client_key: str, now: datetime
    ) -> tuple[Group, bool]:
        """Store once per (creator, client_key); return the group and whether it is new.

        The creator is a member whether or not `member_ids` names them; duplicates count once.
        The caller checks the member count and that every member exists.
        """
        ...

    def get_group(self, group_id: str) -> Group | None: ...

    def groups_for_user(self, user_id: str) -> list[Group]:
        """The groups the user is a member of now, oldest first."""
        ...

    def leave_group(self, group_id: str, user_id: str, now: datetime) -> bool:
        """Remove a current member (their messages stay); False when they were not one."""
        ...

    def add_group_message(
        self,
        group_id: str,
        sender_id: str,
        body: str | dict[str, Any],
        client_message_id: str,
        now: datetime,
    ) -> tuple[GroupMessage, bool]:
        """Store once per (sender, client_message_id) among group messages; return the
        message and whether it is new. `order` is the group's next number, assigned
        atomically. Raise `NotFound` when the sender is not a member (checked atomically)."""
        ...

    def group_conversation(
        self, group_id: str, limit: int, before_order: int | None = None
    ) -> tuple[list[GroupMessage], bool]:
        """The `limit` newest messages older than `before_order`, oldest first, and has_more."""
        ...

    def group_messages_since(
        self, user_id: str, since: datetime | None, limit: int
    ) -> list[GroupMessage]:
        """Messages of the user's current groups created after `since` (all when None),
        oldest first, at most `limit` of the newest."""
        ...

    def count_group_messages_since(self, user_id: str, since: datetime | None) -> int: ...

    def mark_group_read(self, group_id: str, reader_id: str) -> int:
        """The reader has read everything stored so far: their mark moves (never back) to the
        group's newest order; return it. Raise `NotFound` when they are not a member."""
        ...

    def group_unread(self, group_id: str, user_id: str) -> int:
        """How many messages of others the member has not read (0 for a non-member)."""
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
