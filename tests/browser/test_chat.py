"""Two people, two browsers: register, log in, find each other, talk, see unread counts."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, new_user, screenshot
from .pages import ROUND_TRIP_MS

pytestmark = pytest.mark.browser


def test_two_users_register_search_and_exchange_messages(
    open_apps: OpenApps, server: Server
) -> None:
    alice_tab, bob_tab = open_apps("alice", "bob", server=server)
    alice, bob = new_user("Alice"), new_user("Bob")

    # register through the form, then log in with the email it leaves filled in
    alice_tab.go_to_register()
    alice_tab.fill_register(alice.first, alice.last, alice.email, alice.password)
    screenshot(alice_tab, "register-filled")
    alice_tab.click("msgr-register-submit")
    expect(alice_tab.css("msgr-login")).to_be_visible(timeout=ROUND_TRIP_MS)
    expect(alice_tab.field("msgr-login-email")).to_have_value(alice.email)
    bob_tab.register(bob)
    alice_tab.login(alice)
    bob_tab.login(bob)
    expect(alice_tab.css("msgr-me")).to_have_text(alice.name)
    expect(bob_tab.css("msgr-me")).to_have_text(bob.name)

    # each finds the other by (part of) their name; clearing returns to conversations
    alice_tab.find(bob.name, query=bob.last.lower())
    bob_tab.find(alice.name, query=alice.last)
    alice_tab.click("msgr-search-clear")
    expect(alice_tab.row(bob.name)).to_be_hidden()

    # Bob opens the conversation and writes; Alice, elsewhere, sees an unread count
    bob_tab.open_conversation(alice.name, query=alice.last)
    first, second = "Hi Alice, it's Bob.", "Are you there?"
    bob_tab.send(first)
    expect(alice_tab.badges(bob.name).first).to_have_text("1", timeout=ROUND_TRIP_MS)
    bob_tab.send(second)
    expect(alice_tab.badges(bob.name).first).to_have_text("2", timeout=ROUND_TRIP_MS)

    # opening the conversation shows both messages and clears the badge
    alice_tab.open_conversation(bob.name)
    expect(alice_tab.message(first, "incoming")).to_be_visible()
    expect(alice_tab.message(second, "incoming")).to_be_visible()
    expect(alice_tab.badges(bob.name)).to_have_count(0, timeout=ROUND_TRIP_MS)
    # ...and Bob's messages turn to read
    expect(bob_tab.thread.locator(".msgr-outgoing .msgr-status-read")).to_have_count(
        2, timeout=ROUND_TRIP_MS
    )

    # Alice answers; Bob has the thread open, so it shows there with no badge for it
    reply = "Yes! Hello Bob, ça va ? — à bientôt"
    alice_tab.send(reply)
    expect(bob_tab.message(reply, "incoming")).to_be_visible(timeout=ROUND_TRIP_MS)
    expect(bob_tab.badges(alice.name)).to_have_count(0, timeout=ROUND_TRIP_MS)

    # both threads hold the same three messages, in order, on the right sides
    expect(alice_tab.messages()).to_have_count(3)
    expect(bob_tab.messages()).to_have_count(3)
    expect(alice_tab.thread.locator(".msgr-incoming")).to_have_count(2)
    expect(alice_tab.thread.locator(".msgr-outgoing")).to_have_count(1)
    expect(bob_tab.thread.locator(".msgr-incoming")).to_have_count(1)
    expect(bob_tab.thread.locator(".msgr-outgoing")).to_have_count(2)
    for tab in (alice_tab, bob_tab):
        texts = tab.messages().locator(".msgr-text").all_inner_texts()
        assert texts == [first, second, reply], (tab.label, texts)

    screenshot(alice_tab, "thread")
    assert alice_tab.dialogs == bob_tab.dialogs == []
