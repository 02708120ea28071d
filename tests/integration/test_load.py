"""Load: 50 client Sessions log in at the same moment, then each messages the next.

All logins share one responses queue: a Session that receives someone else's reply must
release it at once (visibility 0), or the others starve until its visibility timeout ends.
Every login must succeed within 30 s; the slowest one is printed. Then every Session sends
one message to the next (in a ring) and every Session must receive its message.

CI size: 50 Sessions, 2 worker processes. For a bench:
    MESSENGER_LOAD_SESSIONS=200 MESSENGER_LOAD_WORKERS=4 pytest tests/integration/test_load.py
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from messenger_widgets.client.session import Session
from messenger_widgets.client.state import conversation
from messenger_widgets.config import Settings
from messenger_widgets.provision import Resources
from messenger_widgets.transport import SqsTransport

from ..conftest import REGION
from .conftest import start_worker_process, stop_process
from .rawclient import RawClient

pytestmark = pytest.mark.slow

SESSIONS = int(os.environ.get("MESSENGER_LOAD_SESSIONS", "50"))
WORKERS = int(os.environ.get("MESSENGER_LOAD_WORKERS", "2"))
LOGIN_LIMIT_SECONDS = float(os.environ.get("MESSENGER_LOAD_LOGIN_LIMIT", "30"))
SESSION_WAIT_SECONDS = 2  # the drain threads' long poll; keeps closing 50 Sessions quick
PASSWORD = "correct horse battery"


def register_all(raw: RawClient, people: list[tuple[str, str]], timeout: float = 120) -> None:
    """Send every register at once, then collect the replies (ours only: nobody else here)."""
    pending: dict[str, str] = {}
    for first, email in people:
        body = {"fName": first, "lName": "Crowd", "email": email, "password": PASSWORD}
        pending[raw.send("user", "register", body)] = email
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} registrations unanswered"
        got = raw.sqs.receive_message(
            QueueUrl=raw.response_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        for m in got:
            attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
            email = pending.pop(attrs["resTo"], "")
            assert email, f"a reply to nothing we sent: {attrs}"
            assert attrs["statusCode"] == "200", (email, json.loads(m["Body"]))
        if got:
            raw.sqs.delete_message_batch(
                QueueUrl=raw.response_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )


def last_login_answered(settings: Settings) -> datetime:
    """When the workers finished handling the last login (from their JSON logs)."""
    times = []
    for log in settings.sqlite_path.parent.glob("worker-*.log"):
        for line in log.read_text(errors="replace").splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("event") == "request" and entry.get("method") == "login":
                times.append(datetime.fromisoformat(entry["time"]))
    return max(times)


def in_parallel(calls: list[Any]) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


@pytest.fixture
def crowd(
    fresh_stack: tuple[Settings, Resources],
) -> Iterator[tuple[list[Session], list[str], RawClient]]:
    settings, resources = fresh_stack
    workers = [start_worker_process(settings) for _ in range(WORKERS)]
    raw = RawClient(
        boto3.client("sqs", region_name=REGION, endpoint_url=settings.endpoint_url),
        resources.request_queue_url,
        resources.response_queue_url,
    )
    run = uuid.uuid4().hex[:6]
    emails = [f"load{i}.{run}@example.com" for i in range(SESSIONS)]
    sessions: list[Session] = []
    try:
        register_all(raw, [(f"Load{i}", email) for i, email in enumerate(emails)])
        for _ in range(SESSIONS):  # one client each, made here: boto3.client is not thread-safe
            sqs = boto3.client("sqs", region_name=REGION, endpoint_url=settings.endpoint_url)
            sessions.append(
                Session(
                    SqsTransport(sqs),
                    resources.request_queue_url,
                    resources.response_queue_url,
                    reply_timeout=LOGIN_LIMIT_SECONDS,
                    wait_seconds=SESSION_WAIT_SECONDS,
                )
            )
        yield sessions, emails, raw
    finally:
        in_parallel([s.close for s in sessions])
        for w in workers:
            stop_process(w)
        for w in workers:
            assert w.returncode == 0, "a worker process did not stop cleanly"


def test_fifty_sessions_log_in_at_once_then_message_in_a_ring(
    crowd: tuple[list[Session], list[str], RawClient], fresh_stack: tuple[Settings, Resources]
) -> None:
    sessions, emails, raw = crowd
    barrier = threading.Barrier(SESSIONS)
    took: dict[int, float] = {}
    failures: dict[int, BaseException] = {}

    def log_in(i: int) -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            sessions[i].login(emails[i], PASSWORD)
        except BaseException as exc:  # reported below, with every other failure
            failures[i] = exc
        took[i] = time.monotonic() - started

    started, started_at = time.monotonic(), datetime.now(UTC)
    in_parallel([lambda i=i: log_in(i) for i in range(SESSIONS)])
    wall = time.monotonic() - started
    slowest = max(took.values())
    answered = last_login_answered(fresh_stack[0]) - started_at
    print(
        f"\nload: {SESSIONS} logins at once on {WORKERS} worker(s): slowest {slowest:.2f} s, "
        f"median {statistics.median(took.values()):.2f} s, all done in {wall:.2f} s; "
        f"the workers handled the last login after {answered.total_seconds():.2f} s"
    )
    assert not failures, {i: repr(e) for i, e in failures.items()}
    assert len(took) == SESSIONS
    assert slowest < LOGIN_LIMIT_SECONDS
    assert raw.depth(raw.response_url) == 0, "a reply was left on the shared responses queue"

    ids = [s.state.me.user_id for s in sessions if s.state.me]
    assert len(set(ids)) == SESSIONS
    texts = [f"ring {i} -> {(i + 1) % SESSIONS} {uuid.uuid4().hex[:6]}" for i in range(SESSIONS)]
    started = time.monotonic()
    for i, session in enumerate(sessions):
        session.send_text(ids[(i + 1) % SESSIONS], texts[i])

    def received(i: int) -> bool:
        """Session i holds the message from i-1, and its own message was acknowledged."""
        prev, nxt = (i - 1) % SESSIONS, (i + 1) % SESSIONS
        got = [
            m.body for m in conversation(sessions[i].state, ids[prev]).messages if not m.outgoing
        ]
        mine = [m for m in conversation(sessions[i].state, ids[nxt]).messages if m.outgoing]
        return got == [texts[prev]] and [m.status for m in mine] == ["sent"]

    deadline = time.monotonic() + 60
    while not all(received(i) for i in range(SESSIONS)):
        missing = [i for i in range(SESSIONS) if not received(i)]
        assert time.monotonic() < deadline, f"sessions without their message: {missing}"
        time.sleep(0.1)
    print(f"load: {SESSIONS} ring messages delivered in {time.monotonic() - started:.2f} s")
    raw.settle(30)
    assert raw.depth(fresh_stack[1].dead_letter_queue_url) == 0
