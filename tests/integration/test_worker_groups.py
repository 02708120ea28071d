"""Group conversations (v1.1) through raw boto3 and the real `messenger worker` process."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .rawclient import Login, Push, RawClient

pytestmark = pytest.mark.usefixtures("worker_process")


def of(pushes: list[Push], action: str) -> list[Any]:
    return [p.body for p in pushes if p.action == action]


def collect(client: RawClient, login: Login, action: str, count: int) -> list[Any]:
    """Exactly `count` pushes of `action` (others are dropped), then a quiet moment for more."""
    got = client.pushes_until(login.url, lambda ps: len(of(ps, action)) >= count)
    return of(got + client.quiet(login.url, 1), action)


def say(client: RawClient, who: Login, group_id: str, text: str, cid: str | None = None) -> None:
    body = {"groupID": group_id, "body": text, "clientMessageId": cid or str(uuid.uuid4())}
    client.send("message", "add", body, who.token)


@pytest.fixture
def group(client: RawClient) -> tuple[str, Login, Login, Login]:
    """Ada creates "Trio" with Bob and Cat; each of them is told exactly once."""
    ada, bob, cat = client.user("Ada"), client.user("Bob"), client.user("Cat")
    client.send(
        "group",
        "create",
        {"name": "Trio", "memberIDs": [bob.user_id, cat.user_id], "clientGroupId": "t1"},
        ada.token,
    )
    created = [collect(client, who, "groupCreated", 1) for who in (ada, bob, cat)]
    assert all(len(c) == 1 for c in created) and created[0] == created[1] == created[2]
    body = created[0][0]
    assert body["name"] == "Trio" and body["createdBy"] == ada.user_id
    assert sorted(m["name"] for m in body["members"]) == ["Ada Tester", "Bob Tester", "Cat Tester"]
    return str(body["groupID"]), ada, bob, cat


def test_everyone_gets_each_message_once_and_orders_have_no_gaps(
    client: RawClient, group: tuple[str, Login, Login, Login]
) -> None:
    group_id, ada, bob, cat = group
    say(client, ada, group_id, "hello <b>all</b>", "a1")
    sent = client.expect(ada.url, "sent").body
    assert sent["clientMessageId"] == "a1" and sent["groupID"] == group_id and sent["order"] == 1
    for who in (bob, cat):
        [got] = collect(client, who, "message", 1)
        assert got["body"] == "hello <b>all</b>" and got["groupID"] == group_id
        assert got["userID"] == ada.user_id and got["name"] == "Ada Tester"
        assert got["to"] is None and got["order"] == 1 and got["messageID"] == sent["messageID"]
    assert of(client.quiet(ada.url, 1), "message") == []  # the sender gets the ack only

    for i in range(4):  # three senders at once: the worker orders them
        for who in (ada, bob, cat):
            say(client, who, group_id, f"{who.name} {i}")
    for who in (ada, bob, cat):
        messages = collect(client, who, "message", 8)
        assert len(messages) == 8 and len({m["messageID"] for m in messages}) == 8
        assert all(m["userID"] != who.user_id for m in messages)
    client.send("message", "history", {"groupID": group_id, "limit": 100}, cat.token)
    page = client.expect(cat.url, "history").body
    assert [m["order"] for m in page["messages"]] == list(range(1, 14))
    assert page["hasMore"] is False and page["groupID"] == group_id


def test_read_receipts_per_member(
    client: RawClient, group: tuple[str, Login, Login, Login]
) -> None:
    group_id, ada, bob, cat = group
    say(client, ada, group_id, "read me")
    client.expect(ada.url, "sent")
    for who in (bob, cat):
        client.expect(who.url, "message")
    client.send("message", "markMessagesAsRead", {"groupID": group_id}, bob.token)
    receipt = {"groupID": group_id, "userID": bob.user_id, "upToOrder": 1}
    assert collect(client, ada, "read", 1) == [receipt]
    assert collect(client, cat, "read", 1) == [receipt]
    assert of(client.quiet(bob.url, 1), "read") == []
    client.send("message", "selectSearchUser", {"groupID": group_id}, ada.token)
    [mine] = client.expect(ada.url, "selectSearchUser").body
    assert mine["to"] == group_id and mine["isMessageRead"] is False  # Cat has not read it
    client.send("message", "markMessagesAsRead", {"groupID": group_id}, cat.token)
    assert collect(client, ada, "read", 1)[0]["userID"] == cat.user_id
    client.send("message", "selectSearchUser", {"groupID": group_id}, ada.token)
    [mine] = client.expect(ada.url, "selectSearchUser").body
    assert mine["isMessageRead"] is True  # read by everyone else


def test_same_client_message_id_stores_once(
    client: RawClient, group: tuple[str, Login, Login, Login]
) -> None:
    group_id, ada, bob, _ = group
    say(client, bob, group_id, "once", "dup")
    say(client, bob, group_id, "once", "dup")
    client.settle()
    acks = collect(client, bob, "sent", 2)
    assert {a["messageID"] for a in acks} == {acks[0]["messageID"]} and acks[0]["order"] == 1
    client.send("message", "history", {"groupID": group_id}, ada.token)
    page = client.expect(ada.url, "history").body
    assert [m["body"] for m in page["messages"]] == ["once"]


def test_leave_and_non_members_are_refused(
    client: RawClient, group: tuple[str, Login, Login, Login]
) -> None:
    group_id, ada, bob, cat = group
    stranger = client.user("Eve")
    say(client, stranger, group_id, "let me in")
    error = client.expect(stranger.url, "error")
    assert error.status == 403 and error.body["method"] == "add"

    client.send("group", "leave", {"groupID": group_id}, cat.token)
    updates = [collect(client, who, "groupUpdated", 1) for who in (ada, bob, cat)]
    assert updates[0] == updates[1] == updates[2] and len(updates[0]) == 1
    assert updates[0][0]["leftUserID"] == cat.user_id
    assert {m["userID"] for m in updates[0][0]["members"]} == {ada.user_id, bob.user_id}

    say(client, cat, group_id, "still here?")
    assert client.expect(cat.url, "error").status == 403
    say(client, bob, group_id, "bye Cat")
    assert client.expect(ada.url, "message").body["body"] == "bye Cat"
    assert of(client.quiet(cat.url, 1.5), "message") == []


def test_login_history_includes_groups_and_their_messages(
    client: RawClient, group: tuple[str, Login, Login, Login]
) -> None:
    group_id, ada, bob, _ = group
    say(client, bob, group_id, "while you were away")
    client.expect(ada.url, "message")
    again = client.login(ada.email)  # type: ignore[attr-defined]
    history = again.history + client.quiet(again.url, 1)  # a standard queue may reorder
    created = of(history, "groupCreated")
    assert [g["groupID"] for g in created] == [group_id] and created[0]["unreadMessages"] == 1
    [message] = of(history, "message")
    assert message["groupID"] == group_id and message["body"] == "while you were away"
    assert of(history, "historyEnd") == [{"count": 1}]
