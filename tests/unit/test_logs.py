"""Structured logs: one JSON object per line, extras kept, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from messenger_widgets.logs import JsonFormatter, configure


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("messenger.test_logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_line_with_extras(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("request %s", "done", extra={"request_id": "r1", "duration_ms": 1.5, "n": 3})
    logger.warning("second")
    first, second = lines(stream)
    assert first["event"] == "request done"
    assert first["level"] == "info" and second["level"] == "warning"
    assert first["logger"] == "messenger.test_logs"
    assert (first["request_id"], first["duration_ms"], first["n"]) == ("r1", 1.5, 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert "request_id" not in second
    # no standard LogRecord attribute leaks into the entry
    assert not {"args", "msg", "levelno", "pathname", "lineno", "thread"} & set(first)


def test_secret_keys_are_masked(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    extra = {
        "password": "hunter2-pw",
        "token": "eyJhbGciOi.jwt",
        "body": "private message text",
        "secret": "signing-secret",
        "user_id": "u1",
    }
    logger.info("login", extra=extra)
    raw = stream.getvalue()
    for value in ("hunter2-pw", "eyJhbGciOi.jwt", "private message text", "signing-secret"):
        assert value not in raw
    [entry] = lines(stream)
    assert {k: entry[k] for k in ("password", "token", "body", "secret")} == dict.fromkeys(
        ("password", "token", "body", "secret"), "***"
    )
    assert entry["user_id"] == "u1"


def test_multiline_message_stays_on_one_line(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    logger.info("first\nsecond", extra={"detail": "a\nb"})
    assert stream.getvalue().count("\n") == 1
    [entry] = lines(stream)
    assert (entry["event"], entry["detail"]) == ("first\nsecond", "a\nb")


def test_exception_is_summarised_in_one_field(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = logged
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra={"method": "add"})
    assert stream.getvalue().count("\n") == 1
    [entry] = lines(stream)
    assert entry["error"] == "ValueError: boom"
    assert entry["level"] == "error" and entry["method"] == "add"
    assert "Traceback" not in stream.getvalue()


def test_values_json_cannot_encode_become_strings(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    class Thing:
        def __str__(self) -> str:
            return "a thing"

    logger.info("x", extra={"thing": Thing(), "items": ["ü", 1]})
    [entry] = lines(stream)
    assert entry["thing"] == "a thing" and entry["items"] == ["ü", 1]


def test_configure_installs_the_json_formatter_on_the_messenger_logger() -> None:
    root = logging.getLogger("messenger")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        configure(logging.DEBUG)
        configure(logging.DEBUG)  # twice: still one handler
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG and root.propagate is False
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]
