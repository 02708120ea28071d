"""Chaos: real client Sessions chat in a ring while the worker process is SIGKILLed every 2 s.

Every kill can land anywhere: between receiving a batch and handling it, between storing a
message and pushing it, between pushing and deleting the request. The requests queue's
visibility timeout is lowered to 3 s so work that was in flight on a killed worker comes back
quickly. Afterwards every message must be stored exactly once, held exactly once by the
recipient's Session, ordered 1..n without gaps, and nothing may be left on the requests queue
or in the DLQ (every request was valid, so none may be dead-lettered).

CI size: 8 Sessions x 15 messages. The issue's big version:
    MESSENGER_CHAOS_SESSIONS=20 MESSENGER_CHAOS_MESSAGES=50 pytest tests/integration/test_chaos.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from messenger_widgets.client.session import Session
from messenger_widgets.client.state import ChatMessage, State, conversation
from messenger_widgets.config import Settings
from messenger_widgets.provision import Resources
from messenger_widgets.transport import SqsTransport

from ..conftest import REGION
from .conftest import aws_clients, start_worker_process, stop_process
from .rawclient import RawClient

pytestmark = pytest.mark.slow

SESSIONS = int(os.environ.get("MESSENGER_CHAOS_SESSIONS", "8"))
MESSAGES = int(os.environ.get("MESSENGER_CHAOS_MESSAGES", "15"))
KILL_EVERY = float(os.environ.get("MESSENGER_CHAOS_KILL_EVERY", "2"))
# The senders together send about RATE messages a second, for at least 10 s, so kills land on
# live traffic while the requests queue stays shallow: moto slows down with depth, and once a
# batch takes longer than the kill interval to answer, no worker ever finishes it and SQS
# rightly dead-letters it after 5 receives.
RATE = float(os.environ.get("MESSENGER_CHAOS_RATE", "20"))
SEND_SECONDS = float(
    os.environ.get("MESSENGER_CHAOS_SEND_SECONDS", str(max(10.0, SESSIONS * MESSAGES / RATE)))
)
CHAOS_AFTER_SENDS = float(os.environ.get("MESSENGER_CHAOS_TAIL", "4"))  # keep killing a while
VISIBILITY_SECONDS = 3
SETTLE_TIMEOUT = 60 + 2 * SESSIONS * MESSAGES / 10  # moto moves ~50-100 msg/s on 2 cores
PASSWORD = "correct horse battery"


class Chaos:
    """A thread that SIGKILLs the worker every `every` seconds and starts a new one.

    The clock starts when the new worker logs that it is polling (a busy machine can take a
    second to start Python), and each kill then waits (up to 1 s more) for a moment when
    requests are in flight, received by the worker and not yet deleted: a kill of an idle
    worker proves little.
    """

    def __init__(self, settings: Settings, every: float, in_flight: Callable[[], int]) -> None:
        self.settings, self.every, self.in_flight = settings, every, in_flight
        self.current = self._spawn()
        self.kills = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        logs = self.settings.sqlite_path.parent
        before = set(logs.glob("worker-*.log"))
        proc = start_worker_process(self.settings)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            new = set(logs.glob("worker-*.log")) - before
            if any("worker started" in log.read_text(errors="replace") for log in new):
                break
            time.sleep(0.05)
        return proc

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            aim = time.monotonic() + 1
            while not self.in_flight() and time.monotonic() < aim:
                time.sleep(0.02)
            with self._lock:
                self.current.send_signal(signal.SIGKILL)
                self.current.wait(timeout=10)
                self.kills += 1
                self.current = self._spawn()

    def calm(self) -> subprocess.Popen[bytes]:
        """Stop killing; the worker started last keeps running (and is returned)."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            return self.current

    def close(self) -> None:
        self.calm()
        stop_process(self.current)


def handled_twice(settings: Settings) -> dict[int, int]:
    """{n: how many requests n > 1 workers handled}, from the workers' JSON logs."""
    seen: dict[str, int] = {}
    for log in settings.sqlite_path.parent.glob("worker-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == "request":
                seen[entry["request_id"]] = seen.get(entry["request_id"], 0) + 1
    return dict(sorted(Counter(n for n in seen.values() if n > 1).items()))


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def history(client: RawClient, token: str, url: str, other_id: str) -> list[dict[str, Any]]:
    """Every stored message of a conversation, paged through `history`, oldest first."""
    out: list[dict[str, Any]] = []
    before = None
    while True:
        body: dict[str, Any] = {"userID": other_id, "limit": 100}
        if before:
            body["beforeOrder"] = before
        client.send("message", "history", body, token)
        page = client.expect(url, "history").body
        out = page["messages"] + out
        if not page["hasMore"]:
            return out
        before = page["messages"][0]["order"]


def incoming(state: State, other_id: str) -> list[ChatMessage]:
    return [m for m in conversation(state, other_id).messages if not m.outgoing]


def outgoing(state: State, other_id: str) -> list[ChatMessage]:
    return [m for m in conversation(state, other_id).messages if m.outgoing]


@pytest.fixture
def sessions(
    fresh_stack: tuple[Settings, Resources], moto_endpoint: str
) -> Iterator[list[Session]]:
    made: list[Session] = []

    def make() -> Session:
        sqs, _ = aws_clients(moto_endpoint)
        session = Session(
            SqsTransport(sqs),
            fresh_stack[1].request_queue_url,
            fresh_stack[1].response_queue_url,
            wait_seconds=1,
            reply_timeout=60,
        )
        made.append(session)
        return session

    yield [make() for _ in range(SESSIONS)]
    for session in made:
        session.close()


def test_ring_chat_survives_a_worker_sigkilled_every_two_seconds(
    fresh_stack: tuple[Settings, Resources], sessions: list[Session]
) -> None:
    settings, resources = fresh_stack
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=settings.endpoint_url)
    raw = RawClient(sqs, resources.request_queue_url, resources.response_queue_url)
    sqs.set_queue_attributes(
        QueueUrl=resources.request_queue_url,
        Attributes={"VisibilityTimeout": str(VISIBILITY_SECONDS)},
    )
    run = uuid.uuid4().hex[:6]
    emails = [f"chaos{i}.{run}@example.com" for i in range(SESSIONS)]

    def in_flight() -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=resources.request_queue_url,
            AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesNotVisible"])

    chaos = Chaos(settings, KILL_EVERY, in_flight)
    started = time.monotonic()
    try:
        for i, (session, email) in enumerate(zip(sessions, emails, strict=True)):
            session.register(f"Chaos{i}", "Ring", email, PASSWORD)
            session.login(email, PASSWORD)
        ids = [s.state.me.user_id for s in sessions if s.state.me]
        assert len(set(ids)) == SESSIONS
        partner = {i: (i + 1) % SESSIONS for i in range(SESSIONS)}
        expected = {
            i: [f"chaos {run} {i}->{partner[i]} #{k}" for k in range(MESSAGES)]
            for i in range(SESSIONS)
        }
        setup = time.monotonic() - started

        chaos.start()
        failures: list[BaseException] = []

        def send_all(i: int) -> None:
            try:
                for text in expected[i]:
                    sessions[i].send_text(ids[partner[i]], text)
                    time.sleep(SEND_SECONDS / MESSAGES)
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        senders = [threading.Thread(target=send_all, args=(i,)) for i in range(SESSIONS)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        assert not failures, failures
        time.sleep(CHAOS_AFTER_SENDS)  # the tail: kills while the backlog is being worked off
        chaos.calm()
        kills = chaos.kills
        chaos_time = time.monotonic() - started - setup

        # One worker from here on: the queue drains and every Session catches up.
        raw.settle(SETTLE_TIMEOUT)

        def caught_up() -> bool:
            return all(
                len(incoming(sessions[partner[i]].state, ids[i])) >= MESSAGES
                and all(m.message_id for m in outgoing(sessions[i].state, ids[partner[i]]))
                for i in range(SESSIONS)
            )

        try:
            wait_until("every Session to hold its messages and acks", caught_up, SETTLE_TIMEOUT)
        except AssertionError as exc:
            dead = raw.depth(resources.dead_letter_queue_url)
            raise AssertionError(
                f"{exc}; {dead} requests in the DLQ; requests handled n times: "
                f"{handled_twice(settings)}"
            ) from None

        stored: dict[int, list[dict[str, Any]]] = {}
        for i in range(SESSIONS):
            login = raw.login(emails[i], PASSWORD)
            stored[i] = history(raw, login.token, login.url, ids[partner[i]])
        raw.settle(SETTLE_TIMEOUT)
        dlq = raw.depth(resources.dead_letter_queue_url)
        left = raw.depth(resources.request_queue_url)
    finally:
        chaos.close()
    print(
        f"\nchaos: {SESSIONS} sessions x {MESSAGES} messages, {kills} SIGKILLs, "
        f"requests handled n times: {handled_twice(settings)}, setup {setup:.1f} s, "
        f"chaos {chaos_time:.1f} s, total {time.monotonic() - started:.1f} s"
    )

    assert kills >= 2, "the chaos thread never got to kill the worker"
    for i in range(SESSIONS):
        sender, recipient, other = sessions[i], sessions[partner[i]], partner[i]
        where = f"conversation {i}->{other}"
        # Stored exactly once, in order 1..n without gaps (SESSIONS == 2 puts both ways in one).
        both = expected[i] + (expected[other] if partner[other] == i and other != i else [])
        assert sorted(m["body"] for m in stored[i]) == sorted(both), where
        assert [m["order"] for m in stored[i]] == list(range(1, len(both) + 1)), where
        assert len({m["messageID"] for m in stored[i]}) == len(both), where
        stored_ids = {m["messageID"] for m in stored[i] if m["body"] in set(expected[i])}

        # The recipient's Session holds each message once, by messageID and by body.
        got = incoming(recipient.state, ids[i])
        assert sorted(m.body for m in got) == sorted(expected[i]), where  # type: ignore[type-var]
        assert {m.message_id for m in got} == stored_ids, where
        assert len(got) == MESSAGES, where
        orders = [m.order for m in conversation(recipient.state, ids[i]).messages]
        assert orders == list(range(1, len(both) + 1)), where

        # The sender's Session: every optimistic copy acknowledged once, none left pending.
        mine = outgoing(sender.state, ids[other])
        assert sorted(m.body for m in mine) == sorted(expected[i]), where  # type: ignore[type-var]
        assert {m.message_id for m in mine} == stored_ids, where
        assert all(m.status in ("sent", "read") for m in mine), where
    assert left == 0, "requests left unprocessed"
    assert dlq == 0, "a valid request was dead-lettered"
