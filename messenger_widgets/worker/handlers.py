"""One function per (controller, method), registered in `HANDLERS`.

The runner looks a request up in the table (`HANDLERS[request.key]`), never branches on
names. A handler validates its body (`bodies`), talks to the store, and fills the outbox;
it raises `RequestError` subclasses for refusals and lets anything else propagate so the
request is redelivered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .. import bodies
from ..errors import AlreadyExists, AttachmentError, BadRequest, Throttled, Unauthorized
from ..protocol import (
    ATTACHMENT_PREFIX,
    LOGIN_HISTORY_LIMIT,
    SEARCH_MAX_RESULTS,
    SELECT_LIMIT,
    Action,
    Push,
    Request,
)
from ..store.base import Activity, User
from .context import Caller, Context, Outbox, fit_page, group_json, group_wire, names_for, wire

Handler = Callable[[Context, Request, Caller | None, Outbox], None]
HANDLERS: dict[tuple[str, str], Handler] = {}

INVALID_LOGIN = "Invalid email or password."
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_FAILURES = 5
SESSION_QUEUE_ATTRIBUTES = {
    "ReceiveMessageWaitTimeSeconds": "20",
    "MessageRetentionPeriod": "86400",
    "MaximumMessageSize": "262144",
}


def handles(controller: str, method: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[(controller, method)] = fn
        return fn

    return register


def _caller(caller: Caller | None) -> Caller:
    if caller is None:  # the runner authenticates every method but register/login
        raise Unauthorized("a token is required")
    return caller


# --- user ---------------------------------------------------------------------------------
@handles("user", "register")
def register(ctx: Context, req: Request, _: Caller | None, out: Outbox) -> None:
    data = bodies.Register.parse(req.body)
    now = ctx.clock()
    try:
        user = ctx.store.create_user(
            data.first_name,
            data.last_name,
            data.email,
            ctx.passwords.hash(data.password),
            data.dark_mode,
            now,
            created_by=req.message_id,
        )
    except AlreadyExists:
        existing = ctx.store.get_user_by_email(data.email)
        if existing is None or existing.created_by != req.message_id:
            raise BadRequest("email is already registered") from None
        user = existing  # the same request redelivered: answer as the first time
    else:
        ctx.store.record_activity(user.user_id, Activity.ACCOUNT_CREATED, now)
    out.reply(ctx, req.message_id, 200, {"message": "Account created. You can log in now."})


@handles("user", "login")
def login(ctx: Context, req: Request, _: Caller | None, out: Outbox) -> None:
    data = bodies.Login.parse(req.body)
    now = ctx.clock()
    failures = ctx.store.failed_logins_since(data.email, now - THROTTLE_WINDOW)
    if failures >= THROTTLE_FAILURES:
        raise Throttled("Too many failed logins. Try again in 15 minutes.")
    user = ctx.store.get_user_by_email(data.email)
    if not ctx.passwords.verify(user.password_hash if user else None, data.password) or not user:
        ctx.store.record_failed_login(data.email, now)
        if user:
            ctx.store.record_activity(user.user_id, Activity.LOGIN_FAILED, now)
        raise Unauthorized(INVALID_LOGIN)
    ctx.store.clear_failed_logins(data.email)

    session_id = ctx.tokens.session_id_for(req.message_id)
    queue_url = ctx.transport.create_queue(
        ctx.config.session_queue_prefix + session_id, SESSION_QUEUE_ATTRIBUTES
    )
    token, expires_at = ctx.tokens.issue(user.user_id, session_id)
    try:
        ctx.store.create_session(session_id, user.user_id, queue_url, now, expires_at)
        ctx.store.record_activity(user.user_id, Activity.LOGIN, now)
    except AlreadyExists:
        pass  # a redelivered login: same session, fresh token
    out.reply(
        ctx,
        req.message_id,
        200,
        {
            "message": "Logged in.",
            "token": token,
            "darkModeState": user.dark_mode,
            "url": queue_url,
            "userID": user.user_id,
            "name": user.name,
        },
    )
    _login_history(ctx, user, queue_url, out)


def _login_history(ctx: Context, user: User, queue_url: str, out: Outbox) -> None:
    """The user's groups (a `groupCreated` each), then their messages, 1:1 and group alike:
    everything since the last logout when that is more than 100, otherwise the newest 100."""
    me, since = user.user_id, user.last_logout_at
    groups = {g.group_id: g for g in ctx.store.groups_for_user(me)}
    counts = (
        (ctx.store.count_messages_since(me, since), ctx.store.count_group_messages_since(me, since))
        if since
        else (0, 0)
    )
    everything = sum(counts) > LOGIN_HISTORY_LIMIT
    start, limits = (since, counts) if everything else (None, (LOGIN_HISTORY_LIMIT,) * 2)
    direct = ctx.store.messages_since(me, start, limits[0])
    grouped = [
        m for m in ctx.store.group_messages_since(me, start, limits[1]) if m.group_id in groups
    ]
    names = names_for(
        ctx.store,
        [
            *(m.other_party(me) for m in direct),
            *(uid for g in groups.values() for uid in g.member_ids),
            *(m.sender_id for m in grouped),
        ],
    )
    for group in groups.values():
        unread = ctx.store.group_unread(group.group_id, me)
        body = group_json(group, names, unreadMessages=unread)
        out.push(queue_url, Push(Action.GROUP_CREATED, body))
    history = sorted(
        [(m.created_at, wire(m, me, names)) for m in direct]
        + [(m.created_at, group_wire(m, me, groups[m.group_id], names)) for m in grouped],
        key=lambda item: item[0],
    )
    if not everything:
        history = history[-LOGIN_HISTORY_LIMIT:]
    for _, message in history:
        out.push(queue_url, Push(Action.MESSAGE, message.to_json()))
    out.push(queue_url, Push(Action.HISTORY_END, {"count": len(history)}))


@handles("user", "logout")
def logout(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    now = ctx.clock()
    ctx.transport.delete_queue(me.session.queue_url)
    ctx.store.end_session(me.session.session_id, now, logout=True)
    ctx.store.mark_reaped(me.session.session_id, now)
    ctx.store.record_activity(me.user.user_id, Activity.LOGOUT, now)


@handles("user", "setDarkModeState")
def set_dark_mode(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    ctx.store.set_dark_mode(me.user.user_id, bodies.DarkMode.parse(req.body).enabled)


@handles("user", "searchUser")
def search_user(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    text = bodies.Search.parse(req.body).text
    users = ctx.store.search_users(text, me.user.user_id, SEARCH_MAX_RESULTS)
    found = [{"name": u.name, "userID": u.user_id, "unreadMessages": -1} for u in users]
    out.push(me.session.queue_url, Push(Action.SEARCH_USER, {"listOfUsers": found}))


# --- message ------------------------------------------------------------------------------
def _attachment_body(ctx: Context, ref: bodies.AttachmentRef) -> dict[str, Any]:
    key = ref.key or ctx.attachments.key_from_url(ref.url)
    if not key:
        raise BadRequest("attachment url does not point into the attachments bucket")
    try:
        key = ctx.attachments.validate_key(key)
    except AttachmentError:
        raise BadRequest(f"attachment key must be a plain key under {ATTACHMENT_PREFIX}") from None
    found = ctx.attachments.head(key)  # an S3 outage raises: the request is redelivered
    if found is None:
        raise BadRequest("attachment not found in the bucket")
    size, _ = found
    return {"key": key, "name": ref.name, "type": ref.content_type, "size": size}


@handles("message", "add")
def add_message(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    data = bodies.AddMessage.parse(req.body)
    if data.recipient_id == me.user.user_id:
        raise BadRequest("you cannot send a message to yourself")
    recipient = ctx.store.get_user(data.recipient_id)
    if recipient is None:
        raise BadRequest("userID does not name a user")
    content: str | dict[str, Any] = (
        data.text if data.text is not None else _attachment_body(ctx, data.attachment)  # type: ignore[arg-type]
    )
    now = ctx.clock()
    key = data.client_message_id or f"sqs:{req.message_id}"
    message, _ = ctx.store.add_message(me.user.user_id, recipient.user_id, content, key, now)
    names = {me.user.user_id: me.user.name, recipient.user_id: recipient.name}
    to_recipient = Push(Action.MESSAGE, wire(message, recipient.user_id, names).to_json())
    out.push_all(ctx.store.live_sessions(recipient.user_id, now), to_recipient)
    others = [
        s
        for s in ctx.store.live_sessions(me.user.user_id, now)
        if s.session_id != me.session.session_id
    ]
    out.push_all(others, Push(Action.MESSAGE, wire(message, me.user.user_id, names).to_json()))
    sent = wire(message, me.user.user_id, names)
    out.push(
        me.session.queue_url,
        Push(
            Action.SENT,
            {
                "clientMessageId": data.client_message_id or None,
                "messageID": sent.message_id,
                "order": sent.order,
                "dateTime": sent.date_time,
                "userID": recipient.user_id,
            },
        ),
    )


def _other(ctx: Context, user_id: str) -> None:
    if ctx.store.get_user(user_id) is None:
        raise BadRequest("userID does not name a user")


@handles("message", "selectSearchUser")
def select_search_user(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    other = bodies.Conversation.parse(req.body).other_id
    _other(ctx, other)
    messages, _ = ctx.store.conversation(me.user.user_id, other, SELECT_LIMIT)
    names = names_for(ctx.store, [other])
    page = [wire(m, me.user.user_id, names).to_json() for m in messages]
    push, _ = fit_page(Action.SELECT_SEARCH_USER, page, lambda ms: ms)
    out.push(me.session.queue_url, push)


@handles("message", "markMessagesAsRead")
def mark_read(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    other = bodies.Conversation.parse(req.body).other_id
    _other(ctx, other)
    up_to = ctx.store.mark_read(me.user.user_id, other)
    receipt = Push(Action.READ, {"userID": me.user.user_id, "upToOrder": up_to})
    out.push_all(ctx.store.live_sessions(other, ctx.clock()), receipt)


@handles("message", "history")
def history(ctx: Context, req: Request, caller: Caller | None, out: Outbox) -> None:
    me = _caller(caller)
    data = bodies.History.parse(req.body)
    _other(ctx, data.other_id)
    messages, has_more = ctx.store.conversation(
        me.user.user_id, data.other_id, data.limit, data.before_order
    )
    names = names_for(ctx.store, [data.other_id])
    page = [wire(m, me.user.user_id, names).to_json() for m in messages]
    push, trimmed = fit_page(
        Action.HISTORY,
        page,
        lambda ms: {"userID": data.other_id, "messages": ms, "hasMore": has_more},
    )
    if trimmed:
        push = Push(Action.HISTORY, {**push.body, "hasMore": True})
    out.push(me.session.queue_url, push)
