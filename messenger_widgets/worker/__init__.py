"""The back end: handlers in a table, a runner that polls, and the builder that wires them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..auth import Passwords, Tokens
from ..config import WORKER_REQUIRED, Settings
from ..store import Store, open_store
from ..transport import SqsTransport, Transport, dead_letter_queue_url
from . import groups  # noqa: F401  (registers the group handlers: the table is complete)
from .acks import ACK_WINDOW_SECONDS
from .context import AttachmentLookup, Context, WorkerConfig
from .runner import Worker


def build_context(
    settings: Settings,
    *,
    transport: Transport,
    attachments: AttachmentLookup,
    store: Store | None = None,
    passwords: Passwords | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Context:
    clock = clock or (lambda: datetime.now(UTC))
    return Context(
        store=store or open_store(settings),
        transport=transport,
        tokens=Tokens(settings.token_secret, settings.session_ttl, clock),
        passwords=passwords or Passwords(),
        attachments=attachments,
        config=WorkerConfig(
            response_queue_url=settings.response_queue_url,
            session_queue_prefix=settings.session_queue_prefix,
            session_ttl=settings.session_ttl,
        ),
        clock=clock,
    )


def build_worker(
    settings: Settings, *, wait_seconds: int = 20, ack_window: float = ACK_WINDOW_SECONDS
) -> Worker:
    """A worker on real AWS (or moto) from settings: the `messenger worker` command uses this."""
    from ..attachments import Attachments
    from ..aws import make_clients

    settings.validate(WORKER_REQUIRED)
    clients = make_clients(settings)
    transport = SqsTransport(clients.sqs)
    attachments = Attachments(
        clients.s3, settings.bucket, endpoint_url=settings.endpoint_url or None
    )
    ctx = build_context(settings, transport=transport, attachments=attachments)
    dlq = dead_letter_queue_url(transport, settings.request_queue_url)
    return Worker(
        ctx, settings.request_queue_url, dlq, wait_seconds=wait_seconds, ack_window=ack_window
    )


__all__ = ["Context", "Worker", "WorkerConfig", "build_context", "build_worker"]
