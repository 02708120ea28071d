"""DLQ operations on the in-memory transport: list without bodies, redrive that never loses a
message, purge with its fallback; the command's refusals."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from messenger_widgets import cli, dlq
from messenger_widgets.errors import ConfigError, TransportError
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Outgoing
from messenger_widgets.transport import SqsTransport
from messenger_widgets.worker.runner import DEAD_LETTER_REASON

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXNlY3JldA"


class Stack:
    def __init__(self) -> None:
        self.t = InMemoryTransport()
        self.dlq = self.t.create_queue("dlq")
        policy = {"deadLetterTargetArn": "arn:aws:sqs:memory:0:dlq", "maxReceiveCount": 5}
        self.requests = self.t.create_queue("requests", {"RedrivePolicy": json.dumps(policy)})

    def poison(self, n: int, reason: str = "token rejected: InvalidSignatureError") -> list[str]:
        return [
            self.t.send(
                self.dlq,
                Outgoing(
                    json.dumps({"body": f"secret text {i}", "userID": "u2", "name": ""}),
                    {
                        "controller": "message",
                        "method": "add",
                        "token": TOKEN,
                        DEAD_LETTER_REASON: reason,
                    },
                ),
            )
            for i in range(n)
        ]

    def drain(self, url: str) -> list[Any]:
        out = []
        while got := self.t.receive(url, 10, 0):
            out += got
            self.t.delete_batch(url, [e.receipt_handle for e in got])
        return out


@pytest.fixture
def s() -> Stack:
    return Stack()


def test_the_reason_attribute_is_the_workers() -> None:
    assert dlq.DEAD_LETTER_REASON == DEAD_LETTER_REASON


def test_the_dlq_comes_from_the_redrive_policy(s: Stack) -> None:
    assert dlq.find_dead_letter_queue(s.t, s.requests) == s.dlq
    with pytest.raises(ConfigError, match="no redrive policy"):
        dlq.find_dead_letter_queue(s.t, s.dlq)


def test_list_shows_metadata_never_bodies_or_tokens(s: Stack) -> None:
    ids = s.poison(3)
    s.t.send(s.dlq, Outgoing("{nope", {}))  # moved by SQS itself: no reason, no method
    entries = dlq.list_dead_letters(s.t, s.dlq, 10, wait_seconds=0)
    assert [e.message_id for e in entries][:3] == ids
    first = entries[0]
    body = json.dumps({"body": "secret text 0", "userID": "u2", "name": ""}).encode()
    assert first.reason == "token rejected: InvalidSignatureError"
    assert (first.controller, first.method, first.has_token) == ("message", "add", True)
    assert first.body_bytes == len(body)
    assert first.body_sha256 == hashlib.sha256(body).hexdigest()[:12]
    assert first.receive_count == 1 and first.sent_at is None  # memory has no SentTimestamp
    bare = entries[3]
    assert (bare.reason, bare.method, bare.has_token, bare.body_bytes) == (None, None, False, 5)
    dumped = json.dumps([e.as_dict() for e in entries])
    assert "secret text" not in dumped and TOKEN not in dumped and "nope" not in dumped


def test_list_puts_every_message_back_and_respects_the_limit(s: Stack) -> None:
    s.poison(25)
    assert len(dlq.list_dead_letters(s.t, s.dlq, 12, wait_seconds=0)) == 12
    # all visible again at once: a second listing sees them all
    assert len(dlq.list_dead_letters(s.t, s.dlq, 100, wait_seconds=0)) == 25
    assert s.t.depth(s.dlq) == 25


def test_redrive_sends_the_original_without_the_reason_then_deletes(s: Stack) -> None:
    s.poison(12)
    s.t.calls.clear()
    moved = dlq.redrive(s.t, s.dlq, s.requests, wait_seconds=0)
    ops = [c for c in s.t.calls if c in {"SendMessage", "DeleteMessageBatch"}]
    assert ops == ["SendMessage", "DeleteMessageBatch"] * 12  # each send before its delete
    assert len(moved) == 12 and s.t.depth(s.dlq) == 0
    back = s.drain(s.requests)
    assert sorted(e.message_id for e in back) == sorted(moved)
    assert sorted(json.loads(e.body)["body"] for e in back) == sorted(
        f"secret text {i}" for i in range(12)
    )
    for e in back:
        assert e.attributes == {"controller": "message", "method": "add", "token": TOKEN}


def test_redrive_limit(s: Stack) -> None:
    s.poison(5)
    assert len(dlq.redrive(s.t, s.dlq, s.requests, limit=2, wait_seconds=0)) == 2
    assert (s.t.depth(s.dlq), s.t.depth(s.requests)) == (3, 2)


class Wrapped:
    """The in-memory transport with one operation made to fail, as a crash would."""

    def __init__(self, inner: InMemoryTransport, fail: str, after: int = 0) -> None:
        self.inner, self.fail, self.after = inner, fail, after

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.fail:
            return attr

        def failing(*args: Any, **kwargs: Any) -> Any:
            if self.after == 0:
                raise TransportError(f"injected {name} failure")
            self.after -= 1
            return attr(*args, **kwargs)

        return failing


def test_interrupted_after_send_before_delete_duplicates_one_loses_none(s: Stack) -> None:
    originals = s.poison(6)
    crashing = Wrapped(s.t, "delete_batch", after=2)
    with pytest.raises(dlq.RedriveInterrupted, match="in both queues") as info:
        dlq.redrive(crashing, s.dlq, s.requests, wait_seconds=0)
    assert info.value.moved == 3
    # three sent; the third was not deleted: it is in both queues; all are released
    assert s.t.depth(s.requests) == 3 and s.t.depth(s.dlq) == 4
    assert len(dlq.list_dead_letters(s.t, s.dlq, 10, wait_seconds=0)) == 4  # visible again
    assert len(dlq.redrive(s.t, s.dlq, s.requests, wait_seconds=0)) == 4
    bodies = [json.loads(e.body)["body"] for e in s.drain(s.requests)]
    assert sorted(set(bodies)) == sorted(f"secret text {i}" for i in range(6))  # none lost
    assert len(bodies) == len(originals) + 1  # exactly one duplicate
    assert s.t.depth(s.dlq) == 0


def test_a_failed_send_leaves_the_message_in_the_dlq(s: Stack) -> None:
    s.poison(3)
    with pytest.raises(dlq.RedriveInterrupted, match="still in the DLQ") as info:
        dlq.redrive(Wrapped(s.t, "send", after=1), s.dlq, s.requests, wait_seconds=0)
    assert info.value.moved == 1
    assert (s.t.depth(s.requests), s.t.depth(s.dlq)) == (1, 2)
    assert len(dlq.list_dead_letters(s.t, s.dlq, 10, wait_seconds=0)) == 2


def test_redrive_does_not_chase_requests_that_die_again(s: Stack) -> None:
    """Without a limit it moves what the DLQ held at the start, even if the worker
    dead-letters each moved request again at once."""
    s.poison(4)

    class Bouncing(Wrapped):
        def send(self, queue_url: str, message: Outgoing) -> str:
            self.inner.send(s.dlq, Outgoing(message.body, {DEAD_LETTER_REASON: "again"}))
            return self.inner.send(queue_url, message)

    assert len(dlq.redrive(Bouncing(s.t, "-"), s.dlq, s.requests, wait_seconds=0)) == 4
    assert s.t.depth(s.dlq) == 4


def test_purge_falls_back_to_receive_and_delete(s: Stack) -> None:
    s.poison(23)
    result = dlq.purge(s.t, s.dlq, wait_seconds=0)  # the memory transport cannot purge
    assert result == dlq.PurgeResult("receive+delete", 23)
    assert s.t.depth(s.dlq) == 0


class Purging(Wrapped):
    def __init__(self, inner: InMemoryTransport, allowed: bool) -> None:
        super().__init__(inner, "-")
        self.allowed = allowed

    def purge_queue(self, queue_url: str) -> bool:
        if self.allowed:
            for e in self.inner.receive(queue_url, 10, 0):
                self.inner.delete_batch(queue_url, [e.receipt_handle])
        return self.allowed


def test_purge_uses_purge_queue_and_falls_back_when_throttled(s: Stack) -> None:
    s.poison(4)
    assert dlq.purge(Purging(s.t, allowed=True), s.dlq, wait_seconds=0).method == "PurgeQueue"
    s.poison(4)
    throttled = dlq.purge(Purging(s.t, allowed=False), s.dlq, wait_seconds=0)
    assert throttled == dlq.PurgeResult("receive+delete", 4) and s.t.depth(s.dlq) == 0


def test_sqs_transport_purge_reports_a_throttled_purge() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
    with Stubber(client) as stub:
        stub.add_response("purge_queue", {}, {"QueueUrl": url})
        stub.add_client_error(
            "purge_queue", "AWS.SimpleQueueService.PurgeQueueInProgress", http_status_code=403
        )
        stub.add_client_error("purge_queue", "AccessDenied", http_status_code=403)
        transport = SqsTransport(client)
        assert transport.purge_queue(url) is True
        assert transport.purge_queue(url) is False
        with pytest.raises(TransportError, match="AccessDenied"):
            transport.purge_queue(url)


def test_a_boto3_client_is_wrapped() -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    assert isinstance(dlq.as_transport(client), SqsTransport)
    memory = InMemoryTransport()
    assert dlq.as_transport(memory) is memory


# --- the command --------------------------------------------------------------------------
def test_the_command_is_registered() -> None:
    args = cli.parser().parse_args(["dlq", "list", "--limit", "5", "--json"])
    assert (args.limit, args.json, args.run) == (5, True, dlq.cmd_list)
    assert cli.parser().parse_args(["dlq", "redrive"]).limit is None
    assert cli.parser().parse_args(["dlq", "purge", "--yes"]).yes is True
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["dlq", "list", "--limit", "0"])


def test_purge_without_yes_and_without_a_terminal_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped "y" is not a confirmation

    def never() -> Any:
        raise AssertionError("no AWS call before the refusal")

    monkeypatch.setattr(dlq, "_open", never)
    assert cli.main(["dlq", "purge"]) == 2
    assert "--yes" in capsys.readouterr().err


def test_purge_asks_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], s: Stack
) -> None:
    s.poison(2)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(dlq, "_open", lambda: (s.t, s.dlq, s.requests))
    monkeypatch.setattr(dlq, "RECEIVE_WAIT_SECONDS", 0)
    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    assert cli.main(["dlq", "purge"]) == 1 and s.t.depth(s.dlq) == 2
    assert "Delete all 2 message(s)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    assert cli.main(["dlq", "purge"]) == 0 and s.t.depth(s.dlq) == 0


def test_list_text_output_is_terminal_safe(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], s: Stack
) -> None:
    s.t.send(s.dlq, Outgoing("x", {"controller": "user", "method": "\x1b[31mred", "token": TOKEN}))
    monkeypatch.setattr(dlq, "_open", lambda: (s.t, s.dlq, s.requests))
    monkeypatch.setattr(dlq, "RECEIVE_WAIT_SECONDS", 0)
    assert cli.main(["dlq", "list"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "?[31mred" in out and TOKEN not in out
