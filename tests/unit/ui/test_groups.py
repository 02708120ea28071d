"""Group conversations (v1.1) in the widgets: the New group form, group rows, sender names,
read by k of n, leaving."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from messenger_widgets.ui.app import Messenger
from messenger_widgets.ui.home import HomePanel
from messenger_widgets.ui.widgets import walk

from ..client.fakeworker import ME, FakeWorker, group_object, message
from .conftest import eventually, html_values, login, press_enter, visible

BOB, CAT = "u-bob", "u-cat"
GID, KEY = "g-9", "group:g-9"
HOSTILE = '<img src=x onerror="window.__pwned=1">'
MEMBERS = [ME, {"userID": BOB, "name": "Bob Babbage"}, {"userID": CAT, "name": "Cat Herder"}]


def home(app: Messenger) -> HomePanel:
    assert app.home is not None
    return app.home


def group_message(order: int, sender: dict[str, str], **kw: Any) -> dict[str, Any]:
    mine = sender["userID"] == ME["userID"]
    body = message(order, sender["userID"], name=sender["name"], to=GID if mine else None, **kw)
    return {**body, "messageID": f"gm-{order}", "groupID": GID}


def with_group(app: Messenger, worker: FakeWorker, name: str = "Trip", **extra: Any) -> None:
    login(app)
    worker.push("groupCreated", {**group_object(GID, name, MEMBERS), **extra})
    eventually(lambda: KEY in home(app).users.rows)


def open_group(app: Messenger) -> None:
    home(app).users.rows[KEY].name.click()
    assert app.wait_idle()
    eventually(lambda: home(app).thread.user_id == KEY)


def test_group_rows_threads_and_sender_names(app: Messenger, worker: FakeWorker) -> None:
    worker.conversations[GID] = [group_message(1, MEMBERS[1], body="hi all", read=True)]
    with_group(app, worker)
    row = home(app).users.rows[KEY]
    assert {"msgr-user", "msgr-group"} <= set(row.widget._dom_classes)
    assert row.name.description == "Trip"
    open_group(app)
    assert worker.wait_for("selectSearchUser").body == {"groupID": GID}
    thread = home(app).thread
    eventually(lambda: len(thread.bubbles) == 1)
    assert thread.title.value == "Trip" and visible(thread.group_bar)
    assert thread.members.value == "3 members: Ada Lovelace, Bob Babbage, Cat Herder"
    [bubble] = thread.bubbles.values()
    senders = [x for x in walk(bubble.widget) if "msgr-sender" in x._dom_classes]
    assert [s.value for s in senders] == ["Bob Babbage"]
    home(app).composer.text.value = "hello group"
    home(app).composer.send.click()
    assert app.wait_idle()
    assert worker.wait_for("add").body["groupID"] == GID
    eventually(lambda: len(thread.bubbles) == 2)
    mine = next(b for b in thread.bubbles.values() if b.message.outgoing)
    assert not [x for x in walk(mine.widget) if "msgr-sender" in x._dom_classes]
    home(app).users.rows[KEY].name.click()  # a 1:1 thread shows no group bar
    worker.push("message", message(1, BOB))
    eventually(lambda: BOB in home(app).users.rows)
    home(app).users.rows[BOB].name.click()
    assert app.wait_idle()
    eventually(lambda: home(app).thread.user_id == BOB)
    assert not visible(thread.group_bar)


def test_own_messages_show_read_by_k_of_n(app: Messenger, worker: FakeWorker) -> None:
    with_group(app, worker)
    open_group(app)
    worker.push("message", group_message(1, MEMBERS[0], body="mine"))
    thread = home(app).thread
    eventually(lambda: len(thread.bubbles) == 1)
    [bubble] = thread.bubbles.values()
    assert bubble.status.value == "✓" and bubble.status.tooltip == "read by 0 of 2"
    worker.push("read", {"groupID": GID, "userID": BOB, "upToOrder": 1})
    eventually(lambda: bubble.status.value == "✓ 1/2")
    assert bubble.status.tooltip == "read by 1 of 2"
    worker.push("read", {"groupID": GID, "userID": CAT, "upToOrder": 1})
    eventually(lambda: bubble.status.value == "✓✓")
    assert "msgr-status-read" in bubble.status._dom_classes


def test_new_group_form_picks_known_people_and_opens_the_group(
    app: Messenger, worker: FakeWorker
) -> None:
    worker.history = [message(1, BOB, read=True)]
    worker.users = [{"userID": CAT, "name": "Cat Herder"}]
    login(app)
    panel = home(app)
    assert not panel.group_form.is_open
    panel.new_group.click()
    form = panel.group_form
    assert form.is_open and list(form.boxes) == [BOB]
    panel.users.search.value = "cat"  # people found by search join the picker
    panel.users.search_submit.click()
    eventually(lambda: list(form.boxes) == [BOB, CAT])
    assert all("msgr-group-member" in b._dom_classes for b in form.boxes.values())
    form.create.click()
    assert form.error.value == "Give the group a name." and visible(form.error)
    form.name.value = "Lunch"
    form.create.click()
    assert form.error.value == "Pick at least one person."
    form.boxes[BOB].value = form.boxes[CAT].value = True
    press_enter(form.name)
    assert app.wait_idle()
    request = worker.wait_for("create")
    assert request.body["name"] == "Lunch" and request.body["memberIDs"] == [BOB, CAT]
    eventually(lambda: not form.is_open)
    eventually(lambda: home(app).thread.user_id == "group:g-1")
    assert home(app).thread.title.value == "Lunch"
    assert "msgr-group" in home(app).users.rows["group:g-1"].widget._dom_classes


def test_a_refused_group_keeps_the_form_open_with_the_reason(app: Messenger) -> None:
    login(app)
    panel = home(app)
    panel.new_group.click()
    panel.group_form.set_people([])
    panel.group_form.name.value = "x" * 60
    panel.group_form._on_create("x" * 60, ["u-bob"])  # what Create sends, past the form
    assert app.wait_idle()
    eventually(lambda: "name" in panel.group_form.error.value)
    assert panel.group_form.is_open and not panel.group_form.create.disabled


def test_leave_button_leaves_and_closes(app: Messenger, worker: FakeWorker) -> None:
    with_group(app, worker)
    open_group(app)
    thread = home(app).thread
    assert visible(thread.leave)
    thread.leave.click()
    assert app.wait_idle()
    assert worker.wait_for("leave").body == {"groupID": GID}
    eventually(lambda: KEY not in home(app).users.rows)
    eventually(lambda: home(app).thread.user_id is None)


def test_group_and_sender_names_are_never_markup(app: Messenger, worker: FakeWorker) -> None:
    hostile = {"userID": BOB, "name": HOSTILE}
    members = [ME, hostile]
    login(app)
    worker.push("groupCreated", group_object(GID, HOSTILE, members))
    worker.push("message", group_message(1, hostile, body=HOSTILE))
    eventually(lambda: KEY in home(app).users.rows)
    open_group(app)
    eventually(lambda: len(home(app).thread.bubbles) == 1)
    home(app).new_group.click()
    assert not any("<img" in markup for markup in html_values(app))
    boxes = list(home(app).group_form.boxes.values())
    assert [b.description for b in boxes] == [HOSTILE]
    assert all(isinstance(b, w.Checkbox) and not b.description_allow_html for b in boxes)
