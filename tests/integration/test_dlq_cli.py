"""`messenger dlq list | redrive | purge` against the moto server and the real worker process.

Poison requests reach the DLQ the way they do in production: forged tokens sent through a
running `messenger worker`, which copies them there with a `deadLetterReason`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import jwt
import pytest

from messenger_widgets import dlq
from messenger_widgets.config import Settings
from messenger_widgets.errors import TransportError
from messenger_widgets.provision import Resources
from messenger_widgets.transport import SqsTransport

from ..conftest import REGION
from .conftest import worker_env
from .rawclient import RawClient

SECRET_TEXT = "dlq secret body text 41c9"


def messenger(settings: Settings, *args: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    """`messenger dlq ...` with `answer` piped to its stdin: never a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "messenger_widgets", "dlq", *args],
        env=worker_env(settings),
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
    )


def wait_for_depth(client: RawClient, url: str, expected: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (depth := client.depth(url)) != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} holds {depth} messages, not {expected}")
        time.sleep(0.2)


def forge(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, "not-the-worker-secret-" + "q" * 32, algorithm="HS256")


@pytest.fixture(scope="module")
def poisoned(
    stack: tuple[Settings, Resources], worker_process: Any, moto_endpoint: str
) -> dict[str, Any]:
    """Three forged-token requests, dead-lettered by the running worker."""
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    client = RawClient(sqs, stack[1].request_queue_url, stack[1].response_queue_url)
    ada, bob = client.user("Ada"), client.user("Bob")
    forged = forge(ada.token)
    for i in range(3):
        body = {"body": f"{SECRET_TEXT} {i}", "userID": bob.user_id, "name": bob.name}
        client.send("message", "add", body, token=forged)
    wait_for_depth(client, stack[1].dead_letter_queue_url, 3)
    return {"client": client, "forged": forged, "token": ada.token, "bob": bob}


def test_list_json_shows_the_dead_letters_without_bodies_or_tokens(
    stack: tuple[Settings, Resources], poisoned: dict[str, Any]
) -> None:
    settings, resources = stack
    result = messenger(settings, "list", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["queue"] == resources.dead_letter_queue_url
    assert document["count"] == 3
    for entry in document["messages"]:
        assert entry["reason"].startswith("token rejected")
        assert (entry["controller"], entry["method"], entry["has_token"]) == (
            "message",
            "add",
            True,
        )
        assert entry["sent_at"].endswith("Z") and entry["receive_count"] >= 1
        assert entry["body_bytes"] > len(SECRET_TEXT) and len(entry["body_sha256"]) == 12
    assert len({e["body_sha256"] for e in document["messages"]}) == 3
    text = messenger(settings, "list", "--limit", "2")
    assert text.returncode == 0, text.stderr
    assert "2 message(s) shown" in text.stdout and "token rejected" in text.stdout
    for output in (result.stdout, text.stdout, result.stderr, text.stderr):
        assert SECRET_TEXT not in output
        assert poisoned["forged"] not in output and poisoned["token"] not in output
    # listing is not consuming: all three are still there
    wait_for_depth(poisoned["client"], resources.dead_letter_queue_url, 3, timeout=5)


def test_redrive_moves_them_back_and_they_are_processed_again(
    stack: tuple[Settings, Resources], poisoned: dict[str, Any]
) -> None:
    settings, resources = stack
    client: RawClient = poisoned["client"]
    # a request that was dead-lettered while the store was down, and is fine now
    email = f"late.{uuid.uuid4().hex[:8]}@example.com"
    register = {"fName": "Late", "lName": "Comer", "email": email, "password": "correct horse"}
    client.sqs.send_message(
        QueueUrl=resources.dead_letter_queue_url,
        MessageBody=json.dumps(register),
        MessageAttributes={
            k: {"DataType": "String", "StringValue": v}
            for k, v in {
                "controller": "user",
                "method": "register",
                dlq.DEAD_LETTER_REASON: "StoreError: database is locked",
            }.items()
        },
    )
    result = messenger(settings, "redrive")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Moved 4 message(s)")
    # the register is processed; the forged ones come back to the DLQ with a fresh reason
    assert client.login(email, "correct horse", history=False).user_id
    wait_for_depth(client, resources.dead_letter_queue_url, 3)
    client.settle()
    entries = json.loads(messenger(settings, "list", "--json").stdout)["messages"]
    assert sorted(e["method"] for e in entries) == ["add", "add", "add"]
    assert not any(e["method"] == "register" for e in entries)


def test_redrive_limit(stack: tuple[Settings, Resources], poisoned: dict[str, Any]) -> None:
    settings, resources = stack
    client: RawClient = poisoned["client"]
    wait_for_depth(client, resources.dead_letter_queue_url, 3)
    result = messenger(settings, "redrive", "--limit", "1")
    assert result.returncode == 0 and result.stdout.startswith("Moved 1 message(s)")
    client.settle()
    wait_for_depth(client, resources.dead_letter_queue_url, 3)  # it died again


def test_purge_without_yes_and_without_a_terminal_refuses(
    stack: tuple[Settings, Resources], poisoned: dict[str, Any]
) -> None:
    settings, resources = stack
    result = messenger(settings, "purge")
    assert result.returncode == 2
    assert "--yes" in result.stderr and "Traceback" not in result.stderr
    piped = messenger(settings, "purge", answer="y\n")  # a piped "y" is not a confirmation
    assert piped.returncode == 2
    wait_for_depth(poisoned["client"], resources.dead_letter_queue_url, 3, timeout=5)


def test_purge_yes_empties_the_dlq(
    stack: tuple[Settings, Resources], poisoned: dict[str, Any]
) -> None:
    settings, resources = stack
    result = messenger(settings, "purge", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Purged" in result.stdout or "Deleted 3" in result.stdout
    wait_for_depth(poisoned["client"], resources.dead_letter_queue_url, 0, timeout=70)
    empty = json.loads(messenger(settings, "list", "--json").stdout)
    assert empty["count"] == 0 and empty["messages"] == []


# --- an interrupted redrive, on a stack no worker serves ---------------------------------------
class DeleteFailsOnce:
    """SQS whose DeleteMessageBatch fails once, after `after` successful calls: the redrive
    dies between sending a message to the requests queue and deleting its DLQ copy."""

    def __init__(self, inner: SqsTransport, after: int) -> None:
        self.inner, self.after = inner, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete_batch(self, queue_url: str, receipt_handles: Any) -> None:
        if self.after == 0:
            self.after = -1
            raise TransportError("injected: connection reset before DeleteMessageBatch")
        self.after -= 1
        self.inner.delete_batch(queue_url, receipt_handles)


def bodies_in(sqs: Any, url: str) -> list[str]:
    """Every body in a queue (drained)."""
    out: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        if not messages:
            return out
        out += [m["Body"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def test_an_interrupted_redrive_loses_nothing(
    fresh_stack: tuple[Settings, Resources], sqs: Any
) -> None:
    _, resources = fresh_stack
    originals = [json.dumps({"userID": f"u{i}"}) for i in range(7)]
    for body in originals:
        sqs.send_message(
            QueueUrl=resources.dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes={
                "controller": {"DataType": "String", "StringValue": "message"},
                "method": {"DataType": "String", "StringValue": "markMessagesAsRead"},
                "token": {"DataType": "String", "StringValue": "x.y.z"},
                dlq.DEAD_LETTER_REASON: {"DataType": "String", "StringValue": "no session"},
            },
        )
    transport = SqsTransport(sqs)
    assert dlq.find_dead_letter_queue(sqs, resources.request_queue_url) == (
        resources.dead_letter_queue_url
    )
    with pytest.raises(dlq.RedriveInterrupted) as info:
        dlq.redrive(
            DeleteFailsOnce(transport, after=3),
            resources.dead_letter_queue_url,
            resources.request_queue_url,
        )
    assert info.value.moved == 4  # the fourth was sent, its delete failed
    # every message is somewhere; the one in flight is in both queues
    assert len(dlq.list_dead_letters(sqs, resources.dead_letter_queue_url)) == 4
    moved = dlq.redrive(sqs, resources.dead_letter_queue_url, resources.request_queue_url)
    assert len(moved) == 4
    requeued = bodies_in(sqs, resources.request_queue_url)
    assert sorted(set(requeued)) == sorted(originals)  # nothing lost
    assert len(requeued) == len(originals) + 1  # one duplicate, at most
    assert bodies_in(sqs, resources.dead_letter_queue_url) == []
