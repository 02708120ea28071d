"""Crashes, store failures, several workers, clean shutdown and the session reaper."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from messenger_widgets.config import Settings
from messenger_widgets.errors import StoreError
from messenger_widgets.provision import Resources
from messenger_widgets.store.sqlite import SqliteStore

from ..conftest import REGION
from .conftest import WorkerFactory, start_worker_process
from .conftest import stop_process as stop
from .rawclient import RawClient

pytestmark = pytest.mark.slow


def raw(stack: tuple[Settings, Resources]) -> RawClient:
    settings, resources = stack
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=settings.endpoint_url)
    return RawClient(sqs, resources.request_queue_url, resources.response_queue_url)


def conversation(client: RawClient, me: Any, other_id: str) -> list[dict[str, Any]]:
    """Every message of a conversation, paged through `history`."""
    out: list[dict[str, Any]] = []
    before = None
    while True:
        body: dict[str, Any] = {"userID": other_id, "limit": 100}
        if before:
            body["beforeOrder"] = before
        client.send("message", "history", body, me.token)
        page = client.expect(me.url, "history").body
        out = page["messages"] + out
        if not page["hasMore"]:
            return out
        before = page["messages"][0]["order"]


def dlq_depth(client: RawClient, resources: Resources) -> int:
    return client.depth(resources.dead_letter_queue_url)


def test_worker_killed_mid_batch_loses_nothing(fresh_stack: tuple[Settings, Resources]) -> None:
    settings, resources = fresh_stack
    client = raw(fresh_stack)
    client.sqs.set_queue_attributes(
        QueueUrl=resources.request_queue_url, Attributes={"VisibilityTimeout": "3"}
    )
    first = start_worker_process(settings)
    try:
        ada, bob = client.user("Ada"), client.user("Bob")
        for i in range(60):
            body = {"body": f"k{i}", "userID": bob.user_id, "name": "", "clientMessageId": f"k{i}"}
            client.send("message", "add", body, ada.token)
        deadline = time.monotonic() + 30
        while not client.pushes(bob.url, wait=0) and time.monotonic() < deadline:
            pass
        first.send_signal(signal.SIGKILL)  # mid-stream: some handled, some held, some waiting
        first.wait(timeout=10)
        second = start_worker_process(settings)
        try:
            client.settle(90)
            stored = conversation(client, ada, bob.user_id)
        finally:
            stop(second)
    finally:
        stop(first)
    assert sorted(m["body"] for m in stored) == sorted(f"k{i}" for i in range(60))
    assert [m["order"] for m in stored] == list(range(1, 61))
    assert dlq_depth(client, resources) == 0


def test_several_worker_processes_keep_order_without_gaps(
    fresh_stack: tuple[Settings, Resources],
) -> None:
    settings, resources = fresh_stack
    client = raw(fresh_stack)
    workers = [start_worker_process(settings) for _ in range(3)]
    try:
        ada, bob, cy = client.user("Ada"), client.user("Bob"), client.user("Cy")
        for i in range(40):
            for sender, to in ((ada, bob), (bob, ada), (cy, ada)):
                body = {"body": f"{sender.name}{i}", "userID": to.user_id, "name": ""}
                client.send("message", "add", body, sender.token)
        client.settle(120)
        ab = conversation(client, ada, bob.user_id)
        ac = conversation(client, ada, cy.user_id)
    finally:
        for w in workers:
            stop(w)
    assert [m["order"] for m in ab] == list(range(1, 81))
    assert [m["order"] for m in ac] == list(range(1, 41))
    assert len({m["messageID"] for m in ab + ac}) == 120
    assert dlq_depth(client, resources) == 0


def test_sigterm_finishes_what_it_holds(fresh_stack: tuple[Settings, Resources]) -> None:
    settings, resources = fresh_stack
    client = raw(fresh_stack)
    proc = start_worker_process(settings, wait_seconds=5)
    ada, bob = client.user("Ada"), client.user("Bob")
    for i in range(25):
        client.send(
            "message", "add", {"body": f"t{i}", "userID": bob.user_id, "name": ""}, ada.token
        )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    attrs = client.sqs.get_queue_attributes(
        QueueUrl=resources.request_queue_url,
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"  # nothing held and dropped
    second = start_worker_process(settings)
    try:
        client.settle(60)
        assert sorted(m["body"] for m in conversation(client, ada, bob.user_id)) == sorted(
            f"t{i}" for i in range(25)
        )
    finally:
        stop(second)


class FlakyStore:
    """A real SQLite store whose `add_message` fails the first time, as a store outage would."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.failures = 0

    def add_message(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures == 0:
            self.failures += 1
            raise StoreError("database is unavailable")
        return self.inner.add_message(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_store_failure_mid_request_is_redelivered_and_processed_once(
    fresh_stack: tuple[Settings, Resources], in_process_worker: WorkerFactory
) -> None:
    settings, _ = fresh_stack
    store = FlakyStore(SqliteStore(settings.sqlite_path))
    in_process_worker(settings, store=store)
    client = raw(fresh_stack)
    ada, bob = client.user("Ada"), client.user("Bob")
    client.send(
        "message", "add", {"body": "survives", "userID": bob.user_id, "name": ""}, ada.token
    )
    got = client.expect(bob.url, "message").body
    assert got["body"] == "survives" and store.failures == 1
    assert [p.action for p in client.quiet(bob.url, 2)] == []
    assert [m["body"] for m in conversation(client, ada, bob.user_id)] == ["survives"]


def test_reaper_deletes_expired_session_queues_after_a_minute(
    fresh_stack: tuple[Settings, Resources], in_process_worker: WorkerFactory
) -> None:
    settings, _ = fresh_stack
    now = [datetime.now(UTC)]
    worker, _ = in_process_worker(settings, run=False, clock=lambda: now[0])
    client = raw(fresh_stack)
    res_to = client.send(
        "user", "register", {"fName": "R", "lName": "P", "email": "r@p.io", "password": "12345678"}
    )
    worker.poll_once()
    assert client.reply(res_to)[0] == 200
    res_to = client.send("user", "login", {"email": "r@p.io", "password": "12345678"})
    worker.poll_once()
    status, body = client.reply(res_to)
    assert status == 200
    ttl = timedelta(seconds=settings.session_ttl)
    now[0] += ttl + timedelta(seconds=30)
    assert worker.reap() == 0 and client.queue_exists(body["url"])  # not before 60 s
    now[0] += timedelta(seconds=31)
    assert worker.reap() == 1
    assert not client.queue_exists(body["url"])


class BrokenStore(FlakyStore):
    """A store whose `search_users` always fails: the request must end in the DLQ."""

    def search_users(self, *args: Any, **kwargs: Any) -> Any:
        self.failures += 1
        raise StoreError("always down")

    def add_message(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.add_message(*args, **kwargs)


def test_a_request_that_always_fails_lands_in_the_dlq_after_five_receives(
    fresh_stack: tuple[Settings, Resources], in_process_worker: WorkerFactory
) -> None:
    settings, resources = fresh_stack
    store = BrokenStore(SqliteStore(settings.sqlite_path))
    in_process_worker(settings, store=store)
    client = raw(fresh_stack)
    me = client.user("Unlucky")
    client.send("user", "searchUser", {"name": "poison-marker"}, me.token)
    deadline = time.monotonic() + 60
    while dlq_depth(client, resources) == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    got = client.sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, WaitTimeSeconds=1)
    assert "poison-marker" in got["Messages"][0]["Body"]
    assert store.failures == 5
    assert client.depth(resources.request_queue_url) == 0
