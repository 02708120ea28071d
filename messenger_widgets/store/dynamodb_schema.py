"""The DynamoDB tables behind `DynamoStore`: names, keys, indexes and item codecs.

`table_definitions` is the one description of both tables; `create_tables` applies it (tests,
`messenger provision`) and a CloudFormation template should mirror it. The key design and the
reasons for it are in the docstring of `store/dynamodb.py`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import StoreError
from .base import SessionRecord, StoredMessage, User

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        CreateTableInputTypeDef,
        GlobalSecondaryIndexTypeDef,
        TransactWriteItemTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]

PK, SK = "pk", "sk"
ABSENT, PRESENT = f"attribute_not_exists({PK})", f"attribute_exists({PK})"
TTL_ATTRIBUTE = "ttl"  # epoch seconds; DynamoDB deletes the item some time after it passes

# users table: indexes
SESSIONS_BY_USER = "sessions_by_user"  # owner, created_key: sessions not yet ended
SESSIONS_TO_REAP = "sessions_to_reap"  # reap_pk, reap_key: sessions whose queue still exists
USERS_BY_NAME = "users_by_name"  # name_pk, name_sort: every profile, in name order
# messages table: indexes
MESSAGES_BY_SENDER = "messages_by_sender"  # sender_id, time_key
MESSAGES_BY_RECIPIENT = "messages_by_recipient"  # recipient_id, time_key
UNREAD_BY_READER = "unread_by_reader"  # unread_pk, sk: unread messages of one direction

PROFILE, EMAIL, SESSION, COUNTER, IDEM = "PROFILE", "EMAIL", "SESSION", "COUNTER", "IDEM"
MSG_PREFIX = "MSG#"
ORDER_DIGITS = 20  # zero-padded, so text order is number order
NAME_PK, REAP_PK = "USER", "REAP"
NAME_SORT_CHARS = 200  # 4 bytes a character at most: stays under the 1,024-byte key limit
AFTER = "~"  # sorts after "#" and every digit: `ts + AFTER` is "strictly after ts"

RETRYABLE_CANCELLATIONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})

IDEMPOTENCY_TTL = timedelta(days=15)  # SQS keeps a message 14 days at most
FAILED_LOGIN_TTL = timedelta(days=1)  # throttling looks back 15 minutes
REAPED_SESSION_TTL = timedelta(days=30)  # long after every token of the session has expired


class ConditionFailed(StoreError):
    """A conditional write's condition was false; the caller says what that means."""


class TransactionCancelled(StoreError):
    """A transaction was cancelled; `codes` has one reason code per item ("None" if fine)."""

    def __init__(self, message: str, codes: list[str]) -> None:
        super().__init__(message)
        self.codes = codes


# --- keys ---------------------------------------------------------------------------------
def user_key(user_id: str) -> Item:
    return {PK: s(f"USER#{user_id}"), SK: s(PROFILE)}


def email_key(email: str) -> Item:
    return {PK: s(f"EMAIL#{email.casefold()}"), SK: s(EMAIL)}


def session_key(session_id: str) -> Item:
    return {PK: s(f"SESSION#{session_id}"), SK: s(SESSION)}


def activity_pk(user_id: str) -> str:
    return f"ACT#{user_id}"


def failed_login_pk(email: str) -> str:
    return f"FAIL#{email.casefold()}"


def conversation_pk(key: str) -> str:
    return f"CONV#{key}"


def counter_key(key: str) -> Item:
    return {PK: s(conversation_pk(key)), SK: s(COUNTER)}


def message_sk(order: int) -> str:
    return f"{MSG_PREFIX}{order:0{ORDER_DIGITS}d}"


def idempotency_key(sender_id: str, client_message_id: str) -> Item:
    # Sender ids are the store's own hex ids, so "#" cannot shift between the two parts.
    return {PK: s(f"IDEM#{sender_id}#{client_message_id}"), SK: s(IDEM)}


def from_attribute(sender_id: str) -> str:
    """The counter item's attribute holding the newest order that sender wrote."""
    return f"from#{sender_id}"


def unread_pk(key: str, reader_id: str) -> str:
    return f"{key}#to#{reader_id}"


def time_key(created: str, order: int, key: str) -> str:
    """Time first, then order: a conversation's messages of one instant stay in order."""
    return f"{created}#{order:0{ORDER_DIGITS}d}#{key}"


# --- values -------------------------------------------------------------------------------
def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def flag(value: bool) -> AttributeValueTypeDef:
    return {"BOOL": value}


def values(**named: AttributeValueTypeDef) -> dict[str, AttributeValueTypeDef]:
    """`ExpressionAttributeValues` from keywords: values(now=s(x)) is {":now": {"S": x}}."""
    return {f":{name}": value for name, value in named.items()}


def put_op(table: str, item: Item, condition: str) -> TransactWriteItemTypeDef:
    return {"Put": {"TableName": table, "Item": item, "ConditionExpression": condition}}


def ts(moment: datetime) -> str:
    """Fixed-width UTC text, so comparing text compares instants; naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def dt(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def expiry(moment: datetime, after: timedelta) -> AttributeValueTypeDef:
    return n(int((moment + after).timestamp()))


def get_s(item: Item, name: str) -> str:
    return item[name]["S"]


def opt_s(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else value["S"]


def get_n(item: Item, name: str) -> int:
    return int(item[name]["N"])


def get_flag(item: Item, name: str) -> bool:
    return bool(item[name]["BOOL"])


def encode_body(body: str | dict[str, Any]) -> tuple[str, str]:
    """JSON with a kind marker, so a text that looks like JSON still comes back a str."""
    kind = "text" if isinstance(body, str) else "object" if isinstance(body, dict) else ""
    if not kind:
        raise StoreError(f"a message body must be a str or a dict, not {type(body).__name__}")
    try:
        return kind, json.dumps(body, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a message body cannot be stored as JSON: {exc}") from exc


# --- items --------------------------------------------------------------------------------
def user_item(user: User) -> Item:
    fold = user.name.casefold()
    item: Item = {
        **user_key(user.user_id),
        "user_id": s(user.user_id),
        "first_name": s(user.first_name),
        "last_name": s(user.last_name),
        "email": s(user.email),
        "password_hash": s(user.password_hash),
        "dark_mode": flag(user.dark_mode),
        "created_at": s(ts(user.created_at)),
        "created_by": s(user.created_by),
        "name_pk": s(NAME_PK),
        "name_sort": s(fold[:NAME_SORT_CHARS]),
        "name_fold": s(fold),
    }
    return item


def session_item(session: SessionRecord) -> Item:
    sid, created, expires = session.session_id, ts(session.created_at), ts(session.expires_at)
    return {
        **session_key(sid),
        "session_id": s(sid),
        "user_id": s(session.user_id),
        "queue_url": s(session.queue_url),
        "created_at": s(created),
        "expires_at": s(expires),
        "reaped": flag(False),
        "owner": s(session.user_id),
        "created_key": s(f"{created}#{sid}"),
        "reap_pk": s(REAP_PK),
        "reap_key": s(f"{expires}#{sid}"),
    }


def message_item(message: StoredMessage, key: str, kind: str, payload: str) -> Item:
    created = ts(message.created_at)
    return {
        PK: s(conversation_pk(key)),
        SK: s(message_sk(message.order)),
        "message_id": s(message.message_id),
        "conversation": s(key),
        "order_no": n(message.order),
        "sender_id": s(message.sender_id),
        "recipient_id": s(message.recipient_id),
        "body_kind": s(kind),
        "body": s(payload),
        "created_at": s(created),
        "is_read": flag(False),
        "client_message_id": s(message.client_message_id),
        "time_key": s(time_key(created, message.order, key)),
        "unread_pk": s(unread_pk(key, message.recipient_id)),
    }


def decode_user(item: Item) -> User:
    try:
        logout = opt_s(item, "last_logout_at")
        return User(
            get_s(item, "user_id"), get_s(item, "first_name"), get_s(item, "last_name"),
            get_s(item, "email"), get_s(item, "password_hash"), get_flag(item, "dark_mode"),
            dt(get_s(item, "created_at")), None if logout is None else dt(logout),
            get_s(item, "created_by"),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise StoreError(f"a user item is corrupt: {exc!r}") from exc


def decode_session(item: Item) -> SessionRecord:
    try:
        ended = opt_s(item, "ended_at")
        return SessionRecord(
            get_s(item, "session_id"), get_s(item, "user_id"), get_s(item, "queue_url"),
            dt(get_s(item, "created_at")), dt(get_s(item, "expires_at")),
            None if ended is None else dt(ended), get_flag(item, "reaped"),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise StoreError(f"a session item is corrupt: {exc!r}") from exc


def decode_message(item: Item) -> StoredMessage:
    """Check the kind marker, so a corrupt item is a `StoreError`, not a wrong-typed body."""
    try:
        message_id = get_s(item, "message_id")
        body = json.loads(get_s(item, "body"))
        if not isinstance(body, str if get_s(item, "body_kind") == "text" else dict):
            raise ValueError("a body of the wrong kind")
        return StoredMessage(
            message_id, get_s(item, "sender_id"), get_s(item, "recipient_id"), body,
            get_n(item, "order_no"), dt(get_s(item, "created_at")), get_flag(item, "is_read"),
            get_s(item, "client_message_id"),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise StoreError(f"a message item is corrupt: {exc!r}") from exc


# --- tables -------------------------------------------------------------------------------
def _index(
    name: str, hash_key: str, range_key: str, projection: list[str] | None = None
) -> GlobalSecondaryIndexTypeDef:
    """ALL attributes, or only `projection` (plus the keys) when given."""
    index: GlobalSecondaryIndexTypeDef = {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    if projection is not None:
        index["Projection"] = (
            {"ProjectionType": "INCLUDE", "NonKeyAttributes": projection}
            if projection
            else {"ProjectionType": "KEYS_ONLY"}
        )
    return index


def _table(name: str, indexes: list[GlobalSecondaryIndexTypeDef]) -> CreateTableInputTypeDef:
    keys = {PK, SK} | {k["AttributeName"] for i in indexes for k in i["KeySchema"]}
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": key, "AttributeType": "S"} for key in sorted(keys)
        ],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": indexes,
    }


def table_definitions(users_table: str, messages_table: str) -> list[CreateTableInputTypeDef]:
    """`CreateTable` arguments for both tables; both also get TTL on `TTL_ATTRIBUTE`."""
    return [
        _table(
            users_table,
            [
                _index(SESSIONS_BY_USER, "owner", "created_key"),
                _index(SESSIONS_TO_REAP, "reap_pk", "reap_key"),
                _index(USERS_BY_NAME, "name_pk", "name_sort", ["user_id", "name_fold"]),
            ],
        ),
        _table(
            messages_table,
            [
                _index(MESSAGES_BY_SENDER, "sender_id", "time_key"),
                _index(MESSAGES_BY_RECIPIENT, "recipient_id", "time_key"),
                _index(UNREAD_BY_READER, "unread_pk", SK, []),
            ],
        ),
    ]


def create_tables(client: DynamoDBClient, prefix: str) -> tuple[str, str]:
    """Create `<prefix>-users` and `<prefix>-messages` (if missing), wait until they are
    active, switch TTL on; return (users table, messages table)."""
    users_table, messages_table = f"{prefix}-users", f"{prefix}-messages"
    try:
        for definition in table_definitions(users_table, messages_table):
            try:
                client.create_table(**definition)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise
        for table in (users_table, messages_table):
            client.get_waiter("table_exists").wait(
                TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
            ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                client.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )
    except (ClientError, BotoCoreError) as exc:
        raise StoreError(f"creating the DynamoDB tables {prefix}-* failed: {exc}") from exc
    return users_table, messages_table
