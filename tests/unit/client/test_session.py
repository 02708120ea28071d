"""Session against an in-memory transport and a scripted worker thread."""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from messenger_widgets import errors
from messenger_widgets.client import state as st
from messenger_widgets.client.session import Session
from messenger_widgets.client.state import Change, ChangeKind, State
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Envelope, Outgoing, Reply

from .fakeworker import TOKEN, FakeWorker, message

BOB = "u-bob"


def eventually(check: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Flaky(InMemoryTransport):
    """Fails the next `failures` receives on session queues, as a network outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.send_error: Exception | None = None

    def receive(
        self, queue_url: str, max_messages: int = 10, wait_seconds: int = 20
    ) -> list[Envelope]:
        if "messenger-session-" in queue_url and self.failures > 0:
            self.failures -= 1
            raise errors.TransportError("SQS receive_message failed: ServiceUnavailable")
        return super().receive(queue_url, max_messages, wait_seconds)

    def send(self, queue_url: str, message: Outgoing) -> str:
        if self.send_error is not None:
            raise self.send_error
        return super().send(queue_url, message)


class Uploads:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def upload(
        self, name: str, data: bytes, content_type: str, progress: Any = None
    ) -> dict[str, Any]:
        self.calls.append((name, data, content_type, progress))
        return {
            "key": f"attachments/k/{name}",
            "name": name,
            "type": content_type,
            "size": len(data),
        }


@pytest.fixture
def transport() -> Flaky:
    return Flaky()


@pytest.fixture
def worker(transport: Flaky) -> Iterator[FakeWorker]:
    fake = FakeWorker(
        transport, transport.create_queue("requests"), transport.create_queue("responses")
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def session(transport: Flaky, worker: FakeWorker, sleeps: list[float]) -> Iterator[Session]:
    ids = (f"c{n}" for n in itertools.count(1))
    made = Session(
        transport,
        worker.request_url,
        worker.response_url,
        attachments=Uploads(),
        reply_timeout=3,
        wait_seconds=1,
        sleep=sleeps.append,
        new_id=lambda: next(ids),
    )
    yield made
    made.close()


@pytest.fixture
def changes(session: Session) -> list[Change]:
    seen: list[Change] = []
    session.observe(lambda _state, batch: seen.extend(batch))
    return seen


def login(session: Session, worker: FakeWorker) -> None:
    session.login("ada@example.com", "correct horse")
    eventually(lambda: session.state.history_complete)


# --- register / login ---------------------------------------------------------------------
def test_register_returns_the_server_message_and_sends_the_fields(
    session: Session, worker: FakeWorker
) -> None:
    assert (
        session.register("Ada", "Lovelace", "ada@example.com", "secret-pass", True)
        == "Account created."
    )
    request = worker.requests[0]
    assert request.key == ("user", "register") and request.token is None
    assert request.body == {
        "fName": "Ada",
        "lName": "Lovelace",
        "email": "ada@example.com",
        "password": "secret-pass",
        "darkModeState": True,
    }


def test_login_stores_me_and_applies_the_history(
    session: Session, worker: FakeWorker, transport: Flaky
) -> None:
    worker.history = [message(1), message(2, to=BOB), message(1, "u-carol", name="Carol")]
    login(session, worker)
    state = session.state
    assert state.me == st.UserSummary("u-ada", "Ada Lovelace")
    assert (
        state.dark_mode and state.connection == "online" and session.logged_in and session.polling
    )
    assert [c.user_id for c in st.conversation_list(state)] and st.total_unread(state) == 2
    assert session.session_queue_url == worker.session_url
    eventually(lambda: transport.depth(session.session_queue_url or "") == 0)
    assert "DeleteMessageBatch" in transport.calls


@pytest.mark.parametrize(
    ("method", "status", "error"),
    [
        ("register", 400, errors.BadRequest),
        ("register", 500, errors.RequestError),
        ("login", 400, errors.BadRequest),
        ("login", 401, errors.Unauthorized),
        ("login", 429, errors.Throttled),
        ("login", 500, errors.RequestError),
    ],
)
def test_refused_calls_raise_the_matching_error_with_the_server_message(
    session: Session, worker: FakeWorker, method: str, status: int, error: type[errors.RequestError]
) -> None:
    worker.fail[method] = (status, f"refused with {status}")
    with pytest.raises(error, match=f"refused with {status}") as caught:
        if method == "register":
            session.register("Ada", "Lovelace", "ada@example.com", "secret-pass")
        else:
            session.login("ada@example.com", "bad")
    assert type(caught.value) is error and caught.value.status == status
    assert not session.logged_in and not session.polling
    assert session.state.connection == "offline"


def test_no_reply_raises_reply_timeout_with_a_clear_message() -> None:
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.25  # noqa: E731 - a clock that moves on every look
    transport = InMemoryTransport(clock=clock)
    request, response = transport.create_queue("requests"), transport.create_queue("responses")
    session = Session(transport, request, response, reply_timeout=2, wait_seconds=1, clock=clock)
    started = time.monotonic()
    with pytest.raises(errors.ReplyTimeout, match=r"no reply to login within 2 s"):
        session.login("ada@example.com", "pw")
    assert time.monotonic() - started < 2
    assert transport.depth(request) == 1 and session.state.connection == "offline"


def test_a_reply_for_another_client_is_released_not_taken(
    session: Session, worker: FakeWorker, transport: Flaky
) -> None:
    transport.send(worker.response_url, Reply("someone-else", 200, {"message": "theirs"}).encode())
    login(session, worker)
    assert "ChangeMessageVisibility" in transport.calls
    left = transport.receive(worker.response_url, 10, 0)
    assert [e.attributes["resTo"] for e in left] == ["someone-else"]


def test_a_duplicate_of_an_answered_reply_is_deleted(
    session: Session, worker: FakeWorker, transport: Flaky
) -> None:
    login(session, worker)
    login_id = worker.wait_for("login").message_id
    transport.send(worker.response_url, Reply(login_id, 200, {"message": "again"}).encode())
    session.register("Bob", "Babbage", "bob@example.com", "secret-pass")
    assert transport.depth(worker.response_url) == 0


def test_only_one_register_or_login_at_a_time(session: Session, worker: FakeWorker) -> None:
    worker.silent.add("login")
    session._reply_timeout = 1.5
    failures: list[BaseException] = []

    def slow_login() -> None:
        try:
            session.login("ada@example.com", "pw")
        except errors.MessengerError as exc:
            failures.append(exc)

    thread = threading.Thread(target=slow_login)
    thread.start()
    worker.wait_for("login")
    with pytest.raises(errors.MessengerError, match="already in progress"):
        session.register("Ada", "Lovelace", "ada@example.com", "secret-pass")
    thread.join(timeout=5)
    assert [type(f) for f in failures] == [errors.ReplyTimeout]


# --- the polling thread -------------------------------------------------------------------
def test_pushes_are_applied_observed_and_deleted(
    session: Session, worker: FakeWorker, transport: Flaky, changes: list[Change]
) -> None:
    login(session, worker)
    worker.push("message", message(1))
    worker.push("message", message(2))
    eventually(lambda: len(st.conversation(session.state, BOB).messages) == 2)
    assert Change(ChangeKind.MESSAGES, BOB) in changes and session.state.unread[BOB] == 2
    eventually(lambda: transport.depth(session.session_queue_url or "") == 0)


def test_an_undecodable_push_is_an_error_change_and_still_deleted(
    session: Session, worker: FakeWorker, transport: Flaky, changes: list[Change]
) -> None:
    login(session, worker)
    transport.send(
        worker.session_url or "", Outgoing("{not json", {"action": "message", "statusCode": "200"})
    )
    eventually(lambda: any(c.kind is ChangeKind.ERROR for c in changes))
    eventually(lambda: transport.depth(session.session_queue_url or "") == 0)
    worker.push("message", message(1))
    eventually(lambda: st.conversation(session.state, BOB).messages)


def test_transport_errors_back_off_then_come_back_online(
    session: Session,
    worker: FakeWorker,
    transport: Flaky,
    sleeps: list[float],
    changes: list[Change],
) -> None:
    login(session, worker)
    transport.failures = 7
    eventually(lambda: transport.failures == 0)
    worker.push("message", message(1))
    eventually(lambda: st.conversation(session.state, BOB).messages)
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    statuses = [c.detail for c in changes if c.kind is ChangeKind.CONNECTION]
    assert statuses[-2:] == ["reconnecting", "online"]
    assert session.state.connection == "online"


def test_a_vanished_session_queue_ends_the_session(
    session: Session, worker: FakeWorker, transport: Flaky, changes: list[Change]
) -> None:
    login(session, worker)
    transport.delete_queue(session.session_queue_url or "")
    eventually(lambda: session.state.expired)
    assert Change(ChangeKind.EXPIRED) in changes and session.state.connection == "offline"
    eventually(lambda: not session.polling)
    with pytest.raises(errors.Unauthorized):
        session.search("bob")
    session.logout()  # no user/logout for a session that is already over
    assert [r.method for r in worker.requests] == ["login"] and session.state.me is None


def test_a_401_push_ends_the_session_and_polling(session: Session, worker: FakeWorker) -> None:
    login(session, worker)
    worker.push("error", {"message": "session expired", "method": "searchUser"}, 401)
    eventually(lambda: session.state.expired and not session.polling)
    assert not session.logged_in


def test_logout_sends_logout_stops_the_thread_and_resets(
    session: Session, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[str] = []
    monkeypatch.setattr(atexit, "register", lambda f: registered.append("on"))
    monkeypatch.setattr(atexit, "unregister", lambda f: registered.append("off"))
    login(session, worker)
    session.logout()
    assert worker.wait_for("logout").token == TOKEN
    assert not session.polling and not session.logged_in
    assert session.state == State(dark_mode=True)
    session.logout()
    time.sleep(0.05)
    assert [r.method for r in worker.requests].count("logout") == 1
    assert registered == ["on", "off"]


def test_observers_survive_a_failing_observer_and_can_unsubscribe(
    session: Session, worker: FakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[State] = []
    late: list[State] = []

    def broken(state: State, batch: list[Change]) -> None:
        raise RuntimeError("widget exploded")

    session.observe(broken)
    session.observe(lambda state, batch: seen.append(state))
    stop = session.observe(lambda state, batch: late.append(state))
    stop()
    with caplog.at_level(logging.ERROR):
        login(session, worker)
        worker.push("message", message(1))
        eventually(lambda: any(st.conversation(s, BOB).messages for s in seen))
    assert "widget exploded" in caplog.text and session.polling and late == []


# --- requests that are sent and forgotten -------------------------------------------------
def test_send_text_checks_before_sending(session: Session, worker: FakeWorker) -> None:
    login(session, worker)
    for text in ("", "   \n", "x" * 10_001):
        with pytest.raises(errors.BadRequest):
            session.send_text(BOB, text)
    time.sleep(0.05)
    assert "add" not in [r.method for r in worker.requests]


def test_send_text_inserts_sending_then_sent(session: Session, worker: FakeWorker) -> None:
    login(session, worker)
    worker.silent.add("add")
    cid = session.send_text(BOB, "hello")
    assert [(m.body, m.status) for m in st.conversation(session.state, BOB).messages] == [
        ("hello", "sending")
    ]
    request = worker.wait_for("add")
    assert request.body == {"body": "hello", "userID": BOB, "name": "", "clientMessageId": cid}
    worker.push(
        "sent",
        {
            "clientMessageId": cid,
            "messageID": "m-1",
            "order": 1,
            "dateTime": "2026-01-01T00:00:00.000Z",
            "userID": BOB,
        },
    )
    eventually(lambda: st.conversation(session.state, BOB).messages[0].status == "sent")


def test_a_failed_send_marks_the_message_failed_and_resend_uses_the_same_id(
    session: Session, worker: FakeWorker, transport: Flaky
) -> None:
    login(session, worker)
    transport.send_error = ClientError(
        {"Error": {"Code": "InternalError", "Message": "boom"}}, "SendMessage"
    )
    with pytest.raises(errors.TransportError, match="could not send"):
        session.send_text(BOB, "hello")
    cid = "c1"  # the first id the injected new_id hands out
    assert st.conversation(session.state, BOB).messages[0].status == "failed"
    transport.send_error = None
    session.resend(cid)
    assert worker.wait_for("add").body["clientMessageId"] == cid
    eventually(lambda: st.conversation(session.state, BOB).messages[0].status == "sent")


def test_send_file_uploads_then_sends_the_attachment(session: Session, worker: FakeWorker) -> None:
    login(session, worker)
    progress = lambda done, total: None  # noqa: E731
    session.send_file(BOB, "a.png", b"\x89PNG", "image/png", progress)
    body = worker.wait_for("add").body["body"]
    assert body == {"key": "attachments/k/a.png", "name": "a.png", "type": "image/png", "size": 4}
    assert session._attachments.calls == [("a.png", b"\x89PNG", "image/png", progress)]  # type: ignore[union-attr]
    without = Session(InMemoryTransport(), "memory://sqs/r", "memory://sqs/s")
    with pytest.raises(errors.AttachmentError):
        without.send_file(BOB, "a.png", b"x", "image/png")


def test_open_conversation_selects_and_marks_read(session: Session, worker: FakeWorker) -> None:
    worker.history = [message(1), message(2)]
    worker.conversations[BOB] = [message(n) for n in range(1, 4)]
    login(session, worker)
    assert session.state.unread[BOB] == 2
    session.open_conversation(BOB)
    assert session.state.open_conversation == BOB and st.total_unread(session.state) == 0
    assert worker.wait_for("selectSearchUser").body == {"userID": BOB}
    assert worker.wait_for("markMessagesAsRead").body == {"userID": BOB}
    eventually(lambda: len(st.conversation(session.state, BOB).messages) == 3)
    worker.requests.clear()
    worker.push("message", message(4))  # lands in the open conversation: read at once
    assert worker.wait_for("markMessagesAsRead").body == {"userID": BOB}
    assert st.total_unread(session.state) == 0


def test_load_older_asks_before_the_oldest_order_held(session: Session, worker: FakeWorker) -> None:
    worker.history = [message(60)]
    worker.conversations[BOB] = [message(n) for n in range(1, 61)]
    login(session, worker)
    assert session.load_older(BOB)
    assert worker.wait_for("history").body == {"userID": BOB, "limit": 50, "beforeOrder": 60}
    eventually(lambda: st.conversation(session.state, BOB).oldest_order == 10)
    assert st.conversation(session.state, BOB).has_more is True
    assert session.load_older(BOB)
    eventually(lambda: st.conversation(session.state, BOB).oldest_order == 1)
    assert not session.load_older(BOB)


def test_search_results_and_clear(session: Session, worker: FakeWorker) -> None:
    worker.users = [{"name": "Bob Babbage", "userID": BOB}]
    login(session, worker)
    session.search("  bab ")
    assert worker.wait_for("searchUser").body == {"name": "bab"}
    eventually(lambda: session.state.search_results == (st.UserSummary(BOB, "Bob Babbage"),))
    session.clear_search()
    assert session.state.search_query is None and session.state.search_results == ()


def test_dark_mode_is_local_at_once_and_stored_when_logged_in(
    session: Session, worker: FakeWorker
) -> None:
    session.set_dark_mode(True)
    assert session.state.dark_mode and worker.requests == []
    login(session, worker)
    session.set_dark_mode(False)
    assert not session.state.dark_mode
    assert worker.wait_for("setDarkModeState").body == {"darkModeState": False}


def test_requests_need_a_session(session: Session) -> None:
    for call in (
        lambda: session.search("x"),
        lambda: session.open_conversation(BOB),
        lambda: session.send_text(BOB, "hi"),
        lambda: session.mark_read(BOB),
    ):
        with pytest.raises(errors.Unauthorized, match="not logged in"):
            call()


def test_raw_botocore_errors_never_escape(session: Session, transport: Flaky) -> None:
    transport.send_error = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage"
    )
    with pytest.raises(errors.TransportError, match="AccessDenied"):
        session.register("Ada", "Lovelace", "ada@example.com", "secret-pass")
