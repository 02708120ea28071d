"""Attachment checks that need no S3: names, types, sizes, keys, URLs and link parameters.

Every test runs against a client whose calls are counted; none may reach AWS.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from hypothesis import given
from hypothesis import strategies as st

from messenger_widgets.attachments import (
    MAX_ATTACHMENT_BYTES,
    PRESIGN_SECONDS,
    Attachments,
    content_disposition,
    sanitize_name,
)
from messenger_widgets.errors import AttachmentError, ConfigError

BUCKET = "chat-media"
ENDPOINT = "http://127.0.0.1:5123"
KEY = "attachments/0123456789abcdef0123456789abcdef/photo.png"


class Calls:
    """Counts every S3 operation and stops it before it leaves the process."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, event_name: str, **_: Any) -> None:
        self.names.append(event_name)
        raise AssertionError(f"unexpected AWS call: {event_name}")


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def att(calls: Calls) -> Attachments:
    client = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
    client.meta.events.register("before-call.s3", calls)
    return Attachments(client, BUCKET, endpoint_url=ENDPOINT)


# --- sanitize_name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("photo.png", "photo.png"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\System32\\cmd.exe", "cmd.exe"),
        ("C:\\Users\\me\\Desktop\\report.pdf", "report.pdf"),
        ("<script>.png", "script.png"),
        ('a"b|c?d*e:f.txt', "abcdef.txt"),
        ("\x00", "file"),
        ("a\x00b\x07.txt", "ab.txt"),
        ("", "file"),
        ("...", "file"),
        ("../", "file"),
        (".bashrc", "bashrc"),
        ("  many   spaces\t\nhere.txt  ", "many spaces here.txt"),
        ("report.pdf. . ", "report.pdf"),
        ("photo\u202egnp.exe", "photognp.exe"),  # RTL override would show "photoexe.png"
        ("in\u200bvisible\ufeff.txt", "invisible.txt"),
        ("Ünïcødé 写真 صورة.png", "Ünïcødé 写真 صورة.png"),
        ("Cafe\u0301.txt", "Café.txt"),  # NFC: one code point per letter
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
    ],
)
def test_sanitize_name(raw: str, expected: str) -> None:
    assert sanitize_name(raw) == expected


def test_long_name_is_capped_and_keeps_extension() -> None:
    name = sanitize_name("a" * 1000 + ".png")
    assert len(name) == 255
    assert name.endswith("a.png")


def test_long_multibyte_name_fits_255_bytes() -> None:
    name = sanitize_name("写" * 300 + ".jpeg")
    assert len(name.encode()) <= 255
    assert name.endswith("写.jpeg")


def test_long_name_without_usable_extension() -> None:
    assert sanitize_name("a" * 400) == "a" * 255
    assert len(sanitize_name("a." + "b" * 400)) == 255


@given(st.text(max_size=600))
def test_sanitize_name_properties(raw: str) -> None:
    name = sanitize_name(raw)
    assert name
    assert len(name) <= 255
    assert len(name.encode()) <= 255
    assert "/" not in name
    assert "\\" not in name
    assert not name.startswith((".", " "))
    assert not any(unicodedata.category(c)[0] == "C" for c in name)
    assert sanitize_name(name) == name


def test_content_disposition_is_ascii_with_rfc5987_name() -> None:
    header = content_disposition('写真 "quoted"; x.png')
    header.encode("ascii")
    assert header.startswith('attachment; filename="')
    assert "filename*=UTF-8''%E5%86%99%E7%9C%9F%20quoted%3B%20x.png" in header
    assert header.count('"') == 2  # the name's quotes cannot end the quoted string early


# --- check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "content_type", "expected"),
    [
        ("photo.png", 10, "image/png", "image/png"),
        ("photo.JPG", 10, "", "image/jpeg"),
        ("notes.md", 5, "", "text/markdown"),
        ("data.csv", 5, "application/octet-stream", "text/csv"),
        ("readme.txt", 5, "Text/Plain; charset=utf-8", "text/plain"),
        ("sheet.xlsx", 5, "", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("<script>.png", 5, "image/png", "image/png"),
        ("max.zip", MAX_ATTACHMENT_BYTES, "application/zip", "application/zip"),
    ],
)
def test_check_allows(name: str, size: int, content_type: str, expected: str) -> None:
    assert Attachments.check(name, size, content_type) == expected


@pytest.mark.parametrize(
    ("name", "size", "content_type", "message"),
    [
        ("empty.txt", 0, "text/plain", "empty"),
        ("big.zip", MAX_ATTACHMENT_BYTES + 1, "application/zip", "at most 10 MiB"),
        ("neg.txt", -1, "text/plain", "size"),
        ("page.png", 5, "text/html", "text/html cannot be sent"),
        ("<script>.png", 5, "text/html", "cannot be sent"),
        ("logo.png", 5, "image/svg+xml", "image/svg+xml cannot be sent"),
        ("app.txt", 5, "application/javascript", "cannot be sent"),
        ("page.html", 5, "text/plain", ".html files cannot be sent"),
        ("logo.svg", 5, "", ".svg files cannot be sent"),
        ("setup.exe", 5, "application/octet-stream", ".exe files cannot be sent"),
        ("mystery", 5, "", "type unknown cannot be sent"),
        ("\x00", 5, "", "cannot be sent"),
        ("../../etc/passwd", 5, "application/octet-stream", "cannot be sent"),
    ],
)
def test_check_refuses(name: str, size: int, content_type: str, message: str) -> None:
    with pytest.raises(AttachmentError, match=re.escape(message)):
        Attachments.check(name, size, content_type)


def test_check_refuses_a_bool_size() -> None:
    with pytest.raises(AttachmentError, match="size"):
        Attachments.check("a.txt", True, "text/plain")


def test_refused_upload_makes_no_call(att: Attachments, calls: Calls) -> None:
    with pytest.raises(AttachmentError, match="cannot be sent"):
        att.upload("x.html", b"<script>alert(1)</script>", "text/html")
    with pytest.raises(AttachmentError, match="empty"):
        att.upload("x.txt", b"", "text/plain")
    assert calls.names == []


def test_bad_generated_id_is_refused(calls: Calls) -> None:
    client = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
    client.meta.events.register("before-call.s3", calls)
    att = Attachments(client, BUCKET, new_id=lambda: "../../x")
    with pytest.raises(AttachmentError, match="key"):
        att.upload("a.txt", b"hi", "text/plain")
    assert calls.names == []


# --- construction -------------------------------------------------------------------------


def test_needs_a_bucket_and_an_s3v4_client() -> None:
    v4 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
    with pytest.raises(ConfigError, match="bucket"):
        Attachments(v4, "")
    v2 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3"))
    with pytest.raises(ConfigError, match="s3v4"):
        Attachments(v2, BUCKET)


# --- validate_key -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", [KEY, "attachments/x/a..b.txt", "attachments/x/写真 1.png", "attachments/file"]
)
def test_validate_key_accepts(key: str) -> None:
    assert Attachments.validate_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "attachments/",
        "/attachments/x/a.png",
        "other/x/a.png",
        "Attachments/x/a.png",
        "attachments/../secret",
        "attachments/x/../../secret",
        "attachments/./a.png",
        "attachments//a.png",
        "attachments/x/",
        "attachments/x\\..\\a.png",
        "attachments/x/a\x00.png",
        "attachments/" + "a" * 1100,
    ],
)
def test_validate_key_refuses(key: str) -> None:
    with pytest.raises(AttachmentError):
        Attachments.validate_key(key)


def test_validate_key_refuses_non_strings() -> None:
    with pytest.raises(AttachmentError):
        Attachments.validate_key(None)  # type: ignore[arg-type]


# --- key_from_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (f"https://{BUCKET}.s3.amazonaws.com/{KEY}", KEY),
        (f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/{KEY}", KEY),
        (f"https://{BUCKET}.s3-us-west-2.amazonaws.com/{KEY}", KEY),
        (f"https://{BUCKET.upper()}.S3.AMAZONAWS.COM/{KEY}", KEY),
        (f"https://s3.amazonaws.com/{BUCKET}/{KEY}", KEY),
        (f"https://s3.us-east-1.amazonaws.com/{BUCKET}/{KEY}", KEY),
        (f"https://{BUCKET}.s3.amazonaws.com:443/{KEY}", KEY),
        (f"{ENDPOINT}/{BUCKET}/{KEY}", KEY),
        (f"{ENDPOINT}/{BUCKET}/{KEY}?X-Amz-Expires=900&X-Amz-Signature=abc", KEY),
        (f"https://{BUCKET}.s3.amazonaws.com/{KEY}#frag", KEY),
        (
            f"https://{BUCKET}.s3.amazonaws.com/attachments/x/%E5%86%99%E7%9C%9F%20a%2Bb.png",
            "attachments/x/写真 a+b.png",
        ),
        (f"https://{BUCKET}.s3.amazonaws.com/attachments%2Fx%2Fa.png", "attachments/x/a.png"),
    ],
)
def test_key_from_url_accepts_urls_into_the_bucket(att: Attachments, url: str, key: str) -> None:
    assert att.key_from_url(url) == key


@pytest.mark.parametrize(
    "url",
    [
        f"https://other-bucket.s3.amazonaws.com/{KEY}",
        f"https://s3.amazonaws.com/other-bucket/{KEY}",
        f"https://x{BUCKET}.s3.amazonaws.com/{KEY}",
        f"https://evil.{BUCKET}.s3.amazonaws.com/{KEY}",
        f"https://{BUCKET}.s3.amazonaws.com.evil.com/{KEY}",
        f"https://{BUCKET}.s3.amazonaws.com@evil.com/{KEY}",
        f"https://user:pw@{BUCKET}.s3.amazonaws.com/{KEY}",
        f"https://evil.com/{BUCKET}/{KEY}",
        f"https://evil.com/{KEY}",
        f"https://{BUCKET}.s3.amazonaws.com:8443/{KEY}",
        f"ftp://{BUCKET}.s3.amazonaws.com/{KEY}",
        f"javascript://{BUCKET}.s3.amazonaws.com/%0aalert(1)",
        "javascript:alert(1)",
        f"data:text/html,<a href='https://{BUCKET}.s3.amazonaws.com/{KEY}'>",
        f"https://{BUCKET}.s3.amazonaws.com/",
        f"https://{BUCKET}.s3.amazonaws.com",
        f"https://s3.amazonaws.com/{BUCKET}/",
        f"https://{BUCKET}.s3.amazonaws.com/private/secret.png",
        f"https://{BUCKET}.s3.amazonaws.com/attachments/../private/secret.png",
        f"https://{BUCKET}.s3.amazonaws.com/attachments/%2e%2e/private/secret.png",
        f"https://{BUCKET}.s3.amazonaws.com/attachments/x/..%2F..%2Fsecret",
        f"http://127.0.0.1:5124/{BUCKET}/{KEY}",
        f"https://127.0.0.1:5123/{BUCKET}/{KEY}",
        f"{ENDPOINT}/other-bucket/{KEY}",
        f"{ENDPOINT}/{KEY}",
        f"https://[::1/{KEY}",
        "",
        "not a url",
        "https://" + "a" * 5000,
    ],
)
def test_key_from_url_refuses_everything_else(att: Attachments, url: str) -> None:
    assert att.key_from_url(url) is None


def test_key_from_url_refuses_non_strings(att: Attachments) -> None:
    assert att.key_from_url(None) is None  # type: ignore[arg-type]


def test_without_endpoint_only_aws_urls_count(calls: Calls) -> None:
    client = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
    att = Attachments(client, BUCKET)
    assert att.key_from_url(f"{ENDPOINT}/{BUCKET}/{KEY}") is None
    assert att.key_from_url(f"https://{BUCKET}.s3.amazonaws.com/{KEY}") == KEY


# --- presigned_url (signed locally, no call) -----------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_presigned_url_forces_a_download(att: Attachments, calls: Calls) -> None:
    query = _query(att.presigned_url(KEY, "写真.png", "image/png"))
    assert query["X-Amz-Expires"] == str(PRESIGN_SECONDS)
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["response-content-disposition"].startswith("attachment; ")
    assert "filename*=UTF-8''%E5%86%99%E7%9C%9F.png" in query["response-content-disposition"]
    assert query["response-content-type"] == "image/png"
    assert calls.names == []


def test_presigned_url_serves_active_types_as_octet_stream(att: Attachments) -> None:
    query = _query(att.presigned_url(KEY, "x.html", "text/html"))
    assert query["response-content-type"] == "application/octet-stream"


def test_presigned_url_shorter_lifetime(att: Attachments) -> None:
    assert _query(att.presigned_url(KEY, "a.png", "image/png", seconds=60))["X-Amz-Expires"] == "60"


@pytest.mark.parametrize("seconds", [0, -1, PRESIGN_SECONDS + 1, 7 * 24 * 3600])
def test_presigned_url_refuses_other_lifetimes(att: Attachments, seconds: int) -> None:
    with pytest.raises(AttachmentError, match="seconds"):
        att.presigned_url(KEY, "a.png", "image/png", seconds=seconds)


@pytest.mark.parametrize("key", ["private/secret.png", "attachments/../x", "/attachments/x/a"])
def test_presigned_url_only_for_attachments(att: Attachments, calls: Calls, key: str) -> None:
    with pytest.raises(AttachmentError):
        att.presigned_url(key, "a.png", "image/png")
    with pytest.raises(AttachmentError):
        att.head(key)
    with pytest.raises(AttachmentError):
        att.fetch(key)
    assert calls.names == []
