"""The failure rules of the contract: bad input never crashes the worker and is never lost."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from .conftest import SECRET
from .rawclient import RawClient

pytestmark = pytest.mark.usefixtures("worker_process")


def dead_letters(
    client: RawClient, dlq_url: str, marker: str, timeout: float = 15
) -> list[dict[str, Any]]:
    """Messages in the DLQ whose body holds the marker (released again for other tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        hits = [m for m in got if marker in m["Body"]]
        for m in got:
            client.sqs.change_message_visibility(
                QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
        if hits:
            return hits
    return []


@pytest.fixture
def dlq(stack) -> str:  # type: ignore[no-untyped-def]
    return stack[1].dead_letter_queue_url


def forged(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_malformed_json_login_gets_a_400_reply(client: RawClient) -> None:
    res_to = client.send("user", "login", None, raw_body="{not json")
    status, body = client.reply(res_to)
    assert status == 400 and "JSON" in body["message"]


def test_non_object_body_and_missing_fields_get_400(client: RawClient) -> None:
    assert client.reply(client.send("user", "register", [1, 2]))[0] == 400
    assert client.reply(client.send("user", "login", {"email": "a@b.co"}))[0] == 400


def test_malformed_json_with_a_live_token_gets_an_error_push(client: RawClient) -> None:
    me = client.user("Broken")
    client.send("message", "add", None, me.token, raw_body='{"body": ')
    error = client.expect(me.url, "error")
    assert error.status == 400 and error.body["method"] == "add"


def test_deep_json_is_refused_not_crashed_on(client: RawClient) -> None:
    me = client.user("Deep")
    client.send("message", "add", None, me.token, raw_body="[" * 5000 + "]" * 5000)
    assert client.expect(me.url, "error").status == 400


def test_unknown_method_with_a_live_token_gets_400(client: RawClient) -> None:
    me = client.user("Unknown")
    client.send("message", "explode", {}, me.token)
    error = client.expect(me.url, "error")
    assert error.status == 400 and error.body["method"] == "explode"


def test_unknown_method_for_register_controller_gets_a_reply_only_for_reply_methods(
    client: RawClient, dlq: str
) -> None:
    marker = uuid.uuid4().hex
    client.send("user", "fly", {"marker": marker})
    assert dead_letters(client, dlq, marker)


def test_missing_attributes_go_to_the_dlq(client: RawClient, dlq: str) -> None:
    marker = uuid.uuid4().hex
    client.sqs.send_message(QueueUrl=client.request_url, MessageBody=json.dumps({"m": marker}))
    hits = dead_letters(client, dlq, marker)
    assert hits and hits[0]["MessageAttributes"]["deadLetterReason"]["StringValue"]


def test_missing_token_goes_to_the_dlq(client: RawClient, dlq: str) -> None:
    marker = uuid.uuid4().hex
    client.send("user", "searchUser", {"name": marker})
    assert dead_letters(client, dlq, marker)


@pytest.mark.parametrize("kind", ["wrong key", "alg none", "garbage"])
def test_forged_tokens_go_to_the_dlq(client: RawClient, dlq: str, kind: str) -> None:
    me = client.user("Victim")
    claims = claims_of(me.token)
    token = {
        "wrong key": forged(claims, key="k" * 40),
        "alg none": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "garbage": "not.a.token",
    }[kind]
    marker = uuid.uuid4().hex
    client.send("user", "searchUser", {"name": marker}, token)
    assert dead_letters(client, dlq, marker)
    assert client.quiet(me.url, 1) == []  # nothing reached the victim's session


def test_expired_token_gets_401_and_ends_the_session(client: RawClient, dlq: str) -> None:
    me = client.user("Expiring")
    past = datetime.now(UTC) - timedelta(seconds=5)
    expired = forged({**claims_of(me.token), "exp": int(past.timestamp())})
    client.send("user", "searchUser", {"name": "x"}, expired)
    error = client.expect(me.url, "error")
    assert error.status == 401 and error.body["method"] == "searchUser"
    marker = uuid.uuid4().hex  # the session is over: even its good token is refused now
    client.send("user", "searchUser", {"name": marker}, me.token)
    assert dead_letters(client, dlq, marker)


def test_token_of_a_logged_out_session_goes_to_the_dlq(client: RawClient, dlq: str) -> None:
    me = client.user("Gone")
    client.send("user", "logout", {}, me.token)
    client.settle()
    marker = uuid.uuid4().hex
    client.send("user", "searchUser", {"name": marker}, me.token)
    assert dead_letters(client, dlq, marker)


def test_session_url_attribute_is_never_trusted(client: RawClient) -> None:
    me, other = client.user("Me"), client.user("Other")
    client.send("user", "searchUser", {"name": "Other"}, me.token, extra={"sessionUrl": other.url})
    assert client.expect(me.url, "searchUser")
    assert client.quiet(other.url, 1) == []


def test_worker_is_still_up_and_nothing_is_left_behind(client: RawClient, worker_process) -> None:  # type: ignore[no-untyped-def]
    assert worker_process.poll() is None
    assert client.user("Still").token
    client.settle()
    assert client.depth(client.request_url) == 0
