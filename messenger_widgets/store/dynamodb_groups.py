"""Groups (v1.1) in DynamoDB: the group methods of `DynamoStore`, on the messages table.

No new table and no new index: every group item lives under keys the existing definitions
already serve.

| pk                            | sk                     | holds                           |
|-------------------------------|------------------------|---------------------------------|
| `GROUP#<id>`                  | `GROUP`                | name, creator, `member#<user>`  |
| `GROUP#<id>`                  | `COUNTER`              | the group's last order          |
| `GROUP#<id>`                  | `MSG#<order, 20 dig.>` | one message                     |
| `MEMBER#<user>`               | `<created>#<group id>` | the user's groups, oldest first |
| `IDEM#<sender>#<client id>`   | `GROUP`                | message idempotency (TTL 15 d)  |
| `IDEM#<creator>#<client key>` | `GROUPCREATE`          | creation idempotency (TTL 15 d) |

On the group item, `member#<user>` is a current member's read mark (the order they have
read up to) and `former#<user>` the time a former member left.

A group message's `recipient_id` is `GROUP#<id>` (the group is its recipient) with the usual
`time_key`, so the `messages_by_recipient` index serves a group's messages by time; user ids
are hex, so they never meet. It has no `sender_id` (the author is in `author_id`) and no
`unread_pk`, so it is in neither `messages_by_sender` nor `unread_by_reader`, and the 1:1
queries never see it.

Writes follow the 1:1 pattern: a message is one `TransactWriteItems` of the counter
(`last_order = :seen`), a condition check that the sender is still a member, the message
and its idempotency item; a writer that loses the counter race reads it again and retries.
Creating a group is one transaction of the group item, one `MEMBER#` item per member (50
at most: 52 items, under the limit of 100) and the idempotency item; leaving removes the
member attribute and the `MEMBER#` item together. Read marks are single conditional
updates that only move forward.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, StoreError
from .base import Group, GroupMember, GroupMessage
from .dynamodb_schema import (
    ABSENT,
    AFTER,
    IDEMPOTENCY_TTL,
    MESSAGES_BY_RECIPIENT,
    MSG_PREFIX,
    PK,
    PRESENT,
    RETRYABLE_CANCELLATIONS,
    SK,
    TTL_ATTRIBUTE,
    ConditionFailed,
    TransactionCancelled,
    dt,
    encode_body,
    expiry,
    get_n,
    get_s,
    message_sk,
    n,
    put_op,
    s,
    time_key,
    ts,
    values,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef, TransactWriteItemTypeDef

    from .dynamodb_schema import Item

GROUP_SK, COUNTER_SK, GROUP_IDEM_SK, CREATE_IDEM_SK = "GROUP", "COUNTER", "GROUP", "GROUPCREATE"
MEMBER_ATTR, FORMER_ATTR = "member#", "former#"


# --- keys and items -------------------------------------------------------------------------
def group_pk(group_id: str) -> str:
    return f"GROUP#{group_id}"


def group_key(group_id: str) -> Item:
    return {PK: s(group_pk(group_id)), SK: s(GROUP_SK)}


def group_counter_key(group_id: str) -> Item:
    return {PK: s(group_pk(group_id)), SK: s(COUNTER_SK)}


def membership_key(user_id: str, created: str, group_id: str) -> Item:
    return {PK: s(f"MEMBER#{user_id}"), SK: s(f"{created}#{group_id}")}


def group_idempotency_key(sender_id: str, client_message_id: str) -> Item:
    return {PK: s(f"IDEM#{sender_id}#{client_message_id}"), SK: s(GROUP_IDEM_SK)}


def create_idempotency_key(creator_id: str, client_key: str) -> Item:
    return {PK: s(f"IDEM#{creator_id}#{client_key}"), SK: s(CREATE_IDEM_SK)}


def group_message_item(message: GroupMessage, kind: str, payload: str) -> Item:
    created, gid = ts(message.created_at), message.group_id
    return {
        PK: s(group_pk(gid)),
        SK: s(message_sk(message.order)),
        "message_id": s(message.message_id),
        "group_id": s(gid),
        "order_no": n(message.order),
        "author_id": s(message.sender_id),
        "body_kind": s(kind),
        "body": s(payload),
        "created_at": s(created),
        "client_message_id": s(message.client_message_id),
        "recipient_id": s(group_pk(gid)),
        "time_key": s(time_key(created, message.order, gid)),
    }


def decode_group(item: Item) -> Group:
    try:
        members = sorted(
            (
                GroupMember(name.removeprefix(MEMBER_ATTR), int(value["N"]))
                for name, value in item.items()
                if name.startswith(MEMBER_ATTR)
            ),
            key=lambda m: m.user_id,
        )
        former = sorted(
            name.removeprefix(FORMER_ATTR) for name in item if name.startswith(FORMER_ATTR)
        )
        return Group(
            get_s(item, "group_id"), get_s(item, "name"), get_s(item, "created_by"),
            dt(get_s(item, "created_at")), tuple(members), tuple(former),
            get_s(item, "client_key"),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise StoreError(f"a group item is corrupt: {exc!r}") from exc


def decode_group_message(item: Item) -> GroupMessage:
    try:
        message_id = get_s(item, "message_id")
        body = json.loads(get_s(item, "body"))
        if not isinstance(body, str if get_s(item, "body_kind") == "text" else dict):
            raise ValueError("a body of the wrong kind")
        return GroupMessage(
            message_id, get_s(item, "group_id"), get_s(item, "author_id"), body,
            get_n(item, "order_no"), dt(get_s(item, "created_at")),
            get_s(item, "client_message_id"),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise StoreError(f"a group message item is corrupt: {exc!r}") from exc


class DynamoGroups:
    """Mixed into `DynamoStore`, whose helpers (declared below for the type checker) it uses."""

    if TYPE_CHECKING:
        _client: DynamoDBClient
        messages_table: str
        max_attempts: int

        def _call(self, action: str) -> AbstractContextManager[None]: ...

        def _get(self, table: str, key: Item, action: str) -> Item | None: ...

        def _query(self, params: QueryInputTypeDef, want: int | None = None) -> list[Item]: ...

        def _count(self, params: QueryInputTypeDef) -> int: ...

        def _transact(self, items: list[TransactWriteItemTypeDef], action: str) -> None: ...

        def _backoff(self, attempt: int) -> None: ...

    # --- groups -----------------------------------------------------------------------------
    def create_group(
        self, creator_id: str, name: str, member_ids: Sequence[str], client_key: str, now: datetime
    ) -> tuple[Group, bool]:
        if client_key:
            found = self._created_before(creator_id, client_key)
            if found is not None:
                return found, False
        group_id, created = uuid.uuid4().hex, ts(now)
        ids = sorted({creator_id, *member_ids})
        item: Item = {
            **group_key(group_id),
            "group_id": s(group_id),
            "name": s(name),
            "created_by": s(creator_id),
            "created_at": s(created),
            "client_key": s(client_key),
            **{f"{MEMBER_ATTR}{user_id}": n(0) for user_id in ids},
        }
        items = [put_op(self.messages_table, item, ABSENT)]
        for user_id in ids:
            member = {**membership_key(user_id, created, group_id), "group_id": s(group_id)}
            items.append(put_op(self.messages_table, member, ABSENT))
        if client_key:
            idem: Item = {
                **create_idempotency_key(creator_id, client_key),
                "group_id": s(group_id),
                TTL_ATTRIBUTE: expiry(now, IDEMPOTENCY_TTL),
            }
            items.append(put_op(self.messages_table, idem, ABSENT))
        try:
            self._transact(items, "create_group")
        except TransactionCancelled:
            found = self._created_before(creator_id, client_key) if client_key else None
            if found is None:
                raise
            return found, False  # a concurrent copy of the same request won
        return decode_group(item), True

    def _created_before(self, creator_id: str, client_key: str) -> Group | None:
        key = create_idempotency_key(creator_id, client_key)
        idem = self._get(self.messages_table, key, "create_group")
        return None if idem is None else self.get_group(get_s(idem, "group_id"))

    def get_group(self, group_id: str) -> Group | None:
        item = self._get(self.messages_table, group_key(group_id), "get_group")
        return None if item is None else decode_group(item)

    def groups_for_user(self, user_id: str) -> list[Group]:
        items = self._query(
            {
                "TableName": self.messages_table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": values(pk=s(f"MEMBER#{user_id}")),
                "ConsistentRead": True,
            }
        )
        groups = [self.get_group(get_s(item, "group_id")) for item in items]
        return [g for g in groups if g is not None and g.is_member(user_id)]

    def leave_group(self, group_id: str, user_id: str, now: datetime) -> bool:
        group = self.get_group(group_id)
        if group is None or not group.is_member(user_id):
            return False
        update: TransactWriteItemTypeDef = {
            "Update": {
                "TableName": self.messages_table,
                "Key": group_key(group_id),
                "UpdateExpression": "REMOVE #member SET #former = :now",
                "ConditionExpression": "attribute_exists(#member)",
                "ExpressionAttributeNames": {
                    "#member": f"{MEMBER_ATTR}{user_id}",
                    "#former": f"{FORMER_ATTR}{user_id}",
                },
                "ExpressionAttributeValues": values(now=s(ts(now))),
            }
        }
        delete: TransactWriteItemTypeDef = {
            "Delete": {
                "TableName": self.messages_table,
                "Key": membership_key(user_id, ts(group.created_at), group_id),
            }
        }
        try:
            self._transact([update, delete], "leave_group")
        except TransactionCancelled as exc:
            if exc.codes[:1] == ["ConditionalCheckFailed"]:
                return False  # a concurrent copy of the same request won
            raise
        return True

    # --- group messages ---------------------------------------------------------------------
    def _group_message_at(self, group_id: str, order: int) -> GroupMessage:
        key = {PK: s(group_pk(group_id)), SK: s(message_sk(order))}
        item = self._get(self.messages_table, key, "add_group_message")
        if item is None:
            raise StoreError(f"message {order} of group {group_id} is missing")
        return decode_group_message(item)

    def add_group_message(
        self,
        group_id: str,
        sender_id: str,
        body: str | dict[str, Any],
        client_message_id: str,
        now: datetime,
    ) -> tuple[GroupMessage, bool]:
        kind, payload = encode_body(body)
        member = {"#member": f"{MEMBER_ATTR}{sender_id}"}
        for attempt in range(self.max_attempts):
            if client_message_id:
                key = group_idempotency_key(sender_id, client_message_id)
                idem = self._get(self.messages_table, key, "add_group_message")
                if idem is not None:
                    found = self._group_message_at(get_s(idem, "group_id"), get_n(idem, "order_no"))
                    return found, False
            counter = self._get(
                self.messages_table, group_counter_key(group_id), "add_group_message"
            )
            seen = 0 if counter is None else get_n(counter, "last_order")
            message = GroupMessage(
                uuid.uuid4().hex, group_id, sender_id, json.loads(payload), seen + 1,
                dt(ts(now)), client_message_id,
            )  # fmt: skip
            items: list[TransactWriteItemTypeDef] = [
                {
                    "ConditionCheck": {
                        "TableName": self.messages_table,
                        "Key": group_key(group_id),
                        "ConditionExpression": f"{PRESENT} AND attribute_exists(#member)",
                        "ExpressionAttributeNames": member,
                    }
                },
                {
                    "Update": {
                        "TableName": self.messages_table,
                        "Key": group_counter_key(group_id),
                        "UpdateExpression": "SET last_order = :order",
                        "ConditionExpression": "last_order = :seen"
                        if seen
                        else "attribute_not_exists(last_order)",
                        "ExpressionAttributeValues": values(order=n(seen + 1), seen=n(seen))
                        if seen
                        else values(order=n(seen + 1)),
                    }
                },
                put_op(self.messages_table, group_message_item(message, kind, payload), ABSENT),
            ]
            if client_message_id:
                idem_item: Item = {
                    **group_idempotency_key(sender_id, client_message_id),
                    "group_id": s(group_id),
                    "order_no": n(seen + 1),
                    TTL_ATTRIBUTE: expiry(now, IDEMPOTENCY_TTL),
                }
                items.append(put_op(self.messages_table, idem_item, ABSENT))
            try:
                self._transact(items, "add_group_message")
            except TransactionCancelled as exc:
                if exc.codes[:1] == ["ConditionalCheckFailed"]:
                    raise NotFound(f"{sender_id!r} is not a member of group {group_id!r}") from exc
                if not set(exc.codes) & RETRYABLE_CANCELLATIONS:
                    raise
                self._backoff(attempt)
                continue
            return message, True
        raise StoreError(f"add_group_message to {group_id}: too much contention")

    def group_conversation(
        self, group_id: str, limit: int, before_order: int | None = None
    ) -> tuple[list[GroupMessage], bool]:
        limit = max(limit, 0)
        if before_order is not None and before_order <= 1:
            return [], False
        hi = MSG_PREFIX + AFTER if before_order is None else message_sk(before_order - 1)
        items = self._query(
            {
                "TableName": self.messages_table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": values(
                    pk=s(group_pk(group_id)), lo=s(MSG_PREFIX), hi=s(hi)
                ),
                "ScanIndexForward": False,
                "ConsistentRead": True,
                "Limit": limit + 1,
            },
            want=limit + 1,
        )
        messages = [decode_group_message(item) for item in reversed(items[:limit])]
        return messages, len(items) > limit

    def _group_since(self, group_id: str, since: datetime | None) -> QueryInputTypeDef:
        condition, given = "recipient_id = :g", values(g=s(group_pk(group_id)))
        if since is not None:
            condition += " AND time_key > :since"
            given[":since"] = s(ts(since) + AFTER)
        return {
            "TableName": self.messages_table,
            "IndexName": MESSAGES_BY_RECIPIENT,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": given,
            "ScanIndexForward": False,
        }

    def group_messages_since(
        self, user_id: str, since: datetime | None, limit: int
    ) -> list[GroupMessage]:
        """One index query per group, newest first, merged by time."""
        if limit <= 0:
            return []
        items: list[Item] = []
        for group in self.groups_for_user(user_id):
            params = self._group_since(group.group_id, since)
            items += self._query({**params, "Limit": limit}, want=limit)
        items.sort(key=lambda item: get_s(item, "time_key"), reverse=True)
        return [decode_group_message(item) for item in reversed(items[:limit])]

    def count_group_messages_since(self, user_id: str, since: datetime | None) -> int:
        groups = self.groups_for_user(user_id)
        return sum(self._count(self._group_since(g.group_id, since)) for g in groups)

    # --- read marks -------------------------------------------------------------------------
    def mark_group_read(self, group_id: str, reader_id: str) -> int:
        counter = self._get(self.messages_table, group_counter_key(group_id), "mark_group_read")
        top = 0 if counter is None else get_n(counter, "last_order")
        try:
            with self._call("mark_group_read"):
                self._client.update_item(
                    TableName=self.messages_table,
                    Key=group_key(group_id),
                    UpdateExpression="SET #member = :top",
                    ConditionExpression="#member < :top",  # false when absent, too
                    ExpressionAttributeNames={"#member": f"{MEMBER_ATTR}{reader_id}"},
                    ExpressionAttributeValues=values(top=n(top)),
                )
        except ConditionFailed:
            group = self.get_group(group_id)
            if group is None or not group.is_member(reader_id):
                raise NotFound(f"{reader_id!r} is not a member of group {group_id!r}") from None
            return group.read_up_to(reader_id)  # already at or past `top`
        return top

    def group_unread(self, group_id: str, user_id: str) -> int:
        group = self.get_group(group_id)
        if group is None or not group.is_member(user_id):
            return 0
        return self._count(
            {
                "TableName": self.messages_table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
                "FilterExpression": "author_id <> :me",
                "ExpressionAttributeValues": values(
                    pk=s(group_pk(group_id)),
                    lo=s(message_sk(group.read_up_to(user_id) + 1)),
                    hi=s(MSG_PREFIX + AFTER),
                    me=s(user_id),
                ),
                "ConsistentRead": True,
            }
        )
