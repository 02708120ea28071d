"""TrafficLog: a recording Transport around InMemoryTransport, with an injected clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from messenger_widgets import errors
from messenger_widgets.client.session import Session
from messenger_widgets.client.traffic import (
    MASK,
    POLLING_INTERVAL_SECONDS,
    PREVIEW_CHARS,
    SQS_PRICE_PER_MILLION_USD,
    Direction,
    Entry,
    Kind,
    TrafficLog,
    mask_body,
    price,
)
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Outgoing, Push, Reply, Request
from messenger_widgets.transport import Transport

from .fakeworker import TOKEN, FakeWorker

PASSWORD = "hunter2-secret-pw"
SESSION_TOKEN = "eyJ.secret-token.sig"


class Clock:
    def __init__(self, now: float = 1_000_020.0) -> None:  # 1_000_020 // 60 * 60 = 1_000_020
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inner() -> InMemoryTransport:
    return InMemoryTransport()


@pytest.fixture
def queues(inner: InMemoryTransport) -> tuple[str, str]:
    return inner.create_queue("requests"), inner.create_queue("responses")


@pytest.fixture
def log(inner: InMemoryTransport, queues: tuple[str, str], clock: Clock) -> TrafficLog:
    return TrafficLog(inner, request_queue_url=queues[0], response_queue_url=queues[1], clock=clock)


def serve_one(inner: InMemoryTransport, request_url: str) -> Request:
    """Play the worker: take one request off the requests queue."""
    (envelope,) = inner.receive(request_url, 1, 0)
    inner.delete_batch(request_url, [envelope.receipt_handle])
    return Request.decode(envelope)


def everything(entries: list[Entry]) -> str:
    return repr(entries)


def test_a_scripted_login_and_message_are_recorded_with_latencies(
    log: TrafficLog, inner: InMemoryTransport, queues: tuple[str, str], clock: Clock
) -> None:
    requests, responses = queues
    checked: Transport = log  # the log is a Transport: the Session takes it as one
    del checked

    # login: request -> reply on the shared responses queue, matched by resTo
    login = Request("user", "login", {"email": "ada@example.com", "password": PASSWORD})
    login_id = log.send(requests, login.encode())
    taken = serve_one(inner, requests)
    assert taken.message_id == login_id
    session_url = inner.create_queue("messenger-session-1")
    reply = {"token": SESSION_TOKEN, "url": session_url, "userID": "u-ada", "name": "Ada"}
    inner.send(responses, Reply(login_id, 200, reply).encode())
    clock.advance(0.25)
    (got,) = log.receive(responses, 10, 1)
    log.delete_batch(responses, [got.receipt_handle])

    # history pushes, then one empty long poll
    inner.send_batch(session_url, [Push("historyEnd", {"count": 0}).encode()])
    clock.advance(0.5)
    log.receive(session_url, 10, 20)
    clock.advance(20)
    assert log.receive(session_url, 10, 0) == []

    # a message: message/add with a clientMessageId, answered by a `sent` push
    add = Request("message", "add", {"userID": "u-bob", "body": "hi", "clientMessageId": "c-1"})
    add_id = log.send(requests, Request(add.controller, add.method, add.body, TOKEN).encode())
    serve_one(inner, requests)
    sent = {"clientMessageId": "c-1", "messageID": "m-1", "order": 1}
    inner.send(session_url, Push("sent", sent).encode())
    clock.advance(0.125)
    (push,) = log.receive(session_url, 10, 20)
    log.delete_batch(session_url, [push.receipt_handle])

    entries = log.entries()
    summary = [(e.kind, e.direction, e.label) for e in entries]
    assert summary == [
        (Kind.REQUEST, Direction.OUT, "user/login"),
        (Kind.REPLY, Direction.IN, "reply user/login"),
        (Kind.DELETE, Direction.OUT, "delete \N{MULTIPLICATION SIGN}1"),
        (Kind.PUSH, Direction.IN, "historyEnd"),
        (Kind.EMPTY, Direction.IN, "empty receive"),
        (Kind.REQUEST, Direction.OUT, "message/add"),
        (Kind.PUSH, Direction.IN, "sent"),
        (Kind.DELETE, Direction.OUT, "delete \N{MULTIPLICATION SIGN}1"),
    ]
    assert [e.seq for e in entries] == list(range(1, 9))
    login_entry, reply_entry, _, history, empty, add_entry, sent_entry, _ = entries
    assert login_entry.message_id == login_id and login_entry.operation == "SendMessage"
    assert login_entry.size == login.encode().size and login_entry.queue == "requests"
    assert reply_entry.status == 200 and reply_entry.latency == pytest.approx(0.25)
    assert reply_entry.queue == "responses"
    assert history.latency is None  # nothing asked for it after the login reply
    assert empty.operation == "ReceiveMessage" and empty.queue == "messenger-session-1"
    assert add_entry.message_id == add_id
    assert sent_entry.status == 200 and sent_entry.latency == pytest.approx(0.125)
    assert add_entry.at == pytest.approx(1_000_020.0 + 20.75)
    assert sent_entry.at - add_entry.at == pytest.approx(0.125)

    # counts: 2 sends, 4 receives (one empty), 2 deletes, all in the same few minutes
    stats = log.stats(minutes=3)
    assert (stats.requests, stats.receives, stats.empty_receives) == (8, 4, 1)
    assert stats.billed == 8  # every payload is far below 64 KiB
    assert sum(stats.per_minute) == 8 and len(stats.per_minute) == 3


def test_secrets_never_reach_the_log(
    log: TrafficLog, inner: InMemoryTransport, queues: tuple[str, str]
) -> None:
    requests, responses = queues
    body = {"fName": "Ada", "email": "ada@example.com", "password": PASSWORD}
    log.send(requests, Request("user", "register", body).encode())
    log.send(requests, Request("message", "history", {"userID": "u"}, SESSION_TOKEN).encode())
    log.send_batch(
        requests,
        [Request("user", "login", {"password": PASSWORD, "nested": [{"token": "t"}]}).encode()],
    )
    reply = Reply("someone-else", 200, {"token": SESSION_TOKEN, "url": "q"})
    inner.send(responses, reply.encode())
    log.receive(responses, 10, 0)
    # a body that is not JSON (a malformed request) is masked as text
    log.send(requests, Outgoing('{"password": "' + PASSWORD + '", "x": ', {"method": "login"}))
    entries = log.entries()
    text = everything(entries)
    assert PASSWORD not in text and SESSION_TOKEN not in text
    assert entries[0].preview.count(MASK) == 1 and "ada@example.com" in entries[0].preview
    assert entries[1].attributes["token"] == MASK
    assert entries[1].attributes["method"] == "history"
    assert json.loads(entries[2].preview)["nested"] == [{"token": MASK}]
    assert entries[3].kind is Kind.REPLY and entries[3].note == "not ours"
    assert json.loads(entries[3].preview)["token"] == MASK
    assert MASK in entries[4].preview


def test_previews_are_short(log: TrafficLog, queues: tuple[str, str]) -> None:
    log.send(queues[0], Outgoing(json.dumps({"body": "x" * 50_000}), {"method": "add"}))
    (entry,) = log.entries()
    assert len(entry.preview) <= PREVIEW_CHARS and entry.preview.endswith("…")
    assert entry.size > 50_000
    assert mask_body('{"password":"abc"') == '{"password":"***"'
    assert mask_body("plain text, no secrets") == "plain text, no secrets"


def test_pushes_match_the_most_recent_request_of_their_method(
    log: TrafficLog, inner: InMemoryTransport, queues: tuple[str, str], clock: Clock
) -> None:
    requests = queues[0]
    session = inner.create_queue("messenger-session-2")
    log.send(requests, Request("user", "searchUser", {"name": "a"}, TOKEN).encode())
    clock.advance(1)
    log.send_batch(
        requests,
        [
            Request("user", "searchUser", {"name": "ab"}, TOKEN).encode(),
            Request("message", "selectSearchUser", {"userID": "u"}, TOKEN).encode(),
        ],
    )
    clock.advance(0.5)
    inner.send_batch(
        session,
        [
            Push("searchUser", {"listOfUsers": []}).encode(),
            Push("selectSearchUser", []).encode(),
            Push("searchUser", {"listOfUsers": []}).encode(),  # answered already: no latency
            Push.error(400, "bad", "history").encode(),  # no history was asked for
            Push("message", {"messageID": "m"}).encode(),  # someone else's message
        ],
    )
    log.receive(session, 10, 0)
    pushes = [e for e in log.entries() if e.kind is Kind.PUSH]
    assert [(e.label, e.latency) for e in pushes] == [
        ("searchUser", pytest.approx(0.5)),
        ("selectSearchUser", pytest.approx(0.5)),
        ("searchUser", None),
        ("error", None),
        ("message", None),
    ]
    assert pushes[3].status == 400
    sends = [e for e in log.entries() if e.kind is Kind.REQUEST]
    assert [e.operation for e in sends] == ["SendMessage", *["SendMessageBatch"] * 2]
    assert log.stats().requests == 3  # one send, one batch, one receive


def test_a_group_created_push_matches_its_group_create_by_client_group_id(
    log: TrafficLog, inner: InMemoryTransport, queues: tuple[str, str], clock: Clock
) -> None:
    session = inner.create_queue("messenger-session-3")
    body = {"name": "Team", "memberIDs": ["u-bob"], "clientGroupId": "g-key"}
    log.send(queues[0], Request("group", "create", body, TOKEN).encode())
    clock.advance(0.75)
    created = {"groupID": "g1", "name": "Team", "clientGroupId": "g-key", "members": []}
    inner.send_batch(
        session,
        [
            Push("groupCreated", created).encode(),
            Push("groupCreated", {**created, "clientGroupId": None}).encode(),  # someone else's
        ],
    )
    log.receive(session, 10, 0)
    pushes = [e for e in log.entries() if e.kind is Kind.PUSH]
    assert [(e.label, e.latency) for e in pushes] == [
        ("groupCreated", pytest.approx(0.75)),
        ("groupCreated", None),
    ]
    assert log.entries()[0].label == "group/create"


def test_empty_receives_deletes_visibility_and_queue_calls(
    log: TrafficLog, inner: InMemoryTransport, queues: tuple[str, str], clock: Clock
) -> None:
    requests, responses = queues
    for _ in range(3):
        assert log.receive(responses, 10, 0) == []
        clock.advance(20)
    inner.send(responses, Reply("other", 200, {}).encode())
    (envelope,) = log.receive(responses, 10, 0)
    log.change_visibility(responses, envelope.receipt_handle, 0)
    log.delete_batch(requests, [f"h{i}" for i in range(25)])
    log.queue_attributes(requests, ["ApproximateNumberOfMessages"])
    kinds = [e.kind for e in log.entries()]
    assert kinds == [Kind.EMPTY] * 3 + [Kind.REPLY, Kind.VISIBILITY, Kind.DELETE, Kind.QUEUE]
    visibility, delete, attributes = log.entries()[-3:]
    assert visibility.label == "visibility 0 s" and "released" in visibility.note
    assert delete.count == 25
    assert attributes.operation == "GetQueueAttributes"
    stats = log.stats()
    # 4 receives + 1 visibility + 3 delete calls (25 handles, 10 a call) + 1 attributes
    assert (stats.requests, stats.receives, stats.empty_receives) == (9, 4, 3)


def test_a_failed_call_is_recorded_and_raised(
    log: TrafficLog, inner: InMemoryTransport, clock: Clock
) -> None:
    with pytest.raises(errors.QueueGone):
        log.receive("memory://sqs/gone", 10, 0)
    with pytest.raises(errors.QueueGone):
        log.send("memory://sqs/gone", Request("message", "add", {"clientMessageId": "c"}).encode())
    first, second = log.entries()
    assert first.kind is Kind.ERROR and first.operation == "ReceiveMessage"
    assert "QueueGone" in first.note and second.operation == "SendMessage"
    # the failed add is not waiting for an answer any more
    session = inner.create_queue("s")
    inner.send(session, Push("sent", {"clientMessageId": "c", "messageID": "m"}).encode())
    log.receive(session, 10, 0)
    assert log.entries()[-1].latency is None


def test_counts_per_minute_and_the_cost_next_to_a_polling_loop(
    log: TrafficLog, queues: tuple[str, str], clock: Clock
) -> None:
    requests = queues[0]
    assert log.stats().since is None and log.stats().polling_requests == 0
    for minute in range(3):
        for _ in range(minute + 1):
            log.send(requests, Outgoing("{}", {"method": "x"}))
        log.receive(queues[1], 10, 0)
        clock.advance(60)
    clock.advance(-1)  # still inside the third minute
    stats = log.stats(minutes=4)
    assert stats.per_minute == (0, 2, 3, 4)
    assert stats.requests == stats.billed == 9 and stats.receives == 3
    assert stats.elapsed == pytest.approx(179)
    # 179 s of a 0.5 s loop is 358 receives, plus the same 6 sends
    assert stats.polling_requests == int(179 / POLLING_INTERVAL_SECONDS) + 6
    assert stats.cost == pytest.approx(9 * SQS_PRICE_PER_MILLION_USD / 1e6)
    assert stats.polling_cost == price(stats.polling_requests)
    assert price(7_200) == pytest.approx(0.00288)  # an hour of polling at 0.5 s


def test_big_payloads_bill_per_64_kib(log: TrafficLog, queues: tuple[str, str]) -> None:
    log.send(queues[0], Outgoing("x" * 200_000, {"method": "add"}))
    stats = log.stats()
    assert (stats.requests, stats.billed) == (1, 4)


def test_observers_get_every_entry_and_can_unsubscribe(
    log: TrafficLog, queues: tuple[str, str]
) -> None:
    seen: list[Entry] = []
    lock = threading.Lock()

    def observer(entry: Entry) -> None:
        with lock:
            seen.append(entry)

    def broken(entry: Entry) -> None:
        raise RuntimeError("observer bug")

    log.subscribe(broken)  # a failing observer never breaks the transport or the others
    unsubscribe = log.subscribe(observer)
    threads = [
        threading.Thread(target=lambda: [log.receive(queues[1], 10, 0) for _ in range(20)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.seq for e in seen) == list(range(1, 81))
    unsubscribe()
    log.receive(queues[1], 10, 0)
    assert len(seen) == 80 and log.last_seq == 81


def test_only_the_last_entries_are_kept(inner: InMemoryTransport, clock: Clock) -> None:
    url = inner.create_queue("q")
    log = TrafficLog(inner, clock=clock, max_entries=5)
    for _ in range(12):
        log.receive(url, 10, 0)
    assert [e.seq for e in log.entries()] == [8, 9, 10, 11, 12]
    assert log.stats().requests == 12


@pytest.fixture
def live(inner: InMemoryTransport, queues: tuple[str, str]) -> Iterator[tuple[Session, TrafficLog]]:
    worker = FakeWorker(inner, *queues).start()
    log = TrafficLog(inner, request_queue_url=queues[0], response_queue_url=queues[1])
    session = Session(log, *queues, reply_timeout=3, wait_seconds=1)
    yield session, log
    session.close()
    worker.stop()


def test_a_real_session_through_the_log(live: tuple[Session, TrafficLog]) -> None:
    session, log = live
    session.login("ada@example.com", PASSWORD)
    cid = session.send_text("u-bob", "hello")

    def has_sent() -> bool:
        return any(e.label == "sent" for e in log.entries())

    deadline = 300
    while not has_sent() and deadline:
        threading.Event().wait(0.01)
        deadline -= 1
    entries = log.entries()
    labels = [e.label for e in entries]
    assert labels[:2] == ["user/login", "reply user/login"]
    assert "message/add" in labels and "historyEnd" in labels
    sent = next(e for e in entries if e.label == "sent")
    assert sent.latency is not None and 0 <= sent.latency < 3
    assert cid in sent.preview
    text = everything(entries)
    assert PASSWORD not in text and TOKEN not in text
