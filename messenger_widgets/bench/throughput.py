"""2. Worker throughput at steady state, with 1, 2 and 4 worker processes.

A closed loop keeps the queues shallow: a feeder sends `message/add` requests in batches of 10
(SendMessageBatch) whenever fewer than `WINDOW` messages are in flight; one drainer thread per
session queue receives and deletes, and a `message` push arriving ends a message's flight.
Throughput is deliveries per second over the measured span, after a warm-up.

The reference is the plain reference worker (`relay.py`, the same number of processes) fed and
drained the same way: the same senders and recipient queues, the same window, bodies of the
same size; it routes each message to its recipient's queue and does nothing else.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..protocol import Request, dumps
from .core import Goal, Row
from .relay import TARGET_ATTRIBUTE, start_plain_workers, stop_plain_workers
from .stack import BenchStack, RawUser

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

FAMILY = "throughput"
PAIRS = 5  # 10 users, each writing to its partner
WINDOW = 30  # messages in flight at most: queues stay shallow
WARMUP_SECONDS = 1.0
SETTLE_SECONDS = 0.5
SEGMENTS = 3
WORKER_COUNTS = (1, 2, 4)
DRAIN_WAIT = 1


@dataclass
class Flow:
    """Shared counters of one run: what is in flight, what arrived when."""

    cond: threading.Condition
    in_flight: int = 0
    delivered: int = 0
    acks: int = 0
    stop: bool = False


def _drainer(
    sqs: SQSClient, url: str, flow: Flow, is_delivery: Callable[[dict[str, object]], bool]
) -> None:
    while True:
        with flow.cond:
            if flow.stop:
                return
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=DRAIN_WAIT,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            continue
        deliveries = sum(1 for m in got if is_delivery(dict(m)))
        with flow.cond:
            flow.delivered += deliveries
            flow.acks += len(got) - deliveries
            flow.in_flight -= deliveries
            flow.cond.notify_all()
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )


def _feeder(
    sqs: SQSClient,
    url: str,
    flow: Flow,
    entries: Callable[[int], list[SendMessageBatchRequestEntryTypeDef]],
) -> None:
    for batch in itertools.count():
        with flow.cond:
            while not flow.stop and flow.in_flight + 10 > WINDOW:
                flow.cond.wait(0.5)
            if flow.stop:
                return
            flow.in_flight += 10
        sqs.send_message_batch(QueueUrl=url, Entries=entries(batch))


@dataclass
class Tally:
    """Deliveries, acks, seconds and moto CPU seconds summed over the segments of one kind."""

    delivered: int = 0
    acks: int = 0
    seconds: float = 0.0
    moto_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    stack: BenchStack,
    in_url: str,
    out_urls: list[str],
    entries: Callable[[int], list[SendMessageBatchRequestEntryTypeDef]],
    is_delivery: Callable[[dict[str, object]], bool],
    seconds: float,
    tally: Tally,
) -> None:
    """Add to `tally` the deliveries of `seconds` of steady flow, after a warm-up."""
    flow = Flow(threading.Condition())
    threads = [
        threading.Thread(target=_drainer, args=(stack.sqs(), url, flow, is_delivery), daemon=True)
        for url in out_urls
    ]
    threads.append(
        threading.Thread(target=_feeder, args=(stack.sqs(), in_url, flow, entries), daemon=True)
    )
    for thread in threads:
        thread.start()
    moto_pid = stack.moto.pid if stack.moto is not None else 0
    time.sleep(WARMUP_SECONDS)
    with flow.cond:
        start_count, start_acks, started = flow.delivered, flow.acks, time.perf_counter()
    moto_started = cpu_seconds(moto_pid)
    time.sleep(seconds)
    with flow.cond:
        end_count, end_acks, ended = flow.delivered, flow.acks, time.perf_counter()
        flow.stop = True
        flow.cond.notify_all()
    tally.moto_cpu += cpu_seconds(moto_pid) - moto_started
    tally.delivered += end_count - start_count
    tally.acks += end_acks - start_acks
    tally.seconds += ended - started
    for thread in threads:
        thread.join(timeout=DRAIN_WAIT + 30)
    time.sleep(SETTLE_SECONDS)  # what was in flight drains before the next segment


def _text() -> str:
    return f"tp-{uuid.uuid4().hex}"


def run(stack: BenchStack, seconds: float) -> list[Row]:
    setup = stack.start_workers(1, wait_seconds=2)
    users = [stack.raw_user(f"U{i}") for i in range(2 * PAIRS)]
    stack.stop_workers(setup)
    partner: dict[str, RawUser] = {}
    for a, b in zip(users[::2], users[1::2], strict=True):
        partner[a.user_id], partner[b.user_id] = b, a
    requests_url = stack.settings.request_queue_url
    session_urls = [u.queue_url for u in users]

    def ours_entries(batch: int) -> list[SendMessageBatchRequestEntryTypeDef]:
        out: list[SendMessageBatchRequestEntryTypeDef] = []
        for i in range(10):
            sender = users[(batch * 10 + i) % len(users)]
            body = {
                "body": _text(),
                "userID": partner[sender.user_id].user_id,
                "name": "",
                "clientMessageId": uuid.uuid4().hex,
            }
            message = Request("message", "add", body, sender.token).encode()
            out.append(
                {
                    "Id": str(i),
                    "MessageBody": message.body,
                    "MessageAttributes": {
                        k: {"DataType": "String", "StringValue": v}
                        for k, v in message.attributes.items()
                    },
                }
            )
        return out

    # the reference: the same users' traffic, routed by the plain worker to raw queues
    ref_in = stack.new_queue("plain-in")
    ref_out = {u.user_id: stack.new_queue("plain-out") for u in users}
    sample = ours_entries(0)[0]

    def ref_entries(batch: int) -> list[SendMessageBatchRequestEntryTypeDef]:
        out: list[SendMessageBatchRequestEntryTypeDef] = []
        for i in range(10):
            sender = users[(batch * 10 + i) % len(users)]
            target = ref_out[partner[sender.user_id].user_id]
            attrs = dict(sample["MessageAttributes"])  # same size as a real request
            attrs[TARGET_ATTRIBUTE] = {"DataType": "String", "StringValue": target}
            body = dumps({"body": _text(), "userID": sender.user_id, "pad": "x" * 40})
            out.append({"Id": str(i), "MessageBody": body, "MessageAttributes": attrs})
        return out

    def is_push(message: dict[str, object]) -> bool:
        attrs = message.get("MessageAttributes", {})
        action = attrs.get("action", {}) if isinstance(attrs, dict) else {}
        return isinstance(action, dict) and action.get("StringValue") == "message"

    rows = []
    for count in WORKER_COUNTS:
        plain = start_plain_workers(stack.endpoint, ref_in, count, wait_seconds=2)
        workers = stack.start_workers(count, wait_seconds=2)
        ref, ours = Tally(), Tally()
        try:
            for _ in range(SEGMENTS):  # interleaved, so load from elsewhere hits both alike
                span = seconds / SEGMENTS
                _measure(stack, ref_in, list(ref_out.values()), ref_entries, _any, span, ref)
                _measure(stack, requests_url, session_urls, ours_entries, is_push, span, ours)
        finally:
            stop_plain_workers(plain)
            stack.stop_workers(workers)
        rows.append(
            Row(
                FAMILY,
                f"{count} worker(s), {2 * PAIRS} users, <= {WINDOW} in flight",
                "msg/s",
                ours.rate,
                ref.rate,
                f"plain worker x{count}",
                Goal.RATIO_MIN,
                0.7,
                extra={
                    "sent_acks_per_message": ours.acks / max(1, ours.delivered),
                    "moto_cpu_ms_per_message": {
                        "ours": 1000 * ours.moto_cpu / max(1, ours.delivered),
                        "reference": 1000 * ref.moto_cpu / max(1, ref.delivered),
                    },
                    "moto_cpu_share": {
                        "ours": ours.moto_cpu / ours.seconds,
                        "reference": ref.moto_cpu / ref.seconds,
                    },
                },
            )
        )
    return rows


def _any(_message: dict[str, object]) -> bool:
    return True
