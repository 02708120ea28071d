"""`InMemoryTransport`: the SQS semantics the code relies on, in one process, for unit tests.

Visibility timeouts, receive counts, redrive to a dead-letter queue after `maxReceiveCount`
receives, long polls that wake on send, and batch limits checked as SQS checks them. It is
for fast tests only; integration tests use boto3 against a real moto server.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import QueueGone, TransportError
from .protocol import (
    MAX_BATCH_ENTRIES,
    MAX_RECEIVE_MESSAGES,
    MAX_SQS_MESSAGE_BYTES,
    WAIT_TIME_SECONDS,
    Envelope,
    Outgoing,
)
from .transport import batches

URL_PREFIX = "memory://sqs/"


@dataclass
class _Stored:
    message_id: str
    message: Outgoing
    receive_count: int = 0
    visible_at: float = 0.0
    receipt: str = ""


@dataclass
class _Queue:
    name: str
    attributes: dict[str, str]
    messages: list[_Stored] = field(default_factory=list)


class InMemoryTransport:
    """Same interface as `SqsTransport`; thread-safe; clock injectable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self.calls: list[str] = []  # operation names, for tests that count requests

    # --- queue lifecycle ------------------------------------------------------------------
    def create_queue(self, name: str, attributes: dict[str, str] | None = None) -> str:
        with self._lock:
            self.calls.append("CreateQueue")
            self._queues.setdefault(name, _Queue(name, dict(attributes or {})))
            return URL_PREFIX + name

    def delete_queue(self, queue_url: str) -> None:
        with self._lock:
            self.calls.append("DeleteQueue")
            self._queues.pop(queue_url.removeprefix(URL_PREFIX), None)
            self._lock.notify_all()

    def queue_url(self, name: str) -> str:
        with self._lock:
            if name not in self._queues:
                raise QueueGone(f"queue does not exist: {name}")
            return URL_PREFIX + name

    def queue_attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        with self._lock:
            queue = self._queue(queue_url)
            now = self._clock()
            attrs = dict(queue.attributes)
            attrs["ApproximateNumberOfMessages"] = str(
                sum(1 for m in queue.messages if m.visible_at <= now)
            )
            attrs["ApproximateNumberOfMessagesNotVisible"] = str(
                sum(1 for m in queue.messages if m.visible_at > now)
            )
            attrs["QueueArn"] = f"arn:aws:sqs:memory:000000000000:{queue.name}"
            return {k: v for k, v in attrs.items() if k in names or "All" in names}

    def exists(self, queue_url: str) -> bool:
        with self._lock:
            return queue_url.removeprefix(URL_PREFIX) in self._queues

    def _queue(self, queue_url: str) -> _Queue:
        queue = self._queues.get(queue_url.removeprefix(URL_PREFIX))
        if queue is None:
            raise QueueGone(f"queue does not exist: {queue_url}")
        return queue

    # --- messages -------------------------------------------------------------------------
    def send(self, queue_url: str, message: Outgoing) -> str:
        if message.size > MAX_SQS_MESSAGE_BYTES:
            raise TransportError(f"message of {message.size} bytes exceeds the limit")
        with self._lock:
            self.calls.append("SendMessage")
            return self._put(self._queue(queue_url), message)

    def send_batch(self, queue_url: str, messages: Sequence[Outgoing]) -> list[str]:
        ids: list[str] = []
        for chunk in batches(messages):
            with self._lock:
                self.calls.append("SendMessageBatch")
                queue = self._queue(queue_url)
                ids.extend(self._put(queue, m) for _, m in chunk)
        return ids

    def _put(self, queue: _Queue, message: Outgoing) -> str:
        message_id = str(uuid.UUID(int=next(self._ids)))
        queue.messages.append(_Stored(message_id, message))
        self._lock.notify_all()
        return message_id

    def receive(
        self,
        queue_url: str,
        max_messages: int = MAX_RECEIVE_MESSAGES,
        wait_seconds: int = WAIT_TIME_SECONDS,
    ) -> list[Envelope]:
        if not 1 <= max_messages <= MAX_RECEIVE_MESSAGES:
            raise TransportError("MaxNumberOfMessages must be 1-10")
        deadline = self._clock() + wait_seconds
        with self._lock:
            self.calls.append("ReceiveMessage")
            while True:
                got = self._take(self._queue(queue_url), max_messages, queue_url)
                remaining = deadline - self._clock()
                if got or remaining <= 0:
                    return got
                self._lock.wait(min(remaining, 0.05))

    def _take(self, queue: _Queue, limit: int, queue_url: str) -> list[Envelope]:
        now = self._clock()
        visibility = float(queue.attributes.get("VisibilityTimeout", "30"))
        redrive = json.loads(queue.attributes.get("RedrivePolicy", "null") or "null")
        out: list[Envelope] = []
        for stored in list(queue.messages):
            if len(out) == limit:
                break
            if stored.visible_at > now:
                continue
            if redrive and stored.receive_count >= int(redrive["maxReceiveCount"]):
                queue.messages.remove(stored)
                target = self._queues.get(redrive["deadLetterTargetArn"].rsplit(":", 1)[-1])
                if target is not None:
                    target.messages.append(_Stored(stored.message_id, stored.message))
                continue
            stored.receive_count += 1
            stored.visible_at = now + visibility
            stored.receipt = f"{stored.message_id}#{stored.receive_count}"
            out.append(
                Envelope(
                    stored.message_id,
                    stored.receipt,
                    stored.message.body,
                    dict(stored.message.attributes),
                    stored.receive_count,
                    queue_url,
                )
            )
        return out

    def delete_batch(self, queue_url: str, receipt_handles: Sequence[str]) -> None:
        with self._lock:
            queue = self._queue(queue_url)
            for start in range(0, len(receipt_handles), MAX_BATCH_ENTRIES):
                self.calls.append("DeleteMessageBatch")
                handles = set(receipt_handles[start : start + MAX_BATCH_ENTRIES])
                queue.messages = [m for m in queue.messages if m.receipt not in handles]

    def change_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        with self._lock:
            self.calls.append("ChangeMessageVisibility")
            for stored in self._queue(queue_url).messages:
                if stored.receipt == receipt_handle:
                    stored.visible_at = self._clock() + seconds
            self._lock.notify_all()

    # --- test helpers ---------------------------------------------------------------------
    def depth(self, queue_url: str) -> int:
        with self._lock:
            return len(self._queue(queue_url).messages)
