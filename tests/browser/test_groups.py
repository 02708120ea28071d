"""Three people, three browsers: a group is created, talked in, read by k of n, and left."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, new_user, screenshot
from .pages import ROUND_TRIP_MS

pytestmark = pytest.mark.browser


def test_three_users_create_talk_read_and_leave_a_group(
    open_apps: OpenApps, server: Server
) -> None:
    ann_tab, ben_tab, cy_tab = open_apps("ann", "ben", "cy", server=server)
    ann, ben, cy = new_user("Ann"), new_user("Ben"), new_user("Cy")
    for user in (ann, ben, cy):
        server.stack.register(user.first, user.last, user.email, user.password)
    for tab, user in ((ann_tab, ann), (ben_tab, ben), (cy_tab, cy)):
        tab.login(user)

    # Ann finds both by search, then makes a group of them (its name is text, not markup)
    ann_tab.find(ben.name, query=ben.last)
    ann_tab.find(cy.name, query=cy.last)
    ann_tab.click("msgr-search-clear")
    group = "Trio <i>club</i>"
    ann_tab.create_group(group, [ben.name, cy.name])
    expect(ann_tab.css("msgr-group-members")).to_contain_text("3 members")

    # both are told at once: the group is in their lists
    for tab in (ben_tab, cy_tab):
        expect(tab.group_row(group)).to_have_count(1, timeout=ROUND_TRIP_MS)

    # Ben opens it; Cy does not. Ann's message is read by 1 of 2, and Cy gets a badge
    ben_tab.open_conversation(group)
    ann_tab.send("Hello trio")
    expect(ben_tab.sender_of("Hello trio")).to_have_text(ann.name, timeout=ROUND_TRIP_MS)
    mine = ann_tab.message("Hello trio", "outgoing").locator(".msgr-status")
    expect(mine).to_have_text("✓ 1/2", timeout=ROUND_TRIP_MS)
    expect(cy_tab.badges(group).first).to_have_text("1", timeout=ROUND_TRIP_MS)

    # Cy opens it: everyone else has read it now
    cy_tab.open_conversation(group)
    expect(cy_tab.sender_of("Hello trio")).to_have_text(ann.name)
    expect(ann_tab.thread.locator(".msgr-outgoing .msgr-status-read")).to_have_count(
        1, timeout=ROUND_TRIP_MS
    )
    expect(cy_tab.badges(group)).to_have_count(0)

    # Ben answers; the two others see it once, under his name
    ben_tab.send("Hi both")
    for tab in (ann_tab, cy_tab):
        expect(tab.sender_of("Hi both")).to_have_text(ben.name, timeout=ROUND_TRIP_MS)
        expect(tab.messages()).to_have_count(2)
    screenshot(ann_tab, "group-thread")

    # Cy leaves: the group leaves her list; the others see two members and talk on
    cy_tab.leave_group(group)
    expect(cy_tab.css("msgr-thread-title")).to_have_text("", timeout=ROUND_TRIP_MS)
    expect(ann_tab.css("msgr-group-members")).to_contain_text("2 members", timeout=ROUND_TRIP_MS)
    ben_tab.send("Just us now")
    expect(ann_tab.sender_of("Just us now")).to_have_text(ben.name, timeout=ROUND_TRIP_MS)
    expect(cy_tab.group_row(group)).to_have_count(0)
    assert ann_tab.pwned() is None
    assert ann_tab.dialogs == ben_tab.dialogs == cy_tab.dialogs == []
