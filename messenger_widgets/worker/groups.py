"""Group conversations (v1.1): `group/create`, `group/leave`, and the group form of message/*.

`message/add`, `selectSearchUser`, `markMessagesAsRead` and `history` take either a `userID`
(1:1, unchanged) or a `groupID`. The group forms are registered here with `@for_groups` and
`install` puts one dispatcher per method into `HANDLERS`, which picks the form by the body's
`groupID`: the runner still looks every request up in the table, and no code branches on
method names. Importing this module (the package does) completes the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from .. import bodies
from ..errors import BadRequest, Forbidden, NotFound
from ..protocol import GROUP_MAX_MEMBERS, GROUP_MIN_MEMBERS, SELECT_LIMIT, Action, Push, Request
from ..store.base import Group
from .context import Caller, Context, Outbox, fit_page, group_json, group_wire, names_for
from .handlers import HANDLERS, Handler, _attachment_body, _caller, handles

GROUP_FORMS: dict[tuple[str, str], Handler] = {}
NOT_A_GROUP = "groupID does not name a group"
NOT_A_MEMBER = "you are not a member of this group"


def for_groups(controller: str, method: str) -> Callable[[Handler], Handler]:
    """Register the form of `controller/method` whose body names a `groupID`."""

    def register(fn: Handler) -> Handler:
        GROUP_FORMS[(controller, method)] = fn
        return fn

    return register


def by_target(direct: Handler, group: Handler) -> Handler:
    """One handler for both forms: the body's `groupID` picks the group form."""

    def dispatch(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
        (group if "groupID" in req.body else direct)(ctx, req, caller, out)

    dispatch.group_form = group  # type: ignore[attr-defined]
    return dispatch


def install(table: dict[tuple[str, str], Handler]) -> None:
    """Wrap each 1:1 handler with its group form (once, however often this is called)."""
    for key, group in GROUP_FORMS.items():
        current = table[key]
        if getattr(current, "group_form", None) is not group:
            table[key] = by_target(current, group)


# --- helpers ------------------------------------------------------------------------------
def _membership(ctx: Context, group_id: str, caller: Caller) -> Group:
    group = ctx.store.get_group(group_id)
    if group is None:
        raise BadRequest(NOT_A_GROUP)
    if not group.is_member(caller.user.user_id):
        raise Forbidden(NOT_A_MEMBER)
    return group


def _push_to(ctx: Context, out: Outbox, user_ids: Iterable[str], push: Push, now: datetime) -> None:
    """One push to every live session of every user; the runner batches them per queue."""
    for user_id in dict.fromkeys(user_ids):
        out.push_all(ctx.store.live_sessions(user_id, now), push)


# --- group/* ------------------------------------------------------------------------------
@handles("group", "create")
def create_group(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    data = bodies.CreateGroup.parse(req.body)
    member_ids = list(dict.fromkeys([me.user.user_id, *data.member_ids]))
    if not GROUP_MIN_MEMBERS <= len(member_ids) <= GROUP_MAX_MEMBERS:
        raise BadRequest(
            f"a group has {GROUP_MIN_MEMBERS}-{GROUP_MAX_MEMBERS} members, you included"
        )
    names = {me.user.user_id: me.user.name}
    for user_id in member_ids[1:]:
        user = ctx.store.get_user(user_id)
        if user is None:
            raise BadRequest("memberIDs must name existing users")
        names[user_id] = user.name
    now = ctx.clock()
    key = data.client_group_id or f"sqs:{req.message_id}"
    group, _ = ctx.store.create_group(me.user.user_id, data.name, member_ids, key, now)
    if set(group.member_ids) - set(names):  # a redelivered create answers with the first
        names = names_for(ctx.store, group.member_ids)
    body = group_json(group, names, clientGroupId=data.client_group_id or None)
    _push_to(ctx, out, group.member_ids, Push(Action.GROUP_CREATED, body), now)


@handles("group", "leave")
def leave_group(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    """Idempotent: a former member's leave (a redelivery) is answered as the first was."""
    me = _caller(caller)
    group_id = bodies.GroupTarget.parse(req.body).group_id
    group = ctx.store.get_group(group_id)
    if group is None:
        raise BadRequest(NOT_A_GROUP)
    user_id = me.user.user_id
    if not group.is_member(user_id) and user_id not in group.former:
        raise Forbidden(NOT_A_MEMBER)
    now = ctx.clock()
    if ctx.store.leave_group(group_id, user_id, now):
        group = ctx.store.get_group(group_id) or group
    names = names_for(ctx.store, [*group.member_ids, user_id])
    body = group_json(group, names, leftUserID=user_id)
    _push_to(ctx, out, [*group.member_ids, user_id], Push(Action.GROUP_UPDATED, body), now)


# --- message/* with a groupID -------------------------------------------------------------
@for_groups("message", "add")
def add_group_message(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    data = bodies.AddGroupMessage.parse(req.body)
    group = _membership(ctx, data.group_id, me)
    content = (
        data.text if data.text is not None else _attachment_body(ctx, data.attachment)  # type: ignore[arg-type]
    )
    now = ctx.clock()
    sender = me.user.user_id
    key = data.client_message_id or f"sqs:{req.message_id}"
    try:
        message, _ = ctx.store.add_group_message(group.group_id, sender, content, key, now)
    except NotFound:  # they left between the check and the write
        raise Forbidden(NOT_A_MEMBER) from None
    if message.group_id != group.group_id:  # the key was used before, in another group
        group = ctx.store.get_group(message.group_id) or group
    names = {sender: me.user.name}
    for member in group.member_ids:
        if member != sender:
            push = Push(Action.MESSAGE, group_wire(message, member, group, names).to_json())
            _push_to(ctx, out, [member], push, now)
    mine = group_wire(message, sender, group, names)
    sessions = ctx.store.live_sessions(sender, now)
    others = [s for s in sessions if s.session_id != me.session.session_id]
    out.push_all(others, Push(Action.MESSAGE, mine.to_json()))
    ack = {
        "clientMessageId": data.client_message_id or None,
        "messageID": mine.message_id,
        "order": mine.order,
        "dateTime": mine.date_time,
        "groupID": message.group_id,
    }
    out.push(me.session.queue_url, Push(Action.SENT, ack))


@for_groups("message", "selectSearchUser")
def select_group(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    group = _membership(ctx, bodies.GroupTarget.parse(req.body).group_id, me)
    messages, _ = ctx.store.group_conversation(group.group_id, SELECT_LIMIT)
    names = names_for(ctx.store, [m.sender_id for m in messages])
    page = [group_wire(m, me.user.user_id, group, names).to_json() for m in messages]
    push, _ = fit_page(Action.SELECT_SEARCH_USER, page, lambda ms: ms)
    out.push(me.session.queue_url, push)


@for_groups("message", "markMessagesAsRead")
def mark_group_read(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    """Every other member's sessions learn the reader's new mark (read by k of n)."""
    me = _caller(caller)
    group = _membership(ctx, bodies.GroupTarget.parse(req.body).group_id, me)
    reader = me.user.user_id
    try:
        up_to = ctx.store.mark_group_read(group.group_id, reader)
    except NotFound:
        raise Forbidden(NOT_A_MEMBER) from None
    receipt = Push(Action.READ, {"groupID": group.group_id, "userID": reader, "upToOrder": up_to})
    others = [m for m in group.member_ids if m != reader]
    _push_to(ctx, out, others, receipt, ctx.clock())


@for_groups("message", "history")
def group_history(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    data = bodies.GroupHistory.parse(req.body)
    group = _membership(ctx, data.group_id, me)
    messages, has_more = ctx.store.group_conversation(group.group_id, data.limit, data.before_order)
    names = names_for(ctx.store, [m.sender_id for m in messages])
    page = [group_wire(m, me.user.user_id, group, names).to_json() for m in messages]
    push, trimmed = fit_page(
        Action.HISTORY,
        page,
        lambda ms: {"groupID": group.group_id, "messages": ms, "hasMore": has_more},
    )
    if trimmed:
        push = Push(Action.HISTORY, {**push.body, "hasMore": True})
    out.push(me.session.queue_url, push)


install(HANDLERS)
