"""5. Login with a long history: login until `historyEnd` is applied, and requests per message.

The user logs out, then N messages arrive for them while away (written straight into the
worker's SQLite store: setting up is not what is measured), then they log in with a fresh
`Session`. Since there are more than 100, the worker pushes all N, then `historyEnd`.

The reference moves N messages of the same size through one queue of the same server in
plain boto3: a sender thread with SendMessageBatch (10 a call) and a receiver with receive(10)
+ DeleteMessageBatch, running together. That is the floor of any history transfer over SQS:
three calls per ten messages.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..client.state import Change, ChangeKind, State
from ..protocol import Action, Push, WireMessage, now_iso
from ..store.sqlite import SqliteStore
from .core import Goal, Row
from .counting import CallCounter, calls_between, read_calls
from .relay import start_sender
from .stack import PASSWORD, BenchStack, wait_for_state, wait_until

FAMILY = "history"
QUIET_SECONDS = 1.0
TIMEOUT = 300.0


def _raw_transfer(stack: BenchStack, count: int, body: str) -> tuple[float, int]:
    """Seconds to move `count` messages through a queue, and the calls it took.

    The sender is a process of its own, as the worker is; the receiver is a thread here, as
    the Session's drain thread is."""
    counter = CallCounter()
    url = stack.new_queue("history-floor")
    receiver = stack.sqs(counter)
    body_file = stack.root / "history-body.json"
    body_file.write_text(body)
    sender = start_sender(stack.endpoint, url, count, body_file)
    assert sender.stdin is not None
    began = time.perf_counter()
    sender.stdin.write(b"go\n")
    sender.stdin.flush()
    received = 0
    while received < count:
        got = receiver.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=20, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if got:
            received += len(got)
            receiver.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
    elapsed = time.perf_counter() - began
    sender.wait(timeout=60)
    return elapsed, counter.total() + -(-count // 10)  # the sender's SendMessageBatch calls


def run(stack: BenchStack, count: int) -> list[Row]:
    calls = stack.root / "worker-calls.json"
    stack.start_workers(1, count_calls=calls)
    away, email = stack.user_session("Hal")
    assert away.state.me is not None
    user_id = away.state.me.user_id
    sender = stack.raw_user("Yan")
    away.logout()
    store = SqliteStore(stack.settings.sqlite_path)
    try:
        wait_until(
            lambda: (u := store.get_user(user_id)) is not None and u.last_logout_at is not None,
            30,
            "the logout",
        )
        time.sleep(0.01)  # messages strictly after the logout time
        for i in range(count):
            text = f"history {i} " + "h" * 40
            store.add_message(sender.user_id, user_id, text, f"h{i}", datetime.now(UTC))
        sample, _ = store.conversation(user_id, sender.user_id, 1)
    finally:
        store.close()
    wire = WireMessage(
        sample[0].message_id, sample[0].body, sender.user_id, "Yan Raw", None, now_iso(), False, 1
    )
    push_body = Push(Action.MESSAGE, wire.to_json()).encode().body  # the size of a real push

    counter = CallCounter()
    session = stack.session(counter)
    done_at: list[float] = []

    def on_change(_state: State, changes: list[Change]) -> None:
        if Change(ChangeKind.HISTORY_COMPLETE) in changes:
            done_at.append(time.perf_counter())

    session.observe(on_change)
    time.sleep(QUIET_SECONDS)
    start_wall, began = time.time(), time.perf_counter()
    session.login(email, PASSWORD)
    state = wait_for_state(session, lambda s: s.history_complete, TIMEOUT, "the login history")
    elapsed = done_at[0] - began if done_at else time.perf_counter() - began
    time.sleep(QUIET_SECONDS)
    end_wall = time.time()
    ours_calls = calls_between(counter.snapshot_times(), start_wall, end_wall)
    time.sleep(0.5)
    ours_calls += calls_between(read_calls(calls), start_wall, end_wall)
    if state.history_expected != count:
        raise RuntimeError(f"historyEnd said {state.history_expected}, expected {count}")

    floor_seconds, floor_calls = _raw_transfer(stack, count, push_body)
    return [
        Row(
            FAMILY,
            f"login -> historyEnd applied ({count} messages)",
            "s",
            elapsed,
            floor_seconds,
            "raw transfer",
            extra={"messages": count},
        ),
        Row(
            FAMILY,
            f"SQS requests per history message ({count})",
            "req",
            sum(ours_calls.values()) / count,
            floor_calls / count,
            "raw transfer",
            Goal.MAX,
            0.3,
            extra={"calls": dict(ours_calls), "floor_calls": floor_calls},
        ),
    ]
