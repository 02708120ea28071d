"""AWS Lambda entry point: the requests queue's event source mapping calls `handler`.

The mapping must enable `ReportBatchItemFailures`. Each SQS record becomes an `Envelope` and
the batch goes through the same `Worker.process` as the long-lived loop. Only RETRY records
are reported in `batchItemFailures` (SQS delivers them again and, after `maxReceiveCount`,
moves them to the DLQ); DONE and DEAD records (DEAD ones are already copied to the DLQ by
`process`) count as successes, and Lambda deletes them.

Failures are kept to the record: should `process` itself raise for a batch, each record is
processed again on its own (handlers are idempotent per SQS message id, and no answer of
the failed attempt was sent) and only those that fail alone are reported. Only a failure to
build the worker (bad settings, the secret unreadable) raises: Lambda retries the batch.

Per container (cold start): settings from the environment, the token secret fetched from
SSM Parameter Store (`MESSENGER_TOKEN_SECRET_PARAMETER`, a SecureString) or Secrets Manager
(`MESSENGER_TOKEN_SECRET_ARN`) when one of those is set instead of
`MESSENGER_TOKEN_SECRET`, AWS clients, store and worker, all built once and cached. A
reaper pass (`Worker.reap`) runs at most every 30 s of container time, before a batch or on
an EventBridge scheduled event.

After each SQS batch the worker's counters for that batch are printed to stdout as one
CloudWatch Embedded Metric Format line (namespace `Messenger`, dimension `Function`), which
CloudWatch Logs turns into metrics without any API call.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypedDict

import boto3

from ..config import WORKER_REQUIRED, Settings
from ..errors import ConfigError
from ..protocol import Envelope
from .metrics import emf_line
from .runner import REAP_INTERVAL_SECONDS, RETRY_BACKOFF_SECONDS, Outcome, Worker

log = logging.getLogger("messenger.lambda")


class ItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: list[ItemFailure]


# --- settings and the worker, once per container --------------------------------------------
def resolve_token_secret(
    settings: Settings, client: Callable[[str], Any] | None = None
) -> Settings:
    """Fill `token_secret` from SSM or Secrets Manager when the settings name one of them.

    Exactly one source may be set, so workers can never sign with two different secrets.
    `client(service)` returns a boto3 client (injected in tests)."""
    sources = [
        name
        for name, value in (
            ("MESSENGER_TOKEN_SECRET", settings.token_secret),
            ("MESSENGER_TOKEN_SECRET_PARAMETER", settings.token_secret_parameter),
            ("MESSENGER_TOKEN_SECRET_ARN", settings.token_secret_arn),
        )
        if value
    ]
    if len(sources) > 1:
        raise ConfigError(f"set only one of {', '.join(sources)}")
    if not (settings.token_secret_parameter or settings.token_secret_arn):
        return settings
    make = client or (lambda service: _client(settings, service))
    try:
        if settings.token_secret_parameter:
            name = "MESSENGER_TOKEN_SECRET_PARAMETER"
            response = make("ssm").get_parameter(
                Name=settings.token_secret_parameter, WithDecryption=True
            )
            secret = response["Parameter"]["Value"]
        else:
            name = "MESSENGER_TOKEN_SECRET_ARN"
            secret = make("secretsmanager").get_secret_value(SecretId=settings.token_secret_arn)
            secret = secret.get("SecretString")
    except Exception as exc:  # the error names the variable, never the secret
        raise ConfigError(f"cannot read the token secret named by {name}: {exc}") from exc
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigError(f"the token secret named by {name} is empty or not text")
    return replace(settings, token_secret=secret.strip())


def _client(settings: Settings, service: str) -> Any:
    kwargs: dict[str, Any] = {"region_name": settings.region or None}
    if settings.access_key_id:
        kwargs["aws_access_key_id"] = settings.access_key_id
        kwargs["aws_secret_access_key"] = settings.secret_access_key
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    session = boto3.session.Session()
    if service == "ssm":
        return session.client("ssm", **kwargs)
    return session.client("secretsmanager", **kwargs)


def worker_from_environment(environ: Mapping[str, str] | None = None) -> Worker:
    """The Lambda's worker: settings from the environment only (a Lambda has no `.env`)."""
    from . import build_worker

    settings = resolve_token_secret(Settings.load(environ, env_file=None))
    settings.validate(WORKER_REQUIRED)
    return build_worker(settings, wait_seconds=0)


# --- SQS records ----------------------------------------------------------------------------
def envelope_from_record(record: Mapping[str, Any], queue_url: str = "") -> Envelope:
    """An SQS event record as the transport would have received it; never raises once the
    record has a `messageId` (a missing or odd field becomes an empty one, which `process`
    answers or dead-letters like any other malformed request)."""
    message_id = record["messageId"]
    if not isinstance(message_id, str) or not message_id:
        raise ValueError("a record without a messageId")
    attributes: dict[str, str] = {}
    raw_attributes = record.get("messageAttributes")
    if isinstance(raw_attributes, Mapping):
        for name, value in raw_attributes.items():
            text = value.get("stringValue") if isinstance(value, Mapping) else None
            if isinstance(name, str) and isinstance(text, str):
                attributes[name] = text
    system = record.get("attributes")
    count = system.get("ApproximateReceiveCount") if isinstance(system, Mapping) else None
    body = record.get("body")
    receipt = record.get("receiptHandle")
    return Envelope(
        message_id=message_id,
        receipt_handle=receipt if isinstance(receipt, str) else "",
        body=body if isinstance(body, str) else "",
        attributes=attributes,
        receive_count=int(count) if isinstance(count, str) and count.isdigit() else 1,
        queue_url=queue_url,
    )


def queue_url_from_arn(arn: str, known_url: str = "") -> str:
    """The queue URL of `arn:aws:sqs:region:account:name`: `known_url` when it names that
    queue (it also carries a local endpoint), else the public AWS form."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return known_url
    region, account, name = parts[3], parts[4], parts[5]
    if known_url.rstrip("/").rsplit("/", 1)[-1] == name:
        return known_url
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


# --- the handler ----------------------------------------------------------------------------
class SqsBatchHandler:
    """`handler(event, context)`: builds the worker on first use, then reuses it."""

    def __init__(
        self,
        worker_factory: Callable[[], Worker],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        reap_interval: float = REAP_INTERVAL_SECONDS,
    ) -> None:
        self._factory = worker_factory
        self._monotonic = monotonic
        self._reap_interval = reap_interval
        self._worker: Worker | None = None
        self._next_reap: float | None = None
        self._lock = threading.Lock()

    @property
    def worker(self) -> Worker:
        with self._lock:
            if self._worker is None:
                self._worker = self._factory()  # raises: Lambda retries the whole batch
            return self._worker

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> BatchResponse:
        worker = self.worker
        self._maybe_reap(worker)
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, Sequence) or isinstance(records, str):
            return {"batchItemFailures": []}  # a scheduled event: the reaper was its work
        envelopes: list[Envelope] = []
        for record in records:
            try:
                arn = str(record.get("eventSourceARN", ""))
                url = queue_url_from_arn(arn, worker.request_queue_url)
                envelopes.append(envelope_from_record(record, url))
            except Exception:  # no messageId: nothing to report it by, nothing to redeliver
                log.exception("an SQS record without a usable messageId was skipped")
        failed = self._process(worker, envelopes)
        for envelope in envelopes:
            if envelope.message_id in failed:
                self._back_off(worker, envelope)
        if envelopes:
            self._emit_metrics(worker, context)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}

    def _process(self, worker: Worker, envelopes: list[Envelope]) -> set[str]:
        """Ids of the records to retry; one record's failure never fails another."""
        if not envelopes:
            return set()
        try:
            results = worker.process(envelopes)
        except Exception:
            if len(envelopes) == 1:
                log.exception("a record failed; it will be redelivered")
                return {envelopes[0].message_id}
            log.exception("a batch failed; processing its records one at a time")
            return set().union(*(self._process(worker, [e]) for e in envelopes))
        return {r.envelope.message_id for r in results if r.outcome is Outcome.RETRY}

    def _back_off(self, worker: Worker, envelope: Envelope) -> None:
        """Redeliver a failed record sooner than the visibility timeout, later each time."""
        if not envelope.receipt_handle:
            return
        index = min(max(envelope.receive_count, 1), len(RETRY_BACKOFF_SECONDS)) - 1
        try:
            worker.ctx.transport.change_visibility(
                envelope.queue_url or worker.request_queue_url,
                envelope.receipt_handle,
                RETRY_BACKOFF_SECONDS[index],
            )
        except Exception:
            log.warning("could not shorten the visibility of a failed record")

    def _emit_metrics(self, worker: Worker, context: Any) -> None:
        """This batch's counters as one EMF line on stdout; never fails the batch."""
        function = getattr(context, "function_name", None) or os.environ.get(
            "AWS_LAMBDA_FUNCTION_NAME", "messenger-worker"
        )
        try:
            sys.stdout.write(emf_line(worker.counters.drain(), str(function)) + "\n")
            sys.stdout.flush()
        except Exception:
            log.exception("could not write the batch metrics")

    def _maybe_reap(self, worker: Worker) -> None:
        now = self._monotonic()
        with self._lock:
            if self._next_reap is not None and now < self._next_reap:
                return
            self._next_reap = now + self._reap_interval
        try:
            worker.reap()
        except Exception:
            log.exception("the reaper pass failed; it runs again later")


handler = SqsBatchHandler(lambda: worker_from_environment(os.environ))

__all__ = [
    "BatchResponse",
    "SqsBatchHandler",
    "envelope_from_record",
    "handler",
    "resolve_token_secret",
    "worker_from_environment",
]
