"""Hostile text as messages and as names is shown as text: nothing runs, nothing overflows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, named_user, tag
from .pages import ROUND_TRIP_MS, App

pytestmark = pytest.mark.browser

LONG_WORD = "W" * 5000
MESSAGES = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=1</script>",
    "javascript:window.__pwned=1",
    "[click me](javascript:window.__pwned=1)",
    '<a href="javascript:window.__pwned=1">click me</a>',
    '"><svg onload=window.__pwned=1>',
    LONG_WORD,
]
SLACK_PX = 4


def assert_inert(tab: App) -> None:
    """Nothing ran, no element was made from the payloads, nothing is wider than its box."""
    assert tab.pwned() is None, f"{tab.label}: window.__pwned was set"
    assert tab.dialogs == [], tab.dialogs
    app = tab.page.locator(".msgr-app")
    for selector in (
        "script",
        'img[src="x"]',
        "svg",
        "[onerror]",
        "[onload]",
        'a[href^="javascript:" i]',
    ):
        assert app.locator(selector).count() == 0, f"{tab.label}: {selector} in the app"
    page_overflow = tab.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert page_overflow <= SLACK_PX, f"{tab.label}: the page scrolls sideways {page_overflow}px"
    for cls in ("msgr-thread", "msgr-scroll", "msgr-sidebar", "msgr-header"):
        over = tab.overflow(tab.css(cls))
        assert over <= SLACK_PX, f"{tab.label}: .{cls} overflows by {over}px"
    for i, text in enumerate(tab.messages().locator(".msgr-text").all()):
        over = tab.overflow(text)
        assert over <= SLACK_PX, f"{tab.label}: message {i} is clipped by {over}px"


def test_hostile_messages_and_names_render_as_inert_text(
    open_apps: OpenApps, server: Server
) -> None:
    mallory = named_user("<img src=x onerror=window.__pwned=1>", '"><svg onload=window.__pwned=1>')
    trudy = named_user("<script>window.__pwned=1</script>", "javascript:window.__pwned=1")
    marker = tag()
    wordy = named_user(marker + "W" * (50 - len(marker)), "<b>bold</b>")
    server.stack.register(wordy.first, wordy.last, wordy.email, wordy.password)
    m_tab, t_tab = open_apps("mallory", "trudy", server=server)

    for tab, user in ((m_tab, mallory), (t_tab, trudy)):
        tab.register(user)  # hostile names go through the form
        tab.login(user)
        expect(tab.css("msgr-me")).to_have_text(user.name)

    # names show as text in search results and in the thread title
    m_tab.find(wordy.name, query=marker)
    assert_inert(m_tab)
    m_tab.open_conversation(trudy.name, query="<script>")
    t_tab.open_conversation(mallory.name, query="onerror")

    for text in MESSAGES:
        m_tab.send(text)
    for text in MESSAGES:
        expect(t_tab.message(text, "incoming")).to_be_visible(timeout=ROUND_TRIP_MS)

    for tab in (m_tab, t_tab):
        shown = tab.messages().locator(".msgr-text").all_inner_texts()
        assert shown == MESSAGES, [s[:60] for s in shown]
        assert_inert(tab)
    expect(t_tab.row(mallory.name)).to_be_visible()
    expect(t_tab.css("msgr-thread-title")).to_have_text(mallory.name)
