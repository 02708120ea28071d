"""The login and register panels: fields, inline validation, a busy state while waiting.

They only collect and check input, then hand it to a callback; the app runs the request in
a worker thread and reports back through `done`/`fail`, so the kernel stays responsive during
the up-to-30-second wait for a reply.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..bodies import EMAIL_PATTERN
from ..protocol import (
    EMAIL_MAX_CHARS,
    NAME_MAX_CHARS,
    NAME_MIN_CHARS,
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
)
from .widgets import classed, set_value, show

LoginHandler = Callable[[str, str], None]
RegisterHandler = Callable[[str, str, str, str], None]


def on_enter(text: Any, callback: Callable[[], None]) -> None:
    """Run `callback` when Enter is pressed in a Text/Password widget.

    ipywidgets 8 still sends the "submit" event but marks `on_submit` deprecated; the value
    is synced on every keystroke (continuous_update), so it is current when Enter arrives.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        text.on_submit(lambda _t: callback())


def _field(kind: Any, label: str, css: str, placeholder: str = "") -> Any:
    return classed(
        kind(description=label, placeholder=placeholder, style={"description_width": "8em"}),
        css,
        "msgr-field",
    )


def _busy_label() -> Any:
    return classed(w.Label(value=""), "msgr-busy")


def check_email(email: str) -> str:
    email = email.strip()
    if not email:
        return "Enter your email address."
    if len(email) > EMAIL_MAX_CHARS or not EMAIL_PATTERN.match(email):
        return "Enter a valid email address, like ada@example.com."
    return ""


def check_name(name: str, what: str) -> str:
    name = name.strip()
    if not name:
        return f"Enter your {what.lower()}."
    if not NAME_MIN_CHARS <= len(name) <= NAME_MAX_CHARS:
        return f"{what} must be {NAME_MIN_CHARS}-{NAME_MAX_CHARS} characters."
    if any(ord(c) < 32 for c in name):
        return f"{what} must not contain control characters."
    return ""


def check_password(password: str) -> str:
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        return f"Password must be {PASSWORD_MIN_CHARS}-{PASSWORD_MAX_CHARS} characters."
    return ""


class LoginPanel:
    """Email + password; Enter in either field or the button logs in."""

    def __init__(self, on_login: LoginHandler, on_goto_register: Callable[[], None]) -> None:
        self._on_login = on_login
        self.email = _field(w.Text, "Email", "msgr-login-email", "you@example.com")
        self.password = _field(w.Password, "Password", "msgr-login-password")
        self.submit = classed(
            w.Button(description="Log in", button_style="primary"), "msgr-login-submit"
        )
        self.goto_register = classed(
            w.Button(description="No account yet? Create one"), "msgr-goto-register", "msgr-link"
        )
        self.busy = _busy_label()
        self.message = classed(w.Label(value=""), "msgr-form-message")
        title = classed(w.Label(value="Log in to Messenger"), "msgr-title")
        self.submit.on_click(lambda _b: self._submit())
        self.goto_register.on_click(lambda _b: on_goto_register())
        on_enter(self.email, self._submit)
        on_enter(self.password, self._submit)
        actions = classed(w.HBox([self.submit, self.busy]), "msgr-actions")
        self.widget = classed(
            w.VBox([title, self.email, self.password, actions, self.message, self.goto_register]),
            "msgr-login",
            "msgr-panel",
        )

    def _submit(self) -> None:
        if self.submit.disabled:
            return
        problem = check_email(self.email.value) or (
            "" if self.password.value else "Enter your password."
        )
        if problem:
            self.set_message(problem, error=True)
            return
        self.set_message("")
        self.set_busy(True)
        self._on_login(self.email.value.strip(), self.password.value)

    def set_busy(self, busy: bool) -> None:
        self.submit.disabled = busy
        set_value(self.busy, "Logging in…" if busy else "")

    def set_message(self, text: str, *, error: bool = False) -> None:
        set_value(self.message, text)
        if error:
            self.message.remove_class("msgr-ok")
            self.message.add_class("msgr-error")
        else:
            self.message.remove_class("msgr-error")
            self.message.add_class("msgr-ok")

    def done(self) -> None:
        """Logged in: forget the password so it does not linger in a widget."""
        self.set_busy(False)
        self.password.value = ""


class RegisterPanel:
    """Account creation; every field is checked here before anything is sent."""

    def __init__(self, on_register: RegisterHandler, on_goto_login: Callable[[], None]) -> None:
        self._on_register = on_register
        self.first = _field(w.Text, "First name", "msgr-register-first")
        self.last = _field(w.Text, "Last name", "msgr-register-last")
        self.email = _field(w.Text, "Email", "msgr-register-email", "you@example.com")
        self.password = _field(w.Password, "Password", "msgr-register-password")
        self.confirm = _field(w.Password, "Confirm", "msgr-register-confirm")
        self.fields = [self.first, self.last, self.email, self.password, self.confirm]
        self.errors = {id(f): classed(w.Label(value=""), "msgr-field-error") for f in self.fields}
        self.submit = classed(
            w.Button(description="Create account", button_style="primary"), "msgr-register-submit"
        )
        self.goto_login = classed(
            w.Button(description="Already registered? Log in"), "msgr-goto-login", "msgr-link"
        )
        self.busy = _busy_label()
        self.message = classed(w.Label(value=""), "msgr-form-message", "msgr-error")
        self._checked = False  # after a first submit, errors update as the user types
        self.submit.on_click(lambda _b: self._submit())
        self.goto_login.on_click(lambda _b: on_goto_login())
        for item in self.fields:
            item.observe(lambda _c: self._checked and self.validate(), "value")
        on_enter(self.confirm, self._submit)
        rows: list[Any] = [classed(w.Label(value="Create your account"), "msgr-title")]
        for item in self.fields:
            rows += [item, self.errors[id(item)]]
        rows += [classed(w.HBox([self.submit, self.busy]), "msgr-actions"), self.message]
        self.widget = classed(w.VBox([*rows, self.goto_login]), "msgr-register", "msgr-panel")
        for label in self.errors.values():
            show(label, False)

    def validate(self) -> bool:
        """Show each field's problem under it; True when everything can be sent."""
        problems = {
            id(self.first): check_name(self.first.value, "First name"),
            id(self.last): check_name(self.last.value, "Last name"),
            id(self.email): check_email(self.email.value),
            id(self.password): check_password(self.password.value),
            id(self.confirm): ""
            if self.confirm.value == self.password.value
            else "The passwords do not match.",
        }
        for key, text in problems.items():
            set_value(self.errors[key], text)
            show(self.errors[key], bool(text))
        return not any(problems.values())

    @property
    def error_messages(self) -> list[str]:
        return [label.value for label in self.errors.values() if label.value]

    def _submit(self) -> None:
        if self.submit.disabled:
            return
        self._checked = True
        set_value(self.message, "")
        if not self.validate():
            return
        self.set_busy(True)
        self._on_register(
            self.first.value.strip(),
            self.last.value.strip(),
            self.email.value.strip(),
            self.password.value,
        )

    def set_busy(self, busy: bool) -> None:
        self.submit.disabled = busy
        set_value(self.busy, "Creating your account…" if busy else "")

    def fail(self, text: str) -> None:
        self.set_busy(False)
        set_value(self.message, text)

    def reset(self) -> None:
        """After success: clear everything, passwords first."""
        self.set_busy(False)
        self._checked = False
        for item in self.fields:
            item.value = ""
        for label in self.errors.values():
            label.value = ""
            show(label, False)
        self.message.value = ""
