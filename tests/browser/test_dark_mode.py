"""Dark mode is a stored preference: it survives logout, login and a new browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, new_user, screenshot, seed_messages, wait_until
from .pages import DARK_CLASS, App

pytestmark = pytest.mark.browser

DARK_MAX_LUMINANCE = 0.2
LIGHT_MIN_LUMINANCE = 0.6
DARK_TOGGLE_ON = re.compile(r"\bmod-active\b")  # ipywidgets ToggleButton, on


def assert_dark(tab: App) -> None:
    expect(tab.root).to_have_class(DARK_CLASS)
    expect(tab.css("msgr-dark-toggle")).to_have_class(DARK_TOGGLE_ON)
    # (polled: the theme may fade in with a CSS transition)
    wait_until(
        lambda: tab.background_luminance() < DARK_MAX_LUMINANCE, 10, "a dark page background"
    )


def test_dark_mode_persists_across_logout_and_login(open_apps: OpenApps, server: Server) -> None:
    # fixed names (unique in this run's fresh stack) keep the README screenshots tidy
    user, friend = new_user("Dora", "Lindqvist"), new_user("Grace", "Okafor")
    server.stack.register(user.first, user.last, user.email, user.password)
    seed_messages(
        server.stack,
        user,
        ["Morning! Did the nightly build pass?", "The new screenshots look great, by the way."],
        sender=friend,
    )
    (tab,) = open_apps("dora", server=server)
    tab.login(user)
    expect(tab.badges(friend.name).first).to_have_text("2")
    assert not tab.is_dark()
    assert tab.background_luminance() > LIGHT_MIN_LUMINANCE

    tab.open_conversation(friend.name)
    tab.send("Yes, all green. Shipping it today.")
    screenshot(tab, "home-light", docs="home-light.png")

    tab.toggle_dark()
    assert_dark(tab)
    screenshot(tab, "home-dark", docs="home-dark.png")

    tab.logout()
    tab.login(user)
    assert_dark(tab)

    # a new browser means a new kernel: the preference came from the server
    (fresh,) = open_apps("dora-elsewhere", server=server)
    fresh.login(user)
    assert_dark(fresh)

    # and off again, stored the same way
    fresh.toggle_dark()
    expect(fresh.root).not_to_have_class(DARK_CLASS)
    wait_until(lambda: fresh.background_luminance() > LIGHT_MIN_LUMINANCE, 10, "a light background")
    fresh.logout()
    fresh.login(user)
    expect(fresh.css("msgr-home")).to_be_visible()
    expect(fresh.root).not_to_have_class(DARK_CLASS)
