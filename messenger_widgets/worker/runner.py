"""The worker: receive a batch, handle each record on its own, send, delete the successes.

Each record ends in one `Outcome`: DONE (delete it), DEAD (copied to the DLQ, then delete
it) or RETRY (leave it: SQS redelivers it and, after 5 receives, moves it to the DLQ). The
long-lived loop and the Lambda entry point share `process`.

The long-lived loop (`ack_window` > 0, as `messenger worker` runs it) holds `sent` acks for a
moment so they share a SendMessageBatch with later pushes to the same session queue; their
requests are deleted only once the acks are sent (see `acks.py`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from ..errors import (
    DeadLetter,
    DecodeError,
    ExpiredToken,
    InvalidToken,
    QueueGone,
    RequestError,
)
from ..protocol import (
    MAX_RECEIVE_MESSAGES,
    MAX_SQS_MESSAGE_BYTES,
    REPLY_METHODS,
    WAIT_TIME_SECONDS,
    Envelope,
    Outgoing,
    Push,
    Request,
)
from ..store.base import Activity
from .acks import AckHold, HeldAck, is_ack
from .context import Caller, Context, Outbox
from .handlers import HANDLERS
from .metrics import Counters

log = logging.getLogger("messenger.worker")

REAP_INTERVAL_SECONDS = 30.0
REAP_GRACE = timedelta(seconds=60)
REAP_BATCH = 100
RETRY_BACKOFF_SECONDS = (1, 2, 4, 8, 16)
DEAD_LETTER_REASON = "deadLetterReason"
MAX_ATTRIBUTES = 10
MAX_BATCH_RECEIVES = 3
LATE_DELETE_SECONDS = 5.0  # requests whose held acks the timer sent wait this long at most
HELD = "held:"  # marks an ack held from an earlier batch among this batch's deliveries


class Outcome(StrEnum):
    DONE = "done"
    DEAD = "dead"
    RETRY = "retry"


@dataclass(frozen=True)
class Result:
    envelope: Envelope
    outcome: Outcome
    detail: str = ""
    retry_after: int | None = None  # RETRY: seconds until SQS redelivers it; None backs off


class Worker:
    """Everything injected: a `Context`, the queue URLs, clocks."""

    def __init__(
        self,
        ctx: Context,
        request_queue_url: str,
        dead_letter_queue_url: str | None,
        *,
        wait_seconds: int = WAIT_TIME_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        counters: Counters | None = None,
        ack_window: float = 0.0,
    ) -> None:
        self.ctx = ctx
        self.counters = Counters() if counters is None else counters
        self.request_queue_url = request_queue_url
        self.dlq_url = dead_letter_queue_url
        self.wait_seconds = wait_seconds
        self._monotonic = monotonic
        self._next_reap = 0.0
        self.acks = AckHold(ack_window, monotonic) if ack_window > 0 else None
        self._held_ids: set[str] = set()  # requests whose ack is held: not deleted yet
        self._released: list[str] = []  # requests whose held ack was sent: delete them
        self._late_lock = threading.Lock()
        self._late: list[tuple[float, str]] = []  # (when, receipt): acks the timer sent

    # --- one batch --------------------------------------------------------------------------
    def process(self, envelopes: Sequence[Envelope], *, hold_acks: bool = False) -> list[Result]:
        """Handle every record, then send all outboxes grouped by queue.

        `hold_acks` (the long-lived loop only, with an ack window) may hold `sent` acks: the
        caller must then not delete the requests in `_held_ids` (`poll_once` does this).
        """
        results: dict[str, Result] = {}
        outboxes: dict[str, Outbox] = {}
        timings: dict[str, tuple[str, float]] = {}  # message id -> (method, duration ms)
        for envelope in envelopes:
            started = time.perf_counter()
            outbox = Outbox()
            user_id: str | None = None
            try:
                outcome, detail, method, user_id = self._handle(envelope, outbox)
            except Exception as exc:  # the store failed while answering a bad request
                log.exception(
                    "request failed; it will be redelivered",
                    extra={"request_id": envelope.message_id},
                )
                method = envelope.attributes.get("method", "?")
                outcome, detail = Outcome.RETRY, f"{type(exc).__name__}: {exc}"
            results[envelope.message_id] = Result(envelope, outcome, detail)
            if outcome is not Outcome.RETRY:
                outboxes[envelope.message_id] = outbox
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            timings[envelope.message_id] = (method, duration_ms)
            fields = {"request_id": envelope.message_id, "method": method}
            if user_id is not None:
                fields["user_id"] = user_id
            log.info(
                "request",
                extra={
                    **fields,
                    "outcome": outcome.value,
                    "detail": detail,
                    "duration_ms": duration_ms,
                },
            )
        receipts = {m: r.envelope.receipt_handle for m, r in results.items()}
        for message_id in self._flush(outboxes, receipts if hold_acks else None):
            envelope = results[message_id].envelope
            results[message_id] = Result(envelope, Outcome.RETRY, "sending the answer failed")
        for result in results.values():
            if result.outcome is Outcome.DEAD:
                results[result.envelope.message_id] = self._dead_letter(result)
        for message_id, result in results.items():  # final outcomes, after sending
            method, duration_ms = timings[message_id]
            self.counters.record(method, result.outcome.value, duration_ms)
        return list(results.values())

    def _handle(self, envelope: Envelope, outbox: Outbox) -> tuple[Outcome, str, str, str | None]:
        """(outcome, detail, method, the authenticated caller's user id when known)."""
        method = envelope.attributes.get("method", "?")
        try:
            request = Request.decode(envelope)
        except DecodeError as exc:
            return self._undecodable(envelope, exc, outbox), str(exc), method, None
        caller: Caller | None = None
        try:
            if request.key not in REPLY_METHODS:
                caller = self._authenticate(request.token)
            HANDLERS[request.key](self.ctx, request, caller, outbox)
            return Outcome.DONE, "", method, _user_id(caller)
        except RequestError as exc:
            outbox.deliveries.clear()
            if request.key in REPLY_METHODS:
                outbox.reply(self.ctx, envelope.message_id, exc.status, {"message": exc.message})
            elif caller is not None:
                outbox.push(caller.session.queue_url, Push.error(exc.status, exc.message, method))
            return Outcome.DONE, f"{exc.status} {exc.message}", method, _user_id(caller)
        except ExpiredToken as exc:
            return self._expired(exc, method, outbox), "token expired", method, exc.user_id
        except (DeadLetter, InvalidToken) as exc:
            return Outcome.DEAD, str(exc), method, None
        except Exception as exc:  # store down, a bug: leave the record for redelivery
            log.exception(
                "request failed; it will be redelivered",
                extra={"request_id": envelope.message_id, "method": method},
            )
            return Outcome.RETRY, f"{type(exc).__name__}: {exc}", method, _user_id(caller)

    def _authenticate(self, token: str | None) -> Caller:
        if not token:
            raise DeadLetter("no token")
        claims = self.ctx.tokens.verify(token)  # raises ExpiredToken / InvalidToken
        session = self.ctx.store.get_session(claims.session_id)
        if session is None or session.user_id != claims.user_id or session.ended_at is not None:
            raise DeadLetter("the token's session has ended or does not exist")
        if not session.is_live(self.ctx.clock()):
            raise ExpiredToken("session expired", claims.user_id, claims.session_id)
        user = self.ctx.store.get_user(claims.user_id)
        if user is None:
            raise DeadLetter("the token's user does not exist")
        return Caller(user, session)

    def _expired(self, exc: ExpiredToken, method: str, outbox: Outbox) -> Outcome:
        """Tell the session it has ended (401), end it; the reaper deletes its queue later."""
        session = self.ctx.store.get_session(exc.session_id)
        if session is None or session.reaped or session.user_id != exc.user_id:
            return Outcome.DEAD
        if session.ended_at is None:
            now = self.ctx.clock()
            self.ctx.store.end_session(session.session_id, now, logout=False)
            self.ctx.store.record_activity(session.user_id, Activity.SESSION_EXPIRED, now)
        outbox.push(session.queue_url, Push.error(401, "session expired", method))
        return Outcome.DONE

    def _undecodable(self, envelope: Envelope, exc: DecodeError, outbox: Outbox) -> Outcome:
        """Answer a request we cannot parse if anyone can be answered; else dead-letter it."""
        hints = exc.hints
        method = hints.get("method", "")
        if (hints.get("controller"), method) in REPLY_METHODS:
            outbox.reply(self.ctx, envelope.message_id, 400, {"message": str(exc)})
            return Outcome.DONE
        try:
            caller = self._authenticate(hints.get("token"))
        except (DeadLetter, InvalidToken):
            return Outcome.DEAD
        outbox.push(caller.session.queue_url, Push.error(400, str(exc), method))
        return Outcome.DONE

    def _flush(self, outboxes: dict[str, Outbox], receipts: dict[str, str] | None) -> set[str]:
        """Send every delivery, one batch call per queue; return ids of records that failed.

        Holding acks (`receipts` given): acks go now only to queues that get something else
        anyway (held ones from earlier batches too) or once the oldest held ack is due; the
        others are held.
        """
        hold = self.acks if receipts is not None else None
        by_queue: dict[str, list[tuple[str, Outgoing]]] = defaultdict(list)
        acks: list[tuple[str, str, Outgoing]] = []
        for message_id, outbox in outboxes.items():
            for queue_url, message in outbox.deliveries:
                if hold is not None and is_ack(message):
                    acks.append((message_id, queue_url, message))
                else:
                    by_queue[queue_url].append((message_id, message))
        earlier = hold.take(set(by_queue)) if hold is not None else []
        for held in earlier:
            by_queue[held.queue_url].append((HELD + held.receipt_handle, held.message))
        later = [ack for ack in acks if ack[1] not in by_queue]
        for message_id, queue_url, message in acks:
            if queue_url in by_queue:
                by_queue[queue_url].append((message_id, message))
        failed: set[str] = set()
        for queue_url, items in by_queue.items():
            try:
                self.ctx.transport.send_batch(queue_url, [m for _, m in items])
            except QueueGone:
                try:
                    self._forget_queue(queue_url)  # a session whose queue is gone: nobody to tell
                except Exception:
                    log.exception("could not end a session whose queue is gone")
            except Exception:
                log.exception("sending to a queue failed", extra={"queue": queue_url})
                failed.update(message_id for message_id, _ in items)
        if hold is not None and receipts is not None:
            self._released += [
                h.receipt_handle for h in earlier if HELD + h.receipt_handle not in failed
            ]
            failed = {m for m in failed if not m.startswith(HELD)}  # left for redelivery
            later = [ack for ack in later if ack[0] not in failed]
            self._held_ids.update(message_id for message_id, _, _ in later)
            hold.hold([HeldAck(q, m, receipts[message_id]) for message_id, q, m in later])
        return failed

    def _forget_queue(self, queue_url: str) -> None:
        if queue_url == self.ctx.config.response_queue_url:
            return
        session_id = queue_url.rsplit("/", 1)[-1].removeprefix(self.ctx.config.session_queue_prefix)
        now = self.ctx.clock()
        self.ctx.store.end_session(session_id, now, logout=False)
        self.ctx.store.mark_reaped(session_id, now)

    def _dead_letter(self, result: Result) -> Result:
        """Copy a DEAD request to the DLQ; a copy that cannot be made leaves it for redelivery."""
        envelope = result.envelope
        unreachable = Result(envelope, Outcome.RETRY, "the DLQ could not be reached")
        if self.dlq_url is None:
            return unreachable  # without a DLQ, SQS's own redrive must do it
        kept = list(envelope.attributes.items())[:MAX_ATTRIBUTES]
        reason = result.detail[:256] or "dead letter"
        copy = Outgoing(
            envelope.body, {**dict(kept[: MAX_ATTRIBUTES - 1]), DEAD_LETTER_REASON: reason}
        )
        if copy.size > MAX_SQS_MESSAGE_BYTES:  # the reason pushed a full request over: as it came
            copy = Outgoing(envelope.body, dict(kept))
        if copy.size > MAX_SQS_MESSAGE_BYTES:
            # Bigger than anything we send (the requests queue's limit was raised, SQS allows
            # 1 MiB): SQS's own redrive moves it intact after 5 receives, so let it come back
            # at once rather than back off for half a minute per copy that cannot be made.
            log.warning("a request too large to copy is left to the DLQ redrive")
            return Result(envelope, Outcome.RETRY, "too large to copy to the DLQ", retry_after=0)
        try:
            self.ctx.transport.send(self.dlq_url, copy)
        except Exception:
            log.exception("moving a request to the DLQ failed")
            return unreachable
        return result

    # --- the long-lived loop ----------------------------------------------------------------
    def poll_once(self) -> list[Result]:
        envelopes = self._receive_batch()
        results: list[Result] = []
        if envelopes:
            with self.acks.busy() if self.acks is not None else contextlib.nullcontext():
                results = self.process(envelopes, hold_acks=True)
        held, self._held_ids = self._held_ids, set()
        done = [
            r.envelope.receipt_handle
            for r in results
            if r.outcome is not Outcome.RETRY and r.envelope.message_id not in held
        ]
        done, self._released = done + self._released + self._take_late(), []
        if done:
            self.ctx.transport.delete_batch(self.request_queue_url, done)
        for r in results:
            if r.outcome is Outcome.RETRY:
                self._back_off(r.envelope, r.retry_after)
        return results

    def _receive_batch(self) -> list[Envelope]:
        """One long poll; while receives come back full, up to `MAX_BATCH_RECEIVES` in all
        (no wait): under load up to 30 requests are handled together and share their calls."""
        url = self.request_queue_url
        envelopes = self.ctx.transport.receive(url, MAX_RECEIVE_MESSAGES, self.wait_seconds)
        for _ in range(MAX_BATCH_RECEIVES - 1):
            if not envelopes or len(envelopes) % MAX_RECEIVE_MESSAGES:
                break
            more = self.ctx.transport.receive(url, MAX_RECEIVE_MESSAGES, 0)
            if not more:
                break
            envelopes += more
        return envelopes

    def _back_off(self, envelope: Envelope, seconds: int | None = None) -> None:
        """Redeliver a failed request sooner than the visibility timeout, later each time."""
        index = min(envelope.receive_count, len(RETRY_BACKOFF_SECONDS)) - 1
        try:
            self.ctx.transport.change_visibility(
                self.request_queue_url,
                envelope.receipt_handle,
                RETRY_BACKOFF_SECONDS[index] if seconds is None else seconds,
            )
        except Exception:
            log.warning("could not shorten the visibility of a failed request")

    def reap(self) -> int:
        """Delete the queues of sessions that expired more than a minute ago."""
        now = self.ctx.clock()
        reaped = 0
        for session in self.ctx.store.sessions_to_reap(now - REAP_GRACE, REAP_BATCH):
            self.ctx.transport.delete_queue(session.queue_url)
            if session.ended_at is None:
                self.ctx.store.end_session(session.session_id, now, logout=False)
                self.ctx.store.record_activity(session.user_id, Activity.SESSION_EXPIRED, now)
            self.ctx.store.mark_reaped(session.session_id, now)
            reaped += 1
        return reaped

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; the batch in hand is always finished first."""
        log.info("worker started", extra={"queue": self.request_queue_url})
        timer = threading.Thread(
            target=self._ack_timer, args=(stop,), name="messenger-acks", daemon=True
        )
        if self.acks is not None:
            timer.start()
        failures = 0
        while not stop.is_set():
            try:
                if self._monotonic() >= self._next_reap:
                    self._next_reap = self._monotonic() + REAP_INTERVAL_SECONDS
                    self.reap()
                self.poll_once()
                failures = 0
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.exception("worker loop error; retrying", extra={"delay_s": delay})
                stop.wait(delay)
        if self.acks is not None:
            self.acks.wake()
            timer.join()
            self.flush_acks()
        log.info("worker stopped")

    # --- held acks ----------------------------------------------------------------------------
    def flush_acks(self) -> None:
        """Send every held ack now, then delete the requests they answer."""
        if self.acks is not None:
            self._send_held(self.acks.take_all())
        self._delete_late(self._take_late())

    def _ack_timer(self, stop: threading.Event) -> None:
        """Send held acks when the oldest has waited `ack_window`, if no batch took them.

        Their requests are deleted with the next batch's delete, or after
        `LATE_DELETE_SECONDS` when no batch comes (well within the visibility timeout).
        """
        assert self.acks is not None
        while not stop.is_set():
            due = self.acks.wait_due(stop, timeout=LATE_DELETE_SECONDS / 2)
            self._send_held(due, late=True)
            self._delete_late(self._take_late(self._monotonic() - LATE_DELETE_SECONDS))

    def _take_late(self, before: float | None = None) -> list[str]:
        """Receipts of requests whose acks the timer sent (only those sent before `before`)."""
        with self._late_lock:
            taken = [r for t, r in self._late if before is None or t <= before]
            self._late = [(t, r) for t, r in self._late if before is not None and t > before]
        return taken

    def _delete_late(self, receipts: list[str]) -> None:
        if receipts:
            try:
                self.ctx.transport.delete_batch(self.request_queue_url, receipts)
            except Exception:
                log.exception("deleting requests whose acks were sent failed")

    def _send_held(self, held: list[HeldAck], *, late: bool = False) -> None:
        by_queue: dict[str, list[HeldAck]] = defaultdict(list)
        for ack in held:
            by_queue[ack.queue_url].append(ack)
        sent: list[str] = []
        for queue_url, acks in by_queue.items():
            try:
                self.ctx.transport.send_batch(queue_url, [a.message for a in acks])
            except QueueGone:
                try:
                    self._forget_queue(queue_url)
                except Exception:
                    log.exception("could not end a session whose queue is gone")
            except Exception:  # the requests stay: SQS redelivers them, the acks go again
                log.exception("sending held acks failed", extra={"queue": queue_url})
                continue
            sent += [a.receipt_handle for a in acks]
        if late:  # the next batch deletes them along with its own
            now = self._monotonic()
            with self._late_lock:
                self._late += [(now, r) for r in sent]
        else:
            self._delete_late(sent)


def _user_id(caller: Caller | None) -> str | None:
    return caller.user.user_id if caller is not None else None
