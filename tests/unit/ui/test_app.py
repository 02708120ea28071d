"""App-level behaviour: escaping, theme, expiry, setup errors, never raising into the notebook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest

from messenger_widgets import Messenger as Exported
from messenger_widgets.config import Settings
from messenger_widgets.ui.app import Messenger
from messenger_widgets.ui.widgets import describe, walk

from ..client.fakeworker import FakeWorker, message
from .conftest import SIGNED, eventually, find, html_values, login

HOSTILE = '<img src=x onerror="alert(1)">'
SCRIPT = "<script>window.__pwned=1</script>"


def home(app: Messenger) -> Any:
    assert app.home is not None
    return app.home


def test_the_package_exports_messenger_and_it_displays_as_its_root(app: Messenger) -> None:
    assert Exported is Messenger
    bundle = app._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    view = data["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == app.widget.model_id
    assert "msgr-app" in app.widget._dom_classes


def test_hostile_strings_are_escaped_in_every_html_widget(
    app: Messenger, worker: FakeWorker
) -> None:
    evil = "u-evil"
    attachment = {
        "key": "attachments/k/evil.txt",
        "name": f"{HOSTILE}{SCRIPT}.txt",
        "type": "text/plain",
        "size": 12,
        "url": "javascript:alert(1)",  # a URL in a body is never used
    }
    picture = {**attachment, "key": "attachments/k/p.png", "type": "image/png", "name": "p.png"}
    worker.history = [
        message(1, evil, name=HOSTILE, body=SCRIPT, read=True),
        message(2, evil, name=HOSTILE, body="javascript:alert(1) " + "A" * 500, read=True),
        message(3, evil, name=HOSTILE, body=attachment, read=True),
        message(4, evil, name=HOSTILE, body=picture, read=True),
    ]
    worker.conversations[evil] = worker.history
    worker.users = [{"userID": "u-evil2", "name": SCRIPT}]
    login(app)
    home(app).users.rows[evil].name.click()
    assert app.wait_idle()
    eventually(lambda: len(home(app).thread.bubbles) == 4)
    worker.push("error", {"message": HOSTILE, "method": "add"}, status=400)
    eventually(lambda: any(HOSTILE in t for t in app.toasts.messages))
    home(app).users.search.value = "script"
    home(app).users.search_submit.click()
    eventually(lambda: "u-evil2" in home(app).users.result_rows)

    markup = html_values(app)
    assert markup, "the file cards are HTML"
    for value in markup:
        assert "<img" not in value and "<script" not in value
        hrefs = re.findall(r'href="([^"]*)"', value)
        assert all(h.startswith("https://") for h in hrefs), hrefs
    cards = [b.file.value for b in home(app).thread.bubbles.values() if b.file is not None]
    link = cards[0]
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in link
    assert 'rel="noopener noreferrer"' in link and " download=" in link
    assert 'class="msgr-download"' in link and 'target="_blank"' in link
    signed = SIGNED.format(key="attachments/k/evil.txt").replace("&", "&amp;")
    assert f'href="{signed}"' in link
    # user text lives in plain-text widgets, shown as typed
    texts = [x.value for x in walk(app.widget) if isinstance(x, w.Label)]
    assert SCRIPT in texts and HOSTILE in home(app).thread.title.value


def test_dark_toggle_themes_the_root_and_saves_the_choice(
    app: Messenger, worker: FakeWorker
) -> None:
    login(app)  # the scripted login reply restores darkModeState: true
    assert "msgr-dark" in app.widget._dom_classes
    toggle = home(app).header.dark
    assert toggle.value is True and "msgr-dark-toggle" in toggle._dom_classes
    toggle.value = False
    assert "msgr-dark" not in app.widget._dom_classes  # at once, before the round trip
    assert app.wait_idle()
    assert worker.wait_for("setDarkModeState").body == {"darkModeState": False}
    assert app.session is not None and app.session.state.dark_mode is False
    toggle.value = True
    assert app.wait_idle()
    assert "msgr-dark" in app.widget._dom_classes
    eventually(
        lambda: (
            [r.body for r in worker.requests if r.method == "setDarkModeState"][-1]
            == {"darkModeState": True}
        )
    )


def test_the_stylesheet_themes_the_whole_page() -> None:
    from messenger_widgets.ui.theme import css

    text = css()
    assert "body[data-voila]:has(.msgr-dark)" in text
    assert "--jp-layout-color0" in text and "--jp-widgets-input-background-color" in text
    assert "overflow-wrap: anywhere" in text


def test_expiry_returns_to_login_with_a_message(app: Messenger, worker: FakeWorker) -> None:
    login(app)
    worker.push("error", {"message": "your session has expired"}, status=401)
    eventually(lambda: app.panel is app.login.widget)
    assert app.home is None
    assert app.login.message.value == "Your session has expired. Please log in again."
    assert app.wait_idle()
    assert app.session is not None and not app.session.logged_in
    login(app)  # and one can log in again
    assert app.home is not None


def test_a_deleted_session_queue_also_ends_the_session(app: Messenger, worker: FakeWorker) -> None:
    login(app)
    assert worker.session_url is not None
    worker.transport.delete_queue(worker.session_url)
    eventually(lambda: app.panel is app.login.widget)
    assert "log in again" in app.login.message.value


def test_worker_errors_become_toasts(app: Messenger, worker: FakeWorker) -> None:
    login(app)
    worker.push("error", {"message": "too many requests"}, status=429)
    eventually(lambda: "Too many requests" in " ".join(app.toasts.messages))
    assert all("msgr-toast" in t._dom_classes for t in app.toasts.widget.children)


def test_toasts_dismiss_themselves() -> None:
    from messenger_widgets.ui.widgets import Toasts

    toasts = Toasts(seconds=0.05)
    toasts.error("boom")
    assert toasts.messages == ["boom"]
    eventually(lambda: toasts.messages == [], timeout=2)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        ("ReplyTimeout", "The server did not answer in time."),
        ("Unauthorized", "Nope"),
        ("Throttled", "Too many requests"),
        ("BadRequest", "Nope"),
        ("TransportError", "Could not reach the server."),
        ("AttachmentError", "nope"),
    ],
)
def test_every_failure_has_a_readable_sentence(exc: str, text: str) -> None:
    from messenger_widgets import errors

    assert describe(getattr(errors, exc)("nope")).startswith(text)
    assert describe(RuntimeError("secret detail")).startswith("Something went wrong")


def test_a_missing_setting_shows_a_panel_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(__import__("os").environ):
        if name.startswith(("MESSENGER_", "AWS_", "SERVER_", "REACT_APP_", "BUCKET")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env here
    app = Messenger()
    try:
        panel = app.panel
        assert "msgr-error-panel" in panel._dom_classes
        text = " ".join(x.value for x in find(panel, "msgr-error-text"))
        assert "MESSENGER_REQUEST_QUEUE_URL is not set" in text
        assert "messenger up" in text
        assert app.session is None
    finally:
        app.close()


def test_given_settings_are_checked_too() -> None:
    app = Messenger(settings=Settings(request_queue_url="http://q/req"))
    try:
        assert "msgr-error-panel" in app.panel._dom_classes
    finally:
        app.close()


def test_an_unexpected_error_in_an_action_is_a_toast(
    app: Messenger, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(app)
    assert app.session is not None

    def broken(_user_id: str) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(app.session, "open_conversation", broken)
    app._actions().open("u-bob")  # what a click on a user row calls
    assert app.wait_idle()
    assert any("Something went wrong" in t for t in app.toasts.messages)
    assert not any("internal detail" in t for t in app.toasts.messages)


def test_thumbnails_are_fetched_once_per_key_and_the_cache_is_bounded() -> None:
    from messenger_widgets.ui.widgets import ImageCache

    calls: list[str] = []

    def fetch(key: str) -> bytes:
        calls.append(key)
        return key.encode() * 10

    cache = ImageCache(fetch, max_bytes=25)
    got: list[bytes | str] = []
    for done, key in enumerate(("a", "a", "b", "c", "a"), start=1):
        cache.get(key, got.append)
        eventually(lambda done=done: len(got) == done)
    assert all(isinstance(g, bytes) for g in got)
    assert calls == ["a", "b", "c", "a"]  # "a" again only after eviction (30 bytes > 25)
    cache.close()


def test_a_failed_fetch_is_reported_and_tried_again_later() -> None:
    from messenger_widgets import errors
    from messenger_widgets.ui.widgets import ImageCache

    attempts: list[str] = []

    def fetch(key: str) -> bytes:
        attempts.append(key)
        raise errors.AttachmentError("the attachment is too large to preview")

    cache = ImageCache(fetch)
    got: list[bytes | str] = []
    cache.get("k", got.append)
    eventually(lambda: got == ["the attachment is too large to preview"])
    cache.get("k", got.append)
    eventually(lambda: len(got) == 2)
    assert attempts == ["k", "k"]
    cache.close()
