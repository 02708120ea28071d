"""Operating the requests dead-letter queue: list, redrive, purge (`messenger dlq ...`).

The DLQ is found from the requests queue's redrive policy, like the worker finds it: no
setting. Every function takes a `Transport` (`SqsTransport`, `InMemoryTransport`) or a boto3
SQS client, which is wrapped in an `SqsTransport`.

- `list_dead_letters` receives up to `limit` messages and makes them visible again at once.
  An entry shows ids, attributes the worker sets and sizes, never a body or a token: the body
  appears only as its length and a short SHA-256 (enough to see that two entries are the
  same request). SQS has no "peek": listing is a receive, so it raises each message's
  receive count by one.
- `redrive` moves messages back to the requests queue one at a time: receive, send the
  original body and attributes (minus `deadLetterReason`) to the requests queue, then delete
  the DLQ copy. Send comes before delete, so an interruption at any point loses nothing and
  duplicates at most the one message in flight (it is then in both queues). Redelivery is
  safe because the handlers are idempotent: `message/add` with a `clientMessageId` (this
  package's client always sends one) stores once, reads and settings are naturally
  repeatable, a register of a taken email is answered 400. One caveat: a third-party
  `message/add` without a `clientMessageId` is keyed on the SQS message id, which a resend
  changes, so that one in-flight message could be stored twice (and a duplicated `login`
  opens a session nobody uses, which expires). Without a limit, a redrive moves at most
  the number of messages the DLQ held when it started, so a request that dies again while
  the redrive runs is not chased round in a loop.
  SQS's own `StartMessageMoveTask` is not used: moto does not implement it.
- `purge` calls PurgeQueue; AWS allows one purge per queue per 60 s, so when SQS answers
  `PurgeQueueInProgress` (or the transport cannot purge) it receives and deletes in batches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigError, MessengerError
from .protocol import MAX_RECEIVE_MESSAGES, Envelope, Outgoing
from .transport import SqsTransport, Transport, dead_letter_queue_url

DEAD_LETTER_REASON = "deadLetterReason"  # the attribute the worker adds to its DLQ copies
DEFAULT_LIST_LIMIT = 50
RECEIVE_WAIT_SECONDS = 1  # long poll: a short poll (0) may miss messages on real SQS
HASH_CHARS = 12
FIELD_CHARS = 64
_DEPTH = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class RedriveInterrupted(MessengerError):
    """A redrive stopped part-way; `moved` messages were moved before it did."""

    def __init__(self, message: str, moved: int) -> None:
        super().__init__(message)
        self.moved = moved


@runtime_checkable
class _Purgeable(Protocol):
    def purge_queue(self, queue_url: str) -> bool: ...


@dataclass(frozen=True)
class DeadLetterEntry:
    """One DLQ message as an operator sees it: no body, no token."""

    message_id: str
    reason: str | None  # None: moved by SQS after maxReceiveCount, not by the worker
    controller: str | None
    method: str | None
    receive_count: int
    sent_at: str | None
    body_bytes: int
    body_sha256: str  # the first HASH_CHARS hex digits
    has_token: bool

    @classmethod
    def of(cls, envelope: Envelope) -> DeadLetterEntry:
        attrs = envelope.attributes
        body = envelope.body.encode("utf-8", "surrogatepass")
        sent = envelope.sent_timestamp
        return cls(
            message_id=envelope.message_id,
            reason=_clip(attrs.get(DEAD_LETTER_REASON)),
            controller=_clip(attrs.get("controller")),
            method=_clip(attrs.get("method")),
            receive_count=envelope.receive_count,
            sent_at=(
                None
                if sent is None
                else datetime.fromtimestamp(sent / 1000, UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z")
            ),
            body_bytes=len(body),
            body_sha256=hashlib.sha256(body).hexdigest()[:HASH_CHARS],
            has_token=bool(attrs.get("token")),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PurgeResult:
    method: str  # "PurgeQueue" or "receive+delete"
    count: int  # messages the queue held (PurgeQueue) or messages deleted


def as_transport(transport_or_client: Any) -> Transport:
    """A `Transport` as it is; a boto3 SQS client wrapped in an `SqsTransport`."""
    if hasattr(transport_or_client, "receive") and hasattr(transport_or_client, "delete_batch"):
        return transport_or_client  # type: ignore[no-any-return]
    return SqsTransport(transport_or_client)


def find_dead_letter_queue(transport_or_client: Any, request_queue_url: str) -> str:
    """The DLQ named by the requests queue's redrive policy."""
    url = dead_letter_queue_url(as_transport(transport_or_client), request_queue_url)
    if url is None:
        raise ConfigError(
            "the requests queue has no redrive policy, so there is no dead-letter queue"
        )
    return url


def depth(transport_or_client: Any, queue_url: str) -> int:
    """Messages in a queue, visible, in flight or delayed (SQS's approximate counts)."""
    attrs = as_transport(transport_or_client).queue_attributes(queue_url, list(_DEPTH))
    return sum(int(attrs.get(name, "0") or 0) for name in _DEPTH)


def list_dead_letters(
    transport_or_client: Any,
    dlq_url: str,
    limit: int = DEFAULT_LIST_LIMIT,
    *,
    wait_seconds: int | None = None,
) -> list[DeadLetterEntry]:
    """Up to `limit` DLQ messages; each is made visible again before this returns."""
    wait = RECEIVE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    transport = as_transport(transport_or_client)
    seen: dict[str, Envelope] = {}
    handles: list[str] = []
    try:
        while len(seen) < limit:
            got = transport.receive(dlq_url, min(MAX_RECEIVE_MESSAGES, limit - len(seen)), wait)
            fresh = [e for e in got if e.message_id not in seen]
            handles += [e.receipt_handle for e in got]
            if not fresh:
                break
            seen.update((e.message_id, e) for e in fresh)
    finally:
        _release(transport, dlq_url, handles)
    return [DeadLetterEntry.of(e) for e in list(seen.values())[:limit]]


def redrive(
    transport_or_client: Any,
    dlq_url: str,
    target_url: str,
    limit: int | None = None,
    *,
    wait_seconds: int | None = None,
) -> list[str]:
    """Move up to `limit` messages (default: as many as the DLQ holds now) to `target_url`,
    each sent before it is deleted; returns the new message ids in the target queue."""
    wait = RECEIVE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    transport = as_transport(transport_or_client)
    budget = depth(transport, dlq_url) if limit is None else limit
    moved: list[str] = []
    while len(moved) < budget:
        got = transport.receive(dlq_url, min(MAX_RECEIVE_MESSAGES, budget - len(moved)), wait)
        if not got:
            break
        for index, envelope in enumerate(got):
            attributes = {k: v for k, v in envelope.attributes.items() if k != DEAD_LETTER_REASON}
            try:
                new_id = transport.send(target_url, Outgoing(envelope.body, attributes))
            except Exception as exc:
                _release(transport, dlq_url, [e.receipt_handle for e in got[index:]])
                raise RedriveInterrupted(
                    f"redrive stopped after moving {len(moved)} message(s): sending "
                    f"{envelope.message_id} failed ({exc}); it is still in the DLQ",
                    len(moved),
                ) from exc
            try:
                transport.delete_batch(dlq_url, [envelope.receipt_handle])
            except Exception as exc:
                _release(transport, dlq_url, [e.receipt_handle for e in got[index:]])
                raise RedriveInterrupted(
                    f"redrive stopped after moving {len(moved) + 1} message(s): "
                    f"{envelope.message_id} was sent but could not be deleted from the DLQ "
                    f"({exc}); it is in both queues, which is safe (handlers are idempotent)",
                    len(moved) + 1,
                ) from exc
            moved.append(new_id)
    return moved


def purge(
    transport_or_client: Any, dlq_url: str, *, wait_seconds: int | None = None
) -> PurgeResult:
    """Empty the DLQ: PurgeQueue, or receive + delete in batches when it is throttled."""
    wait = RECEIVE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    transport = as_transport(transport_or_client)
    before = depth(transport, dlq_url)
    if isinstance(transport, _Purgeable) and transport.purge_queue(dlq_url):
        return PurgeResult("PurgeQueue", before)
    deleted = 0
    budget = before + MAX_RECEIVE_MESSAGES  # as PurgeQueue: later arrivals may survive
    while deleted < budget:
        got = transport.receive(dlq_url, MAX_RECEIVE_MESSAGES, wait)
        if not got:
            break
        transport.delete_batch(dlq_url, [e.receipt_handle for e in got])
        deleted += len(got)
    return PurgeResult("receive+delete", deleted)


def _release(transport: Transport, queue_url: str, handles: list[str]) -> None:
    """Make received messages visible again; best effort (they return after the visibility
    timeout anyway)."""
    for handle in handles:
        try:
            transport.change_visibility(queue_url, handle, 0)
        except Exception:  # noqa: S112 - nothing is lost: the timeout releases it
            continue


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:FIELD_CHARS]


# --- the `messenger dlq` command ------------------------------------------------------------
def _open() -> tuple[Transport, str, str]:
    """(transport, DLQ URL, requests queue URL) from the client settings."""
    from .aws import make_clients
    from .config import CLIENT_REQUIRED, Settings

    settings = Settings.load(require=CLIENT_REQUIRED)
    transport = SqsTransport(make_clients(settings).sqs)
    dlq_url = find_dead_letter_queue(transport, settings.request_queue_url)
    return transport, dlq_url, settings.request_queue_url


def _printable(text: str | None, width: int) -> str:
    """A client-chosen attribute made safe for a terminal: no control characters."""
    if text is None:
        return "-"
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= width else clean[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    transport, dlq_url, _ = _open()
    entries = list_dead_letters(transport, dlq_url, args.limit)
    if args.json:
        document = {
            "queue": dlq_url,
            "count": len(entries),
            "messages": [e.as_dict() for e in entries],
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"{dlq_url}: {len(entries)} message(s) shown (limit {args.limit})")
    if entries:
        print(
            f"{'MESSAGE ID':36}  {'SENT (UTC)':24}  {'RECV':>4}  {'METHOD':24}  "
            f"{'BYTES':>7}  {'SHA256':12}  REASON"
        )
    for e in entries:
        method = f"{_printable(e.controller, 10)}/{_printable(e.method, 13)}"
        reason = _printable(e.reason, 80) if e.reason else "(SQS redrive: maxReceiveCount)"
        print(
            f"{_printable(e.message_id, 36):36}  {e.sent_at or '-':24}  {e.receive_count:>4}  "
            f"{method:24}  {e.body_bytes:>7}  {e.body_sha256:12}  {reason}"
        )
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    transport, dlq_url, requests_url = _open()
    moved = redrive(transport, dlq_url, requests_url, args.limit)
    print(f"Moved {len(moved)} message(s) from {dlq_url} to {requests_url}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    if not args.yes and not sys.stdin.isatty():
        print(
            "messenger: refusing to purge without --yes: no terminal to confirm on", file=sys.stderr
        )
        return 2
    transport, dlq_url, _ = _open()
    if not args.yes:
        count = depth(transport, dlq_url)
        answer = input(f"Delete all {count} message(s) in {dlq_url}? This cannot be undone [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("Not purged.")
            return 1
    result = purge(transport, dlq_url)
    if result.method == "PurgeQueue":
        print(f"Purged {dlq_url} ({result.count} message(s); SQS may take up to 60 s)")
    else:
        print(f"Deleted {result.count} message(s) from {dlq_url} (PurgeQueue was throttled)")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register_cli(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `messenger dlq list | redrive | purge` to the `messenger` command."""
    dlq = subparsers.add_parser("dlq", help="list, redrive or purge the requests dead-letter queue")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)

    listing = actions.add_parser("list", help="show dead letters (ids, reasons, sizes; no bodies)")
    listing.add_argument("--limit", type=_positive, default=DEFAULT_LIST_LIMIT)
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(run=cmd_list)

    again = actions.add_parser("redrive", help="move dead letters back to the requests queue")
    again.add_argument("--limit", type=_positive, default=None, help="default: all of them")
    again.set_defaults(run=cmd_redrive)

    empty = actions.add_parser("purge", help="delete every dead letter")
    empty.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    empty.set_defaults(run=cmd_purge)


__all__ = [
    "DeadLetterEntry",
    "PurgeResult",
    "RedriveInterrupted",
    "find_dead_letter_queue",
    "list_dead_letters",
    "purge",
    "redrive",
    "register_cli",
]
