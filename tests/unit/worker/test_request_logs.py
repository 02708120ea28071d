"""The worker's request log: one JSON line per request with id, method, user, outcome and
duration, and never a password, a token or a message body anywhere in the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from messenger_widgets.logs import JsonFormatter
from messenger_widgets.protocol import Outgoing, Request

from .test_handlers import Harness

PASSWORD = "Pa55word-that-must-not-leak"
SECRET_TEXT = "the private message text 7f3a"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything any `messenger.*` logger writes, through the production formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("messenger")
    saved = (root.handlers[:], root.level, root.propagate)
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    root.propagate = False
    yield stream
    root.handlers[:], root.propagate = saved[0], saved[2]
    root.setLevel(saved[1])


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_request_lines_carry_the_fields_and_never_secrets(
    tmp_path: Path, log_output: io.StringIO
) -> None:
    h = Harness(tmp_path)
    email = "ada@example.com"
    registered = h.call(
        "user", "register", {"fName": "Ada", "lName": "T", "email": email, "password": PASSWORD}
    )
    assert h.reply(registered).status == 200
    logged_in = h.call("user", "login", {"email": email, "password": PASSWORD})
    login = h.reply(logged_in).body
    token = login["token"]
    h.call("user", "login", {"email": email, "password": PASSWORD + "-wrong"})  # 401
    added = h.call(
        "message", "add", {"body": SECRET_TEXT, "userID": login["userID"], "name": ""}, token
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-" + "z" * 32, algorithm="HS256")
    h.call("message", "add", {"body": SECRET_TEXT, "userID": "x", "name": ""}, forged)
    # malformed bodies that hold a password and a token
    login_attrs = {"controller": "user", "method": "login"}
    add_attrs = {"controller": "message", "method": "add", "token": token}
    h.transport.send(h.requests, Outgoing('{"password": "' + PASSWORD + '"', login_attrs))
    h.transport.send(h.requests, Outgoing("[" + SECRET_TEXT, add_attrs))
    h.worker.poll_once()
    h.transport.send(h.requests, Request("user", "logout", {}, token).encode())
    h.worker.poll_once()

    raw = log_output.getvalue()
    for secret in (PASSWORD, token, forged, SECRET_TEXT, token.split(".")[2]):
        assert secret not in raw
    requests = [e for e in entries(log_output) if e["event"] == "request"]
    assert len(requests) == 8
    for entry in requests:
        assert {"request_id", "method", "outcome", "duration_ms", "time", "level"} <= set(entry)
        assert isinstance(entry["duration_ms"], float | int) and entry["duration_ms"] >= 0
        assert entry["outcome"] in {"done", "dead", "retry"}
    by_id = {e["request_id"]: e for e in requests}
    assert by_id[added]["user_id"] == login["userID"]  # authenticated: the caller's id
    assert by_id[added]["method"] == "add" and by_id[added]["outcome"] == "done"
    assert "user_id" not in by_id[registered]  # nobody authenticated yet
    logout = [e for e in requests if e["method"] == "logout"]
    assert [e.get("user_id") for e in logout] == [login["userID"]]
    assert any(e["outcome"] == "dead" and "user_id" not in e for e in requests)  # forged token
