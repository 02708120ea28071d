"""`Messenger`: the notebook app. Builds the panels and is the only place wired to a Session.

Panels take callbacks; here each callback becomes a task on the `Lane` (one worker thread),
so a click never blocks the kernel, and each Session change is routed to the panel part it
concerns. No exception escapes into the notebook: failures become toasts or inline text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ipywidgets as w

from .. import errors
from ..attachments import Attachments
from ..client.session import Session
from ..client.state import Change, ChangeKind, State
from ..client.traffic import TrafficLog
from ..config import CLIENT_REQUIRED, Settings
from . import theme
from .auth import LoginPanel, RegisterPanel
from .home import HomeActions, HomePanel
from .hood import HoodPanel
from .widgets import (
    ImageCache,
    Lane,
    Toasts,
    classed,
    close_tree,
    describe,
    set_children,
    show,
)

log = logging.getLogger(__name__)

LINK_REFRESH_SECONDS = 600  # presigned links live 15 minutes; renew the open thread's at 10
SETUP_HINT = (
    "Start the whole stack with `messenger up`, or set the variables in the environment "
    "or a .env file next to the notebook, then reload this page."
)


class AttachmentLinks(Protocol):
    """What the UI needs from attachments: thumbnail bytes and short download links."""

    def fetch(self, key: str) -> bytes: ...

    def presigned_url(self, key: str, name: str, content_type: str) -> str: ...


def _connect(settings: Settings | None, attachments: Any) -> tuple[Session, Any, TrafficLog]:
    """A Session on real SQS/S3 from the settings; boto3 is touched only here.

    The Session's transport is a `TrafficLog` around the SQS one: the "Under the hood" panel
    shows what it records.
    """
    from ..aws import make_clients
    from ..transport import SqsTransport

    if settings is None:
        settings = Settings.load(require=CLIENT_REQUIRED)
    else:
        settings.validate(CLIENT_REQUIRED)
    clients = make_clients(settings)
    if attachments is None:
        attachments = Attachments(
            clients.s3, settings.bucket, endpoint_url=settings.endpoint_url or None
        )
    traffic = TrafficLog(
        SqsTransport(clients.sqs),
        request_queue_url=settings.request_queue_url,
        response_queue_url=settings.response_queue_url,
    )
    session = Session(
        traffic,
        settings.request_queue_url,
        settings.response_queue_url,
        attachments=attachments,
    )
    return session, attachments, traffic


class Messenger:
    """The whole app for one kernel (one browser tab): display it as a cell's last value."""

    def __init__(
        self,
        session: Session | None = None,
        *,
        attachments: AttachmentLinks | None = None,
        settings: Settings | None = None,
        traffic: TrafficLog | None = None,
    ) -> None:
        """`traffic`: the TrafficLog the given session's transport is (none: no hood panel)."""
        self._lock = threading.RLock()  # every widget change from observers and tasks
        self._lane = Lane()
        self._stop = threading.Event()
        self.toasts = Toasts()
        self.widget = classed(w.VBox([theme.style_widget(), self.toasts.widget]), "msgr-app")
        self.login = LoginPanel(self._login, lambda: self._show(self.register.widget))
        self.register = RegisterPanel(self._register, lambda: self._show(self.login.widget))
        self.home: HomePanel | None = None
        self.hood: HoodPanel | None = None
        self.traffic = traffic
        self.session: Session | None = None
        self.attachments: Any = attachments
        self._images: ImageCache | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        try:
            if session is None:
                session, self.attachments, self.traffic = _connect(settings, attachments)
        except Exception as exc:  # a missing setting is a page to read, not a traceback
            self._setup_failed(exc)
            return
        self.session = session
        if self.attachments is not None:
            self._images = ImageCache(self.attachments.fetch)
        self._unsubscribe = session.observe(self._changed)
        state = session.state
        theme.apply(self.widget, state.dark_mode)
        if session.logged_in and state.me is not None:
            self._enter_home(state)
        else:
            self._show(self.login.widget)
        threading.Thread(target=self._refresh_links, name="messenger-links", daemon=True).start()

    # --- display ------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _show(self, panel: Any) -> None:
        with self._lock:
            set_children(self.widget, [*self.widget.children[:2], panel])

    @property
    def panel(self) -> Any:
        """The widget currently shown (login, register, home or the setup error)."""
        return self.widget.children[-1]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until queued actions ran (for tests and scripted use)."""
        return self._lane.join(timeout)

    def close(self) -> None:
        """Log out and release threads and widgets; the kernel's atexit does the same."""
        self._stop.set()
        self._unsubscribe()
        self._lane.close()
        if self.hood is not None:
            self.hood.close()
        if self.session is not None:
            self.session.close()
        if self._images is not None:
            self._images.close()
        for root in (self.widget, self.login.widget, self.register.widget):
            close_tree(root)

    def _setup_failed(self, exc: Exception) -> None:
        if isinstance(exc, errors.ConfigError):
            text = str(exc)
        else:
            log.exception("could not start the messenger")
            what = describe(exc) if isinstance(exc, errors.MessengerError) else type(exc).__name__
            text = f"Could not connect: {what}"
        panel = classed(
            w.VBox(
                [
                    classed(w.Label(value="Messenger is not configured"), "msgr-title"),
                    classed(w.Label(value=text), "msgr-error-text", "msgr-error"),
                    classed(w.Label(value=SETUP_HINT), "msgr-error-text"),
                ]
            ),
            "msgr-error-panel",
        )
        self._show(panel)

    # --- session changes (called on the polling thread, the lane or the main thread) ------
    def _changed(self, state: State, changes: list[Change]) -> None:
        with self._lock:
            kinds = {c.kind for c in changes}
            if kinds & {ChangeKind.SESSION, ChangeKind.DARK_MODE}:
                theme.apply(self.widget, state.dark_mode)
            if ChangeKind.SESSION in kinds:
                if state.me is None:
                    self._leave_home()
                    if self.panel is not self.register.widget:
                        self._show(self.login.widget)
                else:
                    self._enter_home(state)
            elif self.home is not None and not state.expired:
                self.home.apply(state, changes)
            if ChangeKind.EXPIRED in kinds:
                reason = state.last_error.message if state.last_error else ""
                self._session_over(reason)
            elif ChangeKind.ERROR in kinds and self.home is not None:
                for change in changes:
                    if change.kind == ChangeKind.ERROR:
                        self.toasts.error(describe(errors.MessengerError(change.detail)))

    def _enter_home(self, state: State) -> None:
        with self._lock:
            self._leave_home()
            self.home = HomePanel(self._actions())
            self.home.render(state)
            self._add_hood(self.home)
            self.login.done()
            self.login.set_message("")
            self._show(self.home.widget)

    def _leave_home(self) -> None:
        with self._lock:
            if self.hood is not None:
                hood, self.hood = self.hood, None
                hood.close()
            if self.home is not None:
                home, self.home = self.home, None
                home.close()

    def _add_hood(self, home: HomePanel) -> None:
        """The "Under the hood" panel under the header, shown while its toggle is on."""
        toggle = home.header.hood
        if self.traffic is None:
            show(toggle, False)
            return
        self.hood = hood = HoodPanel(self.traffic)
        header, *rest = home.widget.children
        set_children(home.widget, [header, hood.widget, *rest])
        toggle.observe(lambda change: hood.set_open(bool(change["new"])), "value")

    def _session_over(self, reason: str) -> None:
        """Expired (401, queue gone): back to login with the reason, then clean up."""
        reason = reason or "your session has ended"
        text = reason[0].upper() + reason[1:]
        if "log in" not in text.lower():
            text = f"{text.rstrip('.')}. Please log in again."
        with self._lock:
            self._leave_home()
            self.login.set_busy(False)
            self.login.set_message(text, error=True)
            self._show(self.login.widget)
        session = self.session
        if session is not None:
            self._lane.submit(session.close)  # never raises; ends the drain thread

    # --- running actions ------------------------------------------------------------------
    def _run(
        self,
        work: Callable[[], object],
        *,
        failed: Callable[[str, Exception], None] | None = None,
        always: Callable[[], None] | None = None,
    ) -> None:
        """Queue `work` on the lane; a failure becomes `failed(text)` or a toast, never a raise."""

        def task() -> None:
            try:
                work()
            except Exception as exc:
                if not isinstance(exc, errors.MessengerError):
                    log.exception("a messenger action failed")
                self._failed(exc, failed)
            finally:
                if always is not None:
                    with self._lock:
                        always()

        self._lane.submit(task)

    def _failed(self, exc: Exception, failed: Callable[[str, Exception], None] | None) -> None:
        text = describe(exc)
        session = self.session
        with self._lock:
            if (
                isinstance(exc, errors.Unauthorized)
                and self.home is not None
                and session is not None
                and not session.logged_in
            ):
                self._session_over(text)
            elif failed is not None:
                failed(text, exc)
            else:
                self.toasts.error(text)

    def _session_call(self) -> Session:
        assert self.session is not None  # actions exist only once a session does
        return self.session

    # --- login / register -----------------------------------------------------------------
    def _login(self, email: str, password: str) -> None:
        session = self._session_call()
        self._run(
            lambda: session.login(email, password),
            failed=lambda text, _e: self.login.set_message(text, error=True),
            always=lambda: self.login.set_busy(False),
        )

    def _register(self, first: str, last: str, email: str, password: str) -> None:
        session = self._session_call()

        def work() -> None:
            message = session.register(first, last, email, password, session.state.dark_mode)
            with self._lock:
                self.register.reset()
                self.login.email.value = email
                self.login.set_message(f"{message} You can log in now.")
                self._show(self.login.widget)

        self._run(work, failed=lambda text, _e: self.register.fail(text))

    # --- home actions ---------------------------------------------------------------------
    def _actions(self) -> HomeActions:
        session = self._session_call()
        return HomeActions(
            open=lambda uid: self._run(lambda: session.open_conversation(uid)),
            search=lambda text: self._run(lambda: session.search(text), failed=self._search_failed),
            clear_search=lambda: self._run(session.clear_search),
            send=self._send_text,
            send_file=self._send_file,
            load_older=self._load_older,
            retry=lambda cid: self._run(lambda: session.resend(cid)),
            dark=self._set_dark,
            logout=self._logout,
            link_for=self._link_for,
            images=self._images,
            create_group=self._create_group,
            leave_group=lambda key: self._run(lambda: session.leave_group(key)),
        )

    def _create_group(self, name: str, member_ids: list[str]) -> None:
        """The form closes once the request is sent; the group opens when it is created."""
        session = self._session_call()

        def work() -> None:
            session.create_group(name, member_ids)
            with self._lock:
                if self.home is not None:
                    self.home.group_form.close()

        def failed(text: str, _exc: Exception) -> None:
            if self.home is not None:
                self.home.group_form.fail(text)

        self._run(work, failed=failed)

    def _search_failed(self, text: str, _exc: Exception) -> None:
        self.toasts.error(text)
        if self.home is not None:
            self.home.users.search_failed()

    def _open_user(self) -> str | None:
        user_id = self._session_call().state.open_conversation
        if user_id is None:
            self.toasts.notice("Pick a conversation first.")
        return user_id

    def _send_text(self, text: str) -> None:
        user_id = self._open_user()
        if user_id is None:
            return
        session = self._session_call()

        def failed(message: str, exc: Exception) -> None:
            self.toasts.error(message)
            if isinstance(exc, errors.BadRequest) and self.home is not None:
                self.home.composer.restore(text)

        self._run(lambda: session.send_text(user_id, text), failed=failed)

    def _send_file(self, name: str, data: bytes, content_type: str) -> None:
        user_id = self._open_user()
        if user_id is None or self.home is None:
            return
        try:  # refuse at once what the upload would refuse (size, type), without a request
            Attachments.check(name, len(data), content_type)
        except errors.AttachmentError as exc:
            self.toasts.error(describe(exc))
            return
        session, composer = self._session_call(), self.home.composer
        progress = composer.progress_for(name)
        self._run(
            lambda: session.send_file(user_id, name, data, content_type, progress),
            always=composer.upload_finished,
        )

    def _load_older(self, user_id: str) -> None:
        session = self._session_call()

        def work() -> None:
            if not session.load_older(user_id):
                self._rerender_thread()

        self._run(work, always=None, failed=lambda text, _e: self._older_failed(text))

    def _older_failed(self, text: str) -> None:
        self.toasts.error(text)
        self._rerender_thread()

    def _rerender_thread(self) -> None:
        session = self._session_call()
        with self._lock:
            if self.home is not None:
                self.home.apply(session.state, [Change(ChangeKind.OPEN)])

    def _set_dark(self, on: bool) -> None:
        theme.apply(self.widget, on)  # at once; the session stores it via the worker
        session = self._session_call()
        self._run(lambda: session.set_dark_mode(on))

    def _logout(self) -> None:
        session = self._session_call()

        def work() -> None:
            try:
                session.logout()
            finally:
                with self._lock:
                    self.login.set_message("You have logged out.")

        self._run(work)

    # --- links ----------------------------------------------------------------------------
    def _link_for(self, body: Mapping[str, Any]) -> str | None:
        """A fresh presigned download link for an attachment key; None when it cannot be."""
        key = body.get("key")
        if self.attachments is None or not isinstance(key, str):
            return None
        try:
            url = self.attachments.presigned_url(
                key, str(body.get("name") or "file"), str(body.get("type") or "")
            )
        except Exception as exc:
            log.warning("no download link for an attachment: %s", exc)
            return None
        return url if isinstance(url, str) else None

    def _refresh_links(self) -> None:
        while not self._stop.wait(LINK_REFRESH_SECONDS):
            with self._lock:
                if self.home is not None:
                    self.home.thread.refresh_links()
