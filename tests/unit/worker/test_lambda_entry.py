"""The Lambda entry point, fed the exact SQS event shape Lambda sends, on an in-memory stack."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from messenger_widgets.config import Settings
from messenger_widgets.errors import ConfigError, StoreError
from messenger_widgets.protocol import Envelope, Outgoing, Reply, Request
from messenger_widgets.store.sqlite import SqliteStore
from messenger_widgets.worker import lambda_entry
from messenger_widgets.worker.lambda_entry import (
    SqsBatchHandler,
    envelope_from_record,
    queue_url_from_arn,
    resolve_token_secret,
    worker_from_environment,
)

from .test_handlers import Harness

ARN = "arn:aws:sqs:us-east-1:123456789012:requests"
SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-04T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/reaper"],
    "detail": {},
}


def sqs_record(envelope: Envelope, arn: str = ARN) -> dict[str, Any]:
    """One record exactly as an SQS event source mapping hands it to Lambda."""
    return {
        "messageId": envelope.message_id,
        "receiptHandle": envelope.receipt_handle,
        "body": envelope.body,
        "attributes": {
            "ApproximateReceiveCount": str(envelope.receive_count),
            "SentTimestamp": "1796385600000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1796385600005",
        },
        "messageAttributes": {
            name: {
                "stringValue": value,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
            for name, value in envelope.attributes.items()
        },
        "md5OfBody": hashlib.md5(envelope.body.encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "us-east-1",
    }


class Lambda:
    """The Lambda service around a handler: poll, invoke, delete what was not reported."""

    def __init__(self, h: Harness, handler: SqsBatchHandler | None = None) -> None:
        self.h = h
        self.handler = handler or SqsBatchHandler(lambda: h.worker)

    def send(self, controller: str, method: str, body: Any, token: str | None = None) -> str:
        return self.h.transport.send(
            self.h.requests, Request(controller, method, body, token).encode()
        )

    def send_raw(self, body: str, **attributes: str) -> str:
        return self.h.transport.send(self.h.requests, Outgoing(body, attributes))

    def invoke(self, extra: list[dict[str, Any]] | None = None) -> list[str]:
        envelopes = self.h.transport.receive(self.h.requests, 10, 0)
        event = {"Records": [sqs_record(e) for e in envelopes] + (extra or [])}
        response = self.handler(json.loads(json.dumps(event)), None)
        assert set(response) == {"batchItemFailures"}
        failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        done = [e.receipt_handle for e in envelopes if e.message_id not in failed]
        if done:
            self.h.transport.delete_batch(self.h.requests, done)
        return failed

    def replies(self) -> dict[str, Reply]:
        got = self.h.transport.receive(self.h.responses, 10, 0)
        self.h.transport.delete_batch(self.h.responses, [e.receipt_handle for e in got])
        replies = [Reply.decode(e) for e in got]
        assert len({r.res_to for r in replies}) == len(replies), "one reply per request"
        return {r.res_to: r for r in replies}

    def dead(self) -> list[Envelope]:
        got = self.h.transport.receive(self.h.dlq, 10, 0)
        self.h.transport.delete_batch(self.h.dlq, [e.receipt_handle for e in got])
        return got

    def login(self, first: str) -> dict[str, Any]:
        email = f"{first.lower()}@example.com"
        body = {"fName": first, "lName": "T", "email": email, "password": "password1"}
        registered = self.send("user", "register", body)
        assert self.invoke() == [] and self.replies()[registered].status == 200
        logged_in = self.send("user", "login", {"email": email, "password": "password1"})
        assert self.invoke() == []
        reply = self.replies()[logged_in]
        assert reply.status == 200
        self.h.pushes(reply.body["url"])
        return dict(reply.body)


def register_body(first: str) -> dict[str, Any]:
    email = f"{first.lower()}@example.com"
    return {"fName": first, "lName": "T", "email": email, "password": "password1"}


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# --- batches ----------------------------------------------------------------------------------
def test_a_batch_is_answered_and_nothing_reported(h: Harness) -> None:
    lam = Lambda(h)
    ids = [lam.send("user", "register", register_body(n)) for n in ("Ada", "Bob", "Cy")]
    assert lam.invoke() == []
    replies = lam.replies()
    assert {i: replies[i].status for i in ids} == dict.fromkeys(ids, 200)
    assert h.transport.depth(h.requests) == 0


def test_chat_through_the_handler(h: Harness) -> None:
    lam = Lambda(h)
    ada, bob = lam.login("Ada"), lam.login("Bob")
    body = {"body": "hi", "userID": bob["userID"], "name": "x", "clientMessageId": "c1"}
    lam.send("message", "add", body, ada["token"])
    assert lam.invoke() == []
    [message] = h.pushes(bob["url"])
    [sent] = h.pushes(ada["url"])
    assert (message.action, message.body["body"], sent.action) == ("message", "hi", "sent")


def test_forged_token_is_dead_lettered_and_not_reported(h: Harness) -> None:
    lam = Lambda(h)
    ada, bob = lam.login("Ada"), lam.login("Bob")
    claims = jwt.decode(ada["token"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "z" * 32, algorithm="HS256")
    good = lam.send(
        "message", "add", {"body": "ok", "userID": bob["userID"], "name": ""}, ada["token"]
    )
    bad = lam.send("message", "add", {"body": "evil", "userID": bob["userID"], "name": ""}, forged)
    assert lam.invoke() == []
    assert [p.body["body"] for p in h.pushes(bob["url"])] == ["ok"]
    [dead] = lam.dead()
    assert json.loads(dead.body)["body"] == "evil" and "deadLetterReason" in dead.attributes
    assert good != bad and h.transport.depth(h.requests) == 0


class FailingFor(SqliteStore):
    """A store that fails `add_message` for one body, as a store outage would."""

    def add_message(self, sender_id: str, recipient_id: str, body: Any, *rest: Any) -> Any:
        if body == "boom":
            raise StoreError("injected failure")
        return super().add_message(sender_id, recipient_id, body, *rest)


def test_store_failure_reports_exactly_that_record(tmp_path: Path) -> None:
    h = Harness(tmp_path, store=FailingFor(tmp_path / "f.sqlite3"))
    lam = Lambda(h)
    ada, bob = lam.login("Ada"), lam.login("Bob")
    ids = {
        text: lam.send(
            "message", "add", {"body": text, "userID": bob["userID"], "name": ""}, ada["token"]
        )
        for text in ("one", "boom", "two")
    }
    h.transport.calls.clear()
    assert lam.invoke() == [ids["boom"]]
    assert sorted(p.body["body"] for p in h.pushes(bob["url"])) == ["one", "two"]
    assert "ChangeMessageVisibility" in h.transport.calls  # retried sooner, with back-off
    assert h.transport.depth(h.requests) == 1 and lam.dead() == []


def test_malformed_records_are_answered_or_dead_lettered(h: Harness) -> None:
    lam = Lambda(h)
    ada = lam.login("Ada")
    answered = lam.send_raw("{not json", controller="user", method="register")
    pushed = lam.send_raw("[1, 2", controller="message", method="add", token=ada["token"])
    lam.send_raw("{nope")  # nobody to answer
    bare = {"messageId": "bare-1", "eventSource": "aws:sqs", "eventSourceARN": ARN}
    odd = {
        "messageId": "odd-1",
        "receiptHandle": 17,
        "body": None,
        "attributes": "x",
        "messageAttributes": {"controller": {"dataType": "Binary", "binaryValue": "AA=="}},
    }
    assert lam.invoke(extra=[bare, odd]) == []
    assert lam.replies()[answered].status == 400
    [error] = h.pushes(ada["url"])
    assert (error.action, error.status, error.body["method"]) == ("error", 400, "add")
    dead = lam.dead()
    assert sorted(e.body for e in dead) == ["", "", "{nope"]  # answered ones are not there
    assert pushed and h.transport.depth(h.requests) == 0


def test_records_without_message_id_are_skipped_not_fatal(h: Harness) -> None:
    lam = Lambda(h)
    registered = lam.send("user", "register", register_body("Ada"))
    assert lam.invoke(extra=[{"body": "{}"}, "not a record", {"messageId": ""}]) == []  # type: ignore[list-item]
    assert lam.replies()[registered].status == 200


class SessionsDown(SqliteStore):
    down = False

    def get_session(self, session_id: str) -> Any:
        if self.down:
            raise StoreError("injected failure")
        return super().get_session(session_id)


def test_a_batch_that_raises_is_retried_one_record_at_a_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store fails while answering an undecodable request: only that record is reported,
    and every other record is answered exactly once."""
    store = SessionsDown(tmp_path / "d.sqlite3")
    h = Harness(tmp_path, store=store)
    lam = Lambda(h)
    ada = lam.login("Ada")
    first = lam.send("user", "register", register_body("Bob"))
    poison = lam.send_raw("{broken", controller="message", method="add", token=ada["token"])
    last = lam.send("user", "register", register_body("Cy"))
    store.down = True
    assert lam.invoke() == [poison]
    replies = lam.replies()
    assert set(replies) == {first, last} and {r.status for r in replies.values()} == {200}
    store.down = False


# --- the container ----------------------------------------------------------------------------
def test_worker_is_built_once_and_a_build_failure_raises(h: Harness) -> None:
    calls: list[int] = []

    def factory() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ConfigError("MESSENGER_BUCKET is not set")
        return h.worker

    lam = Lambda(h, SqsBatchHandler(factory))
    lam.send("user", "register", register_body("Ada"))
    with pytest.raises(ConfigError):
        lam.invoke()  # Lambda retries the whole batch
    assert lam.invoke() == [] and lam.invoke() == []
    assert len(calls) == 2


def test_reaper_runs_at_most_every_30_seconds(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    reaps: list[float] = []

    def reap() -> int:
        reaps.append(clock[0])
        if len(reaps) == 2:
            raise StoreError("injected failure")  # logged; the batch still goes through
        return 0

    monkeypatch.setattr(h.worker, "reap", reap)
    handler = SqsBatchHandler(lambda: h.worker, monotonic=lambda: clock[0])
    for t in (1000, 1010, 1029.9, 1030, 1045, 1061, 1062):
        clock[0] = t
        assert handler({"Records": []}) == {"batchItemFailures": []}
    assert reaps == [1000, 1030, 1061]
    clock[0] = 1100
    assert handler(SCHEDULED, None) == {"batchItemFailures": []}  # an EventBridge schedule
    assert reaps[-1] == 1100


def test_reaper_deletes_expired_session_queues(h: Harness) -> None:
    clock = [0.0]
    lam = Lambda(h, SqsBatchHandler(lambda: h.worker, monotonic=lambda: clock[0]))
    ada = lam.login("Ada")
    h.now += timedelta(hours=2)
    assert lam.handler(SCHEDULED) == {"batchItemFailures": []}
    assert h.transport.exists(ada["url"])  # the last pass was less than 30 s ago
    clock[0] = 30.0
    assert lam.handler(SCHEDULED) == {"batchItemFailures": []}
    assert not h.transport.exists(ada["url"])


# --- record conversion ------------------------------------------------------------------------
def test_envelope_from_a_full_record() -> None:
    record = sqs_record(Envelope("m-1", "rh-1", '{"a": 1}', {"controller": "user"}, 3))
    record["messageAttributes"]["n"] = {"stringValue": "5", "dataType": "Number"}
    record["messageAttributes"]["b"] = {"binaryValue": "AA==", "dataType": "Binary"}
    envelope = envelope_from_record(record, "https://q/requests")
    assert envelope == Envelope(
        "m-1", "rh-1", '{"a": 1}', {"controller": "user", "n": "5"}, 3, "https://q/requests"
    )


def test_envelope_from_a_bare_record() -> None:
    assert envelope_from_record({"messageId": "m"}) == Envelope("m", "", "", {}, 1, "")
    with pytest.raises((KeyError, ValueError)):
        envelope_from_record({"body": "{}"})


def test_queue_url_from_arn() -> None:
    local = "http://127.0.0.1:5000/123456789012/requests"
    assert queue_url_from_arn(ARN, local) == local
    assert queue_url_from_arn(ARN, "http://x/1/other") == (
        "https://sqs.us-east-1.amazonaws.com/123456789012/requests"
    )
    assert queue_url_from_arn("not an arn", local) == local


# --- the token secret -------------------------------------------------------------------------
SECRET = "s" * 40


class FakeSsm:
    def __init__(self, value: str | Exception) -> None:
        self.value, self.asked = value, []

    def get_parameter(self, Name: str, WithDecryption: bool) -> Any:
        self.asked.append((Name, WithDecryption))
        if isinstance(self.value, Exception):
            raise self.value
        return {"Parameter": {"Name": Name, "Type": "SecureString", "Value": self.value}}


class FakeSecrets:
    def get_secret_value(self, SecretId: str) -> Any:
        return {"ARN": SecretId, "SecretString": f" {SECRET}\n"}


def test_secret_from_ssm_parameter() -> None:
    ssm = FakeSsm(SECRET)
    settings = resolve_token_secret(Settings(token_secret_parameter="/m/secret"), {"ssm": ssm}.get)  # type: ignore[arg-type]
    assert settings.token_secret == SECRET and ssm.asked == [("/m/secret", True)]


def test_secret_from_secrets_manager() -> None:
    settings = Settings(token_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:m")
    resolved = resolve_token_secret(settings, {"secretsmanager": FakeSecrets()}.get)  # type: ignore[arg-type]
    assert resolved.token_secret == SECRET


def test_plain_secret_needs_no_call() -> None:
    settings = Settings(token_secret=SECRET)
    assert resolve_token_secret(settings, lambda _: pytest.fail("no AWS call")) == settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(token_secret=SECRET, token_secret_parameter="/p"), "only one of"),
        (Settings(token_secret_parameter="/p", token_secret_arn="arn"), "only one of"),
        (Settings(token_secret_parameter="/p"), "MESSENGER_TOKEN_SECRET_PARAMETER"),
    ],
)
def test_secret_sources_refused(settings: Settings, message: str) -> None:
    ssm = FakeSsm(RuntimeError("AccessDenied"))
    with pytest.raises(ConfigError, match=message):
        resolve_token_secret(settings, {"ssm": ssm}.get)  # type: ignore[arg-type]


def test_empty_fetched_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="empty"):
        resolve_token_secret(Settings(token_secret_parameter="/p"), {"ssm": FakeSsm("  ")}.get)  # type: ignore[arg-type]


def test_cold_start_with_missing_settings_raises() -> None:
    with pytest.raises(ConfigError, match="MESSENGER_REQUEST_QUEUE_URL"):
        worker_from_environment({})


def test_module_handler_builds_lazily() -> None:
    assert isinstance(lambda_entry.handler, SqsBatchHandler)
    assert lambda_entry.handler._worker is None  # importing built nothing
