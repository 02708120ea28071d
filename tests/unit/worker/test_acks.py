"""Held `sent` acks: they share SendMessageBatch calls, never delay a message, never get lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from messenger_widgets.errors import TransportError
from messenger_widgets.protocol import Envelope, Outgoing, Request
from messenger_widgets.worker import Worker
from messenger_widgets.worker.acks import AckHold, HeldAck

from .test_handlers import Harness

WINDOW = 0.05


def holding(h: Harness, window: float = 60.0, wait_seconds: int = 0) -> Worker:
    """A worker on the harness's queues that holds acks (60 s: only a batch or stop sends)."""
    return Worker(h.worker.ctx, h.requests, h.dlq, wait_seconds=wait_seconds, ack_window=window)


def add(h: Harness, sender: dict[str, Any], to: dict[str, Any], text: str) -> None:
    body = {"body": text, "userID": to["userID"], "name": "", "clientMessageId": text}
    h.transport.send(h.requests, Request("message", "add", body, sender["token"]).encode())


def actions(h: Harness, url: str) -> list[str]:
    return sorted(p.action for p in h.pushes(url))


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_the_ack_waits_for_the_next_batch_but_the_message_does_not(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h)
    add(h, ada, bob, "hello")
    worker.poll_once()
    assert actions(h, bob["url"]) == ["message"]  # delivered at once
    assert actions(h, ada["url"]) == []  # the ack is held...
    assert h.transport.depth(h.requests) == 1  # ...and its request is not deleted yet

    add(h, bob, ada, "hi back")
    h.transport.calls.clear()
    worker.poll_once()
    # Ada's queue gets Bob's message and her held ack in one call; Bob's ack is held in turn
    assert h.transport.calls.count("SendMessageBatch") == 1
    assert actions(h, ada["url"]) == ["message", "sent"]
    assert h.transport.depth(h.requests) == 1  # the first request is gone, the second held

    worker.flush_acks()
    assert actions(h, bob["url"]) == ["sent"]
    assert h.transport.depth(h.requests) == 0


def test_acks_to_a_queue_that_gets_a_message_in_the_same_batch_go_at_once(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h)
    add(h, ada, bob, "one")
    add(h, bob, ada, "two")
    h.transport.calls.clear()
    worker.poll_once()
    assert h.transport.calls.count("SendMessageBatch") == 2  # one per session queue
    assert h.transport.calls.count("DeleteMessageBatch") == 1
    assert actions(h, ada["url"]) == ["message", "sent"]
    assert actions(h, bob["url"]) == ["message", "sent"]
    assert h.transport.depth(h.requests) == 0 and len(worker.acks or []) == 0


def test_the_loop_sends_a_held_ack_within_the_window(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h, WINDOW, wait_seconds=1)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        add(h, ada, bob, "hello")
        deadline = time.monotonic() + 5
        got: list[str] = []
        while not got and time.monotonic() < deadline:
            got = actions(h, ada["url"])
            time.sleep(0.01)
        assert got == ["sent"]  # no other traffic: the timer sent it
        deadline = time.monotonic() + 5
        while h.transport.depth(h.requests) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert h.transport.depth(h.requests) == 0
    finally:
        stop.set()
        thread.join(10)


def test_stopping_sends_every_held_ack(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h, window=60.0, wait_seconds=1)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    add(h, ada, bob, "hello")
    deadline = time.monotonic() + 5
    while not h.transport.depth(bob["url"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert h.transport.depth(ada["url"]) == 0  # held: the window is a minute
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert actions(h, ada["url"]) == ["sent"]
    assert h.transport.depth(h.requests) == 0


class FailingOnce:
    """Passes everything through, but the next send to `url` fails."""

    def __init__(self, inner: Any, url: str) -> None:
        self.inner, self.url, self.armed = inner, url, False

    def send_batch(self, queue_url: str, messages: Sequence[Outgoing]) -> list[str]:
        if self.armed and queue_url == self.url:
            self.armed = False
            raise TransportError("SQS is down")
        return list(self.inner.send_batch(queue_url, messages))

    def receive(self, *args: Any) -> list[Envelope]:
        return list(self.inner.receive(*args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_ack_that_cannot_be_sent_leaves_its_request_for_redelivery(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h)
    flaky = FailingOnce(h.transport, ada["url"])
    worker.ctx.transport = flaky
    add(h, ada, bob, "hello")
    worker.poll_once()
    flaky.armed = True
    worker.flush_acks()
    assert actions(h, ada["url"]) == []
    assert h.transport.depth(h.requests) == 1  # SQS brings it back; the ack goes again then


def test_process_alone_never_holds_acks(h: Harness) -> None:
    """The Lambda entry point calls `process` and deletes what it returns as done."""
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h)
    add(h, ada, bob, "hello")
    envelopes = h.transport.receive(h.requests, 10, 0)
    worker.process(envelopes)
    assert actions(h, ada["url"]) == ["sent"]
    assert len(worker.acks or []) == 0


def test_nothing_is_due_while_a_batch_is_being_handled() -> None:
    """The window ends mid-batch: that batch's flush is about to send them anyway."""
    hold = AckHold(0.01)
    hold.hold([HeldAck("q", Outgoing("{}", {"action": "sent"}), "r")])
    stop = threading.Event()
    taken: list[HeldAck] = []
    with hold.busy():
        waiter = threading.Thread(target=lambda: taken.extend(hold.wait_due(stop, 0.05)))
        waiter.start()
        time.sleep(0.2)
        assert taken == [] and len(hold) == 1
    waiter.join(5)
    assert [a.receipt_handle for a in taken] == ["r"] and len(hold) == 0


def test_a_full_receive_is_followed_by_more_before_the_batch_is_sent(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    for i in range(25):
        add(h, ada if i % 2 else bob, bob if i % 2 else ada, f"m{i}")
    h.transport.calls.clear()
    results = holding(h).poll_once()
    assert len(results) == 25
    assert h.transport.calls.count("ReceiveMessage") == 3  # 10, 10, 5
    # every push and ack of the 25 shares the calls to the two session queues
    assert h.transport.calls.count("SendMessageBatch") == 6  # 25 entries each: 3 calls each
    assert h.transport.depth(h.requests) == 0

    add(h, ada, bob, "one more")
    h.transport.calls.clear()
    holding(h).poll_once()
    assert h.transport.calls.count("ReceiveMessage") == 1  # not full: handled at once


def test_requests_whose_acks_the_timer_sent_go_with_the_next_batch_delete(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    worker = holding(h)
    add(h, ada, bob, "hello")
    worker.poll_once()
    assert worker.acks is not None
    worker._send_held(worker.acks.take_all(), late=True)  # what the timer does when due
    assert actions(h, ada["url"]) == ["sent"]
    assert h.transport.depth(h.requests) == 1  # deleted later, not in a call of its own

    add(h, bob, ada, "hi back")
    h.transport.calls.clear()
    worker.poll_once()
    assert h.transport.calls.count("DeleteMessageBatch") == 1
    assert h.transport.depth(h.requests) == 1  # the first is gone; the second's ack is held
    worker.flush_acks()
    assert h.transport.depth(h.requests) == 0
