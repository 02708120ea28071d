"""Reference loops in plain boto3: what the same moto server does with no messenger code.

- `ThreadRelay`: the raw floor of the notes, B of A -> Q1 -> B -> Q2 -> A, as a thread.
- `python -m messenger_widgets.bench.relay ENDPOINT QUEUE`: the plain reference worker, a
  process that receives batches of 10 (long polls), sends each body to the queue named by its
  `to` attribute (one SendMessageBatch per target queue per batch), then deletes the batch.
  It is the least a worker process must do to move messages between queues.
- `... ENDPOINT QUEUE --send N --body-file F`: a sender process that, once told `go` on its
  stdin, sends N copies of a `message` push with F's body, SendMessageBatch 10 at a time.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

STOP_BODY = "__bench_relay_stop__"
TARGET_ATTRIBUTE = "to"


def relay_batch(sqs: SQSClient, in_url: str, wait_seconds: int) -> int | None:
    """One receive-route-delete round of the plain worker; None when told to stop."""
    messages = sqs.receive_message(
        QueueUrl=in_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait_seconds,
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    by_target: dict[str, list[Any]] = defaultdict(list)
    stop = False
    for message in messages:
        target: Any = message.get("MessageAttributes", {}).get(TARGET_ATTRIBUTE, {})
        if message.get("Body") == STOP_BODY:
            stop = True
        elif "StringValue" in target:
            by_target[target["StringValue"]].append(message)
    for target_url, group in by_target.items():
        sqs.send_message_batch(
            QueueUrl=target_url,
            Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(group)],
        )
    if messages:
        sqs.delete_message_batch(
            QueueUrl=in_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return None if stop else len(messages)


class ThreadRelay:
    """B of the raw relay: long-polls Q1, sends each message to Q2 (SendMessage), deletes."""

    def __init__(self, sqs: SQSClient, q1: str, q2: str, wait_seconds: int = 20) -> None:
        self.sqs, self.q1, self.q2, self.wait = sqs, q1, q2, wait_seconds
        self.thread = threading.Thread(target=self._run, name="bench-relay", daemon=True)

    def start(self) -> ThreadRelay:
        self.thread.start()
        return self

    def _run(self) -> None:
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.q1, MaxNumberOfMessages=10, WaitTimeSeconds=self.wait
            ).get("Messages", [])
            if any(m.get("Body") == STOP_BODY for m in messages):
                return
            for message in messages:
                self.sqs.send_message(QueueUrl=self.q2, MessageBody=message["Body"])
            if messages:
                self.sqs.delete_message_batch(
                    QueueUrl=self.q1,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )

    def stop(self) -> None:
        self.sqs.send_message(QueueUrl=self.q1, MessageBody=STOP_BODY)
        self.thread.join(timeout=30)


def start_plain_workers(
    endpoint: str, in_url: str, count: int, wait_seconds: int = 20
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for _ in range(count):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "messenger_widgets.bench.relay",
                endpoint,
                in_url,
                "--wait-seconds",
                str(wait_seconds),
            ],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("a plain reference worker did not start")
        procs.append(proc)
    return procs


def stop_plain_workers(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    from ..config import LOCAL_REGION
    from ..local import LOCAL_KEY
    from .stack import CLIENT_CONFIG

    parser = argparse.ArgumentParser(description="the plain reference worker")
    parser.add_argument("endpoint")
    parser.add_argument("queue_url")
    parser.add_argument("--wait-seconds", type=int, default=20)
    parser.add_argument("--send", type=int, default=0, help="send this many, then exit")
    parser.add_argument("--body-file", default="")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sqs = boto3.Session(LOCAL_KEY, LOCAL_KEY, region_name=LOCAL_REGION).client(
        "sqs", endpoint_url=args.endpoint, config=CLIENT_CONFIG
    )
    sqs.get_queue_attributes(QueueUrl=args.queue_url, AttributeNames=["QueueArn"])
    print("ready", flush=True)
    if args.send:
        _send_copies(sqs, args.queue_url, args.send, Path(args.body_file).read_text())
        return 0
    while relay_batch(sqs, args.queue_url, args.wait_seconds) is not None:
        pass
    return 0


def _send_copies(sqs: SQSClient, url: str, count: int, body: str) -> None:
    from ..protocol import Action, Push

    attrs = Push(Action.MESSAGE, {}).encode().attributes
    encoded: dict[str, Any] = {
        k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()
    }
    sys.stdin.readline()  # "go"
    for start in range(0, count, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": body, "MessageAttributes": encoded}
                for i in range(min(10, count - start))
            ],
        )


def start_sender(endpoint: str, url: str, count: int, body_file: Path) -> subprocess.Popen[bytes]:
    """The sender process, started and ready: write a line to its stdin to make it send."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "messenger_widgets.bench.relay",
            endpoint,
            url,
            "--send",
            str(count),
            "--body-file",
            str(body_file),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("the reference sender did not start")
    return proc


if __name__ == "__main__":
    raise SystemExit(main())
