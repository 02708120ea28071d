"""`TrafficLog`: a `Transport` that passes every call through and writes down what went by.

It is the "under the hood" view of one session: each request sent (method, bytes, SQS
MessageId), each reply and push received (action or status, and the latency since the
request that caused it, where one exists), each receive that came back empty, each delete
and visibility change, and each failed call, with a time from an injected clock. It also
counts SQS requests (API calls, and billable requests: every 64 KiB of a payload is one) per
minute, and prices them next to what a client that polls every 0.5 s would have spent.

Secrets never get in: the `token` attribute and any `password` or `token` field of a body
are replaced by `***` before anything is stored, and a body is kept only as a short preview.

Latency matching: a reply by its `resTo` (our request's MessageId); a `sent` push by its
`clientMessageId` (the message/add that carried it), a `groupCreated` push by its
`clientGroupId` (the group/create that carried it); `searchUser`, `selectSearchUser` and
`history` pushes, and `error` pushes by the method they name, to the most recent request of
that method not yet answered.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from ..protocol import (
    MAX_BATCH_ENTRIES,
    MAX_RECEIVE_MESSAGES,
    WAIT_TIME_SECONDS,
    Envelope,
    Outgoing,
)
from ..transport import Transport, batches

log = logging.getLogger(__name__)
T = TypeVar("T")

# Amazon SQS standard queues, US East, beyond the free tier of 1 million requests a month, up to
# 100 billion a month; every 64 KiB chunk of a payload is billed as one request. Read on
# 2026-12-04 (pricing guides dated March and June 2026 quoting aws.amazon.com/sqs/pricing;
# the AWS page itself could not be opened from the machine this was written on).
SQS_PRICE_PER_MILLION_USD = 0.40
SQS_PRICE_READ_ON = "2026-12-04"
BILLING_CHUNK_BYTES = 64 * 1024
POLLING_INTERVAL_SECONDS = 0.5  # the naive client the estimate compares with: 7,200 receives/h

MASK = "***"
SECRET_KEYS = frozenset({"password", "token"})
PREVIEW_CHARS = 120
PARSE_LIMIT_BYTES = 16 * 1024  # bigger bodies are masked as text, never parsed for a preview
MAX_ENTRIES = 500
MINUTES_KEPT = 60
MATCH_MEMORY = 1000  # sent requests remembered for latency matching
METHOD_PUSHES = frozenset({"searchUser", "selectSearchUser", "history"})
# push action -> (the request method whose client key it echoes, the body field of that key)
KEYED_PUSHES = {"sent": ("add", "clientMessageId"), "groupCreated": ("create", "clientGroupId")}
KEYED_METHODS = dict(KEYED_PUSHES.values())

_SECRET_TEXT = re.compile(
    r'("(?:password|token)"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]*)', re.IGNORECASE
)


class Kind(StrEnum):
    REQUEST = "request"  # a message carrying controller/method
    REPLY = "reply"  # a message carrying resTo (register/login answers)
    PUSH = "push"  # a message carrying an action (to a session queue)
    MESSAGE = "message"  # a message we could not classify
    EMPTY = "empty"  # a receive that came back with nothing
    DELETE = "delete"
    VISIBILITY = "visibility"
    QUEUE = "queue"  # create, delete, look up or read a queue
    ERROR = "error"  # a call that raised


class Direction(StrEnum):
    OUT = "out"  # this process asked SQS to do something
    IN = "in"  # SQS handed this process something (or nothing)


@dataclass(frozen=True)
class Entry:
    """One line of the log. Strings here are raw: escape them before they become HTML."""

    seq: int
    at: float
    kind: Kind
    direction: Direction
    operation: str  # the SQS API call: SendMessage, ReceiveMessage, ...
    queue: str  # the queue's name (last part of its URL)
    label: str  # "message/add", a push's action, "reply user/login", "empty receive", ...
    size: int = 0  # bytes SQS counts: body plus attribute names, types and values
    status: int | None = None
    latency: float | None = None  # seconds since the request this answers
    message_id: str = ""
    preview: str = ""  # masked, at most PREVIEW_CHARS
    attributes: Mapping[str, str] = field(default_factory=dict)  # masked
    count: int = 1  # messages in the call (deletes), or 1
    note: str = ""


@dataclass(frozen=True)
class Stats:
    """Running counts at `now`; `per_minute` is oldest first and ends with the current minute."""

    requests: int  # SQS API calls made
    billed: int  # billable requests (64 KiB chunks)
    receives: int
    empty_receives: int
    since: float | None  # time of the first call, None before any
    now: float
    per_minute: tuple[int, ...]

    @property
    def elapsed(self) -> float:
        return 0.0 if self.since is None else max(0.0, self.now - self.since)

    @property
    def cost(self) -> float:
        return price(self.billed)

    @property
    def polling_requests(self) -> int:
        """A 0.5 s polling loop over the same time, plus every request other than receives."""
        return math.floor(self.elapsed / POLLING_INTERVAL_SECONDS) + self.billed - self.receives

    @property
    def polling_cost(self) -> float:
        return price(self.polling_requests)


def price(requests: int) -> float:
    """US dollars for that many billable requests at the published standard-queue price."""
    return requests * SQS_PRICE_PER_MILLION_USD / 1_000_000


def billable(size: int) -> int:
    return max(1, math.ceil(size / BILLING_CHUNK_BYTES))


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def mask_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    return {k: MASK if k.lower() in SECRET_KEYS else v for k, v in attributes.items()}


def mask_body(text: str, limit: int = PREVIEW_CHARS) -> str:
    """A short preview of a body with every password and token value replaced by `***`."""
    if len(text) <= PARSE_LIMIT_BYTES:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            pass
        else:
            try:
                return clip(json.dumps(_masked(value), ensure_ascii=False), limit)
            except (ValueError, RecursionError):
                pass
    return clip(_SECRET_TEXT.sub(lambda m: f'{m.group(1)}"{MASK}"', text[: limit * 4]), limit)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if str(k).lower() in SECRET_KEYS else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(body: str, attributes: Mapping[str, str]) -> int:
    return Outgoing(body, dict(attributes)).size


def _status(attributes: Mapping[str, str]) -> int | None:
    text = attributes.get("statusCode", "")
    return int(text) if text.isascii() and text.isdigit() and len(text) == 3 else None


def _field(body: str, key: str) -> str | None:
    """One string field of a small JSON object body, for matching; None if there is none."""
    if len(body) > PARSE_LIMIT_BYTES:
        return None
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _label(attributes: Mapping[str, str]) -> str:
    return f"{attributes.get('controller', '?')}/{attributes.get('method', '')}"


Observer = Callable[[Entry], None]


class TrafficLog:
    """Same interface as `Transport`; wraps one and delegates every call to it.

    `request_queue_url` / `response_queue_url` are optional: the panel reads its queue gauges
    from them. `clock` gives the time of every entry (wall-clock seconds by default).
    """

    def __init__(
        self,
        inner: Transport,
        *,
        request_queue_url: str | None = None,
        response_queue_url: str | None = None,
        clock: Callable[[], float] = time.time,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.inner = inner
        self.request_queue_url = request_queue_url
        self.response_queue_url = response_queue_url
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque(maxlen=max_entries)
        self._observers: list[Observer] = []
        self._seq = 0
        self._requests = self._billed = self._receives = self._empty = 0
        self._since: float | None = None
        self._minutes: dict[int, int] = {}
        # latency matching: MessageId -> (time, label); clientMessageId -> time; method -> time
        self._sent: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._by_cid: OrderedDict[str, float] = OrderedDict()
        self._by_method: dict[str, float] = {}

    # --- reading ---------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    @property
    def last_seq(self) -> int:
        return self._seq

    def stats(self, minutes: int = 15) -> Stats:
        now = self._clock()
        current = int(now // 60)
        with self._lock:
            per_minute = tuple(
                self._minutes.get(m, 0) for m in range(current - minutes + 1, current + 1)
            )
            return Stats(
                self._requests,
                self._billed,
                self._receives,
                self._empty,
                self._since,
                now,
                per_minute,
            )

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(entry)` for every new entry (on the thread that made the call)."""
        with self._lock:
            self._observers.append(observer)

        def unsubscribe() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)

        return unsubscribe

    # --- Transport -------------------------------------------------------------------------
    def send(self, queue_url: str, message: Outgoing) -> str:
        started = self._clock()
        self._expect([message], started)
        message_id = self._guarded(
            "SendMessage", queue_url, self.inner.send, queue_url, message, undo=[message]
        )
        self._count(started, billable(message.size))
        self._record(self._outgoing(started, "SendMessage", queue_url, message, message_id))
        return message_id

    def send_batch(self, queue_url: str, messages: Sequence[Outgoing]) -> list[str]:
        started = self._clock()
        self._expect(messages, started)
        ids = self._guarded(
            "SendMessageBatch", queue_url, self.inner.send_batch, queue_url, messages, undo=messages
        )
        chunks = list(batches(messages))
        billed = sum(billable(sum(m.size for _, m in chunk)) for chunk in chunks)
        self._count(started, billed, len(chunks))
        for message, message_id in zip(messages, ids, strict=False):
            self._record(
                self._outgoing(started, "SendMessageBatch", queue_url, message, message_id)
            )
        return ids

    def receive(
        self,
        queue_url: str,
        max_messages: int = MAX_RECEIVE_MESSAGES,
        wait_seconds: int = WAIT_TIME_SECONDS,
    ) -> list[Envelope]:
        started = self._clock()
        envelopes = self._guarded(
            "ReceiveMessage", queue_url, self.inner.receive, queue_url, max_messages, wait_seconds
        )
        now = self._clock()
        billed = billable(sum(_size(e.body, e.attributes) for e in envelopes))
        self._count(started, billed, receives=1, empty=not envelopes)
        if not envelopes:
            self._record(
                dict(
                    at=now,
                    kind=Kind.EMPTY,
                    direction=Direction.IN,
                    operation="ReceiveMessage",
                    queue=queue_name(queue_url),
                    label="empty receive",
                    note=f"long poll of {wait_seconds} s",
                )
            )
        for envelope in envelopes:
            self._record(self._incoming(now, queue_url, envelope))
        return envelopes

    def delete_batch(self, queue_url: str, receipt_handles: Sequence[str]) -> None:
        started = self._clock()
        self._guarded(
            "DeleteMessageBatch", queue_url, self.inner.delete_batch, queue_url, receipt_handles
        )
        calls = math.ceil(len(receipt_handles) / MAX_BATCH_ENTRIES)
        self._count(started, calls, calls)
        self._record(
            dict(
                at=started,
                kind=Kind.DELETE,
                direction=Direction.OUT,
                operation="DeleteMessageBatch",
                queue=queue_name(queue_url),
                label=f"delete \N{MULTIPLICATION SIGN}{len(receipt_handles)}",
                count=len(receipt_handles),
            )
        )

    def change_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        started = self._clock()
        self._guarded(
            "ChangeMessageVisibility",
            queue_url,
            self.inner.change_visibility,
            queue_url,
            receipt_handle,
            seconds,
        )
        self._count(started, 1)
        self._record(
            dict(
                at=started,
                kind=Kind.VISIBILITY,
                direction=Direction.OUT,
                operation="ChangeMessageVisibility",
                queue=queue_name(queue_url),
                label=f"visibility {seconds} s",
                note="released for another client" if seconds == 0 else "",
            )
        )

    def create_queue(self, name: str, attributes: dict[str, str] | None = None) -> str:
        return str(self._queue_call("CreateQueue", name, self.inner.create_queue, name, attributes))

    def delete_queue(self, queue_url: str) -> None:
        self._queue_call("DeleteQueue", queue_url, self.inner.delete_queue, queue_url)

    def queue_url(self, name: str) -> str:
        return str(self._queue_call("GetQueueUrl", name, self.inner.queue_url, name))

    def queue_attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        found = self._queue_call(
            "GetQueueAttributes", queue_url, self.inner.queue_attributes, queue_url, names
        )
        return dict(found)

    # --- recording -------------------------------------------------------------------------
    def _guarded(
        self,
        operation: str,
        url: str,
        call: Callable[..., T],
        *args: Any,
        undo: Sequence[Outgoing] = (),
    ) -> T:
        started = self._clock()
        try:
            return call(*args)
        except Exception as exc:
            self._unexpect(undo)
            self._count(started, 1)  # a refused call is still a request
            self._record(
                dict(
                    at=self._clock(),
                    kind=Kind.ERROR,
                    direction=Direction.OUT,
                    operation=operation,
                    queue=queue_name(url),
                    label=f"{operation} failed",
                    note=mask_body(f"{type(exc).__name__}: {exc}"),
                )
            )
            raise

    def _queue_call(self, operation: str, url: str, call: Callable[..., Any], *args: Any) -> Any:
        started = self._clock()
        result = self._guarded(operation, url, call, *args)
        self._count(started, 1)
        self._record(
            dict(
                at=started,
                kind=Kind.QUEUE,
                direction=Direction.OUT,
                operation=operation,
                queue=queue_name(url),
                label=operation,
            )
        )
        return result

    def _count(
        self, at: float, billed: int, calls: int = 1, *, receives: int = 0, empty: bool = False
    ) -> None:
        minute = int(at // 60)
        with self._lock:
            self._requests += calls
            self._billed += billed
            self._receives += receives
            self._empty += empty
            if self._since is None:
                self._since = at
            self._minutes[minute] = self._minutes.get(minute, 0) + calls
            for old in [m for m in self._minutes if m <= minute - MINUTES_KEPT]:
                del self._minutes[old]

    def _outgoing(
        self, at: float, operation: str, url: str, message: Outgoing, message_id: str
    ) -> dict[str, Any]:
        attrs = message.attributes
        entry: dict[str, Any] = dict(
            at=at,
            direction=Direction.OUT,
            operation=operation,
            queue=queue_name(url),
            size=message.size,
            message_id=message_id,
            preview=mask_body(message.body),
            attributes=mask_attributes(attrs),
        )
        if "method" in attrs or "controller" in attrs:
            label = _label(attrs)
            with self._lock:
                self._sent[message_id] = (at, label)
                while len(self._sent) > MATCH_MEMORY:
                    self._sent.popitem(last=False)
            return {**entry, "kind": Kind.REQUEST, "label": label}
        if "resTo" in attrs:
            return {**entry, "kind": Kind.REPLY, "label": "reply", "status": _status(attrs)}
        if "action" in attrs:
            return {**entry, "kind": Kind.PUSH, "label": attrs["action"], "status": _status(attrs)}
        return {**entry, "kind": Kind.MESSAGE, "label": "message"}

    def _incoming(self, at: float, url: str, envelope: Envelope) -> dict[str, Any]:
        attrs = envelope.attributes
        entry: dict[str, Any] = dict(
            at=at,
            direction=Direction.IN,
            operation="ReceiveMessage",
            queue=queue_name(url),
            size=_size(envelope.body, attrs),
            message_id=envelope.message_id,
            preview=mask_body(envelope.body),
            attributes=mask_attributes(attrs),
            status=_status(attrs),
            note=f"receive #{envelope.receive_count}" if envelope.receive_count > 1 else "",
        )
        if "resTo" in attrs:
            with self._lock:
                sent = self._sent.get(attrs["resTo"])
            if sent is None:
                return {**entry, "kind": Kind.REPLY, "label": "reply", "note": "not ours"}
            return {
                **entry,
                "kind": Kind.REPLY,
                "label": f"reply {sent[1]}",
                "latency": at - sent[0],
            }
        if "action" in attrs:
            action = attrs["action"]
            return {
                **entry,
                "kind": Kind.PUSH,
                "label": action,
                "latency": self._push_latency(at, action, envelope.body),
            }
        if "method" in attrs or "controller" in attrs:
            return {**entry, "kind": Kind.REQUEST, "label": _label(attrs), "status": None}
        return {**entry, "kind": Kind.MESSAGE, "label": "message"}

    def _expect(self, messages: Sequence[Outgoing], at: float) -> None:
        """Before a request goes out, so an answer received on another thread finds it."""
        with self._lock:
            for message in messages:
                method = message.attributes.get("method")
                if not method:
                    continue
                self._by_method[method] = at
                key = KEYED_METHODS.get(method)
                cid = _field(message.body, key) if key else None
                if cid:
                    self._by_cid[f"{method}:{cid}"] = at
                    while len(self._by_cid) > MATCH_MEMORY:
                        self._by_cid.popitem(last=False)

    def _unexpect(self, messages: Sequence[Outgoing]) -> None:
        """A request that was never sent is never answered."""
        with self._lock:
            for message in messages:
                method = message.attributes.get("method")
                if method:
                    self._by_method.pop(method, None)
                    key = KEYED_METHODS.get(method)
                    cid = _field(message.body, key) if key else None
                    if cid:
                        self._by_cid.pop(f"{method}:{cid}", None)

    def _push_latency(self, at: float, action: str, body: str) -> float | None:
        with self._lock:
            if action in KEYED_PUSHES:
                method, key = KEYED_PUSHES[action]
                cid = _field(body, key)
                sent = self._by_cid.pop(f"{method}:{cid}", None) if cid else None
            elif action in METHOD_PUSHES:
                sent = self._by_method.pop(action, None)
            elif action == "error":
                named = _field(body, "method")
                sent = self._by_method.pop(named, None) if named else None
            else:
                sent = None
        return None if sent is None else at - sent

    def _record(self, fields: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry = Entry(seq=self._seq, **fields)
            self._entries.append(entry)
            observers = list(self._observers)
        for observer in observers:
            try:
                observer(entry)
            except Exception:
                log.exception("a traffic observer failed")
