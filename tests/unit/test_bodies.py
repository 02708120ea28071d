"""Request bodies: where each parse function stops accepting, and what it says when it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from messenger_widgets.bodies import (
    AddMessage,
    AttachmentRef,
    Conversation,
    DarkMode,
    History,
    Login,
    Register,
    Search,
    normalize_email,
)
from messenger_widgets.errors import BadRequest, PayloadTooLarge

REGISTER = {"fName": "Ada", "lName": "Lovelace", "email": "ada@example.com", "password": "p" * 8}


def register(**changes: Any) -> Register:
    return Register.parse({**REGISTER, **changes})


def refused(field: str, **changes: Any) -> None:
    with pytest.raises(BadRequest) as info:
        register(**changes)
    assert field in info.value.message
    assert info.value.status == 400


# --- register: names ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["fName", "lName"])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A", "A"),
        ("x" * 50, "x" * 50),
        ("  " + "y" * 50 + "\t ", "y" * 50),
        (" Zoë ", "Zoë"),
        ("Jean Luc", "Jean Luc"),
        ("李" * 50, "李" * 50),
    ],
)
def test_names_accepted(field: str, value: str, expected: str) -> None:
    parsed = register(**{field: value})
    assert (parsed.first_name if field == "fName" else parsed.last_name) == expected


@pytest.mark.parametrize("field", ["fName", "lName"])
@pytest.mark.parametrize(
    "value",
    ["", "   ", "x" * 51, " " + "x" * 51, "a\x00b", "a\nb", "a\tb", "a\x1bb", "a\x7fb", "a\x85b"],
)
def test_names_refused(field: str, value: str) -> None:
    refused(field, **{field: value})


@pytest.mark.parametrize("field", ["fName", "lName", "email", "password"])
@pytest.mark.parametrize("value", [None, 5, ["Ada"], {"a": 1}, True])
def test_register_fields_must_be_strings(field: str, value: Any) -> None:
    refused(field, **{field: value})


@pytest.mark.parametrize("field", ["fName", "lName", "email", "password"])
def test_register_fields_are_required(field: str) -> None:
    with pytest.raises(BadRequest, match=field):
        Register.parse({k: v for k, v in REGISTER.items() if k != field})


# --- register: email and password --------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "a@b.co",
        "first.last+tag@sub.example.org",
        "  ada@example.com  ",
        "ÄDA@exämple.de",
        "x" * 64 + "@" + "d" * 185 + ".com",  # 254 characters
    ],
)
def test_emails_accepted(email: str) -> None:
    assert register(email=email).email == email.strip()


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "a@b@example.com",
        "ada @example.com",
        "ada@exa mple.com",
        "ada@example.",
        "ada@.example.com",
        "ada@example..com",
        "x" * 64 + "@" + "d" * 186 + ".com",  # 255 characters
    ],
)
def test_emails_refused(email: str) -> None:
    refused("email", email=email)


@pytest.mark.parametrize("password", ["p" * 8, "p" * 128, "é" * 8, "😀" * 128, " " * 8, "pässwörd"])
def test_passwords_accepted(password: str) -> None:
    assert register(password=password).password == password


@pytest.mark.parametrize("password", ["", "p" * 7, "p" * 129, "😀" * 7, "é" * 129])
def test_passwords_refused(password: str) -> None:
    refused("password", password=password)


def test_password_is_not_stripped() -> None:
    assert register(password="  secret  ").password == "  secret  "


def test_dark_mode_defaults_false_and_must_be_a_bool() -> None:
    assert register().dark_mode is False
    assert register(darkModeState=True).dark_mode is True
    for value in ("true", 1, 0, None):
        refused("darkModeState", darkModeState=value)


def test_normalize_email_is_case_and_space_insensitive() -> None:
    assert normalize_email("  Ada@Example.COM ") == "ada@example.com"
    assert normalize_email("STRASSE@x.de") == normalize_email("straße@x.de".upper())


# --- login, dark mode, search ------------------------------------------------------------


def test_login_accepts_any_strings_up_to_the_limits() -> None:
    assert Login.parse({"email": "x", "password": ""}) == Login("x", "")
    assert Login.parse({"email": "e" * 254, "password": "p" * 128}).password == "p" * 128


@pytest.mark.parametrize(
    "body",
    [
        {"email": "e" * 255, "password": "p"},
        {"email": "e", "password": "p" * 129},
        {"email": "e"},
        {"password": "p"},
        {"email": 1, "password": "p"},
    ],
)
def test_login_refused(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        Login.parse(body)


def test_dark_mode_body() -> None:
    assert DarkMode.parse({"darkModeState": False}) == DarkMode(False)
    for body in ({}, {"darkModeState": "false"}, {"darkModeState": 0}):
        with pytest.raises(BadRequest, match="darkModeState"):
            DarkMode.parse(body)


def test_search_strips_and_limits() -> None:
    assert Search.parse({"name": "  ada "}).text == "ada"
    assert Search.parse({"name": ""}).text == ""
    assert Search.parse({"name": "n" * 100}).text == "n" * 100
    for body in ({"name": "n" * 101}, {}, {"name": 3}):
        with pytest.raises(BadRequest, match="name"):
            Search.parse(body)


# --- message/add: text -------------------------------------------------------------------


def add(body: Any, **extra: Any) -> AddMessage:
    return AddMessage.parse({"userID": "u2", "body": body, **extra})


def test_text_up_to_10000_characters() -> None:
    parsed = add("x" * 10_000)
    assert parsed.text == "x" * 10_000 and parsed.attachment is None
    assert add("😀" * 10_000).text == "😀" * 10_000  # characters, not bytes


@pytest.mark.parametrize("text", ["x" * 10_001, "😀" * 10_001, " " * 10_001])
def test_text_over_10000_characters_is_payload_too_large(text: str) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        add(text)
    assert info.value.status == 413


@pytest.mark.parametrize("text", ["", " ", "\n\t  "])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(BadRequest, match="empty") as info:
        add(text)
    assert not isinstance(info.value, PayloadTooLarge)


def test_text_is_kept_verbatim() -> None:
    text = "  <script>alert(1)</script>\n  "
    assert add(text).text == text


@pytest.mark.parametrize("body", [None, 5, True, ["x"]])
def test_body_must_be_text_or_attachment(body: Any) -> None:
    with pytest.raises(BadRequest, match="body"):
        add(body)


def test_add_needs_a_recipient() -> None:
    for user_id in ("", None, 5, "u" * 129):
        with pytest.raises(BadRequest, match="userID"):
            AddMessage.parse({"userID": user_id, "body": "hi"})
    assert AddMessage.parse({"userID": "u" * 128, "body": "hi"}).recipient_id == "u" * 128


def test_client_message_id_is_optional_and_bounded() -> None:
    assert add("hi").client_message_id == ""
    assert add("hi", clientMessageId="c" * 128).client_message_id == "c" * 128
    for value in ("c" * 129, 5):
        with pytest.raises(BadRequest, match="clientMessageId"):
            add("hi", clientMessageId=value)


# --- message/add: attachments ------------------------------------------------------------


MISSING = object()
ATTACHMENT = {"key": "attachments/u1/a.png", "name": "a.png", "type": "image/png", "size": 10}


def attachment(**changes: Any) -> AttachmentRef:
    ref = add({**ATTACHMENT, **changes}).attachment
    assert ref is not None
    return ref


def test_attachment_with_key() -> None:
    ref = attachment()
    assert ref == AttachmentRef("attachments/u1/a.png", "", "a.png", "image/png", 10)
    assert add(ATTACHMENT).text is None


def test_attachment_with_url_instead_of_key() -> None:
    url = "https://bucket.s3.amazonaws.com/attachments/a.png"
    ref = add({"url": url, "name": "a.png", "type": "image/png", "size": 1}).attachment
    assert ref is not None and (ref.key, ref.url) == ("", url)


def test_attachment_defaults() -> None:
    ref = add({"key": "attachments/x", "name": " report.pdf "}).attachment
    assert ref == AttachmentRef("attachments/x", "", "report.pdf", "application/octet-stream", 0)


@pytest.mark.parametrize("content_type", ["image/svg+xml", "application/vnd.ms-excel", "a/b"])
def test_media_types_accepted(content_type: str) -> None:
    assert attachment(type=content_type).content_type == content_type


@pytest.mark.parametrize(
    "changes",
    [
        {"key": "", "url": ""},
        {"key": MISSING},
        {"key": 5},
        {"url": 5, "key": MISSING},
        {"name": ""},
        {"name": "   "},
        {"name": MISSING},
        {"name": None},
        {"name": "n" * 256},
        {"type": "png"},
        {"type": "image/png; charset=x"},
        {"type": "text/ht ml"},
        {"type": "text/html\nx"},
        {"type": "a/" + "b" * 126},
        {"type": 5},
        {"size": -1},
        {"size": "10"},
        {"size": 1.5},
        {"size": True},
        {"size": False},
        {"size": None},
    ],
    ids=repr,
)
def test_attachment_refused(changes: dict[str, Any]) -> None:
    body = {k: v for k, v in {**ATTACHMENT, **changes}.items() if v is not MISSING}
    with pytest.raises(BadRequest):
        add(body)


def test_attachment_boundaries_accepted() -> None:
    assert attachment(name="n" * 255).name == "n" * 255
    assert attachment(size=0).size == 0
    assert attachment(size=2**40).size == 2**40


# --- conversation and history ------------------------------------------------------------


def test_conversation() -> None:
    assert Conversation.parse({"userID": "u7"}) == Conversation("u7")
    for body in ({}, {"userID": ""}, {"userID": 7}):
        with pytest.raises(BadRequest, match="userID"):
            Conversation.parse(body)


def test_history_defaults() -> None:
    assert History.parse({"userID": "u"}) == History("u", None, 50)


@pytest.mark.parametrize("limit", [1, 2, 99, 100])
def test_history_limit_accepted(limit: int) -> None:
    assert History.parse({"userID": "u", "limit": limit}).limit == limit


@pytest.mark.parametrize("limit", [0, -1, 101, 1.0, 50.5, "50", True, False, [50]])
def test_history_limit_refused(limit: Any) -> None:
    with pytest.raises(BadRequest, match="limit"):
        History.parse({"userID": "u", "limit": limit})


@pytest.mark.parametrize("before", [1, 2, 2**53])
def test_history_before_order_accepted(before: int) -> None:
    assert History.parse({"userID": "u", "beforeOrder": before}).before_order == before


@pytest.mark.parametrize("before", [0, -5, 2**53 + 1, 3.0, "4", True])
def test_history_before_order_refused(before: Any) -> None:
    with pytest.raises(BadRequest, match="beforeOrder"):
        History.parse({"userID": "u", "beforeOrder": before})


def test_history_null_fields_mean_absent() -> None:
    assert History.parse({"userID": "u", "limit": None, "beforeOrder": None}) == History(
        "u", None, 50
    )


# --- groups (v1.1) ------------------------------------------------------------------------
def test_create_group_body() -> None:
    from messenger_widgets.bodies import CreateGroup

    parsed = CreateGroup.parse(
        {"name": "  Trip  ", "memberIDs": ["b", "c", "b"], "clientGroupId": "g1"}
    )
    assert parsed == CreateGroup("Trip", ("b", "c"), "g1")
    assert CreateGroup.parse({"name": "x", "memberIDs": ["b"]}).client_group_id == ""
    for bad, field in [
        ({"name": "", "memberIDs": ["b"]}, "name"),
        ({"name": "n" * 51, "memberIDs": ["b"]}, "name"),
        ({"name": "a\x00b", "memberIDs": ["b"]}, "name"),
        ({"name": "x"}, "memberIDs"),
        ({"name": "x", "memberIDs": "b"}, "memberIDs"),
        ({"name": "x", "memberIDs": [""]}, "memberIDs"),
        ({"name": "x", "memberIDs": [7]}, "memberIDs"),
        ({"name": "x", "memberIDs": ["u" * 129]}, "memberIDs"),
        ({"name": "x", "memberIDs": [f"u{i}" for i in range(51)]}, "memberIDs"),
        ({"name": "x", "memberIDs": ["b"], "clientGroupId": "c" * 129}, "clientGroupId"),
    ]:
        with pytest.raises(BadRequest, match=field):
            CreateGroup.parse(bad)


def test_group_message_and_target_bodies() -> None:
    from messenger_widgets.bodies import AddGroupMessage, GroupHistory, GroupTarget

    assert AddGroupMessage.parse({"groupID": "g", "body": "hi", "clientMessageId": "c"}) == (
        AddGroupMessage("g", "hi", None, "c")
    )
    with pytest.raises(PayloadTooLarge):
        AddGroupMessage.parse({"groupID": "g", "body": "x" * 10_001})
    with pytest.raises(BadRequest, match="not both"):
        AddGroupMessage.parse({"groupID": "g", "userID": "u", "body": "hi"})
    with pytest.raises(BadRequest, match="groupID"):
        GroupTarget.parse({"groupID": ""})
    assert GroupTarget.parse({"groupID": "g"}).group_id == "g"
    assert GroupHistory.parse({"groupID": "g", "beforeOrder": 5}) == GroupHistory("g", 5, 50)
    with pytest.raises(BadRequest, match="limit"):
        GroupHistory.parse({"groupID": "g", "limit": 101})
