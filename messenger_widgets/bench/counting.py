"""Count SQS API calls through botocore's event hooks, in this process or in a worker process.

`CallCounter.attach(client)` registers a `before-call.sqs` hook: every SQS request the client
makes (retries excepted) is counted under its operation name with a wall-clock time, so
counts from several processes can be cut to the same window.

A worker process counts its own calls when `MESSENGER_COUNT_SQS_CALLS=path` is set: `messenger
worker` then imports this module (and nothing else of the bench) and calls `count_to_file`,
which appends each call to `path` as a `time operation` line (every `DUMP_INTERVAL` seconds,
and at exit).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ENV_VAR = "MESSENGER_COUNT_SQS_CALLS"
DUMP_INTERVAL = 0.2
MAX_TIMES = 200_000  # enough for any bench run; a runaway process stops recording times


class CallCounter:
    """Per-operation counts plus (time, operation) of each call; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.times: list[tuple[float, str]] = []

    def attach(self, client: Any) -> Any:
        """Count `client`'s SQS calls from now on; returns the client for chaining."""
        client.meta.events.register("before-call.sqs", self._on_call)
        return client

    def _on_call(self, model: Any = None, **_: Any) -> None:
        self.record(str(getattr(model, "name", "?")))

    def record(self, operation: str, at: float | None = None) -> None:
        with self._lock:
            self.counts[operation] += 1
            if len(self.times) < MAX_TIMES:
                self.times.append((time.time() if at is None else at, operation))

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot_times(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.times)

    def append_since(self, path: Path, done: int) -> int:
        """Append the calls after the first `done` to `path`, one `time operation` a line."""
        with self._lock:
            new = self.times[done:]
        if new:
            with path.open("a") as out:
                out.writelines(f"{t:.6f} {op}\n" for t, op in new)
        return done + len(new)


def read_calls(path: Path) -> list[tuple[float, str]]:
    """The (time, operation) list a counting process wrote; empty when it wrote nothing yet."""
    try:
        text = path.read_text()
    except OSError:
        return []
    complete = text[: text.rfind("\n") + 1]  # a line still being written is left for later
    calls = []
    for line in complete.splitlines():
        at, _, operation = line.partition(" ")
        calls.append((float(at), operation))
    return calls


def calls_between(calls: list[tuple[float, str]], start: float, end: float) -> Counter[str]:
    return Counter(op for t, op in calls if start <= t < end)


def count_to_file(transport: Any, path: str) -> CallCounter:
    """Count the SQS calls of a worker's transport and keep `path` current until exit."""
    counter = CallCounter()
    client = getattr(transport, "client", None)
    if client is None:
        raise TypeError(f"{ENV_VAR} needs an SQS transport, not {type(transport).__name__}")
    counter.attach(client)
    target = Path(path)
    target.write_text("")
    written = [0]
    lock = threading.Lock()

    def flush() -> None:
        with lock:
            written[0] = counter.append_since(target, written[0])

    def dump_loop() -> None:
        while True:
            time.sleep(DUMP_INTERVAL)
            flush()

    threading.Thread(target=dump_loop, name="sqs-call-counter", daemon=True).start()
    atexit.register(flush)
    return counter


def maybe_count(transport: Any) -> None:
    """Called by `messenger worker`: count only when the environment asks for it."""
    path = os.environ.get(ENV_VAR)
    if path:
        count_to_file(transport, path)
