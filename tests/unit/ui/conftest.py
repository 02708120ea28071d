"""A Messenger on a real Session over the in-memory transport, with the scripted worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as w
import pytest

from messenger_widgets import errors
from messenger_widgets.client.session import Session
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Outgoing
from messenger_widgets.ui.app import Messenger
from messenger_widgets.ui.widgets import walk

from ..client.fakeworker import FakeWorker

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SIGNED = "https://bucket.s3.amazonaws.com/{key}?X-Amz-Expires=900&X-Amz-Signature=abc"


class Transport(InMemoryTransport):
    """Fails sends to the requests queue while `failing` is set, as an outage would."""

    failing = False

    def send(self, queue_url: str, message: Outgoing) -> str:
        if self.failing and queue_url.endswith("requests"):
            raise errors.TransportError("SQS send_message failed: ServiceUnavailable")
        return super().send(queue_url, message)


class FakeAttachments:
    """Upload/fetch/presign without S3; records what the UI asked for."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, bytes, str]] = []
        self.fetched: list[str] = []

    def upload(
        self, name: str, data: bytes, content_type: str, progress: Any = None
    ) -> dict[str, Any]:
        self.uploads.append((name, data, content_type))
        if progress is not None:
            progress(len(data) // 2, len(data))
            progress(len(data), len(data))
        key = f"attachments/k{len(self.uploads)}/{name}"
        return {"key": key, "name": name, "type": content_type, "size": len(data)}

    def fetch(self, key: str) -> bytes:
        self.fetched.append(key)
        return PNG

    def presigned_url(self, key: str, name: str, content_type: str) -> str:
        return SIGNED.format(key=key)


def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def html_values(app: Messenger) -> list[str]:
    """Every HTML widget's markup except our own constant stylesheet."""
    return [
        x.value
        for x in walk(app.widget)
        if isinstance(x, w.HTML) and "msgr-style" not in x._dom_classes
    ]


def find(root: Any, css: str) -> list[Any]:
    return [x for x in walk(root) if css in getattr(x, "_dom_classes", ())]


def visible(widget: Any) -> bool:
    return widget.layout.display != "none"


@pytest.fixture
def transport() -> Transport:
    return Transport()


@pytest.fixture
def worker(transport: Transport) -> Iterator[FakeWorker]:
    fake = FakeWorker(
        transport, transport.create_queue("requests"), transport.create_queue("responses")
    )
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def attachments() -> FakeAttachments:
    return FakeAttachments()


@pytest.fixture
def session(
    transport: Transport, worker: FakeWorker, attachments: FakeAttachments
) -> Iterator[Session]:
    made = Session(
        transport,
        worker.request_url,
        worker.response_url,
        attachments=attachments,
        reply_timeout=3,
        wait_seconds=1,
    )
    yield made
    made.close()


@pytest.fixture
def app(session: Session, attachments: FakeAttachments) -> Iterator[Messenger]:
    made = Messenger(session, attachments=attachments)
    made.toasts.seconds = 0  # toasts stay until the test reads them
    yield made
    made.close()


def login(app: Messenger, email: str = "ada@example.com", password: str = "correct horse") -> None:
    app.login.email.value = email
    app.login.password.value = password
    app.login.submit.click()
    assert app.wait_idle()
    eventually(lambda: app.home is not None and app.panel is app.home.widget)
    assert app.session is not None
    eventually(lambda: app.session is not None and app.session.state.history_complete)


def press_enter(text: Any) -> None:
    """What the browser sends when Enter is pressed in a Text widget."""
    text._handle_custom_msg({"event": "submit"}, [])
