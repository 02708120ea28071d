"""`InMemoryTransport` behaves like SQS where the code relies on it; `batches` splits like SQS."""

from __future__ import annotations

import json
import threading
import time

import pytest

from messenger_widgets.errors import QueueGone, TransportError
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import MAX_SQS_MESSAGE_BYTES, Outgoing
from messenger_widgets.transport import batches, dead_letter_queue_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def transport(clock: Clock) -> InMemoryTransport:
    return InMemoryTransport(clock=clock)


def msg(body: str = "{}", **attributes: str) -> Outgoing:
    return Outgoing(body, attributes)


def sized(total: int) -> Outgoing:
    """A message whose `size` is exactly `total` bytes."""
    return Outgoing("x" * total)


def poll(transport: InMemoryTransport, url: str, max_messages: int = 10) -> list[str]:
    return [e.body for e in transport.receive(url, max_messages=max_messages, wait_seconds=0)]


# --- visibility and receive counts -------------------------------------------------------


def test_received_message_is_hidden_for_the_visibility_timeout(
    transport: InMemoryTransport, clock: Clock
) -> None:
    url = transport.create_queue("q", {"VisibilityTimeout": "30"})
    message_id = transport.send(url, msg("hello", action="message", statusCode="200"))
    [first] = transport.receive(url, wait_seconds=0)
    assert (first.message_id, first.body, first.receive_count) == (message_id, "hello", 1)
    assert first.attributes == {"action": "message", "statusCode": "200"}
    assert first.queue_url == url
    assert poll(transport, url) == []
    clock.advance(29.9)
    assert poll(transport, url) == []
    clock.advance(0.1)
    [second] = transport.receive(url, wait_seconds=0)
    assert second.message_id == message_id and second.receive_count == 2
    assert second.receipt_handle != first.receipt_handle


def test_default_visibility_timeout_is_30_seconds(
    transport: InMemoryTransport, clock: Clock
) -> None:
    url = transport.create_queue("q")
    transport.send(url, msg())
    assert len(poll(transport, url)) == 1
    clock.advance(29)
    assert poll(transport, url) == []
    clock.advance(1)
    assert len(poll(transport, url)) == 1


def test_queue_attributes_count_visible_and_in_flight(
    transport: InMemoryTransport, clock: Clock
) -> None:
    url = transport.create_queue("q", {"VisibilityTimeout": "10"})
    for i in range(3):
        transport.send(url, msg(str(i)))
    assert poll(transport, url, max_messages=2) == ["0", "1"]
    attrs = transport.queue_attributes(
        url, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    assert attrs == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "2",
    }
    assert transport.queue_attributes(url, ["VisibilityTimeout"]) == {"VisibilityTimeout": "10"}
    assert transport.queue_attributes(url, ["QueueArn"])["QueueArn"].endswith(":q")


def test_receive_respects_max_messages_and_refuses_bad_values(
    transport: InMemoryTransport,
) -> None:
    url = transport.create_queue("q")
    for i in range(12):
        transport.send(url, msg(str(i)))
    assert len(poll(transport, url, max_messages=10)) == 10
    assert poll(transport, url, max_messages=1) == ["10"]
    for bad in (0, 11):
        with pytest.raises(TransportError):
            transport.receive(url, max_messages=bad, wait_seconds=0)


def test_change_visibility_zero_makes_the_message_visible_again(
    transport: InMemoryTransport,
) -> None:
    url = transport.create_queue("q")
    transport.send(url, msg("again"))
    [first] = transport.receive(url, wait_seconds=0)
    assert poll(transport, url) == []
    transport.change_visibility(url, first.receipt_handle, 0)
    [second] = transport.receive(url, wait_seconds=0)
    assert second.body == "again" and second.receive_count == 2


def test_change_visibility_extends_only_the_named_message(
    transport: InMemoryTransport, clock: Clock
) -> None:
    url = transport.create_queue("q", {"VisibilityTimeout": "5"})
    transport.send(url, msg("a"))
    transport.send(url, msg("b"))
    a, _b = transport.receive(url, wait_seconds=0)
    transport.change_visibility(url, a.receipt_handle, 60)
    clock.advance(5)
    [b_again] = transport.receive(url, wait_seconds=0)
    assert b_again.body == "b"
    transport.delete_batch(url, [b_again.receipt_handle])
    clock.advance(54.9)
    assert poll(transport, url) == []
    clock.advance(0.1)
    assert poll(transport, url) == ["a"]


# --- redrive -----------------------------------------------------------------------------


def test_redrive_to_dlq_after_max_receive_count(transport: InMemoryTransport, clock: Clock) -> None:
    dlq = transport.create_queue("q-dlq")
    arn = transport.queue_attributes(dlq, ["QueueArn"])["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    url = transport.create_queue("q", {"VisibilityTimeout": "1", "RedrivePolicy": policy})
    message_id = transport.send(url, msg("poison", method="add"))
    counts = []
    for _ in range(3):
        [envelope] = transport.receive(url, wait_seconds=0)
        counts.append(envelope.receive_count)
        clock.advance(1)
    assert counts == [1, 2, 3]
    assert poll(transport, url) == []  # the fourth receive moves it instead
    assert transport.depth(url) == 0
    [dead] = transport.receive(dlq, wait_seconds=0)
    assert (dead.message_id, dead.body, dead.attributes) == (
        message_id,
        "poison",
        {"method": "add"},
    )
    assert dead_letter_queue_url(transport, url) == dlq
    assert dead_letter_queue_url(transport, dlq) is None


def test_redrive_moves_only_exhausted_messages(transport: InMemoryTransport, clock: Clock) -> None:
    dlq = transport.create_queue("dlq")
    policy = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:x:0:dlq", "maxReceiveCount": 1})
    url = transport.create_queue("q", {"VisibilityTimeout": "1", "RedrivePolicy": policy})
    transport.send(url, msg("old"))
    assert poll(transport, url) == ["old"]
    clock.advance(1)
    transport.send(url, msg("new"))
    assert poll(transport, url) == ["new"]
    assert poll(transport, dlq) == ["old"]


# --- long polling ------------------------------------------------------------------------


def test_long_poll_wakes_on_send() -> None:
    transport = InMemoryTransport()
    url = transport.create_queue("q")
    sender = threading.Timer(0.2, lambda: transport.send(url, msg("woke")))
    started = time.monotonic()
    sender.start()
    try:
        envelopes = transport.receive(url, wait_seconds=10)
    finally:
        sender.cancel()
    assert [e.body for e in envelopes] == ["woke"]
    assert 0.15 <= time.monotonic() - started < 2


def test_long_poll_on_a_deleted_queue_raises_queue_gone() -> None:
    transport = InMemoryTransport()
    url = transport.create_queue("q")
    deleter = threading.Timer(0.1, lambda: transport.delete_queue(url))
    started = time.monotonic()
    deleter.start()
    try:
        with pytest.raises(QueueGone):
            transport.receive(url, wait_seconds=10)
    finally:
        deleter.cancel()
    assert time.monotonic() - started < 2


def test_long_poll_times_out_empty() -> None:
    transport = InMemoryTransport()
    url = transport.create_queue("q")
    started = time.monotonic()
    assert transport.receive(url, wait_seconds=1) == []
    assert 0.9 <= time.monotonic() - started < 2


# --- batches -----------------------------------------------------------------------------


def chunk_sizes(messages: list[Outgoing]) -> list[list[int]]:
    return [[index for index, _ in chunk] for chunk in batches(messages)]


def test_batches_split_at_ten_entries() -> None:
    assert chunk_sizes([msg(str(i)) for i in range(25)]) == [
        list(range(10)),
        list(range(10, 20)),
        list(range(20, 25)),
    ]
    assert chunk_sizes([]) == []
    assert chunk_sizes([msg() for _ in range(10)]) == [list(range(10))]


def test_batches_split_at_256_kib() -> None:
    half = MAX_SQS_MESSAGE_BYTES // 2
    assert chunk_sizes([sized(half), sized(half), sized(1)]) == [[0, 1], [2]]
    assert chunk_sizes([sized(half), sized(half + 1), sized(half - 1)]) == [[0], [1, 2]]
    assert chunk_sizes([sized(MAX_SQS_MESSAGE_BYTES)] * 2) == [[0], [1]]


def test_batch_size_counts_attributes_and_utf8() -> None:
    half = MAX_SQS_MESSAGE_BYTES // 2
    with_attr = Outgoing("x" * (half - 10), {"a": "b"})  # 10 bytes short, attribute adds 8
    assert chunk_sizes([with_attr, sized(half)]) == [[0, 1]]
    with_big_attr = Outgoing("x" * (half - 10), {"action": "b"})  # attribute adds 13
    assert chunk_sizes([with_big_attr, sized(half)]) == [[0], [1]]
    two_byte = Outgoing("é" * (half // 2 + 1))  # half + 2 bytes, not half // 2 + 1
    assert chunk_sizes([two_byte, sized(half)]) == [[0], [1]]


def test_oversize_message_refuses_the_whole_batch_before_sending(
    transport: InMemoryTransport,
) -> None:
    url = transport.create_queue("q")
    messages = [msg(str(i)) for i in range(15)] + [sized(MAX_SQS_MESSAGE_BYTES + 1)]
    with pytest.raises(TransportError, match="exceeds"):
        transport.send_batch(url, messages)
    assert "SendMessageBatch" not in transport.calls
    assert transport.depth(url) == 0


def test_send_refuses_oversize_and_accepts_the_limit(transport: InMemoryTransport) -> None:
    url = transport.create_queue("q")
    transport.send(url, sized(MAX_SQS_MESSAGE_BYTES))
    with pytest.raises(TransportError):
        transport.send(url, sized(MAX_SQS_MESSAGE_BYTES + 1))
    assert transport.depth(url) == 1


def test_send_batch_returns_ids_in_order_and_counts_calls(transport: InMemoryTransport) -> None:
    url = transport.create_queue("q")
    ids = transport.send_batch(url, [msg(f"m{i}", n=str(i)) for i in range(25)])
    assert len(set(ids)) == 25
    assert transport.calls.count("SendMessageBatch") == 3
    received = []
    while batch := transport.receive(url, wait_seconds=0):
        received.extend(batch)
    assert {e.message_id: e.body for e in received} == {ids[i]: f"m{i}" for i in range(25)}
    assert all(e.attributes == {"n": e.body[1:]} for e in received)


# --- deletes and queue lifecycle ---------------------------------------------------------


def test_delete_batch_removes_only_the_given_receipts(
    transport: InMemoryTransport, clock: Clock
) -> None:
    url = transport.create_queue("q")
    for i in range(3):
        transport.send(url, msg(str(i)))
    first, second, third = transport.receive(url, wait_seconds=0)
    transport.delete_batch(url, [first.receipt_handle, third.receipt_handle])
    assert transport.depth(url) == 1
    clock.advance(30)
    assert poll(transport, url) == ["1"]
    assert second.body == "1"


def test_delete_batch_chunks_by_ten(transport: InMemoryTransport) -> None:
    url = transport.create_queue("q")
    transport.send_batch(url, [msg(str(i)) for i in range(12)])
    handles = [e.receipt_handle for e in transport.receive(url, wait_seconds=0)]
    handles += [e.receipt_handle for e in transport.receive(url, wait_seconds=0)]
    transport.delete_batch(url, handles)
    assert transport.depth(url) == 0
    assert transport.calls.count("DeleteMessageBatch") == 2


def test_delete_with_an_old_receipt_keeps_the_redelivered_message(
    transport: InMemoryTransport,
) -> None:
    url = transport.create_queue("q")
    transport.send(url, msg())
    [first] = transport.receive(url, wait_seconds=0)
    transport.change_visibility(url, first.receipt_handle, 0)
    [_second] = transport.receive(url, wait_seconds=0)
    transport.delete_batch(url, [first.receipt_handle])
    assert transport.depth(url) == 1


def test_deleted_queue_is_gone_for_every_operation(transport: InMemoryTransport) -> None:
    url = transport.create_queue("q")
    transport.send(url, msg())
    [envelope] = transport.receive(url, wait_seconds=0)
    transport.delete_queue(url)
    assert not transport.exists(url)
    operations = [
        lambda: transport.send(url, msg()),
        lambda: transport.send_batch(url, [msg()]),
        lambda: transport.receive(url, wait_seconds=0),
        lambda: transport.delete_batch(url, [envelope.receipt_handle]),
        lambda: transport.change_visibility(url, envelope.receipt_handle, 0),
        lambda: transport.queue_attributes(url, ["All"]),
        lambda: transport.queue_url("q"),
    ]
    for operation in operations:
        with pytest.raises(QueueGone):
            operation()
    transport.delete_queue(url)  # deleting again is fine


def test_create_queue_is_idempotent_and_keeps_messages(transport: InMemoryTransport) -> None:
    url = transport.create_queue("q")
    transport.send(url, msg())
    assert transport.create_queue("q") == url == transport.queue_url("q")
    assert transport.depth(url) == 1
