"""`messenger bench` plumbing on tiny sizes: the CPU benchmark, the SQS call counter, and the
shape of the table, JSON and chart. No timing is asserted: these machines are shared."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from messenger_widgets.bench import FAMILIES, register_cli
from messenger_widgets.bench.core import Goal, Row, format_table, markdown_table, write_json
from messenger_widgets.bench.counting import ENV_VAR, CallCounter, calls_between, read_calls
from messenger_widgets.bench.cpu import run as run_cpu
from messenger_widgets.bench.runner import main, selected
from messenger_widgets.errors import ConfigError

ROW_KEYS = {"family", "figure", "unit", "ours", "reference", "ratio", "target_text", "verdict"}


def test_cpu_benchmark_gives_one_row_with_its_store_floor(tmp_path: Path) -> None:
    [row] = run_cpu(tmp_path, 20)
    assert row.family == "cpu" and row.unit == "us" and row.goal is Goal.MAX
    assert row.ours is not None and row.ours > 0
    assert row.reference is not None and row.reference > 0
    assert row.verdict in ("pass", "MISS")
    assert set(row.as_dict()) >= ROW_KEYS


def test_call_counter_counts_every_sqs_operation_through_the_hook() -> None:
    counter = CallCounter()
    with mock_aws():
        sqs = counter.attach(boto3.client("sqs", region_name="us-east-1"))
        url = sqs.create_queue(QueueName="counted")["QueueUrl"]
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)]
        )
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )
    assert dict(counter.counts) == {
        "CreateQueue": 1,
        "SendMessageBatch": 1,
        "ReceiveMessage": 1,
        "DeleteMessageBatch": 1,
    }
    assert counter.total() == 4
    times = [t for t, _ in counter.snapshot_times()]
    assert times == sorted(times)


def test_counts_written_by_a_worker_are_read_back_and_cut_to_a_window(tmp_path: Path) -> None:
    counter = CallCounter()
    for at, op in ((10.0, "ReceiveMessage"), (11.0, "SendMessageBatch"), (12.0, "ReceiveMessage")):
        counter.record(op, at)
    path = tmp_path / "calls.txt"
    written = counter.append_since(path, 0)
    counter.record("DeleteMessageBatch", 13.0)
    assert counter.append_since(path, written) == 4
    with path.open("a") as out:
        out.write("14.0 Half")  # a line still being written is not read yet
    calls = read_calls(path)
    assert [op for _, op in calls] == [
        "ReceiveMessage",
        "SendMessageBatch",
        "ReceiveMessage",
        "DeleteMessageBatch",
    ]
    assert calls_between(calls, 11.0, 13.0) == {"SendMessageBatch": 1, "ReceiveMessage": 1}
    assert read_calls(tmp_path / "missing.txt") == []
    assert ENV_VAR == "MESSENGER_COUNT_SQS_CALLS"


def _rows() -> list[Row]:
    return [
        Row("latency", "p50", "ms", 20.0, 16.0, "raw relay", Goal.RATIO_MAX, 1.25),
        Row("throughput", "1 worker", "msg/s", 50.0, 80.0, "plain", Goal.RATIO_MIN, 0.7),
        Row("idle", "session", "req/h", 180.0, 7200.0, "original", Goal.MAX, 190.0),
        Row("voila", "RSS", "MiB", 80.0, 55.0, "one Label"),
        Row("voila", "skipped", "", None, note="skipped: no chromium"),
    ]


def test_verdicts_follow_each_kind_of_target() -> None:
    verdicts = [r.verdict for r in _rows()]
    assert verdicts == ["pass", "MISS", "pass", "info", "skip"]
    assert _rows()[0].ratio == pytest.approx(1.25)
    assert _rows()[1].target_text == ">= 0.70x" and _rows()[2].target_text == "<= 190 req/h"


def test_table_json_and_chart_have_every_row(tmp_path: Path) -> None:
    rows = _rows()
    text = format_table(rows)
    header = text.splitlines()[0].split()
    assert header == ["figure", "ours", "reference", "ratio", "target", "verdict"]
    assert all(f"{r.family}: {r.figure}" in text for r in rows)
    assert "skipped: no chromium" in text
    assert markdown_table(rows).count("\n") == len(rows) + 1

    write_json(rows, tmp_path / "results.json", {"quick": True})
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"] == {"quick": True}
    assert data["columns"] == ["figure", "ours", "reference", "ratio", "target", "verdict"]
    assert len(data["rows"]) == len(rows)
    assert all(set(r) >= ROW_KEYS for r in data["rows"])


def test_the_command_parses_and_refuses_unknown_families() -> None:
    top = argparse.ArgumentParser(prog="messenger")
    register_cli(top.add_subparsers(dest="command"))
    args = top.parse_args(["bench", "--quick", "--only", "cpu,latency", "--out", "x"])
    assert args.quick and args.only == "cpu,latency" and args.out == "x" and callable(args.run)
    assert selected("") == list(FAMILIES)
    with pytest.raises(ConfigError, match="bogus"):
        selected("cpu,bogus")


def test_bench_only_cpu_writes_json_and_png(tmp_path: Path) -> None:
    assert main(quick=True, out=str(tmp_path), only="cpu") == 0
    data = json.loads((tmp_path / "results.json").read_text())
    [row] = data["rows"]
    assert row["family"] == "cpu" and not math.isnan(row["ours"])
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
