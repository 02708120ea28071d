"""The contract every `Store` implementation must pass, whatever database is behind it.

Use it by subclassing `StoreContract` in a test module (`class TestMyStore(StoreContract)`)
that provides two fixtures:

- `make_store`: a factory; each call opens a NEW handle onto the SAME backing data (the same
  SQLite file, the same DynamoDB tables) and the fixture closes them all at teardown;
- `store`: one open handle onto empty backing data (usually `make_store()`).

Every test asserts observable behaviour through the `Store` interface only.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from messenger_widgets.errors import AlreadyExists, NotFound, StoreError
from messenger_widgets.store.base import Activity, Store, StoredMessage, User

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MakeStore = Callable[[], Store]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def is_utc(moment: datetime | None) -> bool:
    return moment is not None and moment.utcoffset() == timedelta(0)


def new_user(store: Store, first: str = "Ann", last: str = "Lee", **kw: Any) -> User:
    email = kw.pop("email", f"{first}.{uuid.uuid4().hex[:10]}@example.com")
    return store.create_user(first, last, email, kw.pop("password_hash", "hash"), False, T0, **kw)


def send(
    store: Store, a: User, b: User, body: str | dict[str, Any] = "hi", t: float = 0
) -> StoredMessage:
    message, created = store.add_message(a.user_id, b.user_id, body, "", at(t))
    assert created
    return message


def names(users: list[User]) -> list[str]:
    return [u.name for u in users]


class StoreContract:
    # --- users ------------------------------------------------------------------------------
    def test_create_user_round_trips(self, store: Store) -> None:
        user = store.create_user("Ann", "Lee", "Ann.Lee@Example.com", "h$1", True, at(0), "req-1")
        assert isinstance(user.user_id, str) and user.user_id
        assert store.get_user(user.user_id) == user
        assert (user.first_name, user.last_name, user.name) == ("Ann", "Lee", "Ann Lee")
        assert user.email == "Ann.Lee@Example.com"  # kept as registered
        assert (user.password_hash, user.dark_mode, user.created_by) == ("h$1", True, "req-1")
        assert user.created_at == at(0) and is_utc(user.created_at)
        assert user.last_logout_at is None

    def test_user_ids_are_distinct(self, store: Store) -> None:
        ids = {new_user(store).user_id for _ in range(5)}
        assert len(ids) == 5

    def test_unknown_user_is_none(self, store: Store) -> None:
        new_user(store)
        assert store.get_user("no-such-id") is None
        assert store.get_user_by_email("nobody@example.com") is None

    def test_email_lookup_ignores_case(self, store: Store) -> None:
        user = new_user(store, email="Ann.Lee@Example.com")
        found = store.get_user_by_email("ann.lee@EXAMPLE.COM")
        assert found is not None and found.user_id == user.user_id

    def test_email_unique_ignoring_case(self, store: Store) -> None:
        first = new_user(store, "Ann", email="Ann.Lee@Example.com")
        with pytest.raises(AlreadyExists):
            new_user(store, "Other", email="ANN.LEE@example.com")
        assert issubclass(AlreadyExists, StoreError)
        found = store.get_user_by_email("ann.lee@example.com")
        assert found is not None and found.user_id == first.user_id and found.first_name == "Ann"

    def test_email_compared_casefolded(self, store: Store) -> None:
        new_user(store, email="STRASSE@example.de")
        with pytest.raises(AlreadyExists):
            new_user(store, email="straße@example.de")
        assert store.get_user_by_email("Straße@Example.DE") is not None

    def test_times_come_back_utc(self, store: Store) -> None:
        plus_two = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        user = store.create_user("Ann", "Lee", "a@example.com", "h", False, plus_two)
        stored = store.get_user(user.user_id)
        assert stored is not None and stored.created_at == T0 and is_utc(stored.created_at)

    def test_dark_mode(self, store: Store) -> None:
        user, other = new_user(store), new_user(store)
        store.set_dark_mode(user.user_id, True)
        assert store.get_user(user.user_id).dark_mode is True  # type: ignore[union-attr]
        assert store.get_user(other.user_id).dark_mode is False  # type: ignore[union-attr]
        store.set_dark_mode(user.user_id, False)
        assert store.get_user(user.user_id).dark_mode is False  # type: ignore[union-attr]

    def test_dark_mode_of_unknown_user(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.set_dark_mode("no-such-id", True)

    # --- search -----------------------------------------------------------------------------
    def test_search_first_last_and_full_name(self, store: Store) -> None:
        caller = new_user(store, "Zed", "Caller")
        for first, last in [("Ann", "Lee"), ("Bob", "Leeson"), ("Carl", "Moss")]:
            new_user(store, first, last)
        assert names(store.search_users("ann", caller.user_id, 50)) == ["Ann Lee"]
        assert names(store.search_users("LEE", caller.user_id, 50)) == ["Ann Lee", "Bob Leeson"]
        assert names(store.search_users("n L", caller.user_id, 50)) == ["Ann Lee"]
        assert names(store.search_users("oSS", caller.user_id, 50)) == ["Carl Moss"]
        assert store.search_users("xyz", caller.user_id, 50) == []

    def test_search_returns_whole_users(self, store: Store) -> None:
        caller, ann = new_user(store, "Zed"), new_user(store, "Ann", "Lee")
        assert store.search_users("ann", caller.user_id, 50) == [ann]

    def test_search_excludes_caller(self, store: Store) -> None:
        me = new_user(store, "Ann", "Caller")
        other = new_user(store, "Ann", "Lee")
        assert names(store.search_users("ann", me.user_id, 50)) == ["Ann Lee"]
        assert names(store.search_users("ann", other.user_id, 50)) == ["Ann Caller"]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("%", ["100% Pct", "a%b Pat"]),
            ("_", ["a_b Under"]),
            (".*", ["x.*y Regex"]),
            ("a%b", ["a%b Pat"]),
            ("a_b", ["a_b Under"]),
            ("x.*y", ["x.*y Regex"]),
            ("[a-z]", []),
            ("^a", []),
            ("\\", []),
            ("*", ["x.*y Regex"]),
            ("'; DROP TABLE users; --", []),
        ],
    )
    def test_search_is_literal(self, store: Store, text: str, expected: list[str]) -> None:
        caller = new_user(store, "Zed", "%_.*")  # would match everything, but is the caller
        people = [("100%", "Pct"), ("a_b", "Under"), ("x.*y", "Regex"), ("a%b", "Pat")]
        for first, last in [*people, ("Plain", "Axb"), ("Ab", "Plainer"), ("Ayb", "Q")]:
            new_user(store, first, last)
        assert sorted(names(store.search_users(text, caller.user_id, 50))) == sorted(expected)
        assert len(store.search_users("plain", caller.user_id, 50)) == 2  # store still intact

    def test_search_limit_and_order(self, store: Store) -> None:
        caller = new_user(store, "Caller", "Zed")
        lasts = [f"M{i:02d}" for i in range(60)]
        random.Random(7).shuffle(lasts)
        for last in lasts:
            new_user(store, "Zed", last)
        expected = sorted(f"Zed M{i:02d}" for i in range(60))
        assert names(store.search_users("zed", caller.user_id, 50)) == expected[:50]
        assert names(store.search_users("ZED M", caller.user_id, 5)) == expected[:5]

    def test_search_empty_text_matches_nobody(self, store: Store) -> None:
        caller = new_user(store, "Zed")
        new_user(store, "Ann")
        assert store.search_users("", caller.user_id, 50) == []

    # --- sessions ---------------------------------------------------------------------------
    def test_session_round_trips(self, store: Store) -> None:
        user = new_user(store)
        session = store.create_session("s1", user.user_id, "https://q/s1", at(0), at(3600))
        assert store.get_session("s1") == session
        assert (session.session_id, session.user_id, session.queue_url) == (
            "s1",
            user.user_id,
            "https://q/s1",
        )
        assert session.created_at == at(0) and session.expires_at == at(3600)
        assert is_utc(session.created_at) and is_utc(session.expires_at)
        assert session.ended_at is None and session.reaped is False
        assert session.is_live(at(1))
        assert store.get_session("s2") is None

    def test_session_id_unique(self, store: Store) -> None:
        user = new_user(store)
        store.create_session("s1", user.user_id, "q1", at(0), at(60))
        with pytest.raises(AlreadyExists):
            store.create_session("s1", user.user_id, "q2", at(1), at(60))
        assert store.get_session("s1").queue_url == "q1"  # type: ignore[union-attr]

    def test_live_sessions(self, store: Store) -> None:
        user, other = new_user(store), new_user(store)
        store.create_session("live", user.user_id, "q", at(0), at(3600))
        store.create_session("expires", user.user_id, "q", at(1), at(10))
        store.create_session("ended", user.user_id, "q", at(2), at(3600))
        store.create_session("others", other.user_id, "q", at(0), at(3600))
        store.end_session("ended", at(3), logout=False)
        assert [s.session_id for s in store.live_sessions(user.user_id, at(100))] == ["live"]
        live = {s.session_id for s in store.live_sessions(user.user_id, at(5))}
        assert live == {"live", "expires"}
        assert store.live_sessions("nobody", at(5)) == []

    def test_end_session_is_idempotent(self, store: Store) -> None:
        user = new_user(store)
        store.create_session("s1", user.user_id, "q", at(0), at(3600))
        ended = store.end_session("s1", at(50), logout=False)
        assert ended is not None and ended.ended_at == at(50) and is_utc(ended.ended_at)
        assert not ended.is_live(at(51))
        assert store.get_user(user.user_id).last_logout_at is None  # type: ignore[union-attr]
        again = store.end_session("s1", at(80), logout=False)
        assert again is not None and again.ended_at == at(50)
        assert store.get_session("s1").ended_at == at(50)  # type: ignore[union-attr]

    def test_logout_records_last_logout_once(self, store: Store) -> None:
        user = new_user(store)
        store.create_session("s1", user.user_id, "q", at(0), at(3600))
        ended = store.end_session("s1", at(50), logout=True)
        assert ended is not None and ended.ended_at == at(50)
        logged_out = store.get_user(user.user_id)
        assert logged_out is not None and logged_out.last_logout_at == at(50)
        assert is_utc(logged_out.last_logout_at)
        store.end_session("s1", at(90), logout=True)  # a redelivered logout
        assert store.get_user(user.user_id).last_logout_at == at(50)  # type: ignore[union-attr]

    def test_end_unknown_session(self, store: Store) -> None:
        assert store.end_session("nope", at(0), logout=True) is None

    def test_sessions_to_reap(self, store: Store) -> None:
        user = new_user(store)
        far = at(10_000)
        for sid, expires in [
            ("live", far),
            ("expired_old", at(100)),
            ("expired_recent", at(1005)),
            ("ended_old", far),
            ("ended_recent", far),
            ("already_reaped", at(100)),
        ]:
            store.create_session(sid, user.user_id, f"q/{sid}", at(0), expires)
        store.end_session("ended_old", at(500), logout=True)
        store.end_session("ended_recent", at(1001), logout=True)
        store.mark_reaped("already_reaped", at(200))
        cutoff = at(1000)
        due = {s.session_id for s in store.sessions_to_reap(cutoff, 100)}
        assert due == {"expired_old", "ended_old"}
        assert len(store.sessions_to_reap(cutoff, 1)) == 1
        store.mark_reaped("expired_old", at(1060))
        reaped = store.get_session("expired_old")
        assert reaped is not None and reaped.reaped is True
        assert [s.session_id for s in store.sessions_to_reap(cutoff, 100)] == ["ended_old"]
        later = {s.session_id for s in store.sessions_to_reap(at(2000), 100)}
        assert later == {"ended_old", "ended_recent", "expired_recent"}

    def test_mark_reaped_is_idempotent(self, store: Store) -> None:
        user = new_user(store)
        store.create_session("s1", user.user_id, "q", at(0), at(10))
        store.mark_reaped("s1", at(100))
        store.mark_reaped("s1", at(200))
        store.mark_reaped("unknown", at(200))
        assert store.get_session("s1").reaped is True  # type: ignore[union-attr]

    # --- messages ---------------------------------------------------------------------------
    def test_add_message(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        message, created = store.add_message(a.user_id, b.user_id, "hello", "c1", at(1))
        assert created is True
        assert isinstance(message.message_id, str) and message.message_id
        assert (message.sender_id, message.recipient_id) == (a.user_id, b.user_id)
        assert (message.body, message.order, message.is_read) == ("hello", 1, False)
        assert message.client_message_id == "c1"
        assert message.created_at == at(1) and is_utc(message.created_at)
        assert store.conversation(a.user_id, b.user_id, 10) == ([message], False)

    def test_order_numbers_per_conversation(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        assert [send(store, a, b).order, send(store, b, a).order, send(store, a, b).order] == [
            1,
            2,
            3,
        ]
        assert send(store, a, c).order == 1
        assert send(store, c, b).order == 1
        assert send(store, c, a).order == 2
        assert send(store, b, a).order == 4

    @pytest.mark.parametrize(
        "body",
        [
            '{"key": "attachments/x.png"}',
            "42",
            "null",
            '"quoted"',
            "<b>&amp;</b> héllo ✓ 🙂",
            "line\nbreak\ttab",
            {"key": "attachments/a.png", "name": "a.png", "type": "image/png", "size": 123},
            {"url": "https://bucket/x", "name": "ü", "type": "text/plain", "size": 0},
        ],
    )
    def test_body_round_trips(self, store: Store, body: str | dict[str, Any]) -> None:
        a, b = new_user(store), new_user(store)
        message = send(store, a, b, body)
        assert message.body == body and type(message.body) is type(body)
        (stored,), _ = store.conversation(b.user_id, a.user_id, 10)
        assert stored.body == body and type(stored.body) is type(body)

    def test_duplicate_client_message_id(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        first, created = store.add_message(a.user_id, b.user_id, "hi", "c-1", at(1))
        again, created_again = store.add_message(a.user_id, b.user_id, "hi!", "c-1", at(2))
        assert created and not created_again
        assert again == first and again.body == "hi" and again.created_at == at(1)
        elsewhere, new = store.add_message(a.user_id, c.user_id, "hey", "c-1", at(3))
        assert not new and elsewhere == first  # keyed by (sender, client id) alone
        assert store.conversation(a.user_id, b.user_id, 10) == ([first], False)
        assert store.conversation(a.user_id, c.user_id, 10) == ([], False)
        nxt, _ = store.add_message(a.user_id, b.user_id, "next", "c-2", at(4))
        assert nxt.order == 2  # the duplicate consumed no number

    def test_same_client_id_from_another_sender_is_new(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        one, _ = store.add_message(a.user_id, b.user_id, "x", "same", at(1))
        two, created = store.add_message(b.user_id, a.user_id, "y", "same", at(2))
        assert created and two.message_id != one.message_id and two.order == 2

    def test_empty_client_id_never_deduplicates(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        one, new_one = store.add_message(a.user_id, b.user_id, "x", "", at(1))
        two, new_two = store.add_message(a.user_id, b.user_id, "x", "", at(1))
        assert new_one and new_two and one.message_id != two.message_id
        assert (one.order, two.order) == (1, 2)

    def test_concurrent_adds_from_several_handles(self, make_store: MakeStore) -> None:
        first = make_store()
        a, b = new_user(first), new_user(first)
        handles = [first] + [make_store() for _ in range(3)]
        errors: list[BaseException] = []

        def write(store: Store, index: int) -> None:
            try:
                for i in range(25):
                    pair = (a, b) if i % 2 else (b, a)
                    send(store, *pair, body=f"{index}-{i}", t=i)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(h, n)) for n, h in enumerate(handles)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        messages, more = first.conversation(a.user_id, b.user_id, 1000)
        assert [m.order for m in messages] == list(range(1, 101)) and not more
        assert len({m.message_id for m in messages}) == len({m.body for m in messages}) == 100

    def test_concurrent_duplicates_store_once(self, make_store: MakeStore) -> None:
        first = make_store()
        a, b = new_user(first), new_user(first)
        handles = [first] + [make_store() for _ in range(3)]
        results: list[tuple[StoredMessage, bool]] = []
        lock = threading.Lock()

        def write(store: Store) -> None:
            result = store.add_message(a.user_id, b.user_id, "once", "dup", at(1))
            with lock:
                results.append(result)

        threads = [threading.Thread(target=write, args=(h,)) for h in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(created for _, created in results) == [False, False, False, True]
        assert len({m.message_id for m, _ in results}) == 1
        assert len(first.conversation(a.user_id, b.user_id, 10)[0]) == 1

    def test_handles_share_data(self, store: Store, make_store: MakeStore) -> None:
        a, b = new_user(store), new_user(store)
        send(store, a, b)
        other = make_store()
        assert other.get_user(a.user_id) == a
        assert send(other, b, a).order == 2
        assert send(store, a, b).order == 3

    # --- conversation -----------------------------------------------------------------------
    def test_conversation_paging(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        for i in range(7):
            send(store, *((a, b) if i % 2 == 0 else (b, a)), body=f"m{i + 1}", t=i)
        send(store, a, c, "elsewhere")

        def page(limit: int, before: int | None = None, x: User = a, y: User = b) -> Any:
            messages, more = store.conversation(x.user_id, y.user_id, limit, before)
            return [m.order for m in messages], more

        assert page(3) == ([5, 6, 7], True)
        assert page(3, x=b, y=a) == ([5, 6, 7], True)
        assert page(3, before=5) == ([2, 3, 4], True)
        assert page(3, before=4) == ([1, 2, 3], False)
        assert page(3, before=2) == ([1], False)
        assert page(3, before=1) == ([], False)
        assert page(7) == ([1, 2, 3, 4, 5, 6, 7], False)
        assert page(6) == ([2, 3, 4, 5, 6, 7], True)
        assert page(100) == ([1, 2, 3, 4, 5, 6, 7], False)
        messages, _ = store.conversation(a.user_id, b.user_id, 100)
        assert [m.body for m in messages] == [f"m{i}" for i in range(1, 8)]

    def test_empty_conversation(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        assert store.conversation(a.user_id, b.user_id, 20) == ([], False)
        assert store.conversation(a.user_id, b.user_id, 20, before_order=5) == ([], False)

    # --- messages since ---------------------------------------------------------------------
    def test_messages_since(self, store: Store) -> None:
        a, b, c, d = (new_user(store) for _ in range(4))
        send(store, a, b, "m1", t=10)
        send(store, b, a, "m2", t=20)
        send(store, c, a, "m3", t=30)
        send(store, b, c, "not a's", t=40)
        send(store, a, c, "m5", t=50)

        def since(when: datetime | None, limit: int = 100) -> list[Any]:
            return [m.body for m in store.messages_since(a.user_id, when, limit)]

        assert since(None) == ["m1", "m2", "m3", "m5"]
        assert since(at(20)) == ["m3", "m5"]  # strictly after
        assert since(at(19)) == ["m2", "m3", "m5"]
        assert since(None, 2) == ["m3", "m5"]  # the newest, oldest first
        assert since(at(10), 2) == ["m3", "m5"]
        assert since(at(50)) == []
        assert store.count_messages_since(a.user_id, None) == 4
        assert store.count_messages_since(a.user_id, at(20)) == 2
        assert store.count_messages_since(a.user_id, at(50)) == 0
        assert store.count_messages_since(d.user_id, None) == 0
        assert store.messages_since(d.user_id, None, 100) == []

    def test_messages_since_same_instant_keeps_order(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        for i in range(4):
            send(store, a, b, f"m{i}", t=5)
        assert [m.order for m in store.messages_since(b.user_id, None, 10)] == [1, 2, 3, 4]
        assert [m.order for m in store.messages_since(b.user_id, at(4), 2)] == [3, 4]

    # --- read receipts ----------------------------------------------------------------------
    def test_mark_read(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        for x, y in [(a, b), (a, b), (b, a), (a, b), (b, a)]:
            send(store, x, y)
        send(store, a, c)
        assert store.mark_read(b.user_id, a.user_id) == 4
        messages, _ = store.conversation(a.user_id, b.user_id, 10)
        assert [m.is_read for m in messages] == [True, True, False, True, False]
        assert store.conversation(a.user_id, c.user_id, 10)[0][0].is_read is False
        assert store.mark_read(b.user_id, a.user_id) == 4  # again: same answer
        assert store.mark_read(a.user_id, b.user_id) == 5
        messages, _ = store.conversation(a.user_id, b.user_id, 10)
        assert all(m.is_read for m in messages)

    def test_mark_read_without_messages_from_sender(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        send(store, b, a)
        assert store.mark_read(b.user_id, a.user_id) == 0  # only b -> a exists
        assert store.conversation(a.user_id, b.user_id, 10)[0][0].is_read is False
        assert store.mark_read(a.user_id, c.user_id) == 0

    # --- activity and throttling ------------------------------------------------------------
    def test_activity_log(self, store: Store) -> None:
        user, other = new_user(store), new_user(store)
        store.record_activity(user.user_id, Activity.ACCOUNT_CREATED, at(1))
        store.record_activity(user.user_id, Activity.LOGIN, at(2), "from notebook")
        store.record_activity(other.user_id, Activity.LOGIN_FAILED, at(3))
        store.record_activity(user.user_id, Activity.LOGOUT, at(4))
        log = store.activity(user.user_id)
        assert [(r.kind, r.at, r.detail) for r in log] == [
            (Activity.ACCOUNT_CREATED, at(1), ""),
            (Activity.LOGIN, at(2), "from notebook"),
            (Activity.LOGOUT, at(4), ""),
        ]
        assert all(r.user_id == user.user_id and is_utc(r.at) for r in log)
        assert all(isinstance(r.kind, Activity) for r in log)
        assert [r.kind for r in store.activity(other.user_id)] == [Activity.LOGIN_FAILED]
        assert store.activity("nobody") == []

    def test_failed_logins(self, store: Store) -> None:
        for t in (10, 20, 30):
            store.record_failed_login("Bob@Example.com", at(t))
        store.record_failed_login("eve@example.com", at(20))
        assert store.failed_logins_since("bob@example.COM", at(0)) == 3
        assert store.failed_logins_since("BOB@example.com", at(15)) == 2
        assert store.failed_logins_since("bob@example.com", at(31)) == 0
        assert store.failed_logins_since("nobody@example.com", at(0)) == 0
        store.clear_failed_logins("BOB@EXAMPLE.COM")
        assert store.failed_logins_since("bob@example.com", at(0)) == 0
        assert store.failed_logins_since("eve@example.com", at(0)) == 1

    # --- groups (v1.1) ----------------------------------------------------------------------
    def test_create_group_round_trips(self, store: Store) -> None:
        a, b, c, d = (new_user(store) for _ in range(4))
        group, created = store.create_group(
            a.user_id, "Trip ✈ <b>", [b.user_id, c.user_id], "g-1", at(5)
        )
        assert created and isinstance(group.group_id, str) and group.group_id
        assert (group.name, group.created_by, group.client_key) == ("Trip ✈ <b>", a.user_id, "g-1")
        assert group.created_at == at(5) and is_utc(group.created_at)
        assert group.member_ids == tuple(sorted([a.user_id, b.user_id, c.user_id]))
        assert all(m.read_up_to == 0 for m in group.members) and group.former == ()
        assert store.get_group(group.group_id) == group
        for member in (a, b, c):
            assert store.groups_for_user(member.user_id) == [group]
        assert store.groups_for_user(d.user_id) == []
        assert store.get_group("no-such-group") is None

    def test_creator_is_a_member_and_duplicates_count_once(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id, a.user_id, b.user_id], "", at(0))
        assert sorted(group.member_ids) == sorted([a.user_id, b.user_id])
        assert group.is_member(a.user_id) and not group.is_member("nobody")

    def test_create_group_is_idempotent_per_creator_and_key(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        first, created = store.create_group(a.user_id, "one", [b.user_id], "k", at(1))
        again, created_again = store.create_group(a.user_id, "two", [c.user_id], "k", at(2))
        assert created and not created_again and again == first
        other, new = store.create_group(b.user_id, "one", [a.user_id], "k", at(3))
        assert new and other.group_id != first.group_id
        x, new_x = store.create_group(a.user_id, "x", [b.user_id], "", at(4))
        y, new_y = store.create_group(a.user_id, "x", [b.user_id], "", at(5))
        assert new_x and new_y and x.group_id != y.group_id
        assert [g.group_id for g in store.groups_for_user(a.user_id)] == [
            first.group_id,
            other.group_id,
            x.group_id,
            y.group_id,
        ]  # oldest first

    def test_group_orders_have_no_gaps_and_are_per_group(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        g1, _ = store.create_group(a.user_id, "g1", [b.user_id, c.user_id], "", at(0))
        g2, _ = store.create_group(b.user_id, "g2", [a.user_id], "", at(0))
        send(store, a, b)  # a 1:1 message has its own sequence
        orders = [
            store.add_group_message(g1.group_id, sender.user_id, f"m{i}", "", at(i))[0].order
            for i, sender in enumerate([a, b, c, a, c])
        ]
        assert orders == [1, 2, 3, 4, 5]
        message, created = store.add_group_message(g2.group_id, a.user_id, "x", "", at(9))
        assert created and message.order == 1 and message.group_id == g2.group_id
        assert (message.sender_id, message.body, message.created_at) == (a.user_id, "x", at(9))
        assert send(store, b, a).order == 2

    @pytest.mark.parametrize(
        "body",
        ['{"key": "attachments/x.png"}', "<b>&amp;</b> ✓", {"key": "attachments/a", "size": 1}],
    )
    def test_group_body_round_trips(self, store: Store, body: str | dict[str, Any]) -> None:
        a, b = new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id], "", at(0))
        message, _ = store.add_group_message(group.group_id, a.user_id, body, "", at(1))
        (stored,), more = store.group_conversation(group.group_id, 10)
        assert stored == message and stored.body == body and type(stored.body) is type(body)
        assert not more

    def test_group_message_is_stored_once_per_client_id(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id], "", at(0))
        other, _ = store.create_group(a.user_id, "h", [b.user_id], "", at(0))
        first, created = store.add_group_message(group.group_id, a.user_id, "hi", "c-1", at(1))
        again, created_again = store.add_group_message(
            group.group_id, a.user_id, "hi!", "c-1", at(2)
        )
        assert created and not created_again and again == first and again.body == "hi"
        elsewhere, new = store.add_group_message(other.group_id, a.user_id, "x", "c-1", at(3))
        assert not new and elsewhere == first  # keyed by (sender, client id) alone
        theirs, new_theirs = store.add_group_message(group.group_id, b.user_id, "y", "c-1", at(4))
        assert new_theirs and theirs.order == 2
        direct, new_direct = store.add_message(a.user_id, b.user_id, "1:1", "c-1", at(5))
        assert new_direct and direct.order == 1  # 1:1 and group keys are separate spaces
        assert [m.order for m in store.group_conversation(group.group_id, 10)[0]] == [1, 2]
        assert store.group_conversation(other.group_id, 10) == ([], False)

    def test_only_members_add_group_messages(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id], "", at(0))
        with pytest.raises(NotFound):
            store.add_group_message(group.group_id, c.user_id, "let me in", "c", at(1))
        with pytest.raises(NotFound):
            store.add_group_message("no-such-group", a.user_id, "x", "", at(1))
        assert store.group_conversation(group.group_id, 10) == ([], False)
        assert store.add_group_message(group.group_id, b.user_id, "ok", "", at(2))[0].order == 1

    def test_leave_group(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id, c.user_id], "", at(0))
        store.add_group_message(group.group_id, b.user_id, "before", "", at(1))
        assert store.leave_group(group.group_id, b.user_id, at(2)) is True
        assert store.leave_group(group.group_id, b.user_id, at(3)) is False  # redelivered
        assert store.leave_group(group.group_id, "nobody", at(3)) is False
        assert store.leave_group("no-such-group", a.user_id, at(3)) is False
        left = store.get_group(group.group_id)
        assert left is not None and left.former == (b.user_id,)
        assert sorted(left.member_ids) == sorted([a.user_id, c.user_id])
        assert store.groups_for_user(b.user_id) == []
        assert store.groups_for_user(a.user_id) == [left]
        with pytest.raises(NotFound):
            store.add_group_message(group.group_id, b.user_id, "after", "", at(4))
        with pytest.raises(NotFound):
            store.mark_group_read(group.group_id, b.user_id)
        messages, _ = store.group_conversation(group.group_id, 10)
        assert [m.body for m in messages] == ["before"]  # what they wrote stays

    def test_group_conversation_paging(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id], "", at(0))
        for i in range(7):
            store.add_group_message(group.group_id, (a, b)[i % 2].user_id, f"m{i + 1}", "", at(i))

        def page(limit: int, before: int | None = None) -> Any:
            messages, more = store.group_conversation(group.group_id, limit, before)
            return [m.order for m in messages], more

        assert page(3) == ([5, 6, 7], True)
        assert page(3, before=5) == ([2, 3, 4], True)
        assert page(3, before=4) == ([1, 2, 3], False)
        assert page(3, before=1) == ([], False)
        assert page(7) == ([1, 2, 3, 4, 5, 6, 7], False)
        assert store.group_conversation("no-such-group", 5) == ([], False)

    def test_group_messages_since(self, store: Store) -> None:
        a, b, c = new_user(store), new_user(store), new_user(store)
        mine, _ = store.create_group(a.user_id, "mine", [b.user_id], "", at(0))
        theirs, _ = store.create_group(b.user_id, "theirs", [c.user_id], "", at(0))
        left, _ = store.create_group(c.user_id, "left", [a.user_id], "", at(0))
        store.add_group_message(mine.group_id, a.user_id, "g1", "", at(10))
        store.add_group_message(theirs.group_id, b.user_id, "not a's", "", at(15))
        store.add_group_message(left.group_id, c.user_id, "gone", "", at(17))
        store.add_group_message(mine.group_id, b.user_id, "g2", "", at(20))
        store.add_group_message(mine.group_id, b.user_id, "g3", "", at(30))
        store.leave_group(left.group_id, a.user_id, at(40))

        def since(when: datetime | None, limit: int = 100) -> list[Any]:
            return [m.body for m in store.group_messages_since(a.user_id, when, limit)]

        assert since(None) == ["g1", "g2", "g3"]
        assert since(at(10)) == ["g2", "g3"]  # strictly after
        assert since(None, 2) == ["g2", "g3"]  # the newest, oldest first
        assert since(at(30)) == []
        assert store.count_group_messages_since(a.user_id, None) == 3
        assert store.count_group_messages_since(a.user_id, at(19)) == 2
        assert store.count_group_messages_since(c.user_id, None) == 2
        assert store.group_messages_since("nobody", None, 10) == []

    def test_group_read_marks_are_per_member(self, store: Store) -> None:
        a, b, c, d = (new_user(store) for _ in range(4))
        group, _ = store.create_group(a.user_id, "g", [b.user_id, c.user_id], "", at(0))
        gid = group.group_id
        assert store.mark_group_read(gid, b.user_id) == 0  # nothing stored yet
        for i, sender in enumerate([a, a, c]):
            store.add_group_message(gid, sender.user_id, f"m{i}", "", at(i))
        assert store.group_unread(gid, b.user_id) == 3
        assert store.group_unread(gid, a.user_id) == 1  # own messages never count
        assert store.mark_group_read(gid, b.user_id) == 3
        assert store.group_unread(gid, b.user_id) == 0
        assert store.group_unread(gid, c.user_id) == 2
        marks = store.get_group(gid)
        assert marks is not None
        assert {m.user_id: m.read_up_to for m in marks.members} == {
            a.user_id: 0,
            b.user_id: 3,
            c.user_id: 0,
        }
        assert marks.read_up_to(b.user_id) == 3 and marks.read_up_to(d.user_id) == 0
        assert store.mark_group_read(gid, b.user_id) == 3  # again: same answer
        store.add_group_message(gid, a.user_id, "m3", "", at(5))
        assert store.group_unread(gid, b.user_id) == 1
        assert store.mark_group_read(gid, a.user_id) == 4
        assert store.get_group(gid).read_up_to(b.user_id) == 3  # type: ignore[union-attr]
        with pytest.raises(NotFound):
            store.mark_group_read(gid, d.user_id)
        assert store.group_unread(gid, d.user_id) == 0

    def test_concurrent_group_adds_from_several_handles(self, make_store: MakeStore) -> None:
        first = make_store()
        a, b = new_user(first), new_user(first)
        group, _ = first.create_group(a.user_id, "g", [b.user_id], "", T0)
        handles = [first] + [make_store() for _ in range(3)]
        errors: list[BaseException] = []

        def write(store: Store, index: int) -> None:
            try:
                for i in range(25):
                    sender = (a, b)[i % 2]
                    store.add_group_message(
                        group.group_id, sender.user_id, f"{index}-{i}", "", at(i)
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(h, n)) for n, h in enumerate(handles)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        messages, more = first.group_conversation(group.group_id, 1000)
        assert [m.order for m in messages] == list(range(1, 101)) and not more
        assert len({m.body for m in messages}) == 100

    def test_group_messages_stay_out_of_one_to_one_queries(self, store: Store) -> None:
        a, b = new_user(store), new_user(store)
        group, _ = store.create_group(a.user_id, "g", [b.user_id], "", at(0))
        store.add_group_message(group.group_id, a.user_id, "to the group", "", at(1))
        store.add_group_message(group.group_id, b.user_id, "from the group", "", at(2))
        send(store, a, b, "direct", t=3)
        for user in (a, b):
            assert [m.body for m in store.messages_since(user.user_id, None, 10)] == ["direct"]
            assert store.count_messages_since(user.user_id, None) == 1
        assert store.mark_read(b.user_id, a.user_id) == 1
        assert [m.body for m in store.conversation(a.user_id, b.user_id, 10)[0]] == ["direct"]
