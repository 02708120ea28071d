"""The DynamoDB `Store`: two tables keyed for the worker's access patterns, not for SQL.

Every item has a string `pk` and `sk`; indexes are sparse (an item is in an index only while
it carries the index's key attributes). Table and index definitions: `dynamodb_schema.py`.

| table    | pk (or index: its key)       | sk (or index range)      | serves                      |
|----------|------------------------------|--------------------------|-----------------------------|
| users    | `USER#<id>`                  | `PROFILE`                | profile, dark mode, logout  |
| users    | `EMAIL#<casefolded email>`   | `EMAIL`                  | email -> id; uniqueness     |
| users    | `SESSION#<id>`               | `SESSION`                | session by id               |
| users    | `ACT#<user id>`              | `<time>#<seq>`           | activity log, time order    |
| users    | `FAIL#<casefolded email>`    | `<time>#<random>`        | failed logins (TTL 1 day)   |
| users    | idx sessions_by_user: owner  | `<created>#<id>`         | live_sessions (until ended) |
| users    | idx sessions_to_reap: `REAP` | `<min(ended,expires)>#id`| reaper (until reaped)       |
| users    | idx users_by_name: `USER`    | casefolded "first last"  | search_users (id, name)     |
| messages | `CONV#<a>|<b>`               | `MSG#<order, 20 digits>` | conversation pages          |
| messages | `CONV#<a>|<b>`               | `COUNTER`                | last order, last per sender |
| messages | `IDEM#<sender>#<client id>`  | `IDEM`                   | idempotency (TTL 15 days)   |
| messages | idx messages_by_sender       | `<time>#<order>#<conv>`  | messages_since (sent)       |
| messages | idx messages_by_recipient    | `<time>#<order>#<conv>`  | messages_since (received)   |
| messages | idx unread_by_reader         | `MSG#<order>`            | mark_read (unread only)     |
| messages | `GROUP#<id>`, `MEMBER#<user>`, ... | (`dynamodb_groups.py`) | groups (v1.1)         |

Writes that must be atomic are one `TransactWriteItems`: a user's profile with its email item
(both `attribute_not_exists`, so a taken email cancels the registration), and a message with
its conversation counter (`last_order = :seen`) and its idempotency item. A writer that loses
the race to another reads the counter again and retries, so orders have no gaps and no
repeats with any number of writers; a lost idempotency race returns the winner's message.
Idempotency items expire after 15 days (SQS keeps a message 14 at most), failed logins after
a day, reaped sessions after 30 days.

Reads by key are strongly consistent. Index reads are eventually consistent: a session, a
message or a user written a few milliseconds earlier may be missing from live_sessions,
messages_since, mark_read or search_users; the next call sees it.

search_users: DynamoDB cannot index substrings. The sparse `users_by_name` index holds only
the profiles (id and casefolded full name, under one key, in name order), so the search never
reads sessions, activity or failed logins as a Scan of the table would. The query filters it
with `contains(name_fold, :text)` (a literal substring: never a pattern, never a regex) and
stops as soon as the first `limit` matches in name order are certain. Its cost is still
linear in the number of users: the known cost of substring search. Production at scale
would feed a search index (OpenSearch, or n-gram items) from a DynamoDB stream instead. The
single-key indexes (`USER` here, `REAP` for the reaper) put one write per registration or per
session start/end on one index partition (about 1,000 writes/s); shard the key if that is near.

botocore errors are translated at each call: a failed condition becomes `AlreadyExists` or
`NotFound` where that is what it means, everything else `StoreError`.
"""

from __future__ import annotations

import json
import random
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AlreadyExists, NotFound, StoreError
from .base import Activity, ActivityRecord, SessionRecord, StoredMessage, User, conversation_key
from .dynamodb_groups import DynamoGroups
from .dynamodb_schema import (
    ABSENT,
    AFTER,
    FAILED_LOGIN_TTL,
    IDEMPOTENCY_TTL,
    MESSAGES_BY_RECIPIENT,
    MESSAGES_BY_SENDER,
    MSG_PREFIX,
    NAME_PK,
    PK,
    PRESENT,
    REAP_PK,
    REAPED_SESSION_TTL,
    RETRYABLE_CANCELLATIONS,
    SESSIONS_BY_USER,
    SESSIONS_TO_REAP,
    SK,
    TTL_ATTRIBUTE,
    UNREAD_BY_READER,
    USERS_BY_NAME,
    activity_pk,
    conversation_pk,
    counter_key,
    create_tables,
    decode_message,
    decode_session,
    decode_user,
    dt,
    email_key,
    encode_body,
    expiry,
    failed_login_pk,
    flag,
    from_attribute,
    get_n,
    get_s,
    idempotency_key,
    message_item,
    message_sk,
    n,
    put_op,
    s,
    session_item,
    session_key,
    ts,
    unread_pk,
    user_item,
    user_key,
    values,
)
from .dynamodb_schema import ConditionFailed as _ConditionFailed
from .dynamodb_schema import TransactionCancelled as _Cancelled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef, TransactWriteItemTypeDef

    from .dynamodb_schema import Item


class DynamoStore(DynamoGroups):
    """`Store` over two DynamoDB tables; the client is injected, never created here."""

    search_page = 1000  # index items read per search request

    def __init__(
        self,
        client: DynamoDBClient,
        users_table: str,
        messages_table: str,
        *,
        max_attempts: int = 50,
    ) -> None:
        self._client = client
        self.users_table = users_table
        self.messages_table = messages_table
        self.max_attempts = max_attempts
        self._closed = False

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """Translate botocore's errors into the package's; refuse work once closed."""
        if self._closed:
            raise StoreError("the DynamoDB store is closed")
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(f"{action}: condition failed") from exc
            if code == "TransactionCanceledException":
                reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
                codes = [str(r.get("Code", "None")) for r in reasons]
                raise _Cancelled(f"{action}: transaction cancelled {codes}", codes) from exc
            raise StoreError(f"DynamoDB {action} failed: {code} {message}".strip()) from exc
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB {action} failed: {exc}") from exc

    # --- helpers --------------------------------------------------------------------------
    def _get(self, table: str, key: Item, action: str) -> Item | None:
        with self._call(action):
            return self._client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _query(self, params: QueryInputTypeDef, want: int | None = None) -> list[Item]:
        """Every page, or pages until `want` items (a page may hold fewer than `Limit`)."""
        items: list[Item] = []
        while True:
            with self._call("query"):
                page = self._client.query(**params)
            items.extend(page["Items"])
            last = page.get("LastEvaluatedKey")
            if last is None or (want is not None and len(items) >= want):
                return items if want is None else items[:want]
            params["ExclusiveStartKey"] = last

    def _count(self, params: QueryInputTypeDef) -> int:
        total = 0
        params["Select"] = "COUNT"
        while True:
            with self._call("query"):
                page = self._client.query(**params)
            total += page["Count"]
            last = page.get("LastEvaluatedKey")
            if last is None:
                return total
            params["ExclusiveStartKey"] = last

    def _transact(self, items: list[TransactWriteItemTypeDef], action: str) -> None:
        # The token makes botocore's own retry of a lost response a no-op, not a second write.
        with self._call(action):
            self._client.transact_write_items(
                TransactItems=items, ClientRequestToken=uuid.uuid4().hex
            )

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))

    # --- users ----------------------------------------------------------------------------
    def create_user(
        self,
        first_name: str,
        last_name: str,
        email: str,
        password_hash: str,
        dark_mode: bool,
        now: datetime,
        created_by: str = "",
    ) -> User:
        user_id, created = uuid.uuid4().hex, dt(ts(now))
        user = User(user_id, first_name, last_name, email, password_hash, dark_mode, created)
        user = replace(user, created_by=created_by)
        email_item = {**email_key(email), "user_id": s(user_id)}
        try:
            self._transact(
                [
                    put_op(self.users_table, email_item, ABSENT),
                    put_op(self.users_table, user_item(user), ABSENT),
                ],
                "create_user",
            )
        except _Cancelled as exc:
            if exc.codes[:1] == ["ConditionalCheckFailed"]:
                raise AlreadyExists(f"the email {email!r} is already registered") from exc
            raise
        return user

    def get_user(self, user_id: str) -> User | None:
        item = self._get(self.users_table, user_key(user_id), "get_user")
        return None if item is None else decode_user(item)

    def get_user_by_email(self, email: str) -> User | None:
        item = self._get(self.users_table, email_key(email), "get_user_by_email")
        return None if item is None else self.get_user(get_s(item, "user_id"))

    def search_users(self, text: str, exclude_user_id: str, limit: int) -> list[User]:
        """Read the name index in name order, keep literal substring matches; stop once the
        `limit` first matches are known. An empty query matches nobody."""
        needle = text.casefold()
        if not needle or limit <= 0:
            return []
        params: QueryInputTypeDef = {
            "TableName": self.users_table,
            "IndexName": USERS_BY_NAME,
            "KeyConditionExpression": "name_pk = :pk",
            "FilterExpression": "contains(name_fold, :text) AND user_id <> :me",
            "Limit": self.search_page,
            "ExpressionAttributeValues": values(
                pk=s(NAME_PK), text=s(needle), me=s(exclude_user_id)
            ),
        }
        found: list[tuple[str, str, str]] = []  # (name_fold, user_id, name_sort)
        while True:
            with self._call("search_users"):
                page = self._client.query(**params)
            found += [
                (get_s(i, "name_fold"), get_s(i, "user_id"), get_s(i, "name_sort"))
                for i in page["Items"]
            ]
            found.sort()
            last = page.get("LastEvaluatedKey")
            # Later items sort at or after `last`: once that is past the limit-th match's
            # name, nothing unread can displace a match already found.
            if last is None or (
                len(found) >= limit and get_s(last, "name_sort") > found[limit - 1][2]
            ):
                break
            params["ExclusiveStartKey"] = last
        return self._users([user_id for _, user_id, _ in found[:limit]])

    def _users(self, user_ids: list[str]) -> list[User]:
        """Profiles by id in one BatchGetItem per 100, in the order asked; missing skipped."""
        got: dict[str, User] = {}
        for start in range(0, len(user_ids), 100):
            pending: dict[str, Any] = {
                self.users_table: {
                    "Keys": [user_key(u) for u in user_ids[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(self.max_attempts):
                with self._call("search_users"):
                    page = self._client.batch_get_item(RequestItems=pending)
                for item in page["Responses"].get(self.users_table, []):
                    user = decode_user(item)
                    got[user.user_id] = user
                pending = dict(page.get("UnprocessedKeys") or {})
                if not pending:
                    break
                self._backoff(attempt)
            else:
                raise StoreError("search_users: reads kept being throttled")
        return [got[u] for u in user_ids if u in got]

    def set_dark_mode(self, user_id: str, enabled: bool) -> None:
        try:
            with self._call("set_dark_mode"):
                self._client.update_item(
                    TableName=self.users_table,
                    Key=user_key(user_id),
                    UpdateExpression="SET dark_mode = :on",
                    ConditionExpression=PRESENT,
                    ExpressionAttributeValues=values(on=flag(enabled)),
                )
        except _ConditionFailed as exc:
            raise NotFound(f"no user {user_id!r}") from exc

    # --- sessions -------------------------------------------------------------------------
    def create_session(
        self, session_id: str, user_id: str, queue_url: str, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        session = SessionRecord(session_id, user_id, queue_url, dt(ts(now)), dt(ts(expires_at)))
        try:
            with self._call("create_session"):
                self._client.put_item(
                    TableName=self.users_table,
                    Item=session_item(session),
                    ConditionExpression=ABSENT,
                )
        except _ConditionFailed as exc:
            raise AlreadyExists(f"the session id {session_id!r} is taken") from exc
        return session

    def get_session(self, session_id: str) -> SessionRecord | None:
        item = self._get(self.users_table, session_key(session_id), "get_session")
        return None if item is None else decode_session(item)

    def live_sessions(self, user_id: str, now: datetime) -> list[SessionRecord]:
        items = self._query(
            {
                "TableName": self.users_table,
                "IndexName": SESSIONS_BY_USER,
                "KeyConditionExpression": "#owner = :user",
                "FilterExpression": "attribute_not_exists(ended_at) AND expires_at > :now",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": values(user=s(user_id), now=s(ts(now))),
            }
        )
        return [decode_session(item) for item in items]

    def end_session(self, session_id: str, now: datetime, logout: bool) -> SessionRecord | None:
        """Only the call that ends the session writes (`attribute_not_exists(ended_at)`), in
        one transaction with the user's `last_logout_at`, which never moves backwards."""
        when = ts(now)
        for attempt in range(self.max_attempts):
            item = self._get(self.users_table, session_key(session_id), "end_session")
            if item is None:
                return None
            session = decode_session(item)
            if session.ended_at is not None:
                return session
            due = min(when, ts(session.expires_at))
            items: list[TransactWriteItemTypeDef] = [
                {
                    "Update": {
                        "TableName": self.users_table,
                        "Key": session_key(session_id),
                        "UpdateExpression": "SET ended_at = :now, reap_key = :due"
                        " REMOVE #owner, created_key",
                        "ConditionExpression": f"{PRESENT} AND attribute_not_exists(ended_at)",
                        "ExpressionAttributeNames": {"#owner": "owner"},
                        "ExpressionAttributeValues": values(
                            now=s(when), due=s(f"{due}#{session_id}")
                        ),
                    }
                }
            ]
            user = (
                self._get(self.users_table, user_key(session.user_id), "end_session")
                if logout
                else None
            )
            seen = None if user is None else user.get("last_logout_at")
            if user is not None and (seen is None or seen["S"] < when):
                unchanged, given = (
                    ("attribute_not_exists(last_logout_at)", values(now=s(when)))
                    if seen is None
                    else ("last_logout_at = :seen", values(now=s(when), seen=seen))
                )
                update: TransactWriteItemTypeDef = {
                    "Update": {
                        "TableName": self.users_table,
                        "Key": user_key(session.user_id),
                        "UpdateExpression": "SET last_logout_at = :now",
                        "ConditionExpression": f"{PRESENT} AND {unchanged}",
                        "ExpressionAttributeValues": given,
                    }
                }
                items.append(update)
            try:
                self._transact(items, "end_session")
            except _Cancelled as exc:
                if not set(exc.codes) & RETRYABLE_CANCELLATIONS:
                    raise
                self._backoff(attempt)
                continue  # ended by someone else, or the user changed: look again
            return replace(session, ended_at=dt(when))
        raise StoreError(f"end_session {session_id!r}: too much contention")

    def sessions_to_reap(self, expired_before: datetime, limit: int) -> list[SessionRecord]:
        if limit <= 0:
            return []
        items = self._query(
            {
                "TableName": self.users_table,
                "IndexName": SESSIONS_TO_REAP,
                "KeyConditionExpression": "reap_pk = :reap AND reap_key < :cutoff",
                "ExpressionAttributeValues": values(reap=s(REAP_PK), cutoff=s(ts(expired_before))),
                "Limit": limit,
            },
            want=limit,
        )
        return [decode_session(item) for item in items]

    def mark_reaped(self, session_id: str, now: datetime) -> None:
        """Idempotent, and a no-op for an unknown session: reaping is simply retried."""
        try:
            with self._call("mark_reaped"):
                self._client.update_item(
                    TableName=self.users_table,
                    Key=session_key(session_id),
                    UpdateExpression="SET reaped = :yes,"
                    " reaped_at = if_not_exists(reaped_at, :now), #ttl = if_not_exists(#ttl, :ttl)"
                    " REMOVE reap_pk, reap_key, #owner, created_key",
                    ConditionExpression=PRESENT,
                    ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE, "#owner": "owner"},
                    ExpressionAttributeValues=values(
                        yes=flag(True), now=s(ts(now)), ttl=expiry(now, REAPED_SESSION_TTL)
                    ),
                )
        except _ConditionFailed:
            return

    # --- messages -------------------------------------------------------------------------
    def _message_at(self, key: str, order: int) -> StoredMessage:
        item = self._get(
            self.messages_table,
            {PK: s(conversation_pk(key)), SK: s(message_sk(order))},
            "add_message",
        )
        if item is None:
            raise StoreError(f"message {order} of {key} is missing")
        return decode_message(item)

    def _stored_before(self, sender_id: str, client_message_id: str) -> StoredMessage | None:
        if not client_message_id:
            return None
        key = idempotency_key(sender_id, client_message_id)
        item = self._get(self.messages_table, key, "add_message")
        if item is None:
            return None
        return self._message_at(get_s(item, "conversation"), get_n(item, "order_no"))

    def add_message(
        self,
        sender_id: str,
        recipient_id: str,
        body: str | dict[str, Any],
        client_message_id: str,
        now: datetime,
    ) -> tuple[StoredMessage, bool]:
        """Read the counter, then write counter + message + idempotency item in one
        transaction conditional on the counter being unchanged; on losing, look again."""
        kind, payload = encode_body(body)
        key = conversation_key(sender_id, recipient_id)
        for attempt in range(self.max_attempts):
            existing = self._stored_before(sender_id, client_message_id)
            if existing is not None:
                return existing, False
            counter = self._get(self.messages_table, counter_key(key), "add_message")
            seen = 0 if counter is None else get_n(counter, "last_order")
            order = seen + 1
            message = StoredMessage(
                uuid.uuid4().hex, sender_id, recipient_id, json.loads(payload), order, dt(ts(now))
            )
            message = replace(message, client_message_id=client_message_id)
            items: list[TransactWriteItemTypeDef] = [
                {
                    "Update": {
                        "TableName": self.messages_table,
                        "Key": counter_key(key),
                        "UpdateExpression": "SET last_order = :order, #from = :order",
                        "ConditionExpression": "last_order = :seen"
                        if seen
                        else "attribute_not_exists(last_order)",
                        "ExpressionAttributeNames": {"#from": from_attribute(sender_id)},
                        "ExpressionAttributeValues": values(order=n(order), seen=n(seen))
                        if seen
                        else values(order=n(order)),
                    }
                },
                put_op(self.messages_table, message_item(message, key, kind, payload), ABSENT),
            ]
            if client_message_id:
                idem: Item = {
                    **idempotency_key(sender_id, client_message_id),
                    "conversation": s(key),
                    "order_no": n(order),
                    TTL_ATTRIBUTE: expiry(now, IDEMPOTENCY_TTL),
                }
                items.append(put_op(self.messages_table, idem, ABSENT))
            try:
                self._transact(items, "add_message")
            except _Cancelled as exc:
                if not set(exc.codes) & RETRYABLE_CANCELLATIONS:
                    raise
                self._backoff(attempt)
                continue
            return message, True
        raise StoreError(f"add_message to {key}: too much contention")

    def conversation(
        self, a: str, b: str, limit: int, before_order: int | None = None
    ) -> tuple[list[StoredMessage], bool]:
        """Newest first with one more than asked: its presence is `has_more`."""
        limit = max(limit, 0)
        pk = conversation_pk(conversation_key(a, b))
        if before_order is None:
            condition, given = (
                "pk = :pk AND begins_with(sk, :lo)",
                values(pk=s(pk), lo=s(MSG_PREFIX)),
            )
        elif before_order <= 1:
            return [], False
        else:
            hi = s(message_sk(before_order - 1))
            condition = "pk = :pk AND sk BETWEEN :lo AND :hi"
            given = values(pk=s(pk), lo=s(MSG_PREFIX), hi=hi)
        items = self._query(
            {
                "TableName": self.messages_table,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": given,
                "ScanIndexForward": False,
                "ConsistentRead": True,
                "Limit": limit + 1,
            },
            want=limit + 1,
        )
        return [decode_message(item) for item in reversed(items[:limit])], len(items) > limit

    def _since_queries(self, user_id: str, since: datetime | None) -> list[QueryInputTypeDef]:
        """One query per index; a message to oneself is counted once (as sent)."""
        out: list[QueryInputTypeDef] = []
        for index, who in (
            (MESSAGES_BY_SENDER, "sender_id"),
            (MESSAGES_BY_RECIPIENT, "recipient_id"),
        ):
            condition, given = f"{who} = :user", values(user=s(user_id))
            if since is not None:
                condition += " AND time_key > :since"
                given = values(user=s(user_id), since=s(ts(since) + AFTER))
            params: QueryInputTypeDef = {
                "TableName": self.messages_table,
                "IndexName": index,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": given,
                "ScanIndexForward": False,
            }
            if who == "recipient_id":
                params["FilterExpression"] = "sender_id <> :user"
            out.append(params)
        return out

    def messages_since(
        self, user_id: str, since: datetime | None, limit: int
    ) -> list[StoredMessage]:
        if limit <= 0:
            return []
        items: list[Item] = []
        for params in self._since_queries(user_id, since):
            items += self._query({**params, "Limit": limit}, want=limit)
        items.sort(key=lambda item: get_s(item, "time_key"), reverse=True)
        return [decode_message(item) for item in reversed(items[:limit])]

    def count_messages_since(self, user_id: str, since: datetime | None) -> int:
        return sum(self._count(params) for params in self._since_queries(user_id, since))

    def mark_read(self, reader_id: str, sender_id: str) -> int:
        key = conversation_key(reader_id, sender_id)
        unread = self._query(
            {
                "TableName": self.messages_table,
                "IndexName": UNREAD_BY_READER,
                "KeyConditionExpression": "unread_pk = :u",
                "ExpressionAttributeValues": values(u=s(unread_pk(key, reader_id))),
            }
        )
        for item in unread:
            try:
                with self._call("mark_read"):
                    self._client.update_item(
                        TableName=self.messages_table,
                        Key={PK: item[PK], SK: item[SK]},
                        UpdateExpression="SET is_read = :yes REMOVE unread_pk",
                        ConditionExpression=PRESENT,
                        ExpressionAttributeValues=values(yes=flag(True)),
                    )
            except _ConditionFailed:
                continue  # a stale index entry
        counter = self._get(self.messages_table, counter_key(key), "mark_read")
        newest = None if counter is None else counter.get(from_attribute(sender_id))
        return 0 if newest is None else int(newest["N"])

    # --- activity and throttling ----------------------------------------------------------
    def record_activity(self, user_id: str, kind: Activity, at: datetime, detail: str = "") -> None:
        # time_ns then random bits: same-instant records of one process keep their order.
        sk = f"{ts(at)}#{time.time_ns():020d}{secrets.token_hex(4)}"
        with self._call("record_activity"):
            self._client.put_item(
                TableName=self.users_table,
                Item={
                    PK: s(activity_pk(user_id)),
                    SK: s(sk),
                    "user_id": s(user_id),
                    "kind": s(Activity(kind).value),
                    "at": s(ts(at)),
                    "detail": s(detail),
                },
            )

    def activity(self, user_id: str) -> list[ActivityRecord]:
        items = self._query(
            {
                "TableName": self.users_table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": values(pk=s(activity_pk(user_id))),
                "ConsistentRead": True,
            }
        )
        try:
            return [
                ActivityRecord(
                    get_s(i, "user_id"),
                    Activity(get_s(i, "kind")),
                    dt(get_s(i, "at")),
                    i["detail"]["S"],
                )
                for i in items
            ]
        except (KeyError, ValueError) as exc:
            raise StoreError(f"an activity item is corrupt: {exc!r}") from exc

    def record_failed_login(self, email: str, at: datetime) -> None:
        with self._call("record_failed_login"):
            self._client.put_item(
                TableName=self.users_table,
                Item={
                    PK: s(failed_login_pk(email)),
                    SK: s(f"{ts(at)}#{uuid.uuid4().hex}"),
                    TTL_ATTRIBUTE: expiry(at, FAILED_LOGIN_TTL),
                },
            )

    def failed_logins_since(self, email: str, since: datetime) -> int:
        """Inclusive of `since`: at the window's edge, throttling errs on the safe side."""
        return self._count(
            {
                "TableName": self.users_table,
                "KeyConditionExpression": "pk = :pk AND sk >= :since",
                "ExpressionAttributeValues": values(
                    pk=s(failed_login_pk(email)), since=s(ts(since))
                ),
                "ConsistentRead": True,
            }
        )

    def clear_failed_logins(self, email: str) -> None:
        keys = self._query(
            {
                "TableName": self.users_table,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": values(pk=s(failed_login_pk(email))),
                "ProjectionExpression": "pk, sk",
                "ConsistentRead": True,
            }
        )
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {
                self.users_table: [
                    {"DeleteRequest": {"Key": {PK: k[PK], SK: k[SK]}}}
                    for k in keys[start : start + 25]
                ]
            }
            for attempt in range(self.max_attempts):
                with self._call("clear_failed_logins"):
                    left = self._client.batch_write_item(RequestItems=pending)
                if not left.get("UnprocessedItems"):
                    break
                pending = dict(left["UnprocessedItems"])
                self._backoff(attempt)
            else:
                raise StoreError("clear_failed_logins: deletes kept being throttled")

    def close(self) -> None:
        """Idempotent; any later call raises `StoreError`. The injected client stays open."""
        self._closed = True


__all__ = ["DynamoStore", "create_tables"]
