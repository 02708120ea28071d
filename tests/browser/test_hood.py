"""Under the hood: the panel lists this tab's own SQS traffic as it happens."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, new_user, screenshot
from .pages import ROUND_TRIP_MS

pytestmark = pytest.mark.browser


def test_the_hood_shows_the_message_add_request_and_its_sent_push(
    open_apps: OpenApps, server: Server
) -> None:
    (tab,) = open_apps("hood", server=server)
    me, peer = new_user("Hood"), new_user("Peer")
    server.stack.register(me.first, me.last, me.email, me.password)
    server.stack.register(peer.first, peer.last, peer.email, peer.password)
    tab.login(me)

    # off by default; the toggle shows it, with the login already in the log
    expect(tab.css("msgr-hood")).to_be_hidden()
    tab.toggle_hood()
    expect(tab.css("msgr-hood")).to_be_visible()
    chart = tab.css("msgr-hood-chart")
    expect(chart).to_contain_text("polling loop")
    expect(tab.hood_entries("user/login")).to_have_count(1, timeout=ROUND_TRIP_MS)
    expect(tab.hood_entries("reply user/login")).to_have_count(1)
    expect(tab.hood_entries("historyEnd").first).to_be_visible()

    tab.open_conversation(peer.name, query=peer.last)
    tab.send("Through the queues and back")
    add = tab.hood_entries("message/add")
    sent = tab.hood_entries("sent")
    expect(add).to_have_count(1, timeout=ROUND_TRIP_MS)
    expect(sent).to_have_count(1, timeout=ROUND_TRIP_MS)
    expect(add.locator(".msgr-hood-dir")).to_have_text("→")
    expect(sent.locator(".msgr-hood-dir")).to_have_text("←")
    expect(sent.locator(".msgr-hood-status")).to_have_text("200")
    expect(sent.locator(".msgr-hood-latency")).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    # the request's row carries its masked attributes: never the token
    title = add.get_attribute("title") or ""
    assert "token=***" in title and "method=add" in title

    # the chart and the gauges follow on their own timers
    more = re.compile(r"This page: [1-9][0-9]+ requests")  # the login alone made fewer than 10
    expect(chart).to_contain_text(more, timeout=ROUND_TRIP_MS)
    expect(chart.locator("svg")).to_be_visible()
    expect(tab.css("msgr-hood-gauges")).to_contain_text("dead letters", timeout=ROUND_TRIP_MS)
    screenshot(tab, "under-the-hood", docs="under-the-hood.png")

    tab.toggle_hood()
    expect(tab.css("msgr-hood")).to_be_hidden()
    assert tab.dialogs == []
