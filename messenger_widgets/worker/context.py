"""What a handler is given: the injected services, the authenticated caller, an outbox.

Handlers never send anything themselves; they put replies and pushes in an `Outbox`, and the
runner sends every outbox of a batch together, one `SendMessageBatch` per queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ..auth import Passwords, Tokens
from ..protocol import (
    MAX_SQS_MESSAGE_BYTES,
    Action,
    Outgoing,
    Push,
    Reply,
    WireMessage,
    now_iso,
)
from ..store.base import Group, GroupMessage, SessionRecord, Store, StoredMessage, User
from ..transport import Transport


class AttachmentLookup(Protocol):
    """What the worker asks of attachments: where a URL points, is a key sane, does it exist."""

    def key_from_url(self, url: str) -> str | None: ...

    def validate_key(self, key: str) -> str: ...

    def head(self, key: str) -> tuple[int, str] | None: ...


@dataclass(frozen=True)
class WorkerConfig:
    response_queue_url: str
    session_queue_prefix: str
    session_ttl: int


@dataclass
class Context:
    store: Store
    transport: Transport
    tokens: Tokens
    passwords: Passwords
    attachments: AttachmentLookup
    config: WorkerConfig
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class Caller:
    user: User
    session: SessionRecord


@dataclass
class Outbox:
    """Messages a handler wants sent: (queue url, message) in the order they were added."""

    deliveries: list[tuple[str, Outgoing]] = field(default_factory=list)

    def reply(self, ctx: Context, res_to: str, status: int, body: dict[str, Any]) -> None:
        self.deliveries.append(
            (ctx.config.response_queue_url, Reply(res_to, status, body).encode())
        )

    def push(self, queue_url: str, push: Push) -> None:
        self.deliveries.append((queue_url, push.encode()))

    def push_all(self, sessions: Iterable[SessionRecord], push: Push) -> None:
        encoded = push.encode()
        self.deliveries.extend((s.queue_url, encoded) for s in sessions)


def wire(message: StoredMessage, viewer_id: str, names: dict[str, str]) -> WireMessage:
    """A stored message as `viewer_id` sees it: the other party in userID/name, `to` if sent."""
    other = message.other_party(viewer_id)
    return WireMessage(
        message_id=message.message_id,
        body=message.body,
        user_id=other,
        name=names.get(other, ""),
        to=message.recipient_id if message.sender_id == viewer_id else None,
        date_time=now_iso(message.created_at),
        is_read=message.is_read,
        order=message.order,
    )


def group_wire(
    message: GroupMessage, viewer_id: str, group: Group, names: dict[str, str]
) -> WireMessage:
    """A group message as `viewer_id` sees it: the sender in userID/name, `to` = the group
    for their own; read when they read it, or (their own) when every other member did."""
    own = message.sender_id == viewer_id
    others = [m.read_up_to for m in group.members if m.user_id != message.sender_id]
    read = (
        all(r >= message.order for r in others)
        if own
        else (group.read_up_to(viewer_id) >= message.order)
    )
    return WireMessage(
        message_id=message.message_id,
        body=message.body,
        user_id=message.sender_id,
        name=names.get(message.sender_id, ""),
        to=message.group_id if own else None,
        date_time=now_iso(message.created_at),
        is_read=read,
        order=message.order,
        group_id=message.group_id,
    )


def group_json(group: Group, names: dict[str, str], **extra: Any) -> dict[str, Any]:
    """The body of `groupCreated`/`groupUpdated`: the group, its members and their marks."""
    return {
        "groupID": group.group_id,
        "name": group.name,
        "members": [
            {"userID": m.user_id, "name": names.get(m.user_id, ""), "readUpTo": m.read_up_to}
            for m in group.members
        ],
        "createdBy": group.created_by,
        "createdAt": now_iso(group.created_at),
        **extra,
    }


def names_for(store: Store, user_ids: Iterable[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for user_id in set(user_ids):
        user = store.get_user(user_id)
        names[user_id] = user.name if user else ""
    return names


def fit_page(
    action: Action, messages: list[dict[str, Any]], wrap: Callable[[list[dict[str, Any]]], Any]
) -> tuple[Push, bool]:
    """Drop the oldest messages until the push fits one SQS message; say whether any went."""
    trimmed = False
    while True:
        push = Push(action, wrap(messages))
        if push.encode().size <= MAX_SQS_MESSAGE_BYTES or not messages:
            return push, trimmed
        messages = messages[max(1, len(messages) // 10) :]
        trimmed = True
