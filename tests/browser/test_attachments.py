"""Files through the real UI: an image shows inline for the recipient, a text file downloads."""

from __future__ import annotations

import struct
import urllib.request
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from .conftest import OpenApps, Server, User, new_user
from .pages import ROUND_TRIP_MS, App

pytestmark = pytest.mark.browser

MAX_LINK_SECONDS = 900


def png(width: int, height: int) -> bytes:
    """A real RGB PNG (a colour gradient), built with zlib and struct only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def pair(open_apps_module: OpenApps, server: Server) -> tuple[App, App, User, User]:
    """Two logged-in tabs, each with the conversation with the other open."""
    sender, receiver = new_user("Sandra"), new_user("Rafael")
    for user in (sender, receiver):
        server.stack.register(user.first, user.last, user.email, user.password)
    out, inbox = open_apps_module("sender", "receiver", server=server)
    out.login(sender)
    inbox.login(receiver)
    out.open_conversation(receiver.name, query=receiver.last)
    inbox.open_conversation(sender.name, query=sender.last)
    return out, inbox, sender, receiver


def test_image_shows_inline_for_the_recipient(
    pair: tuple[App, App, User, User], tmp_path: Path
) -> None:
    out, inbox, _, _ = pair
    path = tmp_path / "gradient.png"
    path.write_bytes(png(64, 48))

    out.attach(str(path))

    expect(out.images("outgoing").first).to_be_visible(timeout=ROUND_TRIP_MS)
    image = inbox.images("incoming").first
    expect(image).to_be_visible(timeout=ROUND_TRIP_MS)
    inbox.page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0",
        arg=image.element_handle(),
        timeout=ROUND_TRIP_MS,
    )
    assert image.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [64, 48]
    expect(inbox.downloads("incoming", "gradient.png")).to_have_count(1)
    expect(out.css("msgr-upload-progress")).to_be_hidden(timeout=ROUND_TRIP_MS)


def test_text_file_is_a_short_lived_download_link_with_the_right_bytes(
    pair: tuple[App, App, User, User], tmp_path: Path
) -> None:
    out, inbox, _, _ = pair
    content = "Meeting notes\nsecond line, with UTF-8: ünïcödé ✓\n".encode()
    path = tmp_path / "notes.txt"
    path.write_bytes(content)

    out.attach(str(path))

    for tab, direction in ((out, "outgoing"), (inbox, "incoming")):
        link = tab.downloads(direction, "notes.txt").first
        expect(link).to_be_visible(timeout=ROUND_TRIP_MS)
        href = link.get_attribute("href") or ""
        query = parse_qs(urlparse(href).query)
        assert urlparse(href).path.split("/")[-1] == "notes.txt", href
        assert "X-Amz-Signature" in query, href
        expires = int(query["X-Amz-Expires"][0])
        assert 0 < expires <= MAX_LINK_SECONDS, href
        with urllib.request.urlopen(href, timeout=10) as response:  # noqa: S310 (our stack)
            assert response.read() == content, (tab.label, href)
    expect(inbox.images("incoming")).to_have_count(1)  # only the image before it is inline
