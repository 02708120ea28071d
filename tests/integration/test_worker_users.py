"""user/* methods through raw boto3 against a moto server and the real `messenger worker`."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from .rawclient import RawClient

pytestmark = pytest.mark.usefixtures("worker_process")


def email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


def test_register_then_login_returns_every_field(client: RawClient) -> None:
    address = email()
    status, body = client.register("Ada", "Lovelace", address)
    assert status == 200 and body["message"]
    login = client.login(address.upper())  # emails compare case-insensitively
    assert login.name == "Ada Lovelace"
    assert login.dark is False
    assert login.user_id and login.token.count(".") == 2
    assert re.search(r"-session-[0-9a-f]{32}$", login.url)
    assert client.queue_exists(login.url)
    assert [p.action for p in login.history] == ["historyEnd"]
    assert login.history[0].body == {"count": 0}


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [
        ("fName", "", "fName"),
        ("lName", "x" * 51, "lName"),
        ("email", "not-an-email", "email"),
        ("password", "short", "password"),
        ("password", "p" * 129, "password"),
        ("fName", 42, "fName"),
    ],
)
def test_register_refuses_invalid_fields_naming_them(
    client: RawClient, field: str, value: object, word: str
) -> None:
    body = {"fName": "Ada", "lName": "Lovelace", "email": email(), "password": "long enough"}
    body[field] = value
    status, reply = client.reply(client.send("user", "register", body))
    assert status == 400
    assert word in reply["message"]


def test_register_refuses_a_taken_email_in_any_case(client: RawClient) -> None:
    address = email()
    assert client.register("A", "B", address)[0] == 200
    status, reply = client.register("C", "D", address.upper())
    assert status == 400 and "email" in reply["message"]


def test_dark_mode_from_register_and_from_set_dark_mode_state(client: RawClient) -> None:
    address = email()
    assert client.register("Dark", "Mode", address, darkModeState=True)[0] == 200
    login = client.login(address)
    assert login.dark is True
    client.send("user", "setDarkModeState", {"darkModeState": False}, login.token)
    client.settle()
    assert client.login(address).dark is False


def test_wrong_password_and_unknown_email_get_the_same_401(client: RawClient) -> None:
    address = email()
    client.register("Ada", "Lovelace", address)
    wrong = client.reply(client.send("user", "login", {"email": address, "password": "wrong pass"}))
    unknown = client.reply(
        client.send("user", "login", {"email": email(), "password": "correct horse"})
    )
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1] == {"message": "Invalid email or password."}


def test_five_failures_throttle_every_login_for_that_email(client: RawClient) -> None:
    address, other = email(), email()
    client.register("T", "Hrottle", address)
    client.register("O", "Ther", other)
    for _ in range(5):
        status, _ = client.reply(
            client.send("user", "login", {"email": address, "password": "bad password"})
        )
        assert status == 401
    status, body = client.reply(
        client.send("user", "login", {"email": address.upper(), "password": "correct horse"})
    )
    assert status == 429 and body["message"]
    assert client.login(other).user_id  # another email is not affected


def test_logout_deletes_the_session_queue_and_ends_the_token(client: RawClient, stack) -> None:  # type: ignore[no-untyped-def]
    user = client.user("Leaving")
    client.send("user", "logout", {}, user.token)
    deadline = time.monotonic() + 30
    while client.queue_exists(user.url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.queue_exists(user.url)


def test_search_is_literal_case_insensitive_and_never_the_caller(client: RawClient) -> None:
    tag = uuid.uuid4().hex[:6]
    me = client.user(f"Zq{tag}Me")
    client.user(f"Zq{tag}Other", "Person")
    client.user("Plain", f"Zq{tag}Last")
    client.user("Percent%", f"Lit{tag}")

    client.send("user", "searchUser", {"name": f"zq{tag}".upper()}, me.token)
    found = client.expect(me.url, "searchUser").body["listOfUsers"]
    names = sorted(u["name"] for u in found)
    assert names == sorted([f"Zq{tag}Other Person", f"Plain Zq{tag}Last"])
    assert all(u["unreadMessages"] == -1 and u["userID"] for u in found)
    assert me.user_id not in {u["userID"] for u in found}

    client.send("user", "searchUser", {"name": f"%{tag}"}, me.token)
    assert client.expect(me.url, "searchUser").body["listOfUsers"] == []
    client.send("user", "searchUser", {"name": "Percent%"}, me.token)
    assert [u["name"] for u in client.expect(me.url, "searchUser").body["listOfUsers"]] == [
        f"Percent% Lit{tag}"
    ]


def test_search_returns_at_most_fifty(client: RawClient) -> None:
    tag = uuid.uuid4().hex[:6]
    for i in range(52):
        assert client.register(f"Many{tag}", f"N{i}", email())[0] == 200
    me = client.user("Counter")
    client.send("user", "searchUser", {"name": f"many{tag}"}, me.token)
    assert len(client.expect(me.url, "searchUser").body["listOfUsers"]) == 50
