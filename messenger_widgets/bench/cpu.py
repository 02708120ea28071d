"""6. Worker CPU per message: `message/add` through `Worker.poll_once`, no moto.

The worker runs on `InMemoryTransport` with a real SQLite store file and the JSON request log
of `messenger worker` (written to a null stream); `time.process_time()` is summed over the
`poll_once` calls only, so queue set-up and draining the session queues are not counted. The
reference is the store's own `add_message` for the same number of messages: the part of the
cost that is SQLite.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..auth import Passwords
from ..config import Settings
from ..logs import JsonFormatter
from ..memory import InMemoryTransport
from ..protocol import MAX_RECEIVE_MESSAGES, Reply, Request
from ..store.sqlite import SqliteStore
from ..worker import Worker, build_context
from .core import Goal, Row

FAMILY = "cpu"
SECRET = "bench-cpu-secret-" + "z" * 32
PASSWORD = "bench cpu password"  # noqa: S105 - a throwaway account in a scratch store
TARGET_US = 2000.0


class _NoAttachments:
    def key_from_url(self, url: str) -> str | None:
        return None

    def validate_key(self, key: str) -> str:
        return key

    def head(self, key: str) -> tuple[int, str] | None:
        return None


class CpuHarness:
    """A worker on in-memory queues with two logged-in users, Ada and Bob."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.transport = InMemoryTransport()
        t = self.transport
        self.requests = t.create_queue("requests")
        self.responses = t.create_queue("responses")
        settings = Settings(
            request_queue_url=self.requests,
            response_queue_url=self.responses,
            bucket="bucket",
            token_secret=SECRET,
            session_ttl=3600,
        )
        self.store = SqliteStore(folder / f"cpu-{uuid.uuid4().hex[:8]}.sqlite3")
        ctx = build_context(
            settings,
            transport=t,
            attachments=_NoAttachments(),
            store=self.store,
            passwords=Passwords.fast_for_tests(),
        )
        self.worker = Worker(ctx, self.requests, None, wait_seconds=0)
        self.ada = self._login("Ada")
        self.bob = self._login("Bob")

    def _login(self, first: str) -> tuple[str, str, str]:
        """(user id, token, session queue) of a fresh account."""
        email = f"{first.lower()}.{uuid.uuid4().hex[:8]}@bench.example"
        body = {"fName": first, "lName": "Cpu", "email": email, "password": PASSWORD}
        self.transport.send(self.requests, Request("user", "register", body).encode())
        self.worker.poll_once()
        login = {"email": email, "password": PASSWORD}
        self.transport.send(self.requests, Request("user", "login", login).encode())
        self.worker.poll_once()
        replies = [Reply.decode(e) for e in self.transport.receive(self.responses, 10, 0)]
        reply = next(r for r in replies if "token" in r.body)
        self.drain(self.responses)
        return reply.body["userID"], reply.body["token"], reply.body["url"]

    def drain(self, url: str) -> None:
        while envelopes := self.transport.receive(url, MAX_RECEIVE_MESSAGES, 0):
            self.transport.delete_batch(url, [e.receipt_handle for e in envelopes])

    def messages_cpu_seconds(self, count: int) -> float:
        """Process time of the worker handling `count` message/add, 10 per poll."""
        sender_ids = [(self.ada, self.bob), (self.bob, self.ada)]
        spent = 0.0
        for start in range(0, count, MAX_RECEIVE_MESSAGES):
            batch = []
            for i in range(start, min(count, start + MAX_RECEIVE_MESSAGES)):
                (_, token, _), (to, _, _) = sender_ids[i % 2]
                body = {"body": f"cpu {i}", "userID": to, "name": "", "clientMessageId": f"c{i}"}
                batch.append(Request("message", "add", body, token).encode())
            self.transport.send_batch(self.requests, batch)
            began = time.process_time()
            self.worker.poll_once()
            spent += time.process_time() - began
            if start % 200 == 0:
                self.drain(self.ada[2])
                self.drain(self.bob[2])
        return spent

    def store_cpu_seconds(self, count: int) -> float:
        """Process time of the store alone adding `count` messages: the SQLite floor."""
        ada, bob = self.ada[0], self.bob[0]
        began = time.process_time()
        for i in range(count):
            sender, to = (ada, bob) if i % 2 else (bob, ada)
            self.store.add_message(sender, to, f"floor {i}", f"f{i}", datetime.now(UTC))
        return time.process_time() - began


class _Discard(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


@contextmanager
def production_log() -> Iterator[None]:
    """The worker's JSON request log at INFO, as `messenger worker` has it, into nothing."""
    root = logging.getLogger("messenger")
    saved = (list(root.handlers), root.level, root.propagate)
    handler = logging.StreamHandler(_Discard())
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    try:
        yield
    finally:
        root.handlers[:], level, root.propagate = saved
        root.setLevel(level)


def run(folder: Path, count: int) -> list[Row]:
    harness = CpuHarness(folder)
    with production_log():
        harness.messages_cpu_seconds(min(50, count))  # warm caches and the code paths
        ours = harness.messages_cpu_seconds(count) / count * 1e6
    floor = harness.store_cpu_seconds(count) / count * 1e6
    harness.store.close()
    return [
        Row(
            FAMILY,
            "worker CPU per message/add (InMemory + SQLite)",
            "us",
            ours,
            floor,
            "store.add_message",
            Goal.MAX,
            TARGET_US,
            extra={"messages": count},
        )
    ]
