"""Handlers and the runner with an in-memory transport: fast checks of every rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from messenger_widgets.auth import Passwords
from messenger_widgets.config import Settings
from messenger_widgets.errors import StoreError
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Envelope, Push, Reply, Request
from messenger_widgets.store.sqlite import SqliteStore
from messenger_widgets.worker import Worker, build_context
from messenger_widgets.worker.handlers import HANDLERS
from messenger_widgets.worker.runner import Outcome

SECRET = "unit-test-secret-" + "y" * 32


class FakeAttachments:
    def __init__(self) -> None:
        self.objects: dict[str, int] = {}

    def key_from_url(self, url: str) -> str | None:
        prefix = "https://bucket.s3.amazonaws.com/"
        return url[len(prefix) :] if url.startswith(prefix) else None

    def validate_key(self, key: str) -> str:
        from messenger_widgets.attachments import Attachments

        return Attachments.validate_key(key)

    def head(self, key: str) -> tuple[int, str] | None:
        size = self.objects.get(key)
        return None if size is None else (size, "image/png")


class Harness:
    def __init__(self, tmp: Path, store: Any = None) -> None:
        self.transport = InMemoryTransport()
        t = self.transport
        dlq = t.create_queue("dlq")
        self.requests = t.create_queue(
            "requests",
            {
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": "arn:x:dlq", "maxReceiveCount": 5}
                )
            },
        )
        self.responses = t.create_queue("responses")
        self.dlq = dlq
        self.now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
        settings = Settings(
            request_queue_url=self.requests,
            response_queue_url=self.responses,
            bucket="bucket",
            token_secret=SECRET,
            session_ttl=3600,
        )
        self.attachments = FakeAttachments()
        self.store = store or SqliteStore(tmp / "s.sqlite3")
        ctx = build_context(
            settings,
            transport=t,
            attachments=self.attachments,
            store=self.store,
            passwords=Passwords.fast_for_tests(),
            clock=lambda: self.now,
        )
        self.worker = Worker(ctx, self.requests, dlq, wait_seconds=0)

    def call(self, controller: str, method: str, body: Any, token: str | None = None) -> str:
        message_id = self.transport.send(
            self.requests, Request(controller, method, body, token).encode()
        )
        self.worker.poll_once()
        return message_id

    def reply(self, message_id: str) -> Reply:
        for envelope in self.transport.receive(self.responses, 10, 0):
            reply = Reply.decode(envelope)
            if reply.res_to == message_id:
                return reply
        raise AssertionError("no reply")

    def pushes(self, url: str) -> list[Push]:
        out = []
        while got := self.transport.receive(url, 10, 0):
            out += [Push.decode(e) for e in got]
            self.transport.delete_batch(url, [e.receipt_handle for e in got])
        return out

    def user(self, first: str) -> dict[str, Any]:
        email = f"{first.lower()}@example.com"
        res = self.call(
            "user",
            "register",
            {"fName": first, "lName": "T", "email": email, "password": "password1"},
        )
        assert self.reply(res).status == 200
        res = self.call("user", "login", {"email": email, "password": "password1"})
        body = self.reply(res).body
        self.pushes(body["url"])
        return body


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_every_contract_method_has_a_handler() -> None:
    from messenger_widgets.protocol import METHODS

    assert set(HANDLERS) == set(METHODS)


def test_message_flow_and_acks(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    h.call(
        "message",
        "add",
        {"body": "hi", "userID": bob["userID"], "name": "x", "clientMessageId": "c"},
        ada["token"],
    )
    [msg] = h.pushes(bob["url"])
    [sent] = h.pushes(ada["url"])
    assert msg.action == "message" and msg.body["name"] == "Ada T" and msg.body["to"] is None
    assert sent.action == "sent" and sent.body["messageID"] == msg.body["messageID"]
    assert h.transport.depth(h.requests) == 0


def test_redelivered_login_reuses_the_session(h: Harness) -> None:
    h.call(
        "user", "register", {"fName": "R", "lName": "D", "email": "r@d.io", "password": "password1"}
    )
    request = Request("user", "login", {"email": "r@d.io", "password": "password1"})
    envelope = Envelope("same-id", "r1", request.encode().body, request.encode().attributes)
    h.worker.process([envelope])
    h.worker.process([envelope])
    replies = [Reply.decode(e) for e in h.transport.receive(h.responses, 10, 0)]
    replies = [r for r in replies if r.res_to == "same-id"]
    assert len(replies) == 2 and replies[0].body["url"] == replies[1].body["url"]


def test_redelivered_register_answers_200_again(h: Harness) -> None:
    request = Request(
        "user", "register", {"fName": "R", "lName": "D", "email": "q@d.io", "password": "password1"}
    )
    envelope = Envelope("reg-id", "r1", request.encode().body, request.encode().attributes)
    h.worker.process([envelope])
    h.worker.process([envelope])
    statuses = [Reply.decode(e).status for e in h.transport.receive(h.responses, 10, 0)]
    assert statuses == [200, 200]


def test_store_failure_leaves_the_record_for_redelivery(tmp_path: Path) -> None:
    class Down(SqliteStore):
        def get_user_by_email(self, email: str) -> Any:
            raise StoreError("down")

    h = Harness(tmp_path, store=Down(tmp_path / "down.sqlite3"))
    request = Request("user", "login", {"email": "a@b.io", "password": "password1"})
    results = h.worker.process(
        [Envelope("m", "r", request.encode().body, request.encode().attributes)]
    )
    assert [r.outcome for r in results] == [Outcome.RETRY]
    assert h.transport.receive(h.responses, 10, 0) == []


def test_batch_of_pushes_uses_one_batch_call_per_queue(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    for i in range(10):
        h.transport.send(
            h.requests,
            Request(
                "message",
                "add",
                {"body": f"{i}", "userID": bob["userID"], "name": ""},
                ada["token"],
            ).encode(),
        )
    h.transport.calls.clear()
    h.worker.poll_once()
    assert h.transport.calls.count("SendMessageBatch") == 2  # bob's queue and ada's queue
    assert h.transport.calls.count("DeleteMessageBatch") == 1
    assert len(h.pushes(bob["url"])) == 10


def test_push_to_a_vanished_session_queue_ends_that_session(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    h.transport.delete_queue(bob["url"])  # e.g. the local stack restarted
    h.call("message", "add", {"body": "hi", "userID": bob["userID"], "name": ""}, ada["token"])
    assert [p.action for p in h.pushes(ada["url"])] == ["sent"]
    session_id = bob["url"].rsplit("-", 1)[-1]
    assert h.store.get_session(session_id).ended_at is not None  # type: ignore[union-attr]


def test_expired_session_gets_401_once_then_dead_letters(h: Harness) -> None:
    ada = h.user("Ada")
    h.now += timedelta(hours=2)
    h.call("user", "searchUser", {"name": "x"}, ada["token"])
    [error] = h.pushes(ada["url"])
    assert error.action == "error" and error.status == 401
    assert h.transport.depth(h.dlq) == 0
    h.worker.reap()
    h.call("user", "searchUser", {"name": "x"}, ada["token"])
    assert h.transport.depth(h.dlq) == 1


def test_oversized_history_page_is_trimmed_to_fit_one_message(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    big = "€" * 10_000  # 30,000 bytes each in UTF-8
    for i in range(12):
        h.call(
            "message",
            "add",
            {"body": big, "userID": bob["userID"], "name": "", "clientMessageId": str(i)},
            ada["token"],
        )
    h.pushes(ada["url"])
    h.call("message", "history", {"userID": bob["userID"]}, ada["token"])
    [page] = h.pushes(ada["url"])
    orders = [m["order"] for m in page.body["messages"]]
    assert 0 < len(orders) < 12 and orders[-1] == 12 and page.body["hasMore"] is True
    h.call("message", "selectSearchUser", {"userID": bob["userID"]}, ada["token"])
    [select] = h.pushes(ada["url"])
    assert 0 < len(select.body) < 12 and select.body[-1]["order"] == 12


def test_throttle_lifts_when_the_window_has_passed(h: Harness) -> None:
    h.call(
        "user", "register", {"fName": "T", "lName": "W", "email": "t@w.io", "password": "password1"}
    )
    for _ in range(5):
        assert (
            h.reply(h.call("user", "login", {"email": "t@w.io", "password": "wrong!!!"})).status
            == 401
        )
    h.now += timedelta(minutes=14)
    assert (
        h.reply(h.call("user", "login", {"email": "T@W.io", "password": "password1"})).status == 429
    )
    h.now += timedelta(minutes=2)
    assert (
        h.reply(h.call("user", "login", {"email": "t@w.io", "password": "password1"})).status == 200
    )


def test_store_failure_while_answering_an_expired_token_is_retried(tmp_path: Path) -> None:
    class Flaky(SqliteStore):
        broken = False

        def get_session(self, session_id: str) -> Any:
            if self.broken:
                raise StoreError("down")
            return super().get_session(session_id)

    store = Flaky(tmp_path / "flaky.sqlite3")
    h = Harness(tmp_path, store=store)
    ada = h.user("Ada")
    h.now += timedelta(hours=2)
    store.broken = True
    request = Request("user", "searchUser", {"name": "x"}, ada["token"])
    results = h.worker.process(
        [Envelope("e", "r", request.encode().body, request.encode().attributes)]
    )
    assert [r.outcome for r in results] == [Outcome.RETRY]
