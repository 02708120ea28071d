"""The SQLite `Store`: one local file that several worker processes can write at once.

WAL lets readers run beside the one writer; every write is a `BEGIN IMMEDIATE` transaction,
so a conversation's next `order` is read and used under the write lock (no gaps, no repeats
across processes) with `UNIQUE(conversation, order_no)` as the backstop. Case-insensitive
lookups use casefolded key columns filled in Python, so no LIKE pattern or regex is ever
built from user input. Times are fixed-width ISO-8601 UTC text: text order is time order.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import AlreadyExists, NotFound, StoreError
from .base import Activity, ActivityRecord, SessionRecord, StoredMessage, User, conversation_key

# Step i moves the schema from version i to i + 1; append new steps, never edit old ones.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE users (
            user_id TEXT PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
            email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE, name_key TEXT NOT NULL,
            password_hash TEXT NOT NULL, dark_mode INTEGER NOT NULL, created_at TEXT NOT NULL,
            last_logout_at TEXT, created_by TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX users_by_name ON users (name_key, user_id)",
        """CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (user_id),
            queue_url TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
            ended_at TEXT, reaped INTEGER NOT NULL DEFAULT 0, reaped_at TEXT)""",
        "CREATE INDEX sessions_by_user ON sessions (user_id, created_at)",
        "CREATE INDEX sessions_unreaped ON sessions (expires_at) WHERE reaped = 0",
        """CREATE TABLE messages (
            message_id TEXT PRIMARY KEY, conversation TEXT NOT NULL,
            order_no INTEGER NOT NULL CHECK (order_no > 0),
            sender_id TEXT NOT NULL REFERENCES users (user_id),
            recipient_id TEXT NOT NULL REFERENCES users (user_id),
            body_kind TEXT NOT NULL CHECK (body_kind IN ('text', 'object')),
            body TEXT NOT NULL, created_at TEXT NOT NULL, is_read INTEGER NOT NULL DEFAULT 0,
            client_message_id TEXT NOT NULL DEFAULT '', UNIQUE (conversation, order_no))""",
        """CREATE UNIQUE INDEX messages_idempotency ON messages (sender_id, client_message_id)
            WHERE client_message_id <> ''""",
        "CREATE INDEX messages_by_sender ON messages (sender_id, created_at)",
        "CREATE INDEX messages_by_recipient ON messages (recipient_id, created_at)",
        """CREATE TABLE activity (
            id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, kind TEXT NOT NULL,
            at TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX activity_by_user ON activity (user_id, at)",
        """CREATE TABLE failed_logins (
            id INTEGER PRIMARY KEY, email_key TEXT NOT NULL, at TEXT NOT NULL)""",
        "CREATE INDEX failed_logins_by_email ON failed_logins (email_key, at)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_NO_LIMIT = sys.maxsize  # stands in for "no bound" so every query stays a constant string


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text, so comparing text compares instants; naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _opt_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    """Map sqlite3 errors to the package's domain errors, so callers never see sqlite3."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return AlreadyExists(f"already exists ({exc})")
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return NotFound(f"a referenced record does not exist ({exc})")
    return StoreError(f"SQLite store at {path} failed: {exc}")


def _encode_body(body: str | dict[str, Any]) -> tuple[str, str]:
    """JSON with a kind marker, so a text that looks like JSON still comes back a str."""
    kind = "text" if isinstance(body, str) else "object" if isinstance(body, dict) else ""
    if not kind:
        raise StoreError(f"a message body must be a str or a dict, not {type(body).__name__}")
    try:
        return kind, json.dumps(body, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a message body cannot be stored as JSON: {exc}") from exc


def _user(row: sqlite3.Row) -> User:
    return User(
        user_id=row["user_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        email=row["email"],
        password_hash=row["password_hash"],
        dark_mode=bool(row["dark_mode"]),
        created_at=_dt(row["created_at"]),
        last_logout_at=_opt_dt(row["last_logout_at"]),
        created_by=row["created_by"],
    )


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        session_id=row["session_id"],
        user_id=row["user_id"],
        queue_url=row["queue_url"],
        created_at=_dt(row["created_at"]),
        expires_at=_dt(row["expires_at"]),
        ended_at=_opt_dt(row["ended_at"]),
        reaped=bool(row["reaped"]),
    )


def _message(row: sqlite3.Row) -> StoredMessage:
    try:
        body = json.loads(row["body"])
    except ValueError as exc:
        raise StoreError(f"message {row['message_id']} has a corrupt body: {exc}") from exc
    if not isinstance(body, str if row["body_kind"] == "text" else dict):
        raise StoreError(f"message {row['message_id']} has a body of the wrong kind")
    return StoredMessage(
        message_id=row["message_id"],
        sender_id=row["sender_id"],
        recipient_id=row["recipient_id"],
        body=body,
        order=int(row["order_no"]),
        created_at=_dt(row["created_at"]),
        is_read=bool(row["is_read"]),
        client_message_id=row["client_message_id"],
    )


