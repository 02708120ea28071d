"""The Lambda handler against moto: real SQS queues, a DynamoDB store, the secret in SSM.

This test plays the Lambda service: it receives from the requests queue with boto3, turns the
messages into the SQS event JSON an event source mapping sends, calls the module's `handler`
(cold start from environment variables, as in the function), and deletes the records that
the handler did not report, as `ReportBatchItemFailures` does.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest

from messenger_widgets.config import Settings
from messenger_widgets.errors import ConfigError, StoreError
from messenger_widgets.provision import Resources
from messenger_widgets.store.dynamodb import DynamoStore, create_tables
from messenger_widgets.worker import lambda_entry
from messenger_widgets.worker.lambda_entry import resolve_token_secret

from ..conftest import REGION
from .conftest import SECRET, make_settings
from .rawclient import RawClient


class LambdaService:
    """Poll the requests queue and invoke the handler, as the event source mapping would."""

    def __init__(self, sqs: Any, request_url: str) -> None:
        self.sqs = sqs
        self.url = request_url
        self.arn = sqs.get_queue_attributes(QueueUrl=request_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.invocations: list[dict[str, Any]] = []

    def record(self, m: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": dict(m.get("Attributes", {})),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in m.get("MessageAttributes", {}).items()
            },
            "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": REGION,
        }

    def poll(self, expect: int, timeout: float = 15) -> list[str]:
        """Invoke once with the next `expect` messages; return the reported message ids."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < expect and time.monotonic() < deadline:
            messages += self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(10, expect - len(messages)),
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
        assert len(messages) == expect, f"{len(messages)} of {expect} requests arrived"
        event = json.loads(json.dumps({"Records": [self.record(m) for m in messages]}))
        self.invocations.append(event)
        response = lambda_entry.handler(event, None)
        failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return failed


def replies(sqs: Any, url: str, ids: list[str], timeout: float = 15) -> list[int]:
    """The status of the reply to each request (RawClient.reply takes one at a time)."""
    got: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while set(ids) - set(got) and time.monotonic() < deadline:
        for m in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", []):
            attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
            got[attrs["resTo"]] = int(attrs["statusCode"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [got.get(i, 0) for i in ids]


@pytest.fixture
def cloud(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, Resources]]:
    """A fresh stack configured as the function is: environment only, DynamoDB, SSM secret."""
    settings, resources = make_settings(moto_endpoint, tmp_path)
    prefix = settings.session_queue_prefix.removesuffix("-session-")
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    users, messages = create_tables(dynamodb, prefix)
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint)
    parameter = f"/{prefix}/token-secret"
    ssm.put_parameter(Name=parameter, Type="SecureString", Value=SECRET)
    settings = replace(
        settings,
        store="dynamodb",
        users_table=users,
        messages_table=messages,
        token_secret="",
        token_secret_parameter=parameter,
    )
    for name in list(os.environ):
        if name.startswith("MESSENGER_"):
            monkeypatch.delenv(name)
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_entry.handler, "_worker", None)  # a cold start
    monkeypatch.setattr(lambda_entry.handler, "_next_reap", None)
    yield settings, resources
    for table in (users, messages):
        dynamodb.delete_table(TableName=table)


def test_requests_through_the_lambda_handler(
    cloud: tuple[Settings, Resources], moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, resources = cloud
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    client = RawClient(sqs, resources.request_queue_url, resources.response_queue_url)
    lam = LambdaService(sqs, resources.request_queue_url)
    tag = uuid.uuid4().hex[:8]
    emails = {name: f"{name}.{tag}@example.com" for name in ("ada", "bob")}

    # one batch: two registrations and a malformed one that is answered 400
    ids = [
        client.send(
            "user",
            "register",
            {"fName": n.title(), "lName": "L", "email": e, "password": "correct horse"},
        )
        for n, e in emails.items()
    ]
    broken = client.send("user", "register", None, raw_body="{not json")
    assert lam.poll(3) == []
    worker = lambda_entry.handler.worker
    assert isinstance(worker.ctx.store, DynamoStore)  # built from the environment
    assert worker.ctx.tokens.issue("u", "s")  # with the secret read from SSM
    assert replies(sqs, resources.response_queue_url, [*ids, broken]) == [200, 200, 400]

    logins = {}
    for name, email in emails.items():
        request = client.send("user", "login", {"email": email, "password": "correct horse"})
        assert lam.poll(1) == []
        status, body = client.reply(request)
        assert status == 200, body
        logins[name] = body
        assert client.expect(body["url"], "historyEnd").body == {"count": 0}
    ada, bob = logins["ada"], logins["bob"]

    # a batch with a poison record: the forged token is dead-lettered, not reported
    claims = jwt.decode(ada["token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "forged-" + "k" * 40, algorithm="HS256")
    client.send(
        "message",
        "add",
        {"body": "hello", "userID": bob["userID"], "name": "", "clientMessageId": "c1"},
        ada["token"],
    )
    client.send("message", "add", {"body": "evil", "userID": bob["userID"], "name": ""}, forged)
    assert lam.poll(2) == []
    pushed = client.expect(bob["url"], "message")
    assert (pushed.body["body"], pushed.body["order"], pushed.body["userID"]) == (
        "hello",
        1,
        ada["userID"],
    )
    assert client.expect(ada["url"], "sent").body["clientMessageId"] == "c1"
    dead = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, WaitTimeSeconds=1).get(
        "Messages", []
    )
    assert [json.loads(m["Body"])["body"] for m in dead] == ["evil"]

    # a store failure for one record: only it is reported, then redelivered and stored once
    real_add = worker.ctx.store.add_message
    failures = iter([StoreError("injected")])

    def flaky_add(*args: Any) -> Any:
        if args[2] == "boom" and (exc := next(failures, None)):
            raise exc
        return real_add(*args)

    monkeypatch.setattr(worker.ctx.store, "add_message", flaky_add)
    boom = client.send(
        "message", "add", {"body": "boom", "userID": bob["userID"], "name": ""}, ada["token"]
    )
    client.send(
        "message", "add", {"body": "fine", "userID": bob["userID"], "name": ""}, ada["token"]
    )
    assert lam.poll(2) == [boom]
    assert client.expect(bob["url"], "message").body["body"] == "fine"
    assert lam.poll(1, timeout=10) == []  # visible again after the 1 s back-off
    again = lam.invocations[-1]["Records"][0]
    assert again["messageId"] == boom and again["attributes"]["ApproximateReceiveCount"] == "2"
    late = client.expect(bob["url"], "message")
    assert (late.body["body"], late.body["order"]) == ("boom", 3)
    assert client.depth(resources.request_queue_url) == 0
    assert lambda_entry.handler.worker is worker  # one worker per container

    # logout deletes the session queue
    client.send("user", "logout", {}, bob["token"])
    assert lam.poll(1) == []
    assert not client.queue_exists(bob["url"])


def test_secret_from_secrets_manager_on_moto(moto_endpoint: str) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint)
    arn = secrets.create_secret(Name=f"messenger-{uuid.uuid4().hex[:8]}", SecretString=SECRET)[
        "ARN"
    ]
    settings = Settings(
        region=REGION,
        endpoint_url=moto_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        token_secret_arn=arn,
    )
    assert resolve_token_secret(settings).token_secret == SECRET


def test_unreadable_secret_fails_the_cold_start(moto_endpoint: str) -> None:
    settings = Settings(
        region=REGION, endpoint_url=moto_endpoint, token_secret_parameter="/missing/secret"
    )
    with pytest.raises(ConfigError, match="MESSENGER_TOKEN_SECRET_PARAMETER"):
        resolve_token_secret(settings)
