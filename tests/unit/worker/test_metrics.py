"""Worker counters: totals and per method, thread-safe, updated by `process`; the EMF line."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest

from messenger_widgets.worker.lambda_entry import SqsBatchHandler
from messenger_widgets.worker.metrics import Counters, emf_document, emf_line

from .test_handlers import Harness
from .test_lambda_entry import FailingFor, Lambda


def test_counters_tally_outcomes_and_latency_by_method() -> None:
    c = Counters()
    c.record("login", "done", 10.0)
    c.record("login", "retry", 30.0)
    c.record("add", "dead", 5.5)
    snap = c.snapshot()
    assert (snap["processed"], snap["done"], snap["failed"], snap["dead_lettered"]) == (3, 1, 1, 1)
    assert snap["latency_ms"] == {"count": 3, "sum": 45.5, "max": 30.0}
    assert snap["by_method"]["login"] == {
        "processed": 2,
        "done": 1,
        "failed": 1,
        "dead_lettered": 0,
        "latency_ms": {"count": 2, "sum": 40.0, "max": 30.0},
    }
    assert snap["by_method"]["add"]["dead_lettered"] == 1
    assert list(snap["by_method"]) == ["add", "login"]  # stable order


def test_unknown_methods_share_one_bucket() -> None:
    """A client choosing method names cannot grow the counters without bound."""
    c = Counters()
    for i in range(100):
        c.record(f"evil-{i}", "dead", 1.0)
    c.record("?", "dead", 1.0)
    assert list(c.snapshot()["by_method"]) == ["other"]
    assert c.snapshot()["by_method"]["other"]["processed"] == 101


def test_drain_returns_and_resets_atomically() -> None:
    c = Counters()
    c.record("login", "done", 1.0)
    first = c.drain()
    assert first["processed"] == 1
    assert c.snapshot() == {
        "processed": 0,
        "done": 0,
        "failed": 0,
        "dead_lettered": 0,
        "latency_ms": {"count": 0, "sum": 0.0, "max": 0.0},
        "by_method": {},
    }


def test_counters_are_thread_safe() -> None:
    c = Counters()
    drained: list[int] = []

    def hammer() -> None:
        for _ in range(2000):
            c.record("add", "done", 1.0)

    def drain() -> None:
        for _ in range(50):
            drained.append(c.drain()["processed"])

    threads = [threading.Thread(target=hammer) for _ in range(4)] + [threading.Thread(target=drain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = c.snapshot()
    assert sum(drained) + final["processed"] == 8000  # nothing lost, nothing counted twice
    assert final["latency_ms"]["count"] == final["processed"]


def test_process_counts_the_final_outcome_of_each_request(tmp_path: Path) -> None:
    h = Harness(tmp_path, store=FailingFor(tmp_path / "f.sqlite3"))
    ada, bob = h.user("Ada"), h.user("Bob")
    before = h.worker.counters.snapshot()
    assert before["by_method"]["register"]["done"] == 2
    assert before["by_method"]["login"]["done"] == 2

    claims = jwt.decode(ada["token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "z" * 32, algorithm="HS256")
    to_bob = {"userID": bob["userID"], "name": ""}
    for text, token in (("ok", ada["token"]), ("boom", ada["token"]), ("evil", forged)):
        h.transport.send(h.requests, _request("add", {"body": text, **to_bob}, token))
    h.worker.poll_once()

    add = h.worker.counters.snapshot()["by_method"]["add"]
    assert (add["processed"], add["done"], add["failed"], add["dead_lettered"]) == (3, 1, 1, 1)
    assert add["latency_ms"]["count"] == 3 and add["latency_ms"]["max"] > 0
    total = h.worker.counters.snapshot()
    assert total["processed"] == 7 and total["failed"] == 1 and total["dead_lettered"] == 1


def test_a_dead_letter_that_cannot_reach_the_dlq_counts_as_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.worker.dlq_url = h.transport.create_queue("deleted-dlq")
    h.transport.delete_queue(h.worker.dlq_url)
    h.transport.send(h.requests, _request("add", {"body": "x", "userID": "u", "name": ""}, "bad"))
    h.worker.poll_once()
    snap = h.worker.counters.snapshot()
    assert (snap["failed"], snap["dead_lettered"]) == (1, 0)


def test_an_injected_counters_object_is_used(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    shared = Counters()
    h.worker.counters = shared
    h.user("Ada")
    assert shared.snapshot()["processed"] == 2


# --- Embedded Metric Format ---------------------------------------------------------------
EXPECTED_METRICS = [
    {"Name": "Processed", "Unit": "Count"},
    {"Name": "Done", "Unit": "Count"},
    {"Name": "Failed", "Unit": "Count"},
    {"Name": "DeadLettered", "Unit": "Count"},
    {"Name": "LatencySum", "Unit": "Milliseconds"},
    {"Name": "LatencyMax", "Unit": "Milliseconds"},
]


def test_emf_document_has_the_exact_shape() -> None:
    c = Counters()
    c.record("login", "done", 12.5)
    c.record("add", "retry", 2.5)
    doc = emf_document(c.snapshot(), "messenger-worker", timestamp_ms=1796385600000)
    assert doc == {
        "_aws": {
            "Timestamp": 1796385600000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "Messenger",
                    "Dimensions": [["Function"]],
                    "Metrics": EXPECTED_METRICS,
                }
            ],
        },
        "Function": "messenger-worker",
        "Processed": 2,
        "Done": 1,
        "Failed": 1,
        "DeadLettered": 0,
        "LatencySum": 15.0,
        "LatencyMax": 12.5,
        "by_method": c.snapshot()["by_method"],
    }
    # every metric and dimension named in _aws is a top-level member, as EMF requires
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    for name in [m["Name"] for m in directive["Metrics"]] + directive["Dimensions"][0]:
        assert name in doc
    line = emf_line(c.snapshot(), "messenger-worker")
    assert "\n" not in line and json.loads(line)["_aws"]["Timestamp"] > 1_700_000_000_000


def _emf_lines(out: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d]


def test_the_lambda_handler_prints_one_emf_line_per_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = Harness(tmp_path)
    lam = Lambda(h, SqsBatchHandler(lambda: h.worker))
    body = {"fName": "Ada", "lName": "T", "email": "ada@example.com", "password": "password1"}
    lam.send("user", "register", body)
    lam.send_raw("{nope")  # nobody to answer: dead-lettered
    capsys.readouterr()
    lam.handler(
        {"Records": [_record(e) for e in h.transport.receive(h.requests, 10, 0)]},
        SimpleNamespace(function_name="prod-worker"),
    )
    [doc] = _emf_lines(capsys.readouterr().out)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Messenger"
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Function"]]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] == EXPECTED_METRICS
    assert (doc["Function"], doc["Processed"], doc["Done"], doc["DeadLettered"]) == (
        "prod-worker",
        2,
        1,
        1,
    )
    assert set(doc["by_method"]) == {"register", "other"}
    # the next batch reports only itself
    lam.send("user", "login", {"email": "ada@example.com", "password": "password1"})
    lam.invoke()
    [second] = _emf_lines(capsys.readouterr().out)
    assert second["Processed"] == 1 and second["Function"] == "messenger-worker"
    assert "password1" not in json.dumps(second)


def test_a_scheduled_event_prints_no_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = Harness(tmp_path)
    SqsBatchHandler(lambda: h.worker)({"source": "aws.events"}, None)
    assert _emf_lines(capsys.readouterr().out) == []


def _request(method: str, body: dict[str, Any], token: str) -> Any:
    from messenger_widgets.protocol import Request

    return Request("message", method, body, token).encode()


def _record(envelope: Any) -> dict[str, Any]:
    from .test_lambda_entry import sqs_record

    return sqs_record(envelope)
