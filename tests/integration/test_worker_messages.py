"""message/* methods, fan-out, history and receipts, through raw boto3 and the real worker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .rawclient import Login, Push, RawClient

pytestmark = pytest.mark.usefixtures("worker_process")


def send_text(client: RawClient, me: Login, to: Login, text: str, cid: str | None = None) -> str:
    body: dict[str, Any] = {"body": text, "userID": to.user_id, "name": to.name}
    if cid is not None:
        body["clientMessageId"] = cid
    return client.send("message", "add", body, me.token)


def messages(pushes: list[Push]) -> list[dict[str, Any]]:
    return [p.body for p in pushes if p.action == "message"]


def test_two_users_chat_both_ways(client: RawClient) -> None:
    ada, bob = client.user("Ada", "Lovelace"), client.user("Bob", "Babbage")
    send_text(client, ada, bob, "hello <b>Bob</b>", "c1")
    sent = client.expect(ada.url, "sent").body
    got = client.expect(bob.url, "message").body
    assert sent["clientMessageId"] == "c1" and sent["userID"] == bob.user_id
    assert sent["order"] == 1 and sent["messageID"] == got["messageID"]
    assert got["body"] == "hello <b>Bob</b>"  # verbatim: escaping is the renderer's job
    assert got["userID"] == ada.user_id and got["name"] == "Ada Lovelace"
    assert got["to"] is None and got["isMessageRead"] is False and got["order"] == 1
    assert got["dateTime"].endswith("Z") and got["dateTime"] == sent["dateTime"]

    send_text(client, bob, ada, "hi Ada", "c2")
    reply = client.expect(ada.url, "message").body
    assert reply["order"] == 2 and reply["userID"] == bob.user_id and reply["to"] is None
    assert client.expect(bob.url, "sent").body["order"] == 2


def test_fan_out_to_every_session_of_both_parties(client: RawClient) -> None:
    ada = client.user("Ada")
    bob = client.user("Bob")
    bob2 = client.login(bob.email)  # type: ignore[attr-defined]
    ada2 = client.login(ada.email)  # type: ignore[attr-defined]
    send_text(client, ada, bob, "to both of you", "fan")
    for session in (bob, bob2):
        got = client.expect(session.url, "message").body
        assert got["body"] == "to both of you" and got["to"] is None
    mirror = client.expect(ada2.url, "message").body  # the sender's other session
    assert mirror["to"] == bob.user_id and mirror["userID"] == bob.user_id
    assert client.expect(ada.url, "sent").body["clientMessageId"] == "fan"
    assert [p.action for p in client.quiet(ada.url, 1.5)] == []  # the sender gets no copy


def test_same_client_message_id_stores_one_message(client: RawClient) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    send_text(client, ada, bob, "once", "dup-1")
    send_text(client, ada, bob, "once", "dup-1")
    client.settle()
    client.send("message", "selectSearchUser", {"userID": bob.user_id}, ada.token)
    convo = client.expect(ada.url, "selectSearchUser").body
    assert [m["body"] for m in convo] == ["once"]
    acks = [p.body for p in client.quiet(ada.url, 1) if p.action == "sent"]
    assert {a["messageID"] for a in acks} <= {convo[0]["messageID"]}


def test_client_supplied_order_and_date_are_ignored(client: RawClient) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    client.send(
        "message",
        "add",
        {
            "body": "x",
            "userID": bob.user_id,
            "name": "",
            "order": 99,
            "dateTime": "1999-01-01T00:00:00Z",
        },
        ada.token,
    )
    got = client.expect(bob.url, "message").body
    assert got["order"] == 1 and not got["dateTime"].startswith("1999")


@pytest.mark.parametrize(
    ("body", "status"),
    [("x" * 10_001, 413), ("   ", 400), (12, 400), ({"name": "no key"}, 400)],
)
def test_invalid_bodies_get_an_error_push_and_are_stored_nowhere(
    client: RawClient, body: Any, status: int
) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    client.send("message", "add", {"body": body, "userID": bob.user_id, "name": "B"}, ada.token)
    error = client.expect(ada.url, "error")
    assert error.status == status and error.body["method"] == "add" and error.body["message"]
    assert messages(client.quiet(bob.url, 1)) == []


def test_longest_allowed_text_is_delivered(client: RawClient) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    send_text(client, ada, bob, "é" * 10_000)
    assert client.expect(bob.url, "message").body["body"] == "é" * 10_000


def test_unknown_recipient_and_self_are_refused(client: RawClient) -> None:
    ada = client.user("Ada")
    client.send("message", "add", {"body": "hi", "userID": "nobody", "name": "N"}, ada.token)
    assert client.expect(ada.url, "error").status == 400
    client.send("message", "add", {"body": "hi", "userID": ada.user_id, "name": "A"}, ada.token)
    assert client.expect(ada.url, "error").status == 400


def test_attachments_by_key_and_by_url(client: RawClient, s3, stack, moto_endpoint) -> None:  # type: ignore[no-untyped-def]
    settings, _ = stack
    ada, bob = client.user("Ada"), client.user("Bob")
    key = f"attachments/{uuid.uuid4().hex}/photo.png"
    s3.put_object(Bucket=settings.bucket, Key=key, Body=b"\x89PNG" + b"0" * 96)
    attachment = {"key": key, "name": "photo.png", "type": "image/png", "size": 1}
    client.send(
        "message", "add", {"body": attachment, "userID": bob.user_id, "name": "B"}, ada.token
    )
    got = client.expect(bob.url, "message").body["body"]
    assert got == {"key": key, "name": "photo.png", "type": "image/png", "size": 100}

    url = f"{moto_endpoint}/{settings.bucket}/{key}"
    by_url = {"url": url, "name": "photo.png", "type": "image/png", "size": 100}
    client.send("message", "add", {"body": by_url, "userID": bob.user_id, "name": "B"}, ada.token)
    assert client.expect(bob.url, "message").body["body"]["key"] == key

    refused = [
        {"key": "attachments/missing.png", "name": "m.png", "type": "image/png", "size": 1},
        {"key": "secrets/x.png", "name": "x.png", "type": "image/png", "size": 1},
        {"url": f"{moto_endpoint}/other-bucket/{key}", "name": "x", "type": "image/png", "size": 1},
        {"url": "javascript:alert(1)", "name": "x", "type": "image/png", "size": 1},
    ]
    for body in refused:
        client.send("message", "add", {"body": body, "userID": bob.user_id, "name": "B"}, ada.token)
        assert client.expect(ada.url, "error").status == 400
    assert messages(client.quiet(bob.url, 1)) == []


def chat(client: RawClient, a: Login, b: Login, count: int) -> None:
    for i in range(count):
        sender, recipient = (a, b) if i % 2 == 0 else (b, a)
        send_text(client, sender, recipient, f"m{i + 1}", f"h{i}-{uuid.uuid4().hex[:6]}")
    client.settle(60)
    client.quiet(a.url, 0.5), client.quiet(b.url, 0.5)


def test_select_and_history_pagination_over_more_than_100(client: RawClient) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    chat(client, ada, bob, 120)
    client.send("message", "selectSearchUser", {"userID": bob.user_id}, ada.token)
    newest = client.expect(ada.url, "selectSearchUser").body
    assert [m["order"] for m in newest] == list(range(101, 121))

    seen: list[int] = []
    before = None
    while True:
        body: dict[str, Any] = {"userID": bob.user_id}
        if before is not None:
            body["beforeOrder"] = before
        client.send("message", "history", body, ada.token)
        page = client.expect(ada.url, "history").body
        assert page["userID"] == bob.user_id
        orders = [m["order"] for m in page["messages"]]
        assert orders == sorted(orders)
        assert len(orders) == (50 if page["hasMore"] else 20)  # 120 = 50 + 50 + 20
        seen = orders + seen
        if not page["hasMore"]:
            break
        before = orders[0]
    assert seen == list(range(1, 121))

    client.send(
        "message", "history", {"userID": bob.user_id, "limit": 100, "beforeOrder": 101}, ada.token
    )
    page = client.expect(ada.url, "history").body
    assert [m["order"] for m in page["messages"]] == list(range(1, 101)) and page[
        "hasMore"
    ] is False
    client.send("message", "history", {"userID": bob.user_id, "limit": 101}, ada.token)
    assert client.expect(ada.url, "error").status == 400


def flood(client: RawClient, sender: Login, recipient_id: str, count: int) -> None:
    for i in range(count):
        client.send(
            "message", "add", {"body": f"f{i}", "userID": recipient_id, "name": ""}, sender.token
        )
    client.settle(60)


def test_login_history_newest_100_or_all_since_logout(client: RawClient) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    chat(client, ada, bob, 30)
    again = client.login(bob.email)  # type: ignore[attr-defined]  # never logged out: newest 100
    history = messages(again.history)
    assert sorted(m["order"] for m in history) == list(range(1, 31))
    assert again.history[-1].body == {"count": 30}
    mine = [m for m in history if m["to"] is not None]
    assert mine and all(m["to"] == ada.user_id and m["userID"] == ada.user_id for m in mine)

    flood(client, ada, bob.user_id, 80)  # 110 in all, so "newest 100" is a real cut
    third = client.login(bob.email)  # type: ignore[attr-defined]
    assert third.history[-1].body == {"count": 100}
    assert sorted(m["order"] for m in messages(third.history)) == list(range(11, 111))

    for session in (bob, again, third):
        client.send("user", "logout", {}, session.token)
    client.settle()
    flood(client, client.user("Ann"), bob.user_id, 110)  # while Bob is away: 125 since logout
    flood(client, client.user("Cy"), bob.user_id, 15)
    relog = client.login(bob.email, history=False)  # type: ignore[attr-defined]
    pushes = client.pushes_until(
        relog.url, lambda ps: any(p.action == "historyEnd" for p in ps), 60
    )
    got = messages(pushes) + messages(client.quiet(relog.url, 1))
    end = next(p for p in pushes if p.action == "historyEnd")
    assert end.body["count"] == 125 == len({m["messageID"] for m in got})
    assert {m["body"] for m in got} == {f"f{i}" for i in range(110)}


def test_mark_as_read_sends_read_receipts_to_every_sender_session(client: RawClient) -> None:
    ada, bob = client.user("Ada"), client.user("Bob")
    ada2 = client.login(ada.email)  # type: ignore[attr-defined]
    for i in range(3):
        send_text(client, ada, bob, f"r{i}")
    client.settle()
    client.send("message", "markMessagesAsRead", {"userID": ada.user_id}, bob.token)
    for session in (ada, ada2):
        receipt = client.expect(session.url, "read").body
        assert receipt == {"userID": bob.user_id, "upToOrder": 3}
    client.send("message", "selectSearchUser", {"userID": ada.user_id}, bob.token)
    assert all(m["isMessageRead"] for m in client.expect(bob.url, "selectSearchUser").body)


def test_requests_queue_is_empty_after_the_module(client: RawClient) -> None:
    client.settle()
    assert client.depth(client.request_url) == 0
