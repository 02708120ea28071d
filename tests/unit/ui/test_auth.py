"""Login and register panels: validation before sending, waiting off the kernel thread."""

from __future__ import annotations

import time

from messenger_widgets.client.session import Session
from messenger_widgets.ui.app import Messenger

from ..client.fakeworker import FakeWorker
from .conftest import Transport, eventually, login, press_enter, visible


def test_login_success_shows_home_with_the_users_name(app: Messenger) -> None:
    assert app.panel is app.login.widget
    login(app)
    assert app.home is not None
    assert app.home.header.me.value == "Ada Lovelace"
    assert "msgr-home" in app.panel._dom_classes
    assert app.login.password.value == ""  # the password does not linger in a widget


def test_login_failure_shows_the_message_inline(app: Messenger, worker: FakeWorker) -> None:
    worker.fail["login"] = (401, "invalid email or password")
    app.login.email.value = "ada@example.com"
    app.login.password.value = "wrong password"
    app.login.submit.click()
    assert app.wait_idle()
    assert app.panel is app.login.widget
    assert app.login.message.value == "Invalid email or password"
    assert "msgr-error" in app.login.message._dom_classes
    assert not app.login.submit.disabled and app.login.busy.value == ""


def test_login_checks_the_email_before_sending(app: Messenger, worker: FakeWorker) -> None:
    app.login.email.value = "not-an-email"
    app.login.password.value = "secret-pass"
    app.login.submit.click()
    assert app.wait_idle()
    assert "valid email" in app.login.message.value
    assert worker.requests == []


def test_login_waits_in_a_worker_thread_with_the_button_disabled(
    transport: Transport, worker: FakeWorker
) -> None:
    worker.silent.add("login")
    session = Session(
        transport, worker.request_url, worker.response_url, reply_timeout=1, wait_seconds=1
    )
    app = Messenger(session)
    try:
        app.login.email.value = "ada@example.com"
        app.login.password.value = "correct horse"
        started = time.monotonic()
        app.login.submit.click()
        assert time.monotonic() - started < 0.5  # the kernel thread is free at once
        assert app.login.submit.disabled
        assert "Logging in" in app.login.busy.value
        assert app.wait_idle()
        assert "did not answer in time" in app.login.message.value
        assert not app.login.submit.disabled
    finally:
        app.close()


def test_enter_in_the_password_field_logs_in(app: Messenger) -> None:
    app.login.email.value = "ada@example.com"
    app.login.password.value = "correct horse"
    press_enter(app.login.password)
    assert app.wait_idle()
    eventually(lambda: app.home is not None)


def test_register_validates_every_field_before_sending(app: Messenger, worker: FakeWorker) -> None:
    app.login.goto_register.click()
    panel = app.register
    assert app.panel is panel.widget
    panel.first.value = ""
    panel.last.value = "x" * 51
    panel.email.value = "ada@"
    panel.password.value = "short"
    panel.confirm.value = "different"
    panel.submit.click()
    assert app.wait_idle()
    assert panel.error_messages == [
        "Enter your first name.",
        "Last name must be 1-50 characters.",
        "Enter a valid email address, like ada@example.com.",
        "Password must be 8-128 characters.",
        "The passwords do not match.",
    ]
    assert all(visible(label) for label in panel.errors.values())
    assert worker.requests == []
    panel.first.value = "Ada"  # errors follow the typing once a submit was tried
    assert "Enter your first name." not in panel.error_messages


def test_register_success_returns_to_login_with_the_email_filled(
    app: Messenger, worker: FakeWorker
) -> None:
    app.login.goto_register.click()
    panel = app.register
    for field, value in [
        (panel.first, "Ada"),
        (panel.last, "Lovelace"),
        (panel.email, "ada@example.com"),
        (panel.password, "secret-pass"),
        (panel.confirm, "secret-pass"),
    ]:
        field.value = value
    panel.submit.click()
    assert app.wait_idle()
    assert worker.requests[0].body["fName"] == "Ada"
    assert app.panel is app.login.widget
    assert app.login.email.value == "ada@example.com"
    assert "Account created." in app.login.message.value
    assert panel.password.value == "" and panel.confirm.value == ""


def test_register_refusal_is_shown_on_the_panel(app: Messenger, worker: FakeWorker) -> None:
    worker.fail["register"] = (400, "email is already registered")
    app.login.goto_register.click()
    panel = app.register
    panel.first.value, panel.last.value = "Ada", "Lovelace"
    panel.email.value = "ada@example.com"
    panel.password.value = panel.confirm.value = "secret-pass"
    panel.submit.click()
    assert app.wait_idle()
    assert app.panel is panel.widget
    assert panel.message.value == "Email is already registered"
    assert not panel.submit.disabled


def test_goto_links_switch_panels(app: Messenger) -> None:
    app.login.goto_register.click()
    assert app.panel is app.register.widget
    app.register.goto_login.click()
    assert app.panel is app.login.widget
