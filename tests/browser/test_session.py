"""Sessions end cleanly: logout deletes the session queue; an expired one returns to login."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import EXPIRY_TTL, OpenApps, Server, new_user, wait_until
from .pages import ROUND_TRIP_MS

pytestmark = pytest.mark.browser


def test_logout_deletes_the_session_queue(open_apps: OpenApps, server: Server) -> None:
    stack = server.stack
    user = new_user("Leo")
    stack.register(user.first, user.last, user.email, user.password)
    (tab,) = open_apps("leo", server=server)
    before = stack.session_queues()

    tab.login(user)
    created = wait_until(lambda: stack.session_queues() - before, 30, "a new session queue")
    assert len(created) == 1, created
    (queue,) = created
    raw = stack.raw()
    assert raw.queue_exists(queue)

    tab.logout()
    wait_until(lambda: not raw.queue_exists(queue), 30, f"{queue} to be deleted")
    assert queue not in stack.session_queues()
    expect(tab.css("msgr-home")).to_be_hidden()


def test_closing_the_tab_ends_the_session(open_apps: OpenApps, server: Server) -> None:
    """Voila shuts the kernel down on `beforeunload`; the app logs out as the kernel exits."""
    stack = server.stack
    user = new_user("Tess")
    stack.register(user.first, user.last, user.email, user.password)
    (tab,) = open_apps("tess", server=server)
    before = stack.session_queues()
    tab.login(user)
    created = wait_until(lambda: stack.session_queues() - before, 30, "a new session queue")
    (queue,) = created

    tab.close()
    raw = stack.raw()
    wait_until(lambda: not raw.queue_exists(queue), 30, f"{queue} to be deleted")


def test_expired_session_returns_to_login_with_a_message(
    open_apps: OpenApps, expiry_server: Server
) -> None:
    stack = expiry_server.stack
    user, other = new_user("Eve"), new_user("Oscar")
    for person in (user, other):
        stack.register(person.first, person.last, person.email, person.password)
    (tab,) = open_apps("eve", server=expiry_server)

    logged_in_at = time.monotonic()  # the token is issued after this
    tab.login(user)
    tab.find(other.name, query=other.last)  # requests work while the session is young
    tab.click("msgr-search-clear")

    # Wait out the token's lifetime (a clock, not a guess), then make any request.
    remaining = logged_in_at + EXPIRY_TTL + 2 - time.monotonic()
    if remaining > 0:
        tab.page.wait_for_timeout(remaining * 1000)
    tab.search(other.last)

    login = tab.css("msgr-login")
    expect(login).to_be_visible(timeout=ROUND_TRIP_MS)
    expect(login).to_contain_text(re.compile(r"expired", re.IGNORECASE))
    expect(tab.css("msgr-home")).to_be_hidden()

    # a new login starts a new session that works
    tab.login(user)
    tab.find(other.name, query=other.last)
