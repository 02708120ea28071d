"""`Session`: one user's conversation with the worker, over queues only.

register/login wait for a reply on the shared responses queue; everything else is sent and
forgotten, and its outcome arrives later as a push on the session queue, which one daemon
thread drains into `State`. Every collaborator (transport, clock, sleep, ids) is injected so
tests run in memory and in milliseconds; nothing here creates an AWS client.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from .. import errors
from ..errors import DecodeError, MessengerError, QueueGone, TransportError
from ..protocol import (
    GROUP_MAX_MEMBERS,
    GROUP_MIN_MEMBERS,
    GROUP_NAME_MAX_CHARS,
    GROUP_NAME_MIN_CHARS,
    HISTORY_DEFAULT_LIMIT,
    ID_MAX_CHARS,
    MAX_RECEIVE_MESSAGES,
    MAX_TEXT_CHARS,
    SEARCH_QUERY_MAX_CHARS,
    Envelope,
    Push,
    Reply,
    Request,
    now_iso,
)
from ..transport import Transport
from . import groups
from . import state as st
from .state import GROUP_PREFIX, Change, ChangeKind, State

log = logging.getLogger(__name__)

Observer = Callable[[State, list[Change]], None]
Progress = Callable[[int, int], None]  # (bytes sent, bytes in all), as Attachments reports it
BACKOFF_START, BACKOFF_MAX = 0.5, 15.0
FOREIGN_PAUSE = 0.1  # after releasing only others' replies, so two clients never spin hot
ENDED = "the session has ended; please log in again"
MAX_JOIN_SECONDS = 2.0  # the thread is inert once stopped; never block the UI long
_AWS_ERRORS = (BotoCoreError, ClientError, OSError)
_STATUS_ERRORS: dict[int, type[errors.RequestError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    413: errors.PayloadTooLarge,
    429: errors.Throttled,
}


class Uploader(Protocol):
    """What `send_file` needs: store the bytes, return the wire body {key, name, type, size}."""

    def upload(
        self, name: str, data: bytes, content_type: str, progress: Progress | None, /
    ) -> Mapping[str, Any]: ...


class _Poller:
    """One login's drain thread; a new login gets a new one, so a stale thread stays inert."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None


class Session:
    def __init__(
        self,
        transport: Transport,
        request_queue_url: str,
        response_queue_url: str,
        *,
        attachments: Uploader | None = None,
        reply_timeout: float = 30.0,
        wait_seconds: int = 20,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._transport = transport
        self._request_url, self._response_url = request_queue_url, response_queue_url
        self._attachments = attachments
        self._reply_timeout, self._wait = reply_timeout, wait_seconds
        self._clock, self._sleep, self._new_id = clock, sleep, new_id
        self._lock = threading.Lock()  # guards every field below
        self._notify_lock = threading.RLock()  # observers see changes one batch at a time
        self._call_lock = threading.Lock()  # one register/login at a time
        self._observers: list[Observer] = []
        self._state = State()
        self._token: str | None = None
        self._session_url: str | None = None
        self._poller: _Poller | None = None
        self._answered: set[str] = set()  # MessageIds of our requests that got their reply

    # --- observing ------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state  # an immutable snapshot: safe to read without the lock

    @property
    def logged_in(self) -> bool:
        return self._token is not None and not self._state.expired

    @property
    def polling(self) -> bool:
        poller = self._poller
        return poller is not None and poller.thread is not None and poller.thread.is_alive()

    @property
    def session_queue_url(self) -> str | None:
        return self._session_url

    def observe(self, callback: Observer) -> Callable[[], None]:
        """Call `callback(state, changes)` after every change; returns the unsubscribe."""
        with self._lock:
            self._observers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._observers:
                    self._observers.remove(callback)

        return unsubscribe

    # --- register / login -----------------------------------------------------------------
    def register(
        self, first: str, last: str, email: str, password: str, dark_mode: bool = False
    ) -> str:
        """Create an account; returns the server's message. Raises on any non-200 reply."""
        body = {"fName": first, "lName": last, "email": email, "password": password}
        with self._exclusive():
            reply = self._call(Request("user", "register", {**body, "darkModeState": dark_mode}))
        return str(reply.body.get("message") or "Account created.")

    def login(self, email: str, password: str) -> None:
        """Log in, then start draining the session queue the worker created for us."""
        if self.logged_in:
            raise MessengerError("already logged in; log out first")
        with self._exclusive():
            self._teardown()  # a previous session that expired
            self._local(lambda s: st.set_connection(s, "connecting"))
            try:
                reply = self._call(Request("user", "login", {"email": email, "password": password}))
                token, url, user_id = (_text(reply.body, k) for k in ("token", "url", "userID"))
            except BaseException:
                self._local(lambda s: st.set_connection(s, "offline"))
                raise
            self._start(reply.body, token, url, user_id)

    def _start(self, body: dict[str, Any], token: str, url: str, user_id: str) -> None:
        name, dark = str(body.get("name") or ""), body.get("darkModeState") is True
        poller = _Poller(url)
        with self._lock:
            self._token, self._session_url, self._poller = token, url, poller
            self._state, changes = st.start_session(self._state, user_id, name, dark)
        self._notify(changes)
        poller.thread = threading.Thread(
            target=self._poll, args=(poller,), name="messenger-session", daemon=True
        )
        poller.thread.start()
        atexit.register(self.close)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        if not self._call_lock.acquire(blocking=False):
            raise MessengerError("a register or login is already in progress")
        try:
            yield
        finally:
            self._call_lock.release()

    def _call(self, request: Request) -> Reply:
        """Send, wait for the matching reply, turn a refusal into its RequestError."""
        reply = self._await_reply(self._send(request), request.method)
        if reply.status == 200:
            return reply
        message = str(reply.body.get("message") or f"{request.method} failed ({reply.status})")
        error = _STATUS_ERRORS.get(reply.status, errors.RequestError)(message)
        error.status = reply.status
        raise error

    def _await_reply(self, sent_id: str, method: str) -> Reply:
        """Long-poll the shared responses queue for the reply whose resTo is our MessageId."""
        deadline = self._clock() + self._reply_timeout
        while (remaining := deadline - self._clock()) > 0:
            wait = max(1, min(self._wait, math.ceil(remaining)))
            envelopes = self._guard(
                "receive", self._transport.receive, self._response_url, MAX_RECEIVE_MESSAGES, wait
            )
            ours = {sent_id, *self._answered}  # a reply to an answered request is a duplicate
            mine = [e for e in envelopes if e.attributes.get("resTo") in ours]
            for other in (e for e in envelopes if e not in mine):
                self._release(other)
            if mine:
                self._delete_quietly(self._response_url, mine)
            reply = next((e for e in mine if e.attributes.get("resTo") == sent_id), None)
            if reply is not None:
                self._answered.add(sent_id)
                return Reply.decode(reply)
            if envelopes:
                self._sleep(min(FOREIGN_PAUSE, remaining))
        raise errors.ReplyTimeout(
            f"no reply to {method} within {self._reply_timeout:g} s; is the worker running?"
        )

    def _delete_quietly(self, url: str, envelopes: Sequence[Envelope]) -> None:
        try:
            self._guard(
                "delete", self._transport.delete_batch, url, [e.receipt_handle for e in envelopes]
            )
        except MessengerError as exc:  # it comes back later and is handled the same way again
            log.warning("could not delete %d messages: %s", len(envelopes), exc)

    def _release(self, envelope: Envelope) -> None:
        """Another client's reply: make it visible again at once, never delete it."""
        try:
            self._transport.change_visibility(self._response_url, envelope.receipt_handle, 0)
        except MessengerError as exc:  # it reappears when its visibility timeout ends anyway
            log.warning("could not release a reply for another client: %s", exc)

    # --- requests that are sent and forgotten ---------------------------------------------
    def search(self, text: str) -> None:
        text = text.strip()
        if not text:
            self.clear_search()
            return
        if len(text) > SEARCH_QUERY_MAX_CHARS:
            raise errors.BadRequest(
                f"search text is longer than {SEARCH_QUERY_MAX_CHARS} characters"
            )
        token = self._require_session()
        self._local(lambda s: st.begin_search(s, text))
        self._send(Request("user", "searchUser", {"name": text}, token))

    def clear_search(self) -> None:
        self._local(st.clear_search)

    def open_conversation(self, user_id: str) -> None:
        """Show a conversation (a userID or a `group:` key): fetch its newest messages and
        tell the sender (every other member) we read them."""
        token = self._require_session(user_id)
        self._local(lambda s: st.open_conversation(s, user_id))
        body = groups.target(user_id)
        self._send_batch(
            [
                Request("message", "selectSearchUser", body, token),
                Request("message", "markMessagesAsRead", body, token),
            ]
        )

    def close_conversation(self) -> None:
        self._local(lambda s: st.open_conversation(s, None))

    def mark_read(self, user_id: str) -> None:
        token = self._require_session(user_id)
        self._local(lambda s: st.mark_read(s, user_id))
        self._send(Request("message", "markMessagesAsRead", groups.target(user_id), token))

    def load_older(self, user_id: str) -> bool:
        """Ask for the 50 messages before the oldest held; False when there is nothing older."""
        token = self._require_session(user_id)
        conv = st.conversation(self._state, user_id)
        if not conv.can_load_older:
            return False
        body: dict[str, Any] = {**groups.target(user_id), "limit": HISTORY_DEFAULT_LIMIT}
        if conv.oldest_order is not None:
            body["beforeOrder"] = conv.oldest_order
        self._send(Request("message", "history", body, token))
        return True

    def set_dark_mode(self, enabled: bool) -> None:
        """The theme changes at once; it is stored on the server only when logged in."""
        self._local(lambda s: st.set_dark_mode(s, enabled))
        if self.logged_in:
            token = self._require_session()
            self._send(Request("user", "setDarkModeState", {"darkModeState": enabled}, token))

    def send_text(self, user_id: str, text: str) -> str:
        """Send a text; returns the clientMessageId of its optimistic "sending" copy."""
        if not isinstance(text, str) or not text.strip():
            raise errors.BadRequest("a message needs some text")
        if len(text) > MAX_TEXT_CHARS:
            raise errors.BadRequest(f"a message can hold at most {MAX_TEXT_CHARS:,} characters")
        return self._send_message(user_id, text)

    def send_file(
        self,
        user_id: str,
        name: str,
        data: bytes,
        content_type: str,
        progress: Progress | None = None,
    ) -> str:
        """Upload the bytes, then send the attachment as a message; returns its clientMessageId."""
        if self._attachments is None:
            raise errors.AttachmentError("this session has no attachment storage configured")
        self._require_session(user_id)
        try:
            body = dict(self._attachments.upload(name, data, content_type, progress))
        except MessengerError:
            raise
        except Exception as exc:
            raise errors.AttachmentError(f"could not upload {name!r}: {exc}") from exc
        return self._send_message(user_id, body)

    def resend(self, client_message_id: str) -> None:
        """Send an unacknowledged message again; its clientMessageId keeps it stored once."""
        token = self._require_session()
        msg = st.pending_message(self._state, client_message_id)
        if msg is None:
            raise errors.BadRequest("there is no unsent message with that clientMessageId")
        body = msg.body if isinstance(msg.body, str) else dict(msg.body)
        self._local(lambda s: st.mark_pending(s, client_message_id, "sending"))
        self._post(token, msg.user_id, body, client_message_id)

    def _send_message(self, user_id: str, body: str | dict[str, Any]) -> str:
        token = self._require_session(user_id)
        cid = self._new_id()
        self._local(lambda s: st.add_pending(s, user_id, cid, body, now_iso()))
        self._post(token, user_id, body, cid)
        return cid

    def _post(self, token: str, user_id: str, body: str | dict[str, Any], cid: str) -> None:
        # `name` is ignored by the worker; it is sent for clients of the original shape
        name = st.conversation(self._state, user_id).name
        to = (
            groups.target(user_id)
            if groups.is_group(user_id)
            else {"userID": user_id, "name": name}
        )
        wire = {"body": body, **to, "clientMessageId": cid}
        try:
            self._send(Request("message", "add", wire, token))
        except MessengerError:
            self._local(lambda s: st.mark_pending(s, cid, "failed"))
            raise

    # --- groups (v1.1) ---------------------------------------------------------------------
    def create_group(self, name: str, member_ids: Sequence[str]) -> str:
        """Ask for a group of you and `member_ids`; returns its clientGroupId. The group
        arrives as a `groupCreated` push and then opens in this session."""
        name = name.strip() if isinstance(name, str) else ""
        if not GROUP_NAME_MIN_CHARS <= len(name) <= GROUP_NAME_MAX_CHARS:
            raise errors.BadRequest(
                f"a group name has {GROUP_NAME_MIN_CHARS}-{GROUP_NAME_MAX_CHARS} characters"
            )
        token = self._require_session()
        me = self._state.me.user_id if self._state.me else ""
        members = [m for m in dict.fromkeys(member_ids) if m != me]
        if not GROUP_MIN_MEMBERS <= len(members) + 1 <= GROUP_MAX_MEMBERS:
            raise errors.BadRequest(
                f"pick 1 to {GROUP_MAX_MEMBERS - 1} people (a group has at most"
                f" {GROUP_MAX_MEMBERS} members, you included)"
            )
        for member in members:
            self._require_session(member)
        cid = self._new_id()
        self._local(lambda s: groups.begin_create(s, cid))
        body = {"name": name, "memberIDs": members, "clientGroupId": cid}
        self._send(Request("group", "create", body, token))
        return cid

    def leave_group(self, group_id: str) -> None:
        """Leave a group (its id or its `group:` key); it leaves the list at once."""
        key = st.group_key(groups.group_id_of(group_id))
        token = self._require_session(key)
        self._send(Request("group", "leave", groups.target(key), token))
        self._local(lambda s: groups.leave(s, key))

    # --- logout ---------------------------------------------------------------------------
    def logout(self) -> None:
        """Tell the worker, stop draining, forget everything but the theme. Idempotent."""
        token, poller, expired = self._token, self._poller, self._state.expired
        if poller is not None:
            poller.stop.set()  # the worker is about to delete the queue: that is no expiry
        failure: MessengerError | None = None
        if token is not None and not expired:
            try:
                self._send(Request("user", "logout", {}, token))
            except MessengerError as exc:
                failure = exc
        self._teardown()
        if failure is not None:
            raise failure

    def close(self) -> None:
        """`logout` that never raises: registered with atexit, so a kernel shutdown logs out."""
        try:
            self.logout()
        except MessengerError as exc:
            log.warning("logout on close failed: %s", exc)

    def _teardown(self) -> None:
        with self._lock:
            poller, had = self._poller, self._token is not None or self._poller is not None
            self._token = self._session_url = self._poller = None
            if had:
                self._state, changes = st.end_session(self._state)
        if had:
            atexit.unregister(self.close)
            self._stop(poller)
            self._notify(changes)

    def _stop(self, poller: _Poller | None) -> None:
        if poller is None:
            return
        poller.stop.set()
        thread = poller.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=min(self._wait + 1.0, MAX_JOIN_SECONDS))

    # --- the drain thread -----------------------------------------------------------------
    def _poll(self, poller: _Poller) -> None:
        delay = BACKOFF_START
        while not poller.stop.is_set():
            try:
                envelopes = self._transport.receive(poller.url, MAX_RECEIVE_MESSAGES, self._wait)
            except QueueGone:
                if not poller.stop.is_set():
                    self._ended(poller, ENDED)
                return
            except Exception as exc:  # transient: back off, never die
                if poller.stop.is_set():
                    return
                log.warning("polling the session queue failed (retry in %.1f s): %s", delay, exc)
                self._update(poller, lambda s: st.set_connection(s, "reconnecting"))
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            delay = BACKOFF_START
            if poller.stop.is_set():
                return
            self._update(poller, lambda s: st.set_connection(s, "online"))
            if envelopes:
                self._drain(poller, envelopes)

    def _drain(self, poller: _Poller, envelopes: Sequence[Envelope]) -> None:
        changes: list[Change] = []
        with self._lock:
            if self._poller is not poller:
                return
            state = self._state
            for envelope in envelopes:
                try:
                    push = Push.decode(envelope)
                except DecodeError as exc:
                    state, more = st.malformed(state, f"undecodable push: {exc}")
                else:
                    state, more = st.apply(state, push)
                changes += more
            self._state = state
        for change in changes:
            if change.kind is ChangeKind.ERROR:
                log.warning("push error: %s", change.detail)
        self._notify(changes)
        try:
            self._transport.delete_batch(poller.url, [e.receipt_handle for e in envelopes])
        except QueueGone:
            self._ended(poller, ENDED)
        except Exception as exc:  # redelivered later; messageIDs make that harmless
            log.warning("could not delete applied pushes: %s", exc)
        if state.expired:
            poller.stop.set()
            atexit.unregister(self.close)
        else:
            self._read_open(changes)

    def _read_open(self, changes: list[Change]) -> None:
        """New incoming messages in the conversation on screen are read the moment they land."""
        user_id = self._state.open_conversation
        if user_id is None or Change(ChangeKind.MESSAGES, user_id) not in changes:
            return
        conv = st.conversation(self._state, user_id)
        if any(not m.outgoing and not m.is_read for m in conv.messages):
            try:
                self.mark_read(user_id)
            except MessengerError as exc:
                log.warning("could not mark the open conversation read: %s", exc)

    def _ended(self, poller: _Poller, reason: str) -> None:
        poller.stop.set()
        if self._update(poller, lambda s: (s, []) if s.expired else st.expire(s, reason)):
            atexit.unregister(self.close)

    # --- plumbing -------------------------------------------------------------------------
    def _require_session(self, user_id: str | None = None) -> str:
        token, state = self._token, self._state
        if token is None:
            raise errors.Unauthorized("not logged in")
        if state.expired:
            raise errors.Unauthorized(ENDED)
        if user_id is not None and (
            not isinstance(user_id, str)
            or not 0 < len(user_id.removeprefix(GROUP_PREFIX)) <= ID_MAX_CHARS
        ):
            raise errors.BadRequest("userID must be a non-empty string")
        return token

    def _send(self, request: Request) -> str:
        return str(self._guard("send", self._transport.send, self._request_url, request.encode()))

    def _send_batch(self, requests: Sequence[Request]) -> None:
        self._guard(
            "send", self._transport.send_batch, self._request_url, [r.encode() for r in requests]
        )

    def _guard(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """Run a transport call so that only MessengerError subclasses ever escape."""
        try:
            return call(*args)
        except MessengerError:
            raise
        except _AWS_ERRORS as exc:
            raise TransportError(f"could not {what} a message: {exc}") from exc

    def _local(self, step: Callable[[State], st.Result]) -> None:
        with self._lock:
            self._state, changes = step(self._state)
        self._notify(changes)

    def _update(self, poller: _Poller, step: Callable[[State], st.Result]) -> bool:
        """`_local` for the drain thread: a no-op once its login is over."""
        with self._lock:
            if self._poller is not poller:
                return False
            self._state, changes = step(self._state)
        self._notify(changes)
        return True

    def _notify(self, changes: list[Change]) -> None:
        if not changes:
            return
        with self._notify_lock:
            with self._lock:
                state, observers = self._state, list(self._observers)
            for callback in observers:
                try:
                    callback(state, changes)
                except Exception:
                    log.exception("observer %r failed", callback)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise DecodeError(f"the login reply has no {key}")
    return value
