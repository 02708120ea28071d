"""The app loads in Voila: the login panel renders, and register is one click away."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, screenshot

pytestmark = pytest.mark.browser


def test_login_panel_renders_and_links_to_register(open_apps: OpenApps, server: Server) -> None:
    (app,) = open_apps("visitor", server=server)

    expect(app.field("msgr-login-email")).to_be_visible()
    expect(app.field("msgr-login-password")).to_be_visible()
    expect(app.field("msgr-login-password")).to_have_attribute("type", "password")
    expect(app.css("msgr-login-submit")).to_be_visible()
    expect(app.css("msgr-home")).to_be_hidden()
    screenshot(app, "login")

    app.go_to_register()
    for cls in (
        "msgr-register-first",
        "msgr-register-last",
        "msgr-register-email",
        "msgr-register-password",
        "msgr-register-confirm",
    ):
        expect(app.field(cls)).to_be_visible()
    expect(app.css("msgr-login")).to_be_hidden()
    screenshot(app, "register")

    app.click("msgr-goto-login")
    expect(app.css("msgr-login")).to_be_visible()
    expect(app.css("msgr-register")).to_be_hidden()
    assert app.dialogs == []
