"""1. Delivery latency: `Session.send_text()` until the message is in the recipient's state.

References on the same moto server, measured in interleaved rounds so drift hits all alike:
- the raw floor: A -> Q1 -> B -> Q2 -> A in plain boto3 (B a thread), long polls throughout;
- the plain reference worker: A -> requests-like queue -> a minimal boto3 worker process ->
  Q2 -> A, the least a separate worker process adds.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..client.session import Session
from ..client.state import Change, ChangeKind, State, conversation
from .core import Goal, Row, percentile
from .relay import TARGET_ATTRIBUTE, ThreadRelay, start_plain_workers, stop_plain_workers
from .stack import BenchStack, wait_for_state

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

FAMILY = "latency"
ROUNDS = 4
WARMUP = 3  # per kind, not counted: connections and first-use costs
GAP_SECONDS = 0.02
TIMEOUT = 30.0
BODY = json.dumps({"body": "x" * 60, "userID": "u" * 32, "name": "Bench", "clientMessageId": ""})


def _raw_round_trip(client: SQSClient, send: Callable[[], object], q_out: str) -> float:
    """Time from before the send until the message is received from `q_out`, in ms."""
    started = time.perf_counter()
    send()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        got = client.receive_message(
            QueueUrl=q_out, MaxNumberOfMessages=10, WaitTimeSeconds=20
        ).get("Messages", [])
        if got:
            elapsed = (time.perf_counter() - started) * 1000
            client.delete_message_batch(
                QueueUrl=q_out,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
            return elapsed
    raise TimeoutError("a relayed message never came back")


class _Arrivals:
    """B's observer: the moment each awaited text lands in B's conversation with A."""

    def __init__(self, sender_id: str) -> None:
        self.sender_id = sender_id
        self.lock = threading.Lock()
        self.waiting: dict[str, tuple[float, threading.Event]] = {}
        self.arrived: dict[str, float] = {}

    def expect(self, text: str) -> threading.Event:
        event = threading.Event()
        with self.lock:
            self.waiting[text] = (time.perf_counter(), event)
        return event

    def __call__(self, state: State, changes: list[Change]) -> None:
        now = time.perf_counter()
        if Change(ChangeKind.MESSAGES, self.sender_id) not in changes:
            return
        for message in conversation(state, self.sender_id).messages[-5:]:
            with self.lock:
                found = (
                    self.waiting.pop(message.body, None) if isinstance(message.body, str) else None
                )
            if found is not None:
                self.arrived[str(message.body)] = (now - found[0]) * 1000
                found[1].set()


def _ours(a: Session, b: Session, b_id: str, arrivals: _Arrivals) -> float:
    text = f"lat-{uuid.uuid4().hex}"
    event = arrivals.expect(text)
    cid = a.send_text(b_id, text)
    if not event.wait(TIMEOUT):
        raise TimeoutError("a message never reached the recipient's state")
    wait_for_state(  # the sender's ack too, so the next round starts quiet
        a,
        lambda s: all(
            m.client_message_id != cid or m.status != "sending"
            for m in conversation(s, b_id).messages
        ),
        TIMEOUT,
        "the sent ack",
    )
    return arrivals.arrived.pop(text)


def run(stack: BenchStack, count: int) -> list[Row]:
    stack.start_workers(1)
    a, _ = stack.user_session("Ada")
    b, _ = stack.user_session("Bob")
    assert a.state.me is not None and b.state.me is not None
    a_id, b_id = a.state.me.user_id, b.state.me.user_id
    arrivals = _Arrivals(a_id)
    b.observe(arrivals)

    q1, q2 = stack.new_queue("relay-q1"), stack.new_queue("relay-q2")
    relay = ThreadRelay(stack.sqs(), q1, q2).start()
    raw_a = stack.sqs()
    p_in, p_out = stack.new_queue("plain-in"), stack.new_queue("plain-out")
    plain = start_plain_workers(stack.endpoint, p_in, 1)
    plain_a = stack.sqs()

    def floor() -> float:
        return _raw_round_trip(raw_a, lambda: raw_a.send_message(QueueUrl=q1, MessageBody=BODY), q2)

    def plain_worker() -> float:
        attrs: dict[str, MessageAttributeValueTypeDef] = {
            TARGET_ATTRIBUTE: {"DataType": "String", "StringValue": p_out}
        }
        return _raw_round_trip(
            plain_a,
            lambda: plain_a.send_message(QueueUrl=p_in, MessageBody=BODY, MessageAttributes=attrs),
            p_out,
        )

    def ours() -> float:
        return _ours(a, b, b_id, arrivals)

    kinds: dict[str, Callable[[], float]] = {"floor": floor, "plain": plain_worker, "ours": ours}
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for measure in kinds.values():
            for _ in range(WARMUP):
                measure()
                time.sleep(GAP_SECONDS)
        per_round = max(1, -(-count // ROUNDS))
        for _ in range(ROUNDS):
            for name, measure in kinds.items():
                for _ in range(per_round):
                    samples[name].append(measure())
                    time.sleep(GAP_SECONDS)
    finally:
        relay.stop()
        stop_plain_workers(plain)
    n = len(samples["ours"])
    rows = []
    for pct, target in ((50, 1.25), (95, 1.5)):
        ref = percentile(samples["floor"], pct)
        rows.append(
            Row(
                FAMILY,
                f"p{pct} send_text -> recipient state",
                "ms",
                percentile(samples["ours"], pct),
                ref,
                "raw relay",
                Goal.RATIO_MAX,
                target,
                extra={"samples": n},
            )
        )
    for pct in (50, 95):
        rows.append(
            Row(
                FAMILY,
                f"p{pct} plain reference worker",
                "ms",
                percentile(samples["plain"], pct),
                percentile(samples["floor"], pct),
                "raw relay",
                extra={"samples": len(samples["plain"])},
            )
        )
    return rows
