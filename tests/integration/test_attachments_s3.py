"""Attachments against a real moto server over HTTP: upload, head, fetch, links, refusals.

moto does not enforce signatures or expiry, so the link's lifetime and headers are checked on
the URL itself; that the link works is checked by downloading it with urllib.
"""

from __future__ import annotations

import re
import urllib.request
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from messenger_widgets.attachments import MAX_ATTACHMENT_BYTES, PRESIGN_SECONDS, Attachments
from messenger_widgets.errors import AttachmentError


class Calls:
    """The names of the S3 operations a client made, from botocore's event hooks."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"att-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def calls(s3: Any) -> Calls:
    counter = Calls()
    s3.meta.events.register("before-call.s3", counter)
    return counter


@pytest.fixture
def att(s3: Any, bucket: str, moto_endpoint: str) -> Attachments:
    return Attachments(s3, bucket, endpoint_url=moto_endpoint)


def test_upload_head_fetch_round_trip(att: Attachments, s3: Any, bucket: str) -> None:
    data = bytes(range(256)) * 40
    body = att.upload("../holiday 写真.png", data, "image/png")
    assert re.fullmatch(r"attachments/[0-9a-f]{32}/holiday 写真\.png", body["key"])
    assert body == {
        "key": body["key"],
        "name": "holiday 写真.png",
        "type": "image/png",
        "size": 10240,
    }
    assert att.head(body["key"]) == (len(data), "image/png")
    assert att.fetch(body["key"]) == data
    stored = s3.head_object(Bucket=bucket, Key=body["key"])
    assert stored["ServerSideEncryption"] == "AES256"
    assert "filename*=UTF-8''holiday%20%E5%86%99%E7%9C%9F.png" in stored["ContentDisposition"]


def test_type_is_guessed_from_the_name(att: Attachments) -> None:
    body = att.upload("notes.md", b"# hi\n", "application/octet-stream")
    assert body["type"] == "text/markdown"
    assert att.head(body["key"]) == (5, "text/markdown")


def test_every_upload_gets_its_own_key(att: Attachments) -> None:
    first = att.upload("a.txt", b"one", "text/plain")
    second = att.upload("a.txt", b"two", "text/plain")
    assert first["key"] != second["key"]
    assert att.fetch(first["key"]) == b"one"


def test_injected_id_names_the_key(s3: Any, bucket: str) -> None:
    att = Attachments(s3, bucket, new_id=lambda: "f" * 32)
    assert att.upload("a.txt", b"x", "text/plain")["key"] == f"attachments/{'f' * 32}/a.txt"


@pytest.mark.parametrize("size", [1000, 9 * 1024 * 1024])  # single put, then multipart
def test_progress_reaches_total(att: Attachments, size: int) -> None:
    seen: list[tuple[int, int]] = []
    body = att.upload(
        "big.zip", b"z" * size, "application/zip", progress=lambda d, t: seen.append((d, t))
    )
    assert seen[0] == (0, size)
    assert seen[-1] == (size, size)
    done = [d for d, _ in seen]
    assert done == sorted(set(done))  # rising, never repeated
    assert {t for _, t in seen} == {size}
    assert att.head(body["key"]) == (size, "application/zip")


def test_presigned_url_downloads_the_bytes(att: Attachments, moto_endpoint: str) -> None:
    data = b"%PDF-1.4 not really a pdf"
    body = att.upload("Résumé.pdf", data, "application/pdf")
    url = att.presigned_url(body["key"], body["name"], body["type"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert int(query["X-Amz-Expires"]) <= PRESIGN_SECONDS
    assert query["response-content-disposition"].startswith("attachment; ")
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9.pdf" in query["response-content-disposition"]
    assert url.startswith(moto_endpoint)
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own http URL
        assert response.read() == data
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment; ")
    assert att.key_from_url(url) == body["key"]  # a link maps back to its key


def test_head_of_a_missing_object_is_none(att: Attachments) -> None:
    assert att.head("attachments/" + "0" * 32 + "/gone.png") is None
    with pytest.raises(AttachmentError, match="no longer exists"):
        att.fetch("attachments/" + "0" * 32 + "/gone.png")


def test_fetch_refuses_big_objects_without_reading(att: Attachments, calls: Calls) -> None:
    body = att.upload("photo.png", b"p" * 2000, "image/png")
    calls.names.clear()
    with pytest.raises(AttachmentError, match="too large"):
        att.fetch(body["key"], max_bytes=1000)
    assert calls.names == ["HeadObject"]


def test_s3_failures_become_attachment_errors(s3: Any) -> None:
    att = Attachments(s3, f"missing-{uuid.uuid4().hex[:12]}")
    with pytest.raises(AttachmentError, match=r"could not upload a\.txt"):
        att.upload("a.txt", b"x", "text/plain")


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("x.html", b"<script>alert(1)</script>", "text/html"),
        ("<script>.png", b"<svg onload=alert(1)>", "image/svg+xml"),
        ("logo.svg", b"<svg/>", ""),
        ("app.js", b"alert(1)", "application/javascript"),
        ("empty.txt", b"", "text/plain"),
        ("big.zip", b"\0" * (MAX_ATTACHMENT_BYTES + 1), "application/zip"),
    ],
)
def test_refusals_make_no_aws_call(
    att: Attachments, calls: Calls, name: str, data: bytes, content_type: str
) -> None:
    with pytest.raises(AttachmentError):
        att.upload(name, data, content_type)
    for key in ("private/x.png", "attachments/../x.png", "/attachments/x/a.png"):
        with pytest.raises(AttachmentError):
            att.head(key)
        with pytest.raises(AttachmentError):
            att.fetch(key)
        with pytest.raises(AttachmentError):
            att.presigned_url(key, "a.png", "image/png")
    with pytest.raises(AttachmentError):
        att.presigned_url("attachments/x/a.png", "a.png", "image/png", seconds=PRESIGN_SECONDS + 1)
    assert calls.names == []


def test_calls_are_counted(att: Attachments, calls: Calls) -> None:
    """The counter used above does see real calls, so its zero means something."""
    att.head("attachments/x/none.png")
    assert calls.names == ["HeadObject"]
