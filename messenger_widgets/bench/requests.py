"""3. SQS requests per delivered chat message, and 4. the idle cost of a session and a worker.

Every party is counted: the Sessions through botocore `before-call.sqs` hooks on their
clients, the `messenger worker` process through `MESSENGER_COUNT_SQS_CALLS` (it writes its
calls, with times, to a file). A window is cut by wall-clock time on a quiet system, so a long
poll in flight at either edge is counted once, when it started, as SQS bills it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..client.session import Session
from ..client.state import Change, ChangeKind, State, conversation
from ..worker.runner import LATE_DELETE_SECONDS
from .core import Goal, Row
from .counting import CallCounter, calls_between, read_calls
from .stack import BenchStack, call_rate_per_hour, wait_for_state

FAMILY = "requests"
QUIET_SECONDS = 1.0  # before a window: every poller back in its wait
# after the last delivery: every delete done, the worker's late ones too (runner.py)
SETTLE_SECONDS = LATE_DELETE_SECONDS + 1.0
TRICKLE_INTERVAL = 1.0
LOAD_USERS = 20
LOAD_INTERVAL = 0.5  # each of the 20 users sends every 0.5 s: 40 messages/s offered
TIMEOUT = 60.0
ORIGINAL_WORKER_PER_HOUR = 1200.0  # the original worker polled the requests queue every 3 s
ORIGINAL_CLIENT_PER_HOUR = 7200.0  # the original client polled every 0.5 s


class _Inbox:
    """Counts the texts each recipient has in its state, through an observer."""

    def __init__(self, session: Session, sender_id: str) -> None:
        self.sender_id = sender_id
        self.texts: set[str] = set()
        self.changed = threading.Event()
        session.observe(self)

    def __call__(self, state: State, changes: list[Change]) -> None:
        if Change(ChangeKind.MESSAGES, self.sender_id) in changes:
            for message in conversation(state, self.sender_id).messages[-20:]:
                if not message.outgoing and isinstance(message.body, str):
                    self.texts.add(message.body)
            self.changed.set()


def _acked(session: Session, other_id: str) -> bool:
    return all(m.status != "sending" for m in conversation(session.state, other_id).messages)


def _has(inbox: _Inbox, count: int) -> Callable[[State], bool]:
    return lambda _state: len(inbox.texts) >= count


def _all_acked(session: Session, other_id: str) -> Callable[[State], bool]:
    return lambda _state: _acked(session, other_id)


def _worker_calls(path: Path, start: float, end: float) -> Counter[str]:
    time.sleep(0.5)  # the worker writes its counts every 0.2 s
    return calls_between(read_calls(path), start, end)


def _window_calls(counter: CallCounter, path: Path, start: float, end: float) -> Counter[str]:
    ours = calls_between(counter.snapshot_times(), start, end)
    return ours + _worker_calls(path, start, end)


def trickle(stack: BenchStack, counter: CallCounter, calls: Path, count: int) -> Row:
    a, _ = stack.user_session("Tia", counter)
    b, _ = stack.user_session("Tom", counter)
    assert a.state.me is not None and b.state.me is not None
    a_id, b_id = a.state.me.user_id, b.state.me.user_id
    inbox = _Inbox(b, a_id)
    time.sleep(QUIET_SECONDS)
    start = time.time()
    for i in range(count):
        tick = time.monotonic()
        text = f"trickle-{i}-{uuid.uuid4().hex[:8]}"
        a.send_text(b_id, text)
        wait_for_state(b, lambda _s: text in inbox.texts, TIMEOUT, "a trickle message")  # noqa: B023
        wait_for_state(a, _all_acked(a, b_id), TIMEOUT, "a trickle ack")
        time.sleep(max(0.0, TRICKLE_INTERVAL - (time.monotonic() - tick)))
    time.sleep(SETTLE_SECONDS)
    end = time.time()
    counts = _window_calls(counter, calls, start, end)
    return Row(
        FAMILY,
        "per message, trickle (2 users, 1 msg/s)",
        "req",
        sum(counts.values()) / count,
        9.0,
        "design minimum",
        Goal.MAX,
        9.5,
        extra={"calls": dict(counts), "messages": count},
    )


@dataclass
class Crowd:
    """20 logged-in Sessions in 10 pairs, each pair writing to each other."""

    sessions: list[tuple[Session, str]]
    partner: dict[str, str]
    inboxes: dict[str, _Inbox]


def crowd(stack: BenchStack, counter: CallCounter) -> Crowd:
    sessions: list[tuple[Session, str]] = []
    for i in range(LOAD_USERS):
        session, _ = stack.user_session(f"L{i}", counter)
        assert session.state.me is not None
        sessions.append((session, session.state.me.user_id))
    partner: dict[str, str] = {}
    inboxes: dict[str, _Inbox] = {}
    for (s1, id1), (s2, id2) in zip(sessions[::2], sessions[1::2], strict=True):
        partner[id1], partner[id2] = id2, id1
        inboxes[id1], inboxes[id2] = _Inbox(s1, id2), _Inbox(s2, id1)
    return Crowd(sessions, partner, inboxes)


@dataclass
class Window:
    sessions: Counter[str]
    worker: Counter[str]
    messages: int
    seconds: float

    @property
    def per_message(self) -> float:
        return (sum(self.sessions.values()) + sum(self.worker.values())) / self.messages

    def extra(self) -> dict[str, object]:
        return {
            "sessions": dict(self.sessions),
            "worker": dict(self.worker),
            "messages": self.messages,
            "seconds": round(self.seconds, 2),
        }


def load(group: Crowd, counter: CallCounter, calls: Path, rounds: int, *, closed: bool) -> Window:
    """Every user sends `rounds` messages to its partner: each as soon as the previous one is
    acknowledged (`closed`: all 20 chat at once, as fast as the system lets them), or one
    every `LOAD_INTERVAL`, the 20 users spread evenly over the interval."""
    base = {me: len(group.inboxes[me].texts) for _, me in group.sessions}
    errors: list[BaseException] = []
    time.sleep(QUIET_SECONDS)
    start = time.time()
    first = time.monotonic() + 0.05

    def chat(session: Session, me: str, offset: float) -> None:
        other = group.partner[me]
        try:
            for i in range(rounds):
                if not closed:
                    time.sleep(max(0.0, first + i * LOAD_INTERVAL + offset - time.monotonic()))
                session.send_text(other, f"load-{me[:6]}-{uuid.uuid4().hex[:8]}")
                if closed:
                    wait_for_state(session, _all_acked(session, other), TIMEOUT, "an ack")
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(
            target=chat,
            args=(s, me, LOAD_INTERVAL * i / LOAD_USERS),
            daemon=True,
        )
        for i, (s, me) in enumerate(group.sessions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    if errors:
        raise errors[0]
    deadline = time.monotonic() + TIMEOUT
    for session, me in group.sessions:
        remaining = max(0.1, deadline - time.monotonic())
        inbox = group.inboxes[me]
        wait_for_state(session, _has(inbox, base[me] + rounds), remaining, "load deliveries")
        wait_for_state(session, _all_acked(session, group.partner[me]), remaining, "load acks")
    delivered = time.time()
    time.sleep(SETTLE_SECONDS)
    end = time.time()
    return Window(
        calls_between(counter.snapshot_times(), start, end),
        _worker_calls(calls, start, end),
        LOAD_USERS * rounds,
        delivered - start,
    )


def run(stack: BenchStack, trickle_count: int, rounds: int) -> list[Row]:
    calls = stack.root / "worker-calls.json"
    workers = stack.start_workers(1, count_calls=calls)
    counter = CallCounter()
    rows = [trickle(stack, counter, calls, trickle_count)]
    group = crowd(stack, counter)
    held = load(group, counter, calls, rounds, closed=True)
    spread = load(group, counter, calls, rounds, closed=False)
    # the same load on a worker that sends every ack at once: what holding them saves
    wake = group.sessions[0][0]
    stack.stop_workers(workers, wake=lambda: wake.search("wake"))
    calls_off = stack.root / "worker-calls-off.json"
    stack.start_workers(1, count_calls=calls_off, ack_window_ms=0)
    not_held = load(group, counter, calls_off, rounds, closed=True)
    spread_not_held = load(group, counter, calls_off, rounds, closed=False)
    rate = f"{LOAD_USERS / LOAD_INTERVAL:.0f} msg/s"
    rows.append(
        Row(
            FAMILY,
            f"per message, load ({LOAD_USERS} users chatting at once, next send on ack)",
            "req",
            held.per_message,
            not_held.per_message,
            "acks not held",
            Goal.MAX,
            4.5,
            extra={
                "held": held.extra(),
                "not_held": not_held.extra(),
                "messages_per_second": held.messages / held.seconds,
            },
        )
    )
    rows.append(
        Row(
            FAMILY,
            f"per message, {LOAD_USERS} users at a fixed {rate}, sends spread evenly",
            "req",
            spread.per_message,
            spread_not_held.per_message,
            "acks not held",
            extra={"held": spread.extra(), "not_held": spread_not_held.extra()},
        )
    )
    return rows


def run_idle(stack: BenchStack, seconds: float) -> list[Row]:
    calls = stack.root / "worker-calls.json"
    stack.start_workers(1, count_calls=calls)
    counter = CallCounter()
    stack.user_session("Ida", counter)
    time.sleep(QUIET_SECONDS)
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    session_times = [t for t, _ in counter.snapshot_times() if start <= t < end]
    time.sleep(0.5)
    worker_times = [t for t, _ in read_calls(calls) if start <= t < end]
    return [
        Row(
            "idle",
            f"logged-in Session, requests/hour ({seconds:.0f} s window)",
            "req/h",
            call_rate_per_hour(session_times, seconds),
            ORIGINAL_CLIENT_PER_HOUR,
            "original: poll every 0.5 s",
            Goal.MAX,
            190.0,
            extra={"calls": len(session_times)},
        ),
        Row(
            "idle",
            f"worker, requests/hour ({seconds:.0f} s window)",
            "req/h",
            call_rate_per_hour(worker_times, seconds),
            ORIGINAL_WORKER_PER_HOUR,
            "original: poll every 3 s",
            Goal.MAX,
            190.0,
            extra={"calls": len(worker_times)},
        ),
    ]
