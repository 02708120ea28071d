"""`SqliteStore`: the store contract on a real file, plus what only SQLite has to prove."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from messenger_widgets.errors import NotFound, StoreError
from messenger_widgets.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore

from .contract import T0, StoreContract, new_user, send


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "messenger.db"


@pytest.fixture
def make_store(db_path: Path) -> Iterator[Callable[[], SqliteStore]]:
    opened: list[SqliteStore] = []

    def make() -> SqliteStore:
        opened.append(SqliteStore(db_path))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], SqliteStore]) -> SqliteStore:
    return make_store()


class TestSqliteStoreContract(StoreContract):
    """The whole contract, on a file in tmp_path."""


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_creates_parent_dirs_and_uses_wal(store: SqliteStore, db_path: Path) -> None:
    assert db_path.is_file()
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_foreign_keys_are_enforced(store: SqliteStore) -> None:
    user = new_user(store)
    with pytest.raises(NotFound):
        store.create_session("s1", "no-such-user", "q", T0, T0)
    with pytest.raises(NotFound):
        store.add_message(user.user_id, "no-such-user", "hi", "", T0)
    assert store.conversation(user.user_id, "no-such-user", 10) == ([], False)


def test_schema_version_recorded_and_reopen_is_a_no_op(
    make_store: Callable[[], SqliteStore], db_path: Path
) -> None:
    first = make_store()
    user = new_user(first)
    first.close()
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 1
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        schema = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    again = make_store()
    assert again.get_user(user.user_id) == user
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert (
            conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
        )


def test_newer_schema_is_refused(store: SqliteStore, db_path: Path) -> None:
    store.close()
    with raw(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(db_path)


def test_order_is_unique_in_the_schema(store: SqliteStore, db_path: Path) -> None:
    a, b = new_user(store), new_user(store)
    send(store, a, b)
    with raw(db_path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO messages (message_id, conversation, order_no, sender_id, recipient_id,"
            " body_kind, body, created_at) SELECT 'x', conversation, order_no, sender_id,"
            " recipient_id, body_kind, body, created_at FROM messages"
        )


def test_text_that_looks_like_json_keeps_its_kind(store: SqliteStore, db_path: Path) -> None:
    a, b = new_user(store), new_user(store)
    send(store, a, b, '{"key": "attachments/x"}')
    send(store, a, b, {"key": "attachments/x"})
    with raw(db_path) as conn:
        kinds = conn.execute("SELECT body_kind FROM messages ORDER BY order_no").fetchall()
    assert [k for (k,) in kinds] == ["text", "object"]


def test_clock_is_kept(db_path: Path) -> None:
    store = SqliteStore(db_path, clock=lambda: T0)
    try:
        assert store.clock() == T0
    finally:
        store.close()


def test_closed_store_raises_store_error(store: SqliteStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.get_user("x")


def test_locked_database_is_a_store_error(db_path: Path) -> None:
    store = SqliteStore(db_path, busy_timeout=0.2)
    user = new_user(store)
    blocker = raw(db_path)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="locked") as caught:
            new_user(store)
        assert not isinstance(caught.value, sqlite3.Error)
        assert store.get_user(user.user_id) == user  # WAL: readers are not blocked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    new_user(store, "After")  # the failed transaction left nothing behind
    store.close()


def test_corrupt_file_is_a_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not an SQLite database, just some bytes\n" * 100)
    with pytest.raises(StoreError) as caught:
        SqliteStore(db_path)
    assert not isinstance(caught.value, sqlite3.Error)


def test_unstorable_body_is_a_store_error(store: SqliteStore) -> None:
    a, b = new_user(store), new_user(store)
    body: Any = {"size": float("nan")}
    with pytest.raises(StoreError):
        store.add_message(a.user_id, b.user_id, body, "", T0)
    assert store.conversation(a.user_id, b.user_id, 10) == ([], False)


# --- several processes ------------------------------------------------------------------------
def _write_messages(
    path: str, sender: str, recipient: str, count: int, tag: str, barrier: Any
) -> None:
    store = SqliteStore(path)
    barrier.wait()  # start together, so the writers really contend
    try:
        for i in range(count):
            store.add_message(sender, recipient, f"{tag}-{i}", f"{tag}-{i}", datetime.now(UTC))
    finally:
        store.close()


def _open_and_register(path: str, index: int, barrier: Any) -> None:
    barrier.wait()
    store = SqliteStore(path)
    try:
        store.create_user("P", str(index), f"p{index}@example.com", "h", False, T0)
    finally:
        store.close()


def test_processes_get_orders_without_gaps_or_repeats(store: SqliteStore, db_path: Path) -> None:
    a, b = new_user(store), new_user(store)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    pairs = [(a, b), (b, a), (a, b), (b, a)]
    procs = [
        ctx.Process(
            target=_write_messages,
            args=(str(db_path), x.user_id, y.user_id, 50, f"p{n}", barrier),
        )
        for n, (x, y) in enumerate(pairs)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    messages, more = store.conversation(a.user_id, b.user_id, 1000)
    assert [m.order for m in messages] == list(range(1, 201)) and not more
    assert len({m.body for m in messages}) == 200


def test_processes_opening_a_new_file_at_once(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [
        ctx.Process(target=_open_and_register, args=(str(db_path), n, barrier)) for n in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    store = SqliteStore(db_path)
    try:
        for n in range(4):
            assert store.get_user_by_email(f"P{n}@example.com") is not None
    finally:
        store.close()
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_1_file_gains_groups_and_keeps_its_data(db_path: Path) -> None:
    """A store written before groups (schema 1) is migrated in place by the appended step."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with raw(db_path) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
    store = SqliteStore(db_path)
    try:
        a, b = new_user(store), new_user(store)
        send(store, a, b, "old")
        group, _ = store.create_group(a.user_id, "new", [b.user_id], "", T0)
        assert store.add_group_message(group.group_id, b.user_id, "hi", "", T0)[0].order == 1
        with raw(db_path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    finally:
        store.close()
