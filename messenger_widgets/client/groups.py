"""Group conversations (v1.1) in the client state: reducers and local steps for groups.

A group is a `Conversation` keyed `group:<groupID>` that carries a `GroupInfo` (members,
each member's read mark). Its messages are `ChatMessage`s whose `sender_id` names who wrote
them. An own message is "read" once every other member has read it; until then `read_by`
says by how many of them (k of n). `state` imports this module at its end and this module
adds its reducers to the push table, so `state.apply` stays the one entry point; nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ..protocol import Action
from . import state as st
from .state import (
    GROUP_PREFIX,
    Change,
    ChangeKind,
    Conversation,
    GroupInfo,
    Result,
    State,
    UserSummary,
    group_key,
)

Reducer = Callable[[State, Any], Result]


# --- keys and request bodies ----------------------------------------------------------------
def is_group(key: str) -> bool:
    return key.startswith(GROUP_PREFIX)


def group_id_of(key: str) -> str:
    """The groupID of a conversation key (a bare groupID is returned as it is)."""
    return key.removeprefix(GROUP_PREFIX)


def target(key: str) -> dict[str, str]:
    """What a request body names for this conversation: its groupID or the other userID."""
    return {"groupID": group_id_of(key)} if is_group(key) else {"userID": key}


def candidates(state: State) -> list[UserSummary]:
    """People the user can put in a group: everyone they know of, search results included."""
    me = state.me.user_id if state.me else None
    known = dict(state.directory)
    known.update((u.user_id, u.name) for u in state.search_results)
    people = [
        UserSummary(uid, name) for uid, name in known.items() if uid != me and not is_group(uid)
    ]
    return sorted(people, key=lambda u: (u.name.casefold(), u.user_id))


# --- local steps (the session calls these) --------------------------------------------------
def begin_create(state: State, client_group_id: str) -> Result:
    """Remember the request, so its `groupCreated` opens the group in this session."""
    return replace(state, pending_groups=(*state.pending_groups, client_group_id)), []


def leave(state: State, key: str) -> Result:
    """Leaving takes the group off the list at once; `groupUpdated` confirms it later."""
    conv = state.conversations.get(key)
    if conv is None or conv.group is None or conv.group.left:
        return state, []
    return _left(state, conv)


# --- pushes -------------------------------------------------------------------------------
def handlers(base: Mapping[str, Reducer]) -> dict[str, Reducer]:
    """The group entries of the push table: two new actions, and group-aware shared ones."""
    table: dict[str, Reducer] = {
        Action.GROUP_CREATED: _on_group_created,
        Action.GROUP_UPDATED: _on_group_updated,
        Action.READ: _by_target(base[Action.READ], _on_group_read),
    }
    for action in (Action.MESSAGE, Action.SELECT_SEARCH_USER, Action.HISTORY, Action.SENT):
        table[action] = _with_receipts(base[action])
    return table


def _by_target(direct: Reducer, group: Reducer) -> Reducer:
    def reducer(state: State, body: Any) -> Result:
        return (group if isinstance(body, dict) and "groupID" in body else direct)(state, body)

    return reducer


def _with_receipts(reducer: Reducer) -> Reducer:
    """After a shared reducer, recompute read receipts of the groups whose messages changed."""

    def wrapped(state: State, body: Any) -> Result:
        state, changes = reducer(state, body)
        touched = [
            c.user_id
            for c in changes
            if c.kind is ChangeKind.MESSAGES and c.user_id and is_group(c.user_id)
        ]
        for key in dict.fromkeys(touched):
            state, more = _receipts(state, key)
            changes += more
        return state, changes

    return wrapped


def _on_group_created(state: State, body: Any) -> Result:
    data = st._obj(body)
    state, key, changes = _apply_group(state, data, hint=_hint(data))
    pending = data.get("clientGroupId")
    if isinstance(pending, str) and pending in state.pending_groups:
        left = tuple(p for p in state.pending_groups if p != pending)
        state, opened = st.open_conversation(replace(state, pending_groups=left), key)
        changes += opened
    return state, changes


def _on_group_updated(state: State, body: Any) -> Result:
    state, _, changes = _apply_group(state, st._obj(body), hint=0)
    return state, changes


def _on_group_read(state: State, body: Any) -> Result:
    data = st._obj(body)
    group_id, reader = st._id(data["groupID"]), st._id(data["userID"])
    up_to = st._order(data["upToOrder"])
    key = group_key(group_id)
    conv = st.conversation(state, key)
    info = conv.group or GroupInfo(group_id)
    if info.reads.get(reader, 0) >= up_to:
        return state, []
    info = replace(info, reads=st._put(info.reads, reader, up_to))
    state = st._with_conv(state, replace(conv, group=info))
    return _receipts(state, key)


# --- internals ----------------------------------------------------------------------------
def _hint(data: dict[str, Any]) -> int:
    value = data.get("unreadMessages", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _apply_group(state: State, data: dict[str, Any], hint: int) -> tuple[State, str, list[Change]]:
    """Merge a group object (`groupCreated`/`groupUpdated`) into its conversation."""
    group_id, name = st._id(data["groupID"]), str(data.get("name") or "")
    members, reads = [], {}
    for item in st._list(data["members"]):
        member = st._user(st._obj(item))
        members.append(member)
        mark = item.get("readUpTo", 0)
        reads[member.user_id] = mark if isinstance(mark, int) and not isinstance(mark, bool) else 0
    key = group_key(group_id)
    conv = st.conversation(state, key)
    old = conv.group
    for user_id, mark in (old.reads if old else {}).items():  # marks only move forward
        if user_id in reads:
            reads[user_id] = max(reads[user_id], mark)
    me = state.me.user_id if state.me else ""
    info = GroupInfo(
        group_id,
        tuple(sorted(members, key=lambda m: (m.name.casefold(), m.user_id))),
        MappingProxyType(reads),
        str(data.get("createdBy") or (old.created_by if old else "")),
        left=(old is not None and old.left) or not any(m.user_id == me for m in members),
        unread_hint=old.unread_hint if old is not None else hint,
    )
    created = st._instant(str(data.get("createdAt") or ""))
    activity = max(conv.last_activity, created) if data.get("createdAt") else conv.last_activity
    state = st._with_conv(
        state, replace(conv, name=name or conv.name, group=info, last_activity=activity)
    )
    directory = dict(state.directory)
    directory.update((m.user_id, m.name) for m in members if m.name and m.user_id != me)
    state = replace(state, directory=MappingProxyType(directory))
    changes = [Change(ChangeKind.CONVERSATIONS), Change(ChangeKind.MESSAGES, key)]
    if info.unread_hint:
        changes.append(Change(ChangeKind.UNREAD, key))
    if info.left and (old is None or not old.left):
        state, more = _left(state, st.conversation(state, key))
        changes += more
    state, more = _receipts(state, key)
    return state, key, changes + more


def _left(state: State, conv: Conversation) -> Result:
    assert conv.group is not None
    key = conv.user_id
    conv = replace(conv, group=replace(conv.group, left=True, unread_hint=0))
    state = st._with_conv(state, conv)
    changes = [Change(ChangeKind.CONVERSATIONS), Change(ChangeKind.UNREAD, key)]
    unread = {k: v for k, v in state.unread.items() if k != key}
    state = replace(state, unread=MappingProxyType(unread))
    if state.open_conversation == key:
        state, closed = st.open_conversation(state, None)
        changes += closed
    return state, changes


def _other_marks(info: GroupInfo, me: str | None) -> list[int]:
    return [info.reads.get(m.user_id, 0) for m in info.members if m.user_id != me]


def _receipts(state: State, key: str) -> Result:
    """Own messages: read by k of n other members, and "read" once all of them have."""
    conv = state.conversations.get(key)
    if conv is None or conv.group is None:
        return state, []
    me = state.me.user_id if state.me else None
    marks = _other_marks(conv.group, me)
    floor = max(conv.read_up_to, min(marks)) if marks else conv.read_up_to
    messages = []
    for m in conv.messages:
        if m.outgoing and m.order is not None:
            k = sum(1 for mark in marks if mark >= m.order)
            read = m.is_read or (bool(marks) and k == len(marks))
            m = replace(m, read_by=(k, len(marks)), is_read=read, status="read" if read else "sent")
        messages.append(m)
    new = replace(conv, messages=tuple(messages), read_up_to=floor)
    if new == conv:
        return state, []
    return st._with_conv(state, new), [Change(ChangeKind.MESSAGES, key)]


# `state` imports this module at its end, and whichever of the two is imported first, this
# line runs once `state` has defined its table.
st._HANDLERS.update(handlers(st._HANDLERS))
