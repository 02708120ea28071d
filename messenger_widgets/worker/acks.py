"""`AckHold`: `sent` acks held for a moment, so several share one SendMessageBatch.

Under load a session queue gets its `sent` acks and the other party's `message` pushes a few
milliseconds apart. The long-lived worker holds an ack (never a `message` or any other push)
for up to `window` seconds: a batch that sends to its queue meanwhile takes it along (one call,
and one receive for the client); otherwise it goes when the window ends (with the batch being
handled then, if there is one: it is about to send anyway).

An ack is held together with the receipt handle of the request that caused it, and that
request is deleted only once its ack was sent: a worker that dies while holding acks loses
none, SQS redelivers those requests (a duplicate `message/add` stores nothing new and sends
the same ack again). `Worker.run` sends what is still held before it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..protocol import Action, Outgoing

ACK_WINDOW_SECONDS = 0.05


def is_ack(message: Outgoing) -> bool:
    return message.attributes.get("action") == Action.SENT.value


@dataclass(frozen=True)
class HeldAck:
    queue_url: str
    message: Outgoing
    receipt_handle: str  # of the request that caused it: deleted once the ack is sent


class AckHold:
    """Thread-safe: the worker loop adds and takes, a timer thread takes what is due."""

    def __init__(self, window: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._held: list[HeldAck] = []
        self._due: float | None = None  # when the oldest held ack must go
        self._busy = 0  # batches being handled: their flush takes what is held

    def hold(self, acks: list[HeldAck]) -> None:
        if not acks:
            return
        with self._cond:
            if not self._held:
                self._due = self._monotonic() + self.window
            self._held.extend(acks)
            self._cond.notify_all()

    def take_all(self) -> list[HeldAck]:
        with self._cond:
            taken, self._held, self._due = self._held, [], None
            return taken

    def take(self, queues: set[str]) -> list[HeldAck]:
        """For a batch about to send to `queues`: their held acks, or all once one is due."""
        with self._cond:
            if self._due is not None and self._monotonic() >= self._due:
                taken, self._held, self._due = self._held, [], None
                return taken
            taken = [a for a in self._held if a.queue_url in queues]
            if taken:
                self._held = [a for a in self._held if a.queue_url not in queues]
                if not self._held:
                    self._due = None
            return taken

    def __len__(self) -> int:
        with self._cond:
            return len(self._held)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """While a batch is handled, nothing is due: its flush sends what is held."""
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def wait_due(
        self, stop: threading.Event, poll: float = 0.5, timeout: float | None = None
    ) -> list[HeldAck]:
        """Block until the oldest held ack is due (then take all); [] when `stop` is set or
        `timeout` seconds passed."""
        give_up = None if timeout is None else self._monotonic() + timeout
        with self._cond:
            while not stop.is_set():
                if give_up is not None and self._monotonic() >= give_up:
                    return []
                if self._due is None or self._busy:
                    self._cond.wait(poll)
                    continue
                remaining = self._due - self._monotonic()
                if remaining <= 0:
                    taken, self._held, self._due = self._held, [], None
                    return taken
                self._cond.wait(min(remaining, poll))
            return []

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
