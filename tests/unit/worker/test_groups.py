"""Group conversations (v1.1) through the handlers and the runner, on the in-memory Harness."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from messenger_widgets.protocol import METHODS, Push, Request
from messenger_widgets.worker.groups import GROUP_FORMS
from messenger_widgets.worker.handlers import HANDLERS

from .test_handlers import Harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def by_action(pushes: list[Push], action: str) -> list[Any]:
    return [p.body for p in pushes if p.action == action]


def create(h: Harness, owner: dict[str, Any], *others: dict[str, Any], **extra: Any) -> str:
    body = {"name": "Trip", "memberIDs": [o["userID"] for o in others], **extra}
    h.call("group", "create", body, owner["token"])
    [created] = by_action(h.pushes(owner["url"]), "groupCreated")
    return str(created["groupID"])


def say(h: Harness, who: dict[str, Any], group_id: str, text: str, cid: str = "") -> None:
    body = {"groupID": group_id, "body": text, **({"clientMessageId": cid} if cid else {})}
    h.call("message", "add", body, who["token"])


def login(h: Harness, first: str) -> dict[str, Any]:
    res = h.call("user", "login", {"email": f"{first}@example.com", "password": "password1"})
    body: dict[str, Any] = h.reply(res).body
    return body


def error_of(h: Harness, who: dict[str, Any]) -> tuple[int, str]:
    [error] = [p for p in h.pushes(who["url"]) if p.action == "error"]
    return error.status, error.body["message"]


@pytest.fixture
def trio(h: Harness) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return h.user("Ada"), h.user("Bob"), h.user("Cat")


def test_the_table_is_complete_and_message_methods_take_either_form() -> None:
    assert set(HANDLERS) == set(METHODS)
    assert {("group", "create"), ("group", "leave")} <= set(HANDLERS)
    for key, form in GROUP_FORMS.items():
        assert key[0] == "message" and HANDLERS[key].group_form is form  # type: ignore[attr-defined]


def test_create_pushes_group_created_to_every_member(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    outsider = h.user("Dan")
    h.call(
        "group",
        "create",
        {"name": " Trip <b> ", "memberIDs": [bob["userID"], cat["userID"]], "clientGroupId": "g1"},
        ada["token"],
    )
    bodies = {
        n: by_action(h.pushes(u["url"]), "groupCreated") for n, u in zip("abc", trio, strict=True)
    }
    assert [len(b) for b in bodies.values()] == [1, 1, 1]
    created = bodies["a"][0]
    assert bodies["b"] == bodies["c"] == [created]
    assert created["name"] == "Trip <b>" and created["createdBy"] == ada["userID"]
    assert created["clientGroupId"] == "g1" and created["createdAt"].endswith("Z")
    members = {m["userID"]: (m["name"], m["readUpTo"]) for m in created["members"]}
    assert members == {
        ada["userID"]: ("Ada T", 0),
        bob["userID"]: ("Bob T", 0),
        cat["userID"]: ("Cat T", 0),
    }
    assert h.pushes(outsider["url"]) == []


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"name": "Solo", "memberIDs": []}, 400, "2-50 members"),
        ({"name": "Unknown", "memberIDs": ["no-such-user"]}, 400, "existing users"),
        ({"name": "", "memberIDs": ["x"]}, 400, "name must be 1-50"),
        ({"name": "n" * 51, "memberIDs": ["x"]}, 400, "name must be 1-50"),
        ({"name": "Big", "memberIDs": [f"u{i}" for i in range(51)]}, 400, "at most 50"),
        ({"name": "Bad", "memberIDs": "x"}, 400, "memberIDs"),
    ],
)
def test_create_refusals(h: Harness, body: dict[str, Any], status: int, text: str) -> None:
    ada = h.user("Ada")
    h.call("group", "create", body, ada["token"])
    got_status, message = error_of(h, ada)
    assert got_status == status and text in message
    assert h.store.groups_for_user(ada["userID"]) == []


def test_fifty_members_is_the_limit(h: Harness) -> None:
    ada = h.user("Ada")
    others = [h.user(f"U{i}") for i in range(49)]
    group_id = create(h, ada, *others)
    group = h.store.get_group(group_id)
    assert group is not None and len(group.members) == 50
    extra = h.user("Extra")
    h.call(
        "group", "create", {"name": "x", "memberIDs": [o["userID"] for o in [*others, extra]]},
        ada["token"],
    )  # fmt: skip
    assert error_of(h, ada)[0] == 400


def test_create_is_idempotent_by_client_group_id(h: Harness, trio: Any) -> None:
    ada, bob, _ = trio
    first = create(h, ada, bob, clientGroupId="same")
    again = create(h, ada, bob, clientGroupId="same")
    assert first == again and len(h.store.groups_for_user(ada["userID"])) == 1


def test_group_messages_fan_out_once_with_orders_without_gaps(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    group_id = create(h, ada, bob, cat)
    ada2 = login(h, "ada")  # a second session of Ada's
    for who in trio:
        h.pushes(who["url"])
    say(h, ada, group_id, "hello all", "c1")
    [to_bob] = by_action(h.pushes(bob["url"]), "message")
    [to_cat] = by_action(h.pushes(cat["url"]), "message")
    [mirror] = by_action(h.pushes(ada2["url"]), "message")
    [sent] = by_action(h.pushes(ada["url"]), "sent")
    assert to_bob == to_cat
    assert to_bob["groupID"] == group_id and to_bob["to"] is None
    assert (to_bob["userID"], to_bob["name"], to_bob["order"]) == (ada["userID"], "Ada T", 1)
    assert mirror["to"] == group_id and mirror["userID"] == ada["userID"]
    assert sent == {
        "clientMessageId": "c1",
        "messageID": to_bob["messageID"],
        "order": 1,
        "dateTime": to_bob["dateTime"],
        "groupID": group_id,
    }
    say(h, bob, group_id, "hi", "c2")
    say(h, cat, group_id, "yo", "c3")
    say(h, ada, group_id, "again", "c4")
    orders = [m["order"] for m in by_action(h.pushes(cat["url"]), "message")]
    assert sorted(orders) == [2, 4]
    h.call("message", "history", {"groupID": group_id}, bob["token"])
    [page] = by_action(h.pushes(bob["url"]), "history")
    assert [m["order"] for m in page["messages"]] == [1, 2, 3, 4]
    assert page["groupID"] == group_id and page["hasMore"] is False and "userID" not in page


def test_fan_out_is_one_batch_call_per_queue(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    group_id = create(h, ada, bob, cat)
    for who in trio:
        h.pushes(who["url"])
    for i in range(5):
        h.transport.send(
            h.requests,
            Request("message", "add", {"groupID": group_id, "body": f"{i}"}, ada["token"]).encode(),
        )
    h.transport.calls.clear()
    h.worker.poll_once()
    assert h.transport.calls.count("SendMessageBatch") == 3  # bob's, cat's and ada's queues
    assert len(by_action(h.pushes(bob["url"]), "message")) == 5


def test_same_client_message_id_stores_one_group_message(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    group_id = create(h, ada, bob, cat)
    say(h, ada, group_id, "once", "dup")
    say(h, ada, group_id, "once again", "dup")
    say(h, ada, group_id, "next", "other")
    messages, _ = h.store.group_conversation(group_id, 10)
    assert [(m.order, m.body) for m in messages] == [(1, "once"), (2, "next")]
    acks = by_action(h.pushes(ada["url"]), "sent")
    assert [a["order"] for a in acks] == [1, 1, 2]


def test_non_members_and_unknown_groups_are_refused(h: Harness, trio: Any) -> None:
    ada, bob, _ = trio
    group_id = create(h, ada, bob)
    h.pushes(bob["url"])
    dan = h.user("Dan")
    for method, body in [
        ("add", {"groupID": group_id, "body": "let me in"}),
        ("selectSearchUser", {"groupID": group_id}),
        ("markMessagesAsRead", {"groupID": group_id}),
        ("history", {"groupID": group_id}),
    ]:
        h.call("message", method, body, dan["token"])
        assert error_of(h, dan) == (403, "you are not a member of this group"), method
        h.call("message", method, {**body, "groupID": "no-such-group"}, dan["token"])
        assert error_of(h, dan) == (400, "groupID does not name a group"), method
    h.call("group", "leave", {"groupID": group_id}, dan["token"])
    assert error_of(h, dan)[0] == 403
    h.call(
        "message", "add", {"groupID": group_id, "userID": bob["userID"], "body": "x"}, ada["token"]
    )
    assert error_of(h, ada) == (400, "send userID or groupID, not both")
    assert h.store.group_conversation(group_id, 10) == ([], False)
    assert h.pushes(bob["url"]) == []


def test_read_receipts_are_per_member(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    group_id = create(h, ada, bob, cat)
    say(h, ada, group_id, "one")
    say(h, ada, group_id, "two")
    for who in trio:
        h.pushes(who["url"])
    h.call("message", "markMessagesAsRead", {"groupID": group_id}, bob["token"])
    receipt = {"groupID": group_id, "userID": bob["userID"], "upToOrder": 2}
    assert by_action(h.pushes(ada["url"]), "read") == [receipt]
    assert by_action(h.pushes(cat["url"]), "read") == [receipt]
    assert h.pushes(bob["url"]) == []  # the reader's own sessions get nothing

    def seen_by_ada() -> list[bool]:
        h.call("message", "selectSearchUser", {"groupID": group_id}, ada["token"])
        [page] = by_action(h.pushes(ada["url"]), "selectSearchUser")
        return [m["isMessageRead"] for m in page]

    assert seen_by_ada() == [False, False]  # Cat has not read them yet
    h.call("message", "selectSearchUser", {"groupID": group_id}, cat["token"])
    [cats] = by_action(h.pushes(cat["url"]), "selectSearchUser")
    assert [m["isMessageRead"] for m in cats] == [False, False] and cats[0]["to"] is None
    h.call("message", "markMessagesAsRead", {"groupID": group_id}, cat["token"])
    assert seen_by_ada() == [True, True]  # everyone else has read them


def test_leave(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    group_id = create(h, ada, bob, cat)
    for who in trio:
        h.pushes(who["url"])
    h.call("group", "leave", {"groupID": group_id}, cat["token"])
    updates = [by_action(h.pushes(u["url"]), "groupUpdated") for u in trio]
    assert all(len(u) == 1 for u in updates) and updates[0] == updates[1] == updates[2]
    update = updates[0][0]
    assert update["leftUserID"] == cat["userID"] and update["name"] == "Trip"
    assert {m["userID"] for m in update["members"]} == {ada["userID"], bob["userID"]}
    h.call("group", "leave", {"groupID": group_id}, cat["token"])  # a redelivery
    assert by_action(h.pushes(cat["url"]), "groupUpdated") == [update]
    say(h, cat, group_id, "still here?")
    assert error_of(h, cat)[0] == 403
    say(h, bob, group_id, "bye Cat")
    assert by_action(h.pushes(cat["url"]), "message") == []
    assert len(by_action(h.pushes(ada["url"]), "message")) == 1


def test_login_history_has_groups_first_then_all_messages(h: Harness, trio: Any) -> None:
    ada, bob, cat = trio
    group_id = create(h, ada, bob, cat, name="Club")
    say(h, bob, group_id, "group one")
    h.now += timedelta(seconds=1)
    h.call("message", "add", {"body": "direct", "userID": ada["userID"]}, cat["token"])
    h.now += timedelta(seconds=1)
    say(h, ada, group_id, "group two")
    pushes = h.pushes(login(h, "ada")["url"])
    actions = [p.action for p in pushes]
    assert actions == ["groupCreated", "message", "message", "message", "historyEnd"]
    created = pushes[0].body
    assert created["groupID"] == group_id and created["name"] == "Club"
    assert created["unreadMessages"] == 1  # Bob's; Ada's own never counts
    bodies = [p.body for p in pushes[1:4]]
    assert [m["body"] for m in bodies] == ["group one", "direct", "group two"]
    assert [m.get("groupID") for m in bodies] == [group_id, None, group_id]
    assert bodies[2]["to"] == group_id and bodies[0]["to"] is None
    assert pushes[-1].body == {"count": 3}


def test_login_history_is_everything_since_logout_when_over_the_limit(h: Harness) -> None:
    ada, bob = h.user("Ada"), h.user("Bob")
    group_id = create(h, ada, bob)
    h.call("user", "logout", {}, ada["token"])
    h.now += timedelta(seconds=1)
    for i in range(60):
        say(h, bob, group_id, f"g{i}")
        h.call("message", "add", {"body": f"d{i}", "userID": ada["userID"]}, bob["token"])
    pushes = h.pushes(login(h, "ada")["url"])
    assert len(by_action(pushes, "message")) == 120
    assert by_action(pushes, "historyEnd") == [{"count": 120}]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        (("message", "add"), {"groupID": None, "body": "x"}),
        (("message", "add"), {"groupID": 5, "body": "x"}),
        (("message", "add"), {"groupID": "g" * 129, "body": "x"}),
        (("message", "add"), {"groupID": "g", "body": {"deep": [1]}}),
        (("message", "history"), {"groupID": "g", "limit": True}),
        (("message", "selectSearchUser"), {"groupID": ["g"]}),
        (("message", "markMessagesAsRead"), {"groupID": {}}),
        (("group", "leave"), {}),
        (("group", "create"), {"name": {"x": 1}, "memberIDs": []}),
        (("group", "create"), {"name": "x", "memberIDs": [["nested"]]}),
        (("group", "create"), {"name": "x", "memberIDs": [None]}),
    ],
)
def test_hostile_group_bodies_are_4xx_error_pushes(
    h: Harness, method: tuple[str, str], body: dict[str, Any]
) -> None:
    ada = h.user("Ada")
    h.call(*method, body, ada["token"])
    status, _ = error_of(h, ada)
    assert 400 <= status < 500
    assert h.transport.depth(h.requests) == 0 and h.transport.depth(h.dlq) == 0
