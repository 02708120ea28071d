"""Worker counters, and their CloudWatch Embedded Metric Format (EMF) line for Lambda.

`Counters` is updated by `Worker.process` once per request, with the request's final outcome
(after its answers were sent and, for a dead letter, its DLQ copy): `done`, `failed` (left
for redelivery, the RETRY outcome) or `dead_lettered`; plus the handling latency. Methods
are bucketed to the contract's method names (anything else counts under `other`), so a
hostile client cannot grow the counters or the metric output without bound.

`emf_line` writes the EMF JSON by hand (no dependency): CloudWatch Logs turns each such line
that a Lambda prints to stdout into metrics in the `Messenger` namespace, one dimension
`Function`. The average latency is `LatencySum / Processed` (metric math); `LatencyMax` is
the batch's maximum.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import METHODS

NAMESPACE = "Messenger"
OTHER_METHOD = "other"
_KNOWN_METHODS = frozenset(method for _, method in METHODS)
_OUTCOMES = {"done": "done", "retry": "failed", "dead": "dead_lettered"}


@dataclass
class _Tally:
    processed: int = 0
    done: int = 0
    failed: int = 0
    dead_lettered: int = 0
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    def add(self, field: str, duration_ms: float) -> None:
        self.processed += 1
        setattr(self, field, getattr(self, field) + 1)
        self.latency_count += 1
        self.latency_sum_ms += duration_ms
        self.latency_max_ms = max(self.latency_max_ms, duration_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "done": self.done,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "latency_ms": {
                "count": self.latency_count,
                "sum": round(self.latency_sum_ms, 3),
                "max": round(self.latency_max_ms, 3),
            },
        }


class Counters:
    """Thread-safe request counters: totals and the same tallies per method."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = _Tally()
        self._by_method: dict[str, _Tally] = {}

    def record(self, method: str, outcome: str, duration_ms: float) -> None:
        """One request's final outcome: `done`, `retry` or `dead` (`Outcome` values)."""
        field = _OUTCOMES.get(outcome, "failed")
        key = method if method in _KNOWN_METHODS else OTHER_METHOD
        with self._lock:
            self._total.add(field, duration_ms)
            self._by_method.setdefault(key, _Tally()).add(field, duration_ms)

    def snapshot(self) -> dict[str, Any]:
        """Totals, `latency_ms` {count, sum, max} and `by_method` {method: same fields}."""
        with self._lock:
            return self._snapshot()

    def drain(self) -> dict[str, Any]:
        """The snapshot, and start again from zero (atomically): one Lambda batch's worth."""
        with self._lock:
            snapshot = self._snapshot()
            self._total = _Tally()
            self._by_method = {}
            return snapshot

    def _snapshot(self) -> dict[str, Any]:
        out = self._total.as_dict()
        out["by_method"] = {k: v.as_dict() for k, v in sorted(self._by_method.items())}
        return out


# name in EMF, unit, how to read it from a snapshot
_EMF_METRICS: tuple[tuple[str, str, Callable[[dict[str, Any]], float]], ...] = (
    ("Processed", "Count", lambda s: s["processed"]),
    ("Done", "Count", lambda s: s["done"]),
    ("Failed", "Count", lambda s: s["failed"]),
    ("DeadLettered", "Count", lambda s: s["dead_lettered"]),
    ("LatencySum", "Milliseconds", lambda s: s["latency_ms"]["sum"]),
    ("LatencyMax", "Milliseconds", lambda s: s["latency_ms"]["max"]),
)


def emf_document(
    snapshot: dict[str, Any], function: str, *, timestamp_ms: int | None = None
) -> dict[str, Any]:
    """The EMF object for one snapshot. `by_method` rides along as a plain log field
    (searchable in Logs Insights), not as a metric dimension."""
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in _EMF_METRICS],
                }
            ],
        },
        "Function": function,
    }
    for name, _, read in _EMF_METRICS:
        document[name] = read(snapshot)
    document["by_method"] = snapshot.get("by_method", {})
    return document


def emf_line(snapshot: dict[str, Any], function: str, *, timestamp_ms: int | None = None) -> str:
    """`emf_document` as one line of JSON, ready for stdout."""
    return json.dumps(
        emf_document(snapshot, function, timestamp_ms=timestamp_ms), separators=(",", ":")
    )


__all__ = ["NAMESPACE", "Counters", "emf_document", "emf_line"]
