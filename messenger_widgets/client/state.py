"""Session state as immutable values, and pure functions that move it forward.

Widgets render from a `State` snapshot and re-render only what a `Change` names, so the
polling thread can swap snapshots under a lock without handing anyone a value that changes
underneath them. Nothing here does I/O or raises on bad input: a malformed push becomes an
ERROR change, because one bad message must never stop the drain thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from ..errors import DecodeError
from ..protocol import Action, Push, WireMessage, now_iso, parse_iso

Connection = Literal["offline", "connecting", "online", "reconnecting"]
Status = Literal["sending", "sent", "read", "failed"]  # own messages only
PREVIEW_CHARS = 80
GROUP_PREFIX = "group:"  # conversation keys of groups; user ids never start with it
T = TypeVar("T")


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


class ChangeKind(StrEnum):
    """What an observer must re-render; `Change.user_id` narrows it to one conversation."""

    SESSION = "session"  # logged in or out: rebuild everything
    MESSAGES = "messages"  # messages (or their status) of `user_id` changed
    CONVERSATIONS = "conversations"  # list order, names or previews changed
    UNREAD = "unread"  # unread count of `user_id` changed
    OPEN = "open"  # the open conversation changed (`user_id`, None when closed)
    SEARCH = "search"  # search query or results changed
    HISTORY_COMPLETE = "historyComplete"  # the login history has fully arrived
    DARK_MODE = "darkMode"
    CONNECTION = "connection"  # `detail` is the new status
    ERROR = "error"  # `detail` is a readable message; see `State.last_error`
    EXPIRED = "expired"  # the session ended (401 or queue gone): show the login panel


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    user_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation; `user_id`/`name` are the other party.

    In a group, `user_id` is the conversation key (`group:<id>`) and `name` the sender's.
    """

    user_id: str
    name: str
    body: str | Mapping[str, Any]  # text, or an attachment {key, name, type, size}
    outgoing: bool
    date_time: str
    message_id: str | None = None  # None until the worker acknowledged it
    client_message_id: str | None = None
    order: int | None = None
    is_read: bool = False
    status: Status | None = None
    sender_id: str | None = None  # group messages: who wrote it (`user_id` is the group key)
    read_by: tuple[int, int] | None = None  # own group messages: read by k of n others

    @property
    def key(self) -> str:
        """Stable across the sending -> sent transition, so a widget keeps its identity."""
        return f"c:{self.client_message_id}" if self.client_message_id else f"m:{self.message_id}"

    @property
    def is_attachment(self) -> bool:
        return not isinstance(self.body, str)


@dataclass(frozen=True)
class GroupInfo:
    """What a group conversation knows besides its messages (v1.1)."""

    group_id: str
    members: tuple[UserSummary, ...] = ()  # current members, the session's user included
    reads: Mapping[str, int] = field(default_factory=_empty)  # member -> read up to order
    created_by: str = ""
    left: bool = False  # the session's user left: the group leaves the list
    unread_hint: int = 0  # the worker's unread count at login, until the group is read


@dataclass(frozen=True)
class Conversation:
    user_id: str  # the other party's userID, or `group:<groupID>`
    name: str = ""
    messages: tuple[ChatMessage, ...] = ()  # stored by `order`, then pending in send order
    has_more: bool | None = None  # from the last `history` push; None when never asked
    read_up_to: int = 0  # the other party (in a group: every other member) has read to here
    last_activity: str = ""  # normalized ISO time of the newest message
    group: GroupInfo | None = None

    @property
    def oldest_order(self) -> int | None:
        return next((m.order for m in self.messages if m.order is not None), None)

    @property
    def can_load_older(self) -> bool:
        oldest = self.oldest_order  # orders start at 1 with no gaps, so 1 means complete
        return self.has_more is not False and (oldest is None or oldest > 1)


@dataclass(frozen=True)
class UserSummary:
    user_id: str
    name: str


@dataclass(frozen=True)
class ConversationSummary:
    user_id: str
    name: str
    preview: str
    last_activity: str
    unread: int
    last_message: ChatMessage | None
    is_group: bool = False


@dataclass(frozen=True)
class ErrorInfo:
    status: int  # 0 for an error found on this side (a malformed push)
    message: str
    method: str = ""


@dataclass(frozen=True)
class State:
    me: UserSummary | None = None
    dark_mode: bool = False
    open_conversation: str | None = None
    conversations: Mapping[str, Conversation] = field(default_factory=_empty)
    unread: Mapping[str, int] = field(default_factory=_empty)
    directory: Mapping[str, str] = field(default_factory=_empty)  # userID -> name
    search_query: str | None = None  # None: no search active
    search_results: tuple[UserSummary, ...] = ()
    connection: Connection = "offline"
    history_expected: int | None = None  # `historyEnd.count`, once it arrived
    history_applied: int = 0  # distinct `message` pushes applied since login
    history_complete: bool = False
    last_error: ErrorInfo | None = None
    expired: bool = False
    pending_groups: tuple[str, ...] = ()  # clientGroupIds this session asked to create


def group_key(group_id: str) -> str:
    return f"{GROUP_PREFIX}{group_id}"


def wire_key(wire: WireMessage) -> str:
    """The conversation a message belongs to: its group, or the other party."""
    return group_key(wire.group_id) if wire.group_id else wire.user_id


# --- read helpers -------------------------------------------------------------------------
def conversation(state: State, user_id: str) -> Conversation:
    """The conversation with `user_id`, empty (but named when known) if none is held."""
    found = state.conversations.get(user_id)
    return found or Conversation(user_id, state.directory.get(user_id, ""))


def conversation_list(state: State) -> list[ConversationSummary]:
    """Conversations with messages (plus the open one), newest activity first."""
    out: list[ConversationSummary] = []
    for conv in state.conversations.values():
        if conv.group is not None and conv.group.left:
            continue
        if not conv.messages and conv.user_id != state.open_conversation and not conv.group:
            continue
        last = conv.messages[-1] if conv.messages else None
        name = conv.name or state.directory.get(conv.user_id, "")
        unread = unread_count(state, conv.user_id)
        out.append(
            ConversationSummary(
                conv.user_id, name, preview(last), conv.last_activity, unread, last,
                conv.group is not None,
            )
        )  # fmt: skip
    out.sort(key=lambda s: s.name.casefold())
    out.sort(key=lambda s: s.last_activity, reverse=True)
    return out


def unread_count(state: State, key: str) -> int:
    conv = state.conversations.get(key)
    hint = conv.group.unread_hint if conv is not None and conv.group is not None else 0
    return max(state.unread.get(key, 0), hint)


def total_unread(state: State) -> int:
    return sum(unread_count(state, key) for key in {*state.unread, *state.conversations})


def preview(message: ChatMessage | None) -> str:
    """One line for the conversation list: whitespace folded, long text cut, files named."""
    if message is None:
        return ""
    body = message.body
    text = " ".join(body.split()) if isinstance(body, str) else f"[file] {body.get('name', '')}"
    if len(text) > PREVIEW_CHARS:
        text = text[: PREVIEW_CHARS - 1] + "\N{HORIZONTAL ELLIPSIS}"
    if message.outgoing:
        return f"You: {text}"
    return f"{message.name}: {text}" if message.sender_id and message.name else text


# --- local transitions (the session calls these on user actions) ----------------------------
Result = tuple[State, list[Change]]


def start_session(state: State, user_id: str, name: str, dark_mode: bool) -> Result:
    me = UserSummary(user_id, name)
    fresh = State(
        me=me, dark_mode=dark_mode, connection="online", directory=_put({}, user_id, name)
    )
    return fresh, [Change(ChangeKind.SESSION), Change(ChangeKind.CONNECTION, detail="online")]


def end_session(state: State) -> Result:
    """Back to logged out; the theme stays so the login panel keeps the user's choice."""
    return State(dark_mode=state.dark_mode), [Change(ChangeKind.SESSION)]


def expire(state: State, reason: str) -> Result:
    error = ErrorInfo(401, reason)
    new = replace(state, expired=True, connection="offline", last_error=error)
    return new, [
        Change(ChangeKind.ERROR, detail=reason),
        Change(ChangeKind.CONNECTION, detail="offline"),
        Change(ChangeKind.EXPIRED),
    ]


def set_connection(state: State, status: Connection) -> Result:
    if state.connection == status:
        return state, []
    return replace(state, connection=status), [Change(ChangeKind.CONNECTION, detail=status)]


def set_dark_mode(state: State, enabled: bool) -> Result:
    if state.dark_mode == enabled:
        return state, []
    return replace(state, dark_mode=enabled), [Change(ChangeKind.DARK_MODE)]


def begin_search(state: State, text: str) -> Result:
    return replace(state, search_query=text), [Change(ChangeKind.SEARCH)]


def clear_search(state: State) -> Result:
    return replace(state, search_query=None, search_results=()), [Change(ChangeKind.SEARCH)]


def open_conversation(state: State, user_id: str | None) -> Result:
    changes = [Change(ChangeKind.OPEN, user_id)]
    state = replace(state, open_conversation=user_id)
    if user_id is None:
        return state, changes
    if user_id not in state.conversations:
        state = _with_conv(state, conversation(state, user_id))
        changes.append(Change(ChangeKind.CONVERSATIONS))
    state, more = mark_read(state, user_id)
    return state, changes + more


def mark_read(state: State, user_id: str) -> Result:
    """Incoming messages from `user_id` read and its unread count cleared, before the ack."""
    changes: list[Change] = []
    conv = state.conversations.get(user_id)
    if conv is not None and any(not m.outgoing and not m.is_read for m in conv.messages):
        msgs = tuple(m if m.outgoing else replace(m, is_read=True) for m in conv.messages)
        state = _with_conv(state, replace(conv, messages=msgs))
        changes.append(Change(ChangeKind.MESSAGES, user_id))
    if state.unread.get(user_id):
        unread = {k: v for k, v in state.unread.items() if k != user_id}
        state = replace(state, unread=MappingProxyType(unread))
        changes.append(Change(ChangeKind.UNREAD, user_id))
    conv = state.conversations.get(user_id)
    if conv is not None and conv.group is not None and conv.group.unread_hint:
        state = _with_conv(state, replace(conv, group=replace(conv.group, unread_hint=0)))
        changes.append(Change(ChangeKind.UNREAD, user_id))
    return state, changes


def add_pending(
    state: State, user_id: str, client_message_id: str, body: str | Mapping[str, Any], when: str
) -> Result:
    """The optimistic insert: shown as "sending" until the `sent` ack names its order."""
    conv = conversation(state, user_id)
    msg = ChatMessage(user_id, conv.name, _freeze(body), True, when, None, client_message_id)
    msg = replace(msg, status="sending")
    activity = max(conv.last_activity, _instant(when))
    state = _with_conv(state, replace(conv, messages=(*conv.messages, msg), last_activity=activity))
    return state, [Change(ChangeKind.MESSAGES, user_id), Change(ChangeKind.CONVERSATIONS)]


def pending_message(state: State, client_message_id: str) -> ChatMessage | None:
    """An own message still without a messageID ("sending" or "failed")."""
    for conv in state.conversations.values():
        for msg in conv.messages:
            if msg.client_message_id == client_message_id and msg.message_id is None:
                return msg
    return None


def mark_pending(state: State, client_message_id: str, status: Status) -> Result:
    """Set by the session: failed when sending failed or was refused, sending on a retry."""
    msg = pending_message(state, client_message_id)
    if msg is None or msg.status == status:
        return state, []
    return _replace_msg(state, conversation(state, msg.user_id), msg, replace(msg, status=status))


def malformed(state: State, detail: str) -> Result:
    """A push that cannot be applied: kept as the last error, nothing else changes."""
    return replace(state, last_error=ErrorInfo(0, detail)), [
        Change(ChangeKind.ERROR, detail=detail)
    ]


# --- pushes -------------------------------------------------------------------------------
def apply(state: State, push: Push) -> Result:
    """Apply one push; never raises, whatever the body holds."""
    try:
        if push.action == Action.ERROR or push.status >= 400:
            return _on_error(state, push)
        handler = _HANDLERS.get(push.action)
        if handler is None:
            return malformed(state, f"unknown push action {push.action!r}")
        state, changes = handler(state, push.body)
        return state, list(dict.fromkeys(changes))
    except (DecodeError, KeyError, TypeError, ValueError) as exc:
        return malformed(state, f"malformed {push.action} push: {exc}")
    except Exception as exc:  # the drain thread must survive anything a body holds
        return malformed(state, f"could not apply {push.action} push: {exc!r}")


def _on_message(state: State, body: Any) -> Result:
    wire = WireMessage.from_json(_obj(body))
    state, added, changes = _merge(state, [wire])
    if not added:
        return state, changes
    key = wire_key(wire)
    if not wire.to and not wire.is_read and key != state.open_conversation:
        unread = _put(state.unread, key, state.unread.get(key, 0) + 1)
        state = replace(state, unread=unread)
        changes.append(Change(ChangeKind.UNREAD, key))
    state = replace(state, history_applied=state.history_applied + 1)
    return _check_history(state, changes)


def _on_history_end(state: State, body: Any) -> Result:
    count = _obj(body)["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be a whole number")
    return _check_history(replace(state, history_expected=count), [])


def _on_search(state: State, body: Any) -> Result:
    items = body if isinstance(body, list) else _obj(body)["listOfUsers"]
    me = state.me.user_id if state.me else None
    users = [_user(_obj(u)) for u in _list(items)]
    users = [u for u in users if u.user_id != me]
    directory = dict(state.directory)
    directory.update((u.user_id, u.name) for u in users if u.name)
    state = replace(state, directory=MappingProxyType(directory))
    if state.search_query is None:  # results of a search the user already cleared
        return state, []
    return replace(state, search_results=tuple(users)), [Change(ChangeKind.SEARCH)]


def _on_select(state: State, body: Any) -> Result:
    items = body if isinstance(body, list) else _obj(body)["messages"]
    state, _, changes = _merge(state, [WireMessage.from_json(_obj(m)) for m in _list(items)])
    return state, changes


def _on_history(state: State, body: Any) -> Result:
    data = _obj(body)
    user_id = group_key(_id(data["groupID"])) if "groupID" in data else _id(data["userID"])
    wires = [WireMessage.from_json(_obj(m)) for m in _list(data["messages"])]
    has_more = data.get("hasMore")
    if not isinstance(has_more, bool):
        raise ValueError("hasMore must be true or false")
    state, _, changes = _merge(state, wires)
    conv = conversation(state, user_id)
    if conv.has_more != has_more:
        state = _with_conv(state, replace(conv, has_more=has_more))
        changes.append(Change(ChangeKind.MESSAGES, user_id))
    return state, changes


def _on_sent(state: State, body: Any) -> Result:
    data = _obj(body)
    cid, mid = _id(data["clientMessageId"]), _id(data["messageID"])
    order, when = _order(data["order"]), str(data["dateTime"])
    msg = pending_message(state, cid)
    if msg is None:
        return state, []  # a redelivered ack, or one for a message this state never held
    conv = conversation(state, msg.user_id)
    if any(m.message_id == mid for m in conv.messages):  # already held: drop the copy
        return _replace_msg(state, conv, msg, None)
    read = order <= conv.read_up_to
    status: Status = "read" if read else "sent"
    stored = replace(msg, message_id=mid, order=order, date_time=when, is_read=read, status=status)
    return _replace_msg(state, conv, msg, stored)


def _on_read(state: State, body: Any) -> Result:
    data = _obj(body)
    user_id, up_to = _id(data["userID"]), _order(data["upToOrder"])
    conv = conversation(state, user_id)
    msgs = tuple(
        replace(m, is_read=True, status="read")
        if m.outgoing and m.order is not None and m.order <= up_to and m.status != "read"
        else m
        for m in conv.messages
    )
    if msgs == conv.messages and up_to <= conv.read_up_to:
        return state, []
    new = replace(conv, messages=msgs, read_up_to=max(up_to, conv.read_up_to))
    return _with_conv(state, new), [Change(ChangeKind.MESSAGES, user_id)]


def _on_error(state: State, push: Push) -> Result:
    data = push.body if isinstance(push.body, dict) else {}
    message = data.get("message") if isinstance(data.get("message"), str) else ""
    error = ErrorInfo(
        push.status, message or f"request failed ({push.status})", str(data.get("method") or "")
    )
    if push.status == 401:
        return expire(state, error.message)
    state, changes = (
        replace(state, last_error=error),
        [Change(ChangeKind.ERROR, detail=error.message)],
    )
    sending = [m for c in state.conversations.values() for m in c.messages if m.status == "sending"]
    if error.method == "add" and len(sending) == 1 and sending[0].client_message_id:
        # errors name no clientMessageId; with one message in flight the refusal is its own
        state, more = mark_pending(state, sending[0].client_message_id, "failed")
        changes += more
    return state, changes


_HANDLERS: dict[str, Callable[[State, Any], Result]] = {
    Action.MESSAGE: _on_message,
    Action.HISTORY_END: _on_history_end,
    Action.SEARCH_USER: _on_search,
    Action.SELECT_SEARCH_USER: _on_select,
    Action.HISTORY: _on_history,
    Action.SENT: _on_sent,
    Action.READ: _on_read,
}


# --- internals ----------------------------------------------------------------------------
def _merge(
    state: State, wires: Iterable[WireMessage]
) -> tuple[State, list[WireMessage], list[Change]]:
    """Insert messages not held yet (by messageID), keeping each conversation ordered."""
    added: list[WireMessage] = []
    changes: list[Change] = []
    by_user: dict[str, list[WireMessage]] = {}
    for wire in wires:
        by_user.setdefault(wire_key(wire), []).append(wire)
    for user_id, group in by_user.items():
        conv = conversation(state, user_id)
        held = {m.message_id: m for m in conv.messages if m.message_id}
        new = False
        for wire in group:
            old = held.get(wire.message_id)
            if old is None:
                held[wire.message_id] = _from_wire(wire, conv.read_up_to, user_id)
                added.append(wire)
            elif wire.is_read and not old.is_read:  # a redelivery may only move forward
                status: Status | None = "read" if old.outgoing else None
                held[wire.message_id] = replace(old, is_read=True, status=status)
            else:
                continue
            new = True
        # a group message names its sender, never the conversation
        named = (
            ""
            if conv.group or group[0].group_id
            else next((w.name for w in reversed(group) if w.name), "")
        )
        if not new and (not named or named == conv.name):
            continue
        stored = sorted(held.values(), key=lambda m: m.order or 0)
        pending = [m for m in conv.messages if m.message_id is None]
        activity = max([conv.last_activity, *(_instant(w.date_time) for w in group)])
        conv = replace(
            conv, name=named or conv.name, messages=(*stored, *pending), last_activity=activity
        )
        state = _with_conv(state, conv)
        if named:
            state = replace(state, directory=_put(state.directory, user_id, named))
        changes += [Change(ChangeKind.MESSAGES, user_id), Change(ChangeKind.CONVERSATIONS)]
    return state, added, changes


def _from_wire(wire: WireMessage, read_up_to: int, key: str) -> ChatMessage:
    outgoing = wire.to is not None
    read = wire.is_read or (outgoing and wire.order <= read_up_to)
    status: Status | None = ("read" if read else "sent") if outgoing else None
    return ChatMessage(
        key, wire.name, _freeze(wire.body), outgoing, wire.date_time, wire.message_id,
        None, wire.order, read, status, wire.user_id if wire.group_id else None,
    )  # fmt: skip


def _check_history(state: State, changes: list[Change]) -> Result:
    expected = state.history_expected
    if not state.history_complete and expected is not None and state.history_applied >= expected:
        state = replace(state, history_complete=True)
        changes = [*changes, Change(ChangeKind.HISTORY_COMPLETE)]
    return state, changes


def _replace_msg(
    state: State, conv: Conversation, old: ChatMessage, new: ChatMessage | None
) -> Result:
    """Swap (or drop) one message in place, then restore order: stored by order, then pending."""
    msgs = [m for m in (new if m is old else m for m in conv.messages) if m is not None]
    msgs.sort(key=lambda m: (m.order is None, m.order or 0))  # stable: pending keep their order
    return _with_conv(state, replace(conv, messages=tuple(msgs))), [
        Change(ChangeKind.MESSAGES, conv.user_id),
        Change(ChangeKind.CONVERSATIONS),
    ]


def _with_conv(state: State, conv: Conversation) -> State:
    return replace(state, conversations=_put(state.conversations, conv.user_id, conv))


def _put(mapping: Mapping[str, Any], key: str, value: Any) -> Mapping[str, Any]:
    new = dict(mapping)
    new[key] = value
    return MappingProxyType(new)


def _freeze(body: str | Mapping[str, Any]) -> str | Mapping[str, Any]:
    return body if isinstance(body, str) else MappingProxyType(dict(body))


def _instant(text: str) -> str:
    """Times compare as text only in one format; the worker's is the one we normalize to."""
    try:
        return now_iso(parse_iso(text))
    except (ValueError, TypeError, OverflowError):
        return text


def _obj(value: Any) -> dict[str, Any]:
    return _need(value, dict, "body must be a JSON object")


def _list(value: Any) -> list[Any]:
    return _need(value, list, "expected a JSON array")


def _user(data: dict[str, Any]) -> UserSummary:
    return UserSummary(_id(data["userID"]), str(data.get("name") or ""))


def _id(value: Any) -> str:
    return _need(value or None, str, "ids must be non-empty strings")


def _order(value: Any) -> int:
    return _need(value, int, "order must be a whole number")


def _need(value: Any, kind: type[T], what: str) -> T:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(what)
    return value


# Group conversations (v1.1) live in their own module, built on the helpers above; importing
# it adds its reducers to `_HANDLERS`, so `apply` stays the one entry point.
from . import groups as _groups  # noqa: E402, F401
