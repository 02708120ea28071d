"""The wire format: round trips, and every way bytes from a queue are refused."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messenger_widgets.errors import DecodeError
from messenger_widgets.protocol import (
    MAX_JSON_DEPTH,
    METHODS,
    Action,
    Envelope,
    Outgoing,
    Push,
    Reply,
    Request,
    WireMessage,
    dumps,
    loads,
    now_iso,
    parse_iso,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
attr_text = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40)


def envelope(body: str, attributes: dict[str, str], message_id: str = "mid-1") -> Envelope:
    return Envelope(message_id, "receipt-1", body, attributes)


def received(out: Outgoing, message_id: str = "mid-1") -> Envelope:
    return envelope(out.body, dict(out.attributes), message_id)


def nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- round trips -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(sorted(METHODS)),
    body=json_objects,
    token=st.none() | attr_text,
    session_url=st.none() | attr_text,
    message_id=attr_text,
)
def test_request_round_trip(
    key: tuple[str, str],
    body: dict[str, Any],
    token: str | None,
    session_url: str | None,
    message_id: str,
) -> None:
    request = Request(key[0], key[1], body, token, session_url)
    out = request.encode()
    assert json.loads(out.body) == body
    decoded = Request.decode(received(out, message_id))
    assert decoded == Request(key[0], key[1], body, token, session_url, message_id)
    assert decoded.key == key


@settings(max_examples=40, deadline=None)
@given(
    res_to=attr_text,
    status=st.sampled_from([200, 400, 401, 429, 500]),
    body=json_objects,
)
def test_reply_round_trip(res_to: str, status: int, body: dict[str, Any]) -> None:
    out = Reply(res_to, status, body).encode()
    assert out.attributes == {"resTo": res_to, "statusCode": str(status)}
    assert Reply.decode(received(out)) == Reply(res_to, status, body)


@settings(max_examples=40, deadline=None)
@given(
    action=st.sampled_from(list(Action)),
    body=json_objects | st.lists(json_values, max_size=5),
    status=st.sampled_from([200, 400, 401, 413, 500]),
)
def test_push_round_trip(action: Action, body: Any, status: int) -> None:
    out = Push(action, body, status).encode()
    assert out.attributes == {"action": str(action), "statusCode": str(status)}
    assert Push.decode(received(out)) == Push(action, body, status)


def test_request_encode_leaves_out_absent_token_and_session_url() -> None:
    out = Request("user", "login", {"email": "a@b.co"}).encode()
    assert out.attributes == {"controller": "user", "method": "login"}


def test_non_ascii_text_travels_unescaped() -> None:
    out = Push(Action.MESSAGE, {"body": "héllo ✓ 😀"}).encode()
    assert "héllo ✓ 😀" in out.body
    assert Push.decode(received(out)).body == {"body": "héllo ✓ 😀"}


def test_push_error_helper() -> None:
    push = Push.error(413, "too long", "add")
    assert push == Push("error", {"message": "too long", "method": "add"}, 413)
    assert push.encode().attributes == {"action": "error", "statusCode": "413"}


# --- refused requests, and the hints that let the worker still answer ---------------------


def test_missing_controller_keeps_method_and_token_hints() -> None:
    with pytest.raises(DecodeError) as info:
        Request.decode(envelope("{}", {"method": "login", "token": "t"}))
    assert info.value.hints == {"method": "login", "token": "t"}


@pytest.mark.parametrize("attrs", [{"controller": "user"}, {"controller": "", "method": "x"}, {}])
def test_missing_controller_or_method(attrs: dict[str, str]) -> None:
    with pytest.raises(DecodeError, match="controller or method"):
        Request.decode(envelope("{}", attrs))


def test_unknown_method_keeps_controller_method_and_token_only() -> None:
    attrs = {
        "controller": "user",
        "method": "deleteEverything",
        "token": "jwt",
        "sessionUrl": "http://evil",
    }
    with pytest.raises(DecodeError, match="unknown method user/deleteEverything") as info:
        Request.decode(envelope("{}", attrs))
    assert info.value.hints == {"controller": "user", "method": "deleteEverything", "token": "jwt"}


def test_method_under_the_wrong_controller_is_unknown() -> None:
    with pytest.raises(DecodeError, match="unknown method"):
        Request.decode(envelope("{}", {"controller": "message", "method": "login"}))


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "",
        '{"a": 1,}',
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": -Infinity}',
        '{"a": 1e400}',
        '{"a": -1e999}',
        '{"a": "\\ud800"}',
        '{"\\udfff": 1}',
        '{"a": ["ok", "\\udc00x"]}',
        '{"a": ' + "1" * 5000 + "}",
        '{"a": ' + nested_lists(MAX_JSON_DEPTH) + "}",
        '{"a": ' + nested_lists(100_000) + "}",
        "[]",
        "1",
        '"text"',
        "null",
    ],
    ids=lambda b: b[:25],
)
def test_bad_request_bodies_keep_hints(body: str) -> None:
    attrs = {"controller": "user", "method": "searchUser", "token": "jwt"}
    with pytest.raises(DecodeError) as info:
        Request.decode(envelope(body, attrs))
    assert info.value.hints == attrs


def test_json_depth_limit_is_exact() -> None:
    assert loads(nested_lists(MAX_JSON_DEPTH)) is not None
    with pytest.raises(DecodeError, match=f"deeper than {MAX_JSON_DEPTH}"):
        loads(nested_lists(MAX_JSON_DEPTH + 1))
    objects = '{"a":' * MAX_JSON_DEPTH + "{}" + "}" * MAX_JSON_DEPTH
    with pytest.raises(DecodeError):
        loads(objects)


def test_big_but_legal_numbers_and_escaped_pairs_are_accepted() -> None:
    assert loads("9" * 4300) == int("9" * 4300)
    assert loads("1e308") == 1e308
    assert loads('"\\ud83d\\ude00"') == "😀"
    with pytest.raises(DecodeError, match="not valid JSON"):
        loads("9" * 4301)


def test_every_accepted_body_can_be_sent_again() -> None:
    for text in ('{"a": 1.5e300}', '{"k": "\\u00e9\\ud83d\\ude00"}', '{"a": [null, true]}'):
        value = loads(text)
        assert Outgoing(dumps(value)).size > 0
        assert loads(dumps(value)) == value


# --- replies and pushes ------------------------------------------------------------------

BAD_STATUS = [None, "", "abc", "99", "600", "1000", "20", " 200", "200 ", "+200", "2_00", "٢٠٠"]


@pytest.mark.parametrize("status", BAD_STATUS)
def test_bad_status_code_is_refused(status: str | None) -> None:
    reply_attrs = {"resTo": "m1"}
    push_attrs = {"action": "message"}
    if status is not None:
        reply_attrs["statusCode"] = push_attrs["statusCode"] = status
    with pytest.raises(DecodeError, match="statusCode"):
        Reply.decode(envelope("{}", reply_attrs))
    with pytest.raises(DecodeError, match="statusCode"):
        Push.decode(envelope("{}", push_attrs))


def test_reply_needs_res_to_and_an_object_body() -> None:
    with pytest.raises(DecodeError, match="resTo"):
        Reply.decode(envelope("{}", {"statusCode": "200"}))
    with pytest.raises(DecodeError, match="object"):
        Reply.decode(envelope("[1]", {"resTo": "m", "statusCode": "200"}))
    with pytest.raises(DecodeError):
        Reply.decode(envelope("{nope", {"resTo": "m", "statusCode": "200"}))


def test_push_needs_an_action_and_valid_json() -> None:
    with pytest.raises(DecodeError, match="action"):
        Push.decode(envelope("{}", {"statusCode": "200"}))
    with pytest.raises(DecodeError):
        Push.decode(envelope('{"a": NaN}', {"action": "message", "statusCode": "200"}))


# --- sizes and times ---------------------------------------------------------------------


def test_outgoing_size_counts_utf8_bytes_of_body_and_attributes() -> None:
    out = Outgoing("é😀", {"ké": "vé", "a": ""})
    # body: 2 + 4; attributes: name + value + "String" (6) each
    assert out.size == 6 + (3 + 3 + 6) + (1 + 0 + 6)
    assert Outgoing("").size == 0


@given(body=st.text(max_size=50), attrs=st.dictionaries(attr_text, attr_text, max_size=4))
def test_outgoing_size_property(body: str, attrs: dict[str, str]) -> None:
    expected = len(body.encode("utf-8")) + sum(
        len(k.encode("utf-8")) + len(v.encode("utf-8")) + 6 for k, v in attrs.items()
    )
    assert Outgoing(body, attrs).size == expected


def test_now_iso_has_milliseconds_and_z() -> None:
    assert now_iso(datetime(2024, 1, 2, 3, 4, 5, 678_901, UTC)) == "2024-01-02T03:04:05.678Z"
    assert now_iso(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2024-01-02T03:04:05.000Z"
    plus_two = timezone(timedelta(hours=2))
    assert now_iso(datetime(2024, 1, 1, 1, 0, 0, 5_000, plus_two)) == "2023-12-31T23:00:00.005Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now_iso())


@given(st.datetimes(timezones=st.just(UTC)))
def test_parse_iso_inverts_now_iso_to_the_millisecond(moment: datetime) -> None:
    parsed = parse_iso(now_iso(moment))
    assert parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_parse_iso_reads_offsets() -> None:
    assert parse_iso("2024-06-01T12:00:00+02:00") == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_iso("yesterday")


# --- chat messages -----------------------------------------------------------------------

MESSAGE = {
    "messageID": "m1",
    "body": "hi",
    "userID": "u2",
    "name": "Ada Lovelace",
    "to": None,
    "dateTime": "2024-01-01T00:00:00.000Z",
    "isMessageRead": False,
    "order": 3,
}


def test_wire_message_round_trip() -> None:
    wire = WireMessage.from_json(MESSAGE)
    assert wire == WireMessage(
        "m1", "hi", "u2", "Ada Lovelace", None, MESSAGE["dateTime"], False, 3
    )  # type: ignore[arg-type]
    assert wire.to_json() == MESSAGE
    attachment = {
        **MESSAGE,
        "body": {"key": "attachments/a.png"},
        "to": "u9",
        "isMessageRead": True,
    }
    assert WireMessage.from_json(attachment).to_json() == attachment


def test_group_wire_message_adds_only_group_id() -> None:
    group = {**MESSAGE, "groupID": "g1", "to": "g1"}
    wire = WireMessage.from_json(group)
    assert wire.group_id == "g1" and wire.to_json() == group
    assert "groupID" not in WireMessage.from_json(MESSAGE).to_json()  # 1:1 unchanged


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "m1",
        {**MESSAGE, "groupID": ""},
        {**MESSAGE, "groupID": 5},
        {k: v for k, v in MESSAGE.items() if k != "messageID"},
        {k: v for k, v in MESSAGE.items() if k != "body"},
        {k: v for k, v in MESSAGE.items() if k != "order"},
        {k: v for k, v in MESSAGE.items() if k != "dateTime"},
        {**MESSAGE, "messageID": ""},
        {**MESSAGE, "messageID": 7},
        {**MESSAGE, "userID": ""},
        {**MESSAGE, "body": 5},
        {**MESSAGE, "body": ["x"]},
        {**MESSAGE, "order": "x"},
        {**MESSAGE, "order": "7"},
        {**MESSAGE, "order": 1.5},
        {**MESSAGE, "order": True},
        {**MESSAGE, "order": None},
    ],
)
def test_malformed_wire_message_is_a_decode_error(data: Any) -> None:
    with pytest.raises(DecodeError, match="malformed message"):
        WireMessage.from_json(data)
