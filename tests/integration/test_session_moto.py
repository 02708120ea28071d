"""The client `Session` against a real moto server and the real `messenger worker` process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from messenger_widgets.attachments import Attachments
from messenger_widgets.client.session import Session
from messenger_widgets.client.state import State, conversation
from messenger_widgets.config import Settings
from messenger_widgets.errors import BadRequest, Unauthorized
from messenger_widgets.provision import Resources
from messenger_widgets.transport import SqsTransport

from ..conftest import REGION
from .conftest import aws_clients
from .rawclient import RawClient

pytestmark = pytest.mark.usefixtures("worker_process")
PASSWORD = "correct horse"


def wait_for(session: Session, check: Callable[[State], bool], timeout: float = 20) -> State:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check(session.state):
            return session.state
        time.sleep(0.05)
    raise AssertionError(f"condition not met; state: {session.state}")


@pytest.fixture
def make_session(
    stack: tuple[Settings, Resources], moto_endpoint: str
) -> Iterator[Callable[[str], Session]]:
    settings, resources = stack
    sessions: list[Session] = []

    def make(first: str) -> Session:
        sqs, s3 = aws_clients(moto_endpoint)
        session = Session(
            SqsTransport(sqs),
            resources.request_queue_url,
            resources.response_queue_url,
            attachments=Attachments(s3, settings.bucket, endpoint_url=moto_endpoint),
            wait_seconds=2,
        )
        email = f"{first.lower()}.{uuid.uuid4().hex[:8]}@example.com"
        session.register(first, "Session", email, PASSWORD)
        session.login(email, PASSWORD)
        session.email = email  # type: ignore[attr-defined]
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


def test_two_sessions_chat_with_unread_counts_and_read_ticks(
    make_session: Callable[[str], Session],
) -> None:
    ada, bob = make_session("Ada"), make_session("Bob")
    assert ada.state.me is not None and ada.state.me.name == "Ada Session"
    wait_for(ada, lambda s: s.history_complete and s.connection == "online")

    ada.search("bob")
    found = wait_for(ada, lambda s: any(u.name == "Bob Session" for u in s.search_results))
    bob_id = next(u.user_id for u in found.search_results if u.name == "Bob Session")
    cid = ada.send_text(bob_id, "hello from a Session")
    assert conversation(ada.state, bob_id).messages[-1].status in ("sending", "sent")
    wait_for(ada, lambda s: conversation(s, bob_id).messages[-1].status == "sent")

    assert ada.state.me is not None
    ada_id = ada.state.me.user_id
    state = wait_for(bob, lambda s: s.unread.get(ada_id, 0) == 1)
    assert conversation(state, ada_id).messages[-1].body == "hello from a Session"
    assert ada.state.search_results  # incoming traffic never disturbs search results

    bob.open_conversation(ada_id)
    assert bob.state.unread.get(ada_id, 0) == 0
    wait_for(ada, lambda s: conversation(s, bob_id).messages[-1].status == "read")
    assert conversation(ada.state, bob_id).messages[-1].client_message_id == cid


def test_attachment_round_trip(make_session: Callable[[str], Session]) -> None:
    ada, bob = make_session("Ada"), make_session("Bob")
    assert bob.state.me is not None and ada.state.me is not None
    progress: list[tuple[int, int]] = []
    ada.send_file(
        bob.state.me.user_id,
        "notes.txt",
        b"attached bytes",
        "text/plain",
        lambda d, t: progress.append((d, t)),
    )
    state = wait_for(bob, lambda s: bool(conversation(s, ada.state.me.user_id).messages))  # type: ignore[union-attr]
    body = conversation(state, ada.state.me.user_id).messages[-1].body
    assert not isinstance(body, str) and body["name"] == "notes.txt" and body["size"] == 14
    assert progress and progress[-1] == (14, 14)


def test_wrong_password_and_bad_register_raise_readable_errors(
    make_session: Callable[[str], Session], stack: tuple[Settings, Resources], moto_endpoint: str
) -> None:
    ada = make_session("Ada")
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    other = Session(
        SqsTransport(sqs), stack[1].request_queue_url, stack[1].response_queue_url, wait_seconds=2
    )
    with pytest.raises(Unauthorized, match="Invalid email or password"):
        other.login(ada.email, "wrong password")  # type: ignore[attr-defined]
    with pytest.raises(BadRequest, match="email"):
        other.register("A", "B", ada.email, PASSWORD)  # type: ignore[attr-defined]


def test_concurrent_logins_never_steal_each_others_replies(
    make_session: Callable[[str], Session],
) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            session = make_session(f"Crowd{i}")
            results.append(session.state.me.name)  # type: ignore[union-attr]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(results) == 6


def test_logout_deletes_the_session_queue(
    make_session: Callable[[str], Session], client: RawClient
) -> None:
    ada = make_session("Ada")
    url = ada.session_queue_url
    assert url and client.queue_exists(url)
    ada.logout()
    assert not ada.polling
    deadline = time.monotonic() + 20
    while client.queue_exists(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.queue_exists(url)
