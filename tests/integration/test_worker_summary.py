"""`messenger worker` prints its counters as one JSON line on stderr when it is stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from typing import Any

from messenger_widgets.config import Settings
from messenger_widgets.provision import Resources

from .conftest import worker_env
from .rawclient import RawClient


def test_sigterm_prints_a_one_line_summary(
    fresh_stack: tuple[Settings, Resources], sqs: Any
) -> None:
    settings, resources = fresh_stack
    client = RawClient(sqs, resources.request_queue_url, resources.response_queue_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "messenger_widgets", "worker", "--wait-seconds", "1"],
        env=worker_env(settings),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        email = f"sum.{uuid.uuid4().hex[:8]}@example.com"
        status, _ = client.register("Sum", "Mary", email, "correct horse")
        assert status == 200
        client.send("message", "add", {"body": "x", "userID": "u", "name": ""}, token="forged")
        client.settle()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    summaries = [line for line in lines if line.get("event") == "worker summary"]
    assert len(summaries) == 1 and lines[-1] is summaries[0], "the summary is the last line"
    [summary] = summaries
    assert summary["processed"] == 2
    assert (summary["done"], summary["failed"], summary["dead_lettered"]) == (1, 0, 1)
    assert summary["latency_ms"]["count"] == 2 and summary["latency_ms"]["max"] > 0
    assert summary["by_method"]["register"]["done"] == 1
    assert summary["by_method"]["add"]["dead_lettered"] == 1
    assert "correct horse" not in stderr and "forged" not in stderr
