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
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import AlreadyExists, NotFound, StoreError
from .base import (
    Activity,
    ActivityRecord,
    Group,
    GroupMember,
    GroupMessage,
    SessionRecord,
    StoredMessage,
    User,
    conversation_key,
)

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
    (  # 1 -> 2: groups (v1.1)
        """CREATE TABLE groups (
            group_id TEXT PRIMARY KEY, name TEXT NOT NULL,
            created_by TEXT NOT NULL REFERENCES users (user_id), created_at TEXT NOT NULL,
            client_key TEXT NOT NULL DEFAULT '')""",
        """CREATE UNIQUE INDEX groups_idempotency ON groups (created_by, client_key)
            WHERE client_key <> ''""",
        """CREATE TABLE group_members (
            group_id TEXT NOT NULL REFERENCES groups (group_id),
            user_id TEXT NOT NULL REFERENCES users (user_id),
            joined_at TEXT NOT NULL, left_at TEXT,
            read_up_to INTEGER NOT NULL DEFAULT 0 CHECK (read_up_to >= 0),
            PRIMARY KEY (group_id, user_id))""",
        "CREATE INDEX group_members_by_user ON group_members (user_id, group_id)",
        """CREATE TABLE group_messages (
            message_id TEXT PRIMARY KEY, group_id TEXT NOT NULL REFERENCES groups (group_id),
            order_no INTEGER NOT NULL CHECK (order_no > 0),
            sender_id TEXT NOT NULL REFERENCES users (user_id),
            body_kind TEXT NOT NULL CHECK (body_kind IN ('text', 'object')),
            body TEXT NOT NULL, created_at TEXT NOT NULL,
            client_message_id TEXT NOT NULL DEFAULT '', UNIQUE (group_id, order_no))""",
        """CREATE UNIQUE INDEX group_messages_idempotency
            ON group_messages (sender_id, client_message_id) WHERE client_message_id <> ''""",
        "CREATE INDEX group_messages_by_time ON group_messages (group_id, created_at)",
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
        row["user_id"], row["first_name"], row["last_name"], row["email"], row["password_hash"],
        bool(row["dark_mode"]), _dt(row["created_at"]), _opt_dt(row["last_logout_at"]),
        row["created_by"],
    )  # fmt: skip


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        row["session_id"], row["user_id"], row["queue_url"], _dt(row["created_at"]),
        _dt(row["expires_at"]), _opt_dt(row["ended_at"]), bool(row["reaped"]),
    )  # fmt: skip


def _body(row: sqlite3.Row) -> Any:
    """Check the kind marker, so a corrupt row is a `StoreError`, not a wrong-typed body."""
    try:
        body = json.loads(row["body"])
    except ValueError as exc:
        raise StoreError(f"message {row['message_id']} has a corrupt body: {exc}") from exc
    if not isinstance(body, str if row["body_kind"] == "text" else dict):
        raise StoreError(f"message {row['message_id']} has a body of the wrong kind")
    return body


def _group_message(row: sqlite3.Row) -> GroupMessage:
    return GroupMessage(
        row["message_id"], row["group_id"], row["sender_id"], _body(row), int(row["order_no"]),
        _dt(row["created_at"]), row["client_message_id"],
    )  # fmt: skip


def _message(row: sqlite3.Row) -> StoredMessage:
    body = _body(row)
    return StoredMessage(
        row["message_id"], row["sender_id"], row["recipient_id"], body, int(row["order_no"]),
        _dt(row["created_at"]), bool(row["is_read"]), row["client_message_id"],
    )  # fmt: skip


class SqliteStore:
    """`Store` over one SQLite file; one connection per instance, guarded by a lock."""

    def __init__(
        self,
        path: str | Path,
        clock: Callable[[], datetime] | None = None,
        *,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = Path(path)
        # Every method takes explicit times; the clock is kept for callers that want one.
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store at {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._prepare(time.monotonic() + busy_timeout)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from exc
            raise

    def _prepare(self, deadline: float) -> None:
        """Switch to WAL and migrate, retrying while busy: SQLite answers a journal-mode
        switch racing another process's with SQLITE_BUSY at once, without waiting."""
        while True:
            try:
                if self._conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._conn.execute("PRAGMA journal_mode = WAL")
                self._migrate()
                return
            except (sqlite3.OperationalError, StoreError) as exc:
                cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
                name = getattr(cause, "sqlite_errorname", "")
                if not name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _migrate(self) -> None:
        """Apply the missing steps in one write transaction, so concurrent openers serialize
        and the second one finds nothing left to do."""
        with self._tx(write=True) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"SQLite store at {self.path} has schema version {version}, newer than"
                    f" this code's {SCHEMA_VERSION}"
                )
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Serialize threads; a write takes the database write lock up front (BEGIN
        IMMEDIATE), so its reads and writes cannot interleave with another process."""
        with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store at {self.path} is closed")
            conn = self._conn
            try:
                if write:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    if write:
                        conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._tx() as conn:
            return conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._tx(write=True) as conn:
            return conn.execute(sql, params).rowcount

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
        user = User(
            uuid.uuid4().hex, first_name, last_name, email, password_hash, dark_mode,
            _dt(_ts(now)), None, created_by,
        )  # fmt: skip
        self._write(
            "INSERT INTO users (user_id, first_name, last_name, email, email_key, name_key,"
            " password_hash, dark_mode, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.user_id, first_name, last_name, email, email.casefold(),
                user.name.casefold(), password_hash, int(dark_mode), _ts(now), created_by,
            ),
        )  # fmt: skip
        return user

    def get_user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE user_id = ?", (user_id,))
        return None if row is None else _user(row)

    def get_user_by_email(self, email: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE email_key = ?", (email.casefold(),))
        return None if row is None else _user(row)

    def search_users(self, text: str, exclude_user_id: str, limit: int) -> list[User]:
        """instr() on the casefolded "first last" key: every substring of the first or last
        name is one of the full name, and instr() gives no character a special meaning.
        An empty query matches nobody rather than everybody."""
        needle = text.casefold()
        if not needle or limit <= 0:
            return []
        rows = self._rows(
            "SELECT * FROM users WHERE instr(name_key, ?) > 0 AND user_id <> ?"
            " ORDER BY name_key, user_id LIMIT ?",
            (needle, exclude_user_id, limit),
        )
        return [_user(row) for row in rows]

    def set_dark_mode(self, user_id: str, enabled: bool) -> None:
        sql = "UPDATE users SET dark_mode = ? WHERE user_id = ?"
        if self._write(sql, (int(enabled), user_id)) == 0:
            raise NotFound(f"no user {user_id!r}")

    # sessions
    def create_session(
        self, session_id: str, user_id: str, queue_url: str, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        self._write(
            "INSERT INTO sessions (session_id, user_id, queue_url, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (session_id, user_id, queue_url, _ts(now), _ts(expires_at)),
        )
        return SessionRecord(session_id, user_id, queue_url, _dt(_ts(now)), _dt(_ts(expires_at)))

    def get_session(self, session_id: str) -> SessionRecord | None:
        row = self._one("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        return None if row is None else _session(row)

    def live_sessions(self, user_id: str, now: datetime) -> list[SessionRecord]:
        rows = self._rows(
            "SELECT * FROM sessions WHERE user_id = ? AND ended_at IS NULL AND expires_at > ?"
            " ORDER BY created_at, session_id",
            (user_id, _ts(now)),
        )
        return [_session(row) for row in rows]

    def end_session(self, session_id: str, now: datetime, logout: bool) -> SessionRecord | None:
        """Only the call that ends the session writes, so a redelivered logout changes
        nothing; `last_logout_at` never moves backwards (workers' clocks may differ)."""
        select = "SELECT * FROM sessions WHERE session_id = ?"
        with self._tx(write=True) as conn:
            row = conn.execute(select, (session_id,)).fetchone()
            if row is None or row["ended_at"] is not None:
                return None if row is None else _session(row)
            conn.execute(
                "UPDATE sessions SET ended_at = ? WHERE session_id = ?", (_ts(now), session_id)
            )
            if logout:
                conn.execute(
                    "UPDATE users SET last_logout_at = max(coalesce(last_logout_at, ''), ?)"
                    " WHERE user_id = ?",
                    (_ts(now), row["user_id"]),
                )
            return _session(conn.execute(select, (session_id,)).fetchone())

    def sessions_to_reap(self, expired_before: datetime, limit: int) -> list[SessionRecord]:
        cutoff = _ts(expired_before)
        rows = self._rows(
            "SELECT * FROM sessions WHERE reaped = 0"
            " AND ((ended_at IS NOT NULL AND ended_at < ?) OR expires_at < ?)"
            " ORDER BY expires_at, session_id LIMIT ?",
            (cutoff, cutoff, max(limit, 0)),
        )
        return [_session(row) for row in rows]

    def mark_reaped(self, session_id: str, now: datetime) -> None:
        """Idempotent, and a no-op for an unknown session: reaping is simply retried."""
        self._write(
            "UPDATE sessions SET reaped = 1, reaped_at = coalesce(reaped_at, ?)"
            " WHERE session_id = ?",
            (_ts(now), session_id),
        )

    # messages
    def add_message(
        self,
        sender_id: str,
        recipient_id: str,
        body: str | dict[str, Any],
        client_message_id: str,
        now: datetime,
    ) -> tuple[StoredMessage, bool]:
        """The duplicate check, the next order and the insert share one write transaction."""
        kind, payload = _encode_body(body)
        key = conversation_key(sender_id, recipient_id)
        with self._tx(write=True) as conn:
            if client_message_id:
                row = conn.execute(
                    "SELECT * FROM messages WHERE sender_id = ? AND client_message_id = ?",
                    (sender_id, client_message_id),
                ).fetchone()
                if row is not None:
                    return _message(row), False
            order = int(
                conn.execute(
                    "SELECT coalesce(max(order_no), 0) + 1 FROM messages WHERE conversation = ?",
                    (key,),
                ).fetchone()[0]
            )
            message = StoredMessage(
                uuid.uuid4().hex, sender_id, recipient_id, json.loads(payload), order,
                _dt(_ts(now)), False, client_message_id,
            )  # fmt: skip
            conn.execute(
                "INSERT INTO messages (message_id, conversation, order_no, sender_id,"
                " recipient_id, body_kind, body, created_at, client_message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.message_id, key, order, sender_id, recipient_id, kind, payload,
                    _ts(now), client_message_id,
                ),
            )  # fmt: skip
        return message, True

    def conversation(
        self, a: str, b: str, limit: int, before_order: int | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """Fetch one more than asked: its presence is `has_more`."""
        limit = max(limit, 0)
        rows = self._rows(
            "SELECT * FROM messages WHERE conversation = ? AND order_no < ?"
            " ORDER BY order_no DESC LIMIT ?",
            (
                conversation_key(a, b),
                _NO_LIMIT if before_order is None else before_order,
                limit + 1,
            ),
        )
        return [_message(row) for row in reversed(rows[:limit])], len(rows) > limit

    def messages_since(
        self, user_id: str, since: datetime | None, limit: int
    ) -> list[StoredMessage]:
        rows = self._rows(
            "SELECT * FROM messages WHERE (sender_id = ? OR recipient_id = ?) AND created_at > ?"
            " ORDER BY created_at DESC, order_no DESC, rowid DESC LIMIT ?",
            (user_id, user_id, "" if since is None else _ts(since), max(limit, 0)),
        )
        return [_message(row) for row in reversed(rows)]

    def count_messages_since(self, user_id: str, since: datetime | None) -> int:
        row = self._one(
            "SELECT count(*) FROM messages WHERE (sender_id = ? OR recipient_id = ?)"
            " AND created_at > ?",
            (user_id, user_id, "" if since is None else _ts(since)),
        )
        return 0 if row is None else int(row[0])

    def mark_read(self, reader_id: str, sender_id: str) -> int:
        where = "WHERE conversation = ? AND sender_id = ? AND recipient_id = ?"
        params = (conversation_key(reader_id, sender_id), sender_id, reader_id)
        with self._tx(write=True) as conn:
            conn.execute(f"UPDATE messages SET is_read = 1 {where} AND is_read = 0", params)  # noqa: S608
            row = conn.execute(f"SELECT coalesce(max(order_no), 0) FROM messages {where}", params)  # noqa: S608
            return int(row.fetchone()[0])

    # groups (v1.1)
    def _group(self, conn: sqlite3.Connection, group_id: str) -> Group | None:
        row = conn.execute("SELECT * FROM groups WHERE group_id = ?", (group_id,)).fetchone()
        if row is None:
            return None
        people = conn.execute(
            "SELECT user_id, left_at, read_up_to FROM group_members WHERE group_id = ?"
            " ORDER BY user_id",
            (group_id,),
        ).fetchall()
        return Group(
            row["group_id"], row["name"], row["created_by"], _dt(row["created_at"]),
            tuple(GroupMember(p["user_id"], int(p["read_up_to"])) for p in people
                  if p["left_at"] is None),
            tuple(p["user_id"] for p in people if p["left_at"] is not None),
            row["client_key"],
        )  # fmt: skip

    def create_group(
        self, creator_id: str, name: str, member_ids: Sequence[str], client_key: str, now: datetime
    ) -> tuple[Group, bool]:
        """The duplicate check and every insert share one write transaction."""
        ids = sorted({creator_id, *member_ids})
        with self._tx(write=True) as conn:
            if client_key:
                row = conn.execute(
                    "SELECT group_id FROM groups WHERE created_by = ? AND client_key = ?",
                    (creator_id, client_key),
                ).fetchone()
                if row is not None:
                    return self._existing(conn, row["group_id"]), False
            group_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO groups (group_id, name, created_by, created_at, client_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (group_id, name, creator_id, _ts(now), client_key),
            )
            conn.executemany(
                "INSERT INTO group_members (group_id, user_id, joined_at) VALUES (?, ?, ?)",
                [(group_id, user_id, _ts(now)) for user_id in ids],
            )
            return self._existing(conn, group_id), True

    def _existing(self, conn: sqlite3.Connection, group_id: str) -> Group:
        group = self._group(conn, group_id)
        if group is None:
            raise StoreError(f"group {group_id} vanished")
        return group

    def get_group(self, group_id: str) -> Group | None:
        with self._tx() as conn:
            return self._group(conn, group_id)

    def groups_for_user(self, user_id: str) -> list[Group]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT g.group_id FROM group_members m JOIN groups g USING (group_id)"
                " WHERE m.user_id = ? AND m.left_at IS NULL ORDER BY g.created_at, g.group_id",
                (user_id,),
            ).fetchall()
            return [self._existing(conn, row["group_id"]) for row in rows]

    def leave_group(self, group_id: str, user_id: str, now: datetime) -> bool:
        return (
            self._write(
                "UPDATE group_members SET left_at = ?"
                " WHERE group_id = ? AND user_id = ? AND left_at IS NULL",
                (_ts(now), group_id, user_id),
            )
            == 1
        )

    def add_group_message(
        self,
        group_id: str,
        sender_id: str,
        body: str | dict[str, Any],
        client_message_id: str,
        now: datetime,
    ) -> tuple[GroupMessage, bool]:
        """The duplicate check, the membership check, the next order and the insert share
        one write transaction."""
        kind, payload = _encode_body(body)
        with self._tx(write=True) as conn:
            if client_message_id:
                row = conn.execute(
                    "SELECT * FROM group_messages WHERE sender_id = ? AND client_message_id = ?",
                    (sender_id, client_message_id),
                ).fetchone()
                if row is not None:
                    return _group_message(row), False
            member = conn.execute(
                "SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?"
                " AND left_at IS NULL",
                (group_id, sender_id),
            ).fetchone()
            if member is None:
                raise NotFound(f"{sender_id!r} is not a member of group {group_id!r}")
            order = int(
                conn.execute(
                    "SELECT coalesce(max(order_no), 0) + 1 FROM group_messages WHERE group_id = ?",
                    (group_id,),
                ).fetchone()[0]
            )
            message = GroupMessage(
                uuid.uuid4().hex, group_id, sender_id, json.loads(payload), order, _dt(_ts(now)),
                client_message_id,
            )  # fmt: skip
            conn.execute(
                "INSERT INTO group_messages (message_id, group_id, order_no, sender_id,"
                " body_kind, body, created_at, client_message_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.message_id, group_id, order, sender_id, kind, payload, _ts(now),
                    client_message_id,
                ),
            )  # fmt: skip
        return message, True

    def group_conversation(
        self, group_id: str, limit: int, before_order: int | None = None
    ) -> tuple[list[GroupMessage], bool]:
        limit = max(limit, 0)
        rows = self._rows(
            "SELECT * FROM group_messages WHERE group_id = ? AND order_no < ?"
            " ORDER BY order_no DESC LIMIT ?",
            (group_id, _NO_LIMIT if before_order is None else before_order, limit + 1),
        )
        return [_group_message(row) for row in reversed(rows[:limit])], len(rows) > limit

    _MY_GROUP_MESSAGES = (
        " FROM group_messages gm JOIN group_members m ON m.group_id = gm.group_id"
        " WHERE m.user_id = ? AND m.left_at IS NULL AND gm.created_at > ?"
    )

    def group_messages_since(
        self, user_id: str, since: datetime | None, limit: int
    ) -> list[GroupMessage]:
        rows = self._rows(
            "SELECT gm.*" + self._MY_GROUP_MESSAGES
            + " ORDER BY gm.created_at DESC, gm.order_no DESC, gm.rowid DESC LIMIT ?",
            (user_id, "" if since is None else _ts(since), max(limit, 0)),
        )  # fmt: skip
        return [_group_message(row) for row in reversed(rows)]

    def count_group_messages_since(self, user_id: str, since: datetime | None) -> int:
        row = self._one(
            "SELECT count(*)" + self._MY_GROUP_MESSAGES,
            (user_id, "" if since is None else _ts(since)),
        )
        return 0 if row is None else int(row[0])

    def mark_group_read(self, group_id: str, reader_id: str) -> int:
        with self._tx(write=True) as conn:
            changed = conn.execute(
                "UPDATE group_members SET read_up_to = max(read_up_to, (SELECT"
                " coalesce(max(order_no), 0) FROM group_messages WHERE group_id = ?))"
                " WHERE group_id = ? AND user_id = ? AND left_at IS NULL",
                (group_id, group_id, reader_id),
            ).rowcount
            if changed != 1:
                raise NotFound(f"{reader_id!r} is not a member of group {group_id!r}")
            row = conn.execute(
                "SELECT read_up_to FROM group_members WHERE group_id = ? AND user_id = ?",
                (group_id, reader_id),
            )
            return int(row.fetchone()[0])

    def group_unread(self, group_id: str, user_id: str) -> int:
        row = self._one(
            "SELECT count(*) FROM group_messages gm JOIN group_members m"
            " ON m.group_id = gm.group_id AND m.user_id = ? AND m.left_at IS NULL"
            " WHERE gm.group_id = ? AND gm.order_no > m.read_up_to AND gm.sender_id <> ?",
            (user_id, group_id, user_id),
        )
        return 0 if row is None else int(row[0])

    # activity and throttling
    def record_activity(self, user_id: str, kind: Activity, at: datetime, detail: str = "") -> None:
        self._write(
            "INSERT INTO activity (user_id, kind, at, detail) VALUES (?, ?, ?, ?)",
            (user_id, Activity(kind).value, _ts(at), detail),
        )

    def activity(self, user_id: str) -> list[ActivityRecord]:
        rows = self._rows("SELECT * FROM activity WHERE user_id = ? ORDER BY at, id", (user_id,))
        return [
            ActivityRecord(row["user_id"], Activity(row["kind"]), _dt(row["at"]), row["detail"])
            for row in rows
        ]

    def record_failed_login(self, email: str, at: datetime) -> None:
        sql = "INSERT INTO failed_logins (email_key, at) VALUES (?, ?)"
        self._write(sql, (email.casefold(), _ts(at)))

    def failed_logins_since(self, email: str, since: datetime) -> int:
        """Inclusive of `since`: at the window's edge, throttling errs on the safe side."""
        row = self._one(
            "SELECT count(*) FROM failed_logins WHERE email_key = ? AND at >= ?",
            (email.casefold(), _ts(since)),
        )
        return 0 if row is None else int(row[0])

    def clear_failed_logins(self, email: str) -> None:
        self._write("DELETE FROM failed_logins WHERE email_key = ?", (email.casefold(),))

    def close(self) -> None:
        """Idempotent; any later call raises `StoreError`."""
        with self._lock:
            if not self._closed:
                self._closed = True
                with suppress(sqlite3.Error):
                    self._conn.close()
