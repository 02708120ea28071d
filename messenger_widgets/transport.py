"""Queues: the one way the client and the worker talk.

`SqsTransport` wraps an injected boto3 SQS client: long polls, batch sends and deletes
(chunked to SQS's limits before calling it), visibility changes, queue lifecycle. botocore
errors become domain errors here, at the call site. `InMemoryTransport` in `memory.py` has
the same interface for fast unit tests.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from .errors import QueueGone, TransportError
from .protocol import (
    MAX_BATCH_ENTRIES,
    MAX_RECEIVE_MESSAGES,
    MAX_SQS_MESSAGE_BYTES,
    WAIT_TIME_SECONDS,
    Envelope,
    Outgoing,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
BATCH_RETRIES = 3
PURGE_IN_PROGRESS = "PurgeQueueInProgress"


class Transport(Protocol):
    """What the client and the worker need from a queue service."""

    def send(self, queue_url: str, message: Outgoing) -> str: ...

    def send_batch(self, queue_url: str, messages: Sequence[Outgoing]) -> list[str]: ...

    def receive(
        self,
        queue_url: str,
        max_messages: int = MAX_RECEIVE_MESSAGES,
        wait_seconds: int = WAIT_TIME_SECONDS,
    ) -> list[Envelope]: ...

    def delete_batch(self, queue_url: str, receipt_handles: Sequence[str]) -> None: ...

    def change_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None: ...

    def create_queue(self, name: str, attributes: dict[str, str] | None = None) -> str: ...

    def delete_queue(self, queue_url: str) -> None: ...

    def queue_url(self, name: str) -> str: ...

    def queue_attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]: ...


def batches(messages: Sequence[Outgoing]) -> Iterator[list[tuple[int, Outgoing]]]:
    """Split messages into SendMessageBatch calls: at most 10 entries and 256 KiB each.

    Every size is checked before the first chunk is yielded, so an oversize message refuses
    the whole batch instead of failing after the chunks before it were already sent.
    """
    for message in messages:
        if message.size > MAX_SQS_MESSAGE_BYTES:
            raise TransportError(
                f"message of {message.size} bytes exceeds the {MAX_SQS_MESSAGE_BYTES} byte limit"
            )
    chunk: list[tuple[int, Outgoing]] = []
    size = 0
    for index, message in enumerate(messages):
        if chunk and (
            len(chunk) == MAX_BATCH_ENTRIES or size + message.size > MAX_SQS_MESSAGE_BYTES
        ):
            yield chunk
            chunk, size = [], 0
        chunk.append((index, message))
        size += message.size
    if chunk:
        yield chunk


def dead_letter_queue_url(transport: Transport, queue_url: str) -> str | None:
    """The DLQ named by a queue's redrive policy: the worker needs no setting for it."""
    policy = transport.queue_attributes(queue_url, ["RedrivePolicy"]).get("RedrivePolicy")
    if not policy:
        return None
    arn = json.loads(policy)["deadLetterTargetArn"]
    return transport.queue_url(arn.rsplit(":", 1)[-1])


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _attributes(raw: dict[str, Any]) -> dict[str, str]:
    return {
        name: value["StringValue"]
        for name, value in raw.items()
        if isinstance(value, dict) and "StringValue" in value
    }


class SqsTransport:
    """`Transport` over a boto3 SQS client, which the caller creates and passes in."""

    def __init__(self, client: SQSClient) -> None:
        self._sqs = client

    @property
    def client(self) -> SQSClient:
        """The boto3 client, for instrumentation (`messenger bench` counts its calls)."""
        return self._sqs

    def _call(self, queue_url: str, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._sqs, operation)(**kwargs)
        except ClientError as exc:
            if _code(exc) in GONE_CODES:
                raise QueueGone(f"queue does not exist: {queue_url}") from exc
            raise TransportError(f"SQS {operation} failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise TransportError(f"SQS {operation} failed: {exc}") from exc

    def send(self, queue_url: str, message: Outgoing) -> str:
        if message.size > MAX_SQS_MESSAGE_BYTES:
            raise TransportError(
                f"message of {message.size} bytes exceeds the {MAX_SQS_MESSAGE_BYTES} byte limit"
            )
        response = self._call(
            queue_url,
            "send_message",
            QueueUrl=queue_url,
            MessageBody=message.body,
            MessageAttributes=_encode_attributes(message.attributes),
        )
        return str(response["MessageId"])

    def send_batch(self, queue_url: str, messages: Sequence[Outgoing]) -> list[str]:
        ids: list[str] = [""] * len(messages)
        for chunk in batches(messages):
            pending = {str(i): m for i, m in chunk}
            for _ in range(BATCH_RETRIES):
                response = self._call(
                    queue_url,
                    "send_message_batch",
                    QueueUrl=queue_url,
                    Entries=[
                        {
                            "Id": entry_id,
                            "MessageBody": m.body,
                            "MessageAttributes": _encode_attributes(m.attributes),
                        }
                        for entry_id, m in pending.items()
                    ],
                )
                for ok in response.get("Successful", []):
                    ids[int(ok["Id"])] = ok["MessageId"]
                    pending.pop(ok["Id"], None)
                failed = response.get("Failed", [])
                if any(f.get("SenderFault") for f in failed):
                    raise TransportError(f"SQS refused a batch entry: {failed[0].get('Code')}")
                if not pending:
                    break
            if pending:
                raise TransportError(f"SQS kept failing {len(pending)} batch entries")
        return ids

    def receive(
        self,
        queue_url: str,
        max_messages: int = MAX_RECEIVE_MESSAGES,
        wait_seconds: int = WAIT_TIME_SECONDS,
    ) -> list[Envelope]:
        response = self._call(
            queue_url,
            "receive_message",
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return [
            Envelope(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                attributes=_attributes(m.get("MessageAttributes", {})),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                queue_url=queue_url,
                sent_timestamp=_millis(m.get("Attributes", {}).get("SentTimestamp")),
            )
            for m in response.get("Messages", [])
        ]

    def delete_batch(self, queue_url: str, receipt_handles: Sequence[str]) -> None:
        for start in range(0, len(receipt_handles), MAX_BATCH_ENTRIES):
            chunk = receipt_handles[start : start + MAX_BATCH_ENTRIES]
            pending = {str(i): handle for i, handle in enumerate(chunk)}
            for _ in range(BATCH_RETRIES):
                response = self._call(
                    queue_url,
                    "delete_message_batch",
                    QueueUrl=queue_url,
                    Entries=[{"Id": k, "ReceiptHandle": v} for k, v in pending.items()],
                )
                for ok in response.get("Successful", []):
                    pending.pop(ok["Id"], None)
                # An invalid receipt handle means the message is already gone: nothing to retry.
                for failed in response.get("Failed", []):
                    if failed.get("SenderFault"):
                        pending.pop(failed["Id"], None)
                if not pending:
                    break
            if pending:
                raise TransportError(f"SQS kept failing to delete {len(pending)} messages")

    def change_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        self._call(
            queue_url,
            "change_message_visibility",
            QueueUrl=queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=seconds,
        )

    def create_queue(self, name: str, attributes: dict[str, str] | None = None) -> str:
        response = self._call(name, "create_queue", QueueName=name, Attributes=attributes or {})
        return str(response["QueueUrl"])

    def delete_queue(self, queue_url: str) -> None:
        with contextlib.suppress(QueueGone):  # already gone is what we wanted
            self._call(queue_url, "delete_queue", QueueUrl=queue_url)

    def queue_url(self, name: str) -> str:
        return str(self._call(name, "get_queue_url", QueueName=name)["QueueUrl"])

    def purge_queue(self, queue_url: str) -> bool:
        """PurgeQueue; False when SQS refuses because a purge ran in the last 60 s."""
        try:
            self._call(queue_url, "purge_queue", QueueUrl=queue_url)
        except TransportError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause).endswith(PURGE_IN_PROGRESS):
                return False
            raise
        return True

    def queue_attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        response = self._call(
            queue_url, "get_queue_attributes", QueueUrl=queue_url, AttributeNames=list(names)
        )
        return dict(response.get("Attributes", {}))


def _millis(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _encode_attributes(attributes: dict[str, str]) -> dict[str, Any]:
    return {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
