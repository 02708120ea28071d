"""Count SQS API calls through botocore's event hooks, in this process or in a worker process.

`CallCounter.attach(client)` registers a `before-call.sqs` hook: every SQS request the client
makes (retries excepted) is counted under its operation name with a wall-clock time, so
counts from several processes can be cut to the same window.

A worker process counts its own calls when `MESSENGER_COUNT_SQS_CALLS=path` is set: `messenger
worker` then imports this module (and nothing else of the bench) and calls `count_to_file`,
which keeps `path` up to date (every `DUMP_INTERVAL` seconds while calls happen, and at exit).
"""

from __future__ import annotations

import atexit
import json
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
        self.version = 0  # bumps on every call, so a dumper knows when to write

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
            self.version += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot_times(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.times)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"counts": dict(self.counts), "times": list(self.times)}

    def write(self, path: Path) -> None:
        """Atomically replace `path` with the counts so far."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(path)


def read_calls(path: Path) -> list[tuple[float, str]]:
    """The (time, operation) list a counting process wrote; empty when it wrote nothing yet."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [(float(t), str(op)) for t, op in data.get("times", [])]


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

    def dump_loop() -> None:
        seen = -1
        while True:
            time.sleep(DUMP_INTERVAL)
            if counter.version != seen:
                seen = counter.version
                counter.write(target)

    counter.write(target)
    threading.Thread(target=dump_loop, name="sqs-call-counter", daemon=True).start()
    atexit.register(counter.write, target)
    return counter


def maybe_count(transport: Any) -> None:
    """Called by `messenger worker`: count only when the environment asks for it."""
    path = os.environ.get(ENV_VAR)
    if path:
        count_to_file(transport, path)
