"""`SqsTransport` against a real moto server over HTTP: what the worker and client rely on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from messenger_widgets.errors import QueueGone, TransportError
from messenger_widgets.protocol import MAX_SQS_MESSAGE_BYTES, Envelope, Outgoing
from messenger_widgets.transport import SqsTransport, dead_letter_queue_url


@pytest.fixture
def transport(sqs: Any) -> SqsTransport:
    return SqsTransport(sqs)


@pytest.fixture
def make_queue(transport: SqsTransport) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(attributes: dict[str, str] | None = None, suffix: str = "") -> str:
        url = transport.create_queue(f"t-{uuid.uuid4().hex[:12]}{suffix}", attributes)
        created.append(url)
        return url

    yield make
    for url in created:
        transport.delete_queue(url)


@pytest.fixture
def calls(sqs: Any) -> dict[str, int]:
    """Every SQS API call the client makes, by operation name."""
    counted: dict[str, int] = {}

    def count(model: Any, **_: Any) -> None:
        counted[model.name] = counted.get(model.name, 0) + 1

    sqs.meta.events.register("before-call.sqs", count)
    return counted


def drain(transport: SqsTransport, url: str, expected: int) -> list[Envelope]:
    got: list[Envelope] = []
    for _ in range(20):
        got.extend(transport.receive(url, max_messages=10, wait_seconds=0))
        if len(got) >= expected:
            break
    return got


def test_send_and_receive_with_attributes(transport: SqsTransport, make_queue: Any) -> None:
    url = make_queue()
    attrs = {"controller": "user", "method": "login", "token": "jwt.é.✓"}
    message_id = transport.send(url, Outgoing('{"email":"ä@b.co"}', attrs))
    [envelope] = transport.receive(url, wait_seconds=1)
    assert envelope.message_id == message_id
    assert envelope.body == '{"email":"ä@b.co"}'
    assert envelope.attributes == attrs
    assert envelope.receive_count == 1
    assert envelope.queue_url == url
    assert envelope.receipt_handle


def test_send_batch_of_25_returns_ids_in_order(
    transport: SqsTransport, make_queue: Any, calls: dict[str, int]
) -> None:
    url = make_queue()
    ids = transport.send_batch(url, [Outgoing(f"m{i}", {"n": str(i)}) for i in range(25)])
    assert calls.get("SendMessageBatch") == 3
    assert len(ids) == 25 and len(set(ids)) == 25 and all(ids)
    received = drain(transport, url, 25)
    assert {e.message_id: e.body for e in received} == {ids[i]: f"m{i}" for i in range(25)}
    assert all(e.attributes == {"n": e.body[1:]} for e in received)


def test_oversize_message_is_refused_before_calling_aws(
    transport: SqsTransport, make_queue: Any, calls: dict[str, int]
) -> None:
    url = make_queue()
    calls.clear()
    too_big = Outgoing("x" * (MAX_SQS_MESSAGE_BYTES - 8), {"a": "bc"})  # 1 byte over
    with pytest.raises(TransportError, match="exceeds"):
        transport.send(url, too_big)
    with pytest.raises(TransportError, match="exceeds"):
        transport.send_batch(url, [Outgoing(str(i)) for i in range(15)] + [too_big])
    assert calls == {}
    assert drain(transport, url, 1) == []


def test_message_at_the_size_limit_is_accepted(transport: SqsTransport, make_queue: Any) -> None:
    url = make_queue()
    transport.send(url, Outgoing("x" * (MAX_SQS_MESSAGE_BYTES - 9), {"a": "bc"}))  # exactly
    [envelope] = drain(transport, url, 1)
    assert len(envelope.body) == MAX_SQS_MESSAGE_BYTES - 9


def test_delete_batch_removes_only_the_given_messages(
    transport: SqsTransport, make_queue: Any
) -> None:
    url = make_queue({"VisibilityTimeout": "0"})
    ids = transport.send_batch(url, [Outgoing(str(i)) for i in range(3)])
    received = drain(transport, url, 3)
    by_id = {e.message_id: e for e in received}
    transport.delete_batch(url, [by_id[ids[0]].receipt_handle, by_id[ids[2]].receipt_handle])
    remaining = {e.message_id for e in drain(transport, url, 1)}
    assert remaining == {ids[1]}


def test_change_visibility_zero_exposes_the_message_again(
    transport: SqsTransport, make_queue: Any
) -> None:
    url = make_queue({"VisibilityTimeout": "60"})
    message_id = transport.send(url, Outgoing("again"))
    [first] = transport.receive(url, wait_seconds=1)
    assert transport.receive(url, wait_seconds=0) == []
    transport.change_visibility(url, first.receipt_handle, 0)
    [second] = transport.receive(url, wait_seconds=1)
    assert second.message_id == message_id
    assert second.receive_count == 2


def test_deleted_queue_raises_queue_gone(transport: SqsTransport, make_queue: Any) -> None:
    url = make_queue()
    name = url.rsplit("/", 1)[-1]
    assert transport.queue_url(name) == url
    transport.delete_queue(url)
    with pytest.raises(QueueGone):
        transport.send(url, Outgoing("{}"))
    with pytest.raises(QueueGone):
        transport.receive(url, wait_seconds=0)
    with pytest.raises(QueueGone):
        transport.send_batch(url, [Outgoing("{}")])
    with pytest.raises(QueueGone):
        transport.queue_url(name)


def test_delete_queue_is_idempotent(transport: SqsTransport, make_queue: Any) -> None:
    url = make_queue()
    transport.delete_queue(url)
    transport.delete_queue(url)


def test_other_client_errors_are_transport_errors(transport: SqsTransport, make_queue: Any) -> None:
    url = make_queue()
    with pytest.raises(TransportError) as info:
        transport.change_visibility(url, "not-a-receipt-handle", 0)
    assert not isinstance(info.value, QueueGone)


def test_dead_letter_queue_url_from_redrive_policy(
    transport: SqsTransport, make_queue: Any
) -> None:
    dlq = make_queue(suffix="-dlq")
    arn = transport.queue_attributes(dlq, ["QueueArn"])["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
    url = make_queue({"RedrivePolicy": policy})
    assert dead_letter_queue_url(transport, url) == dlq
    assert dead_letter_queue_url(transport, dlq) is None
