"""`DynamoStore`: the same store contract as SQLite, on moto DynamoDB over HTTP.

moto applies a `TransactWriteItems` (or a conditional put) without a lock: two concurrent
requests can both pass their conditions, and a cancelled transaction restores a deep copy of
the whole table, undoing other requests' writes made meanwhile. DynamoDB itself isolates
them. So these tests talk to a moto server that runs one request at a time (same process and
backend as the shared `moto_endpoint`): the clients still race exactly as on AWS — reading
stale counters, losing conditions, retrying — while the server behaves as DynamoDB would.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import pytest
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from messenger_widgets.config import Settings
from messenger_widgets.errors import StoreError
from messenger_widgets.store import open_store
from messenger_widgets.store.dynamodb import DynamoStore, create_tables
from messenger_widgets.store.dynamodb_schema import table_definitions

from ..conftest import REGION
from ..unit.store.contract import T0, StoreContract, at, new_user, send


class _OneAtATime:
    """WSGI middleware: serve one request at a time, as DynamoDB's isolation would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


@pytest.fixture(scope="module")
def dynamo_endpoint(moto_endpoint: str) -> Iterator[str]:
    app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(10)


def dynamodb_client(endpoint: str) -> Any:
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)


def count_queries(store: DynamoStore) -> list[str]:
    """Record the index (or table) of every Query the store's client sends from now on."""
    calls: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params.get("IndexName", params["TableName"]))

    store._client.meta.events.register("provide-client-params.dynamodb.Query", record)
    return calls


@pytest.fixture
def tables(dynamo_endpoint: str) -> Iterator[tuple[str, str]]:
    client = dynamodb_client(dynamo_endpoint)
    names = create_tables(client, f"t{uuid.uuid4().hex[:12]}")
    yield names
    for name in names:
        client.delete_table(TableName=name)


@pytest.fixture
def make_store(
    dynamo_endpoint: str, tables: tuple[str, str]
) -> Iterator[Callable[[], DynamoStore]]:
    opened: list[DynamoStore] = []

    def make() -> DynamoStore:  # a client of its own, like another worker process
        opened.append(DynamoStore(dynamodb_client(dynamo_endpoint), *tables))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], DynamoStore]) -> DynamoStore:
    return make_store()


class TestDynamoStoreContract(StoreContract):
    """The whole contract, on fresh tables per test."""


# --- what only DynamoDB has to prove ------------------------------------------------------
def test_create_tables_is_idempotent_and_matches_definitions(
    dynamo_endpoint: str, tables: tuple[str, str]
) -> None:
    client = dynamodb_client(dynamo_endpoint)
    prefix = tables[0].removesuffix("-users")
    assert create_tables(client, prefix) == tables
    for definition in table_definitions(*tables):
        table = client.describe_table(TableName=definition["TableName"])["Table"]
        assert table["KeySchema"] == definition["KeySchema"]
        indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
        assert indexes == {
            i["IndexName"]: i["KeySchema"] for i in definition["GlobalSecondaryIndexes"]
        }
        ttl = client.describe_time_to_live(TableName=definition["TableName"])
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"


def test_open_store_builds_a_dynamo_store(dynamo_endpoint: str, tables: tuple[str, str]) -> None:
    settings = Settings(
        store="dynamodb",
        users_table=tables[0],
        messages_table=tables[1],
        region=REGION,
        endpoint_url=dynamo_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    store = open_store(settings)
    assert isinstance(store, DynamoStore)
    user = new_user(store)
    assert store.get_user(user.user_id) == user


def test_missing_table_is_a_store_error(dynamo_endpoint: str) -> None:
    store = DynamoStore(dynamodb_client(dynamo_endpoint), "no-such-users", "no-such-messages")
    with pytest.raises(StoreError) as caught:
        store.get_user("x")
    assert type(caught.value) is StoreError and "ResourceNotFound" in str(caught.value)


def test_closed_store_raises_store_error(store: DynamoStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_user("x")


def test_unstorable_body_is_a_store_error(store: DynamoStore) -> None:
    a, b = new_user(store), new_user(store)
    body: Any = {"size": float("nan")}
    with pytest.raises(StoreError):
        store.add_message(a.user_id, b.user_id, body, "", T0)
    assert store.conversation(a.user_id, b.user_id, 10) == ([], False)


def test_idempotency_item_expires_after_sqs_retention(
    store: DynamoStore, dynamo_endpoint: str, tables: tuple[str, str]
) -> None:
    a, b = new_user(store), new_user(store)
    store.add_message(a.user_id, b.user_id, "x", "c-1", at(0))
    client = dynamodb_client(dynamo_endpoint)
    key = {"pk": {"S": f"IDEM#{a.user_id}#c-1"}, "sk": {"S": "IDEM"}}
    item = client.get_item(TableName=tables[1], Key=key)["Item"]
    assert int(item["ttl"]["N"]) == int(at(15 * 24 * 3600).timestamp())


def test_long_conversation_pages_across_dynamodb_pages(store: DynamoStore) -> None:
    """Bodies big enough that one query page (1 MB) cannot hold a 100-message page."""
    a, b = new_user(store), new_user(store)
    big = "é" * 9_000
    for i in range(130):
        send(store, a, b, f"{i}{big}", t=i)
    queries = count_queries(store)
    messages, more = store.conversation(a.user_id, b.user_id, 100)
    assert [m.order for m in messages] == list(range(31, 131)) and more
    assert len(queries) >= 2  # the 101 newest do not fit in one page
    assert len(store.messages_since(b.user_id, None, 120)) == 120
    assert store.count_messages_since(a.user_id, None) == 130


def test_search_reads_past_the_first_index_page(store: DynamoStore) -> None:
    caller = new_user(store, "Zed", "Caller")
    for i in range(30):
        new_user(store, "Ann", f"N{i:02d}")
    store.search_page = 4  # pages of 4 index items: 30 users take 8 pages
    queries = count_queries(store)
    found = store.search_users("ann n", caller.user_id, 5)
    assert queries == ["users_by_name"] * 2  # 8 matches read; the 5 first are certain
    assert [u.last_name for u in found] == ["N00", "N01", "N02", "N03", "N04"]
    assert len(store.search_users("ann", caller.user_id, 50)) == 30
    assert [u.last_name for u in store.search_users("9", caller.user_id, 50)] == [
        "N09",
        "N19",
        "N29",
    ]


def test_mark_read_after_many_unread(store: DynamoStore) -> None:
    a, b = new_user(store), new_user(store)
    for i in range(30):
        send(store, a, b, f"m{i}", t=i)
    assert store.mark_read(b.user_id, a.user_id) == 30
    messages, _ = store.conversation(a.user_id, b.user_id, 100)
    assert all(m.is_read for m in messages)
