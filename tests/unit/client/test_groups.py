"""Group conversations (v1.1) in the client: state reducers and the Session's requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from messenger_widgets import errors
from messenger_widgets.client import groups
from messenger_widgets.client import state as st
from messenger_widgets.client.session import Session
from messenger_widgets.client.state import Change, ChangeKind, State
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Push

from .fakeworker import ME, FakeWorker, group_object, message

ADA, BOB, CAT = ME["userID"], "u-bob", "u-cat"
GID = "g-1"
KEY = f"group:{GID}"
MEMBERS = [ME, {"userID": BOB, "name": "Bob Babbage"}, {"userID": CAT, "name": "Cat Herder"}]


def logged_in() -> State:
    return st.start_session(State(), ADA, ME["name"], False)[0]


def run(state: State, action: str, body: Any) -> tuple[State, list[Change]]:
    return st.apply(state, Push(action, body))


def created(state: State | None = None, **extra: Any) -> State:
    body = {**group_object(GID, "Trip <b>", MEMBERS), **extra}
    return run(state or logged_in(), "groupCreated", body)[0]


def group_message(order: int, sender: dict[str, str] = MEMBERS[1], **kw: Any) -> dict[str, Any]:
    mine = sender["userID"] == ADA
    body = message(order, sender["userID"], name=sender["name"], to=GID if mine else None, **kw)
    return {**body, "messageID": f"gm-{order}", "groupID": GID}


def read(state: State, who: str, up_to: int) -> State:
    return run(state, "read", {"groupID": GID, "userID": who, "upToOrder": up_to})[0]


# --- state --------------------------------------------------------------------------------
def test_group_created_lists_the_group_under_its_own_key() -> None:
    state, changes = run(logged_in(), "groupCreated", group_object(GID, "Trip <b>", MEMBERS))
    conv = st.conversation(state, KEY)
    assert conv.name == "Trip <b>" and conv.group is not None and conv.group.group_id == GID
    assert [m.name for m in conv.group.members] == ["Ada Lovelace", "Bob Babbage", "Cat Herder"]
    assert state.directory[BOB] == "Bob Babbage" and state.directory[CAT] == "Cat Herder"
    [summary] = st.conversation_list(state)  # listed before any message
    assert summary.user_id == KEY and summary.is_group and summary.name == "Trip <b>"
    assert Change(ChangeKind.CONVERSATIONS) in changes
    assert BOB not in state.conversations  # a group never files under a member


def test_group_messages_keep_the_group_name_and_name_their_sender() -> None:
    state, changes = run(created(), "message", group_message(1, body="hi all"))
    conv = st.conversation(state, KEY)
    [msg] = conv.messages
    assert conv.name == "Trip <b>" and msg.name == "Bob Babbage" and msg.sender_id == BOB
    assert msg.user_id == KEY and not msg.outgoing
    assert state.unread[KEY] == 1 and Change(ChangeKind.UNREAD, KEY) in changes
    assert st.conversation_list(state)[0].preview == "Bob Babbage: hi all"
    assert st.total_unread(state) == 1


def test_a_message_before_its_group_is_kept_and_named_later() -> None:
    state, _ = run(logged_in(), "message", group_message(1))
    assert st.conversation(state, KEY).name == ""
    state = created(state)
    conv = st.conversation(state, KEY)
    assert conv.name == "Trip <b>" and [m.order for m in conv.messages] == [1]


def test_own_messages_are_read_by_k_of_n_then_read() -> None:
    state = created()
    state, _ = st.add_pending(state, KEY, "c1", "hello", "2026-01-01T00:00:01.000Z")
    assert st.conversation(state, KEY).messages[0].status == "sending"
    ack = {"clientMessageId": "c1", "messageID": "gm-1", "order": 1, "dateTime": "x"}
    state, _ = run(state, "sent", {**ack, "groupID": GID})
    [mine] = st.conversation(state, KEY).messages
    assert (mine.status, mine.read_by) == ("sent", (0, 2))
    state = read(state, BOB, 1)
    [mine] = st.conversation(state, KEY).messages
    assert (mine.status, mine.read_by, mine.is_read) == ("sent", (1, 2), False)
    state = read(state, CAT, 1)
    [mine] = st.conversation(state, KEY).messages
    assert (mine.status, mine.read_by, mine.is_read) == ("read", (2, 2), True)
    assert read(state, CAT, 1) == state  # a repeated receipt changes nothing


def test_receipts_apply_to_messages_that_arrive_later() -> None:
    state = read(read(created(), BOB, 5), CAT, 3)
    state, _ = run(state, "message", group_message(2, MEMBERS[0]))
    state, _ = run(state, "message", group_message(4, MEMBERS[0]))
    statuses = [(m.order, m.status, m.read_by) for m in st.conversation(state, KEY).messages]
    assert statuses == [(2, "read", (2, 2)), (4, "sent", (1, 2))]


def test_read_marks_from_login_count() -> None:
    members = [{**MEMBERS[0]}, {**MEMBERS[1], "readUpTo": 7}, {**MEMBERS[2], "readUpTo": 7}]
    state = run(logged_in(), "groupCreated", group_object(GID, "g", members))[0]
    state, _ = run(state, "message", group_message(7, MEMBERS[0]))
    assert st.conversation(state, KEY).messages[0].status == "read"


def test_creating_opens_the_group_in_the_session_that_asked() -> None:
    state, _ = groups.begin_create(logged_in(), "cg-1")
    elsewhere = created(state, clientGroupId="cg-other")
    assert elsewhere.open_conversation is None and elsewhere.pending_groups == ("cg-1",)
    mine = created(state, clientGroupId="cg-1")
    assert mine.open_conversation == KEY and mine.pending_groups == ()


def test_someone_leaving_updates_members_and_receipts() -> None:
    state = created()
    state, _ = run(state, "message", group_message(1, MEMBERS[0]))
    state = read(state, BOB, 1)
    update = {**group_object(GID, "Trip <b>", MEMBERS[:2]), "leftUserID": CAT}
    state, changes = run(state, "groupUpdated", update)
    conv = st.conversation(state, KEY)
    assert conv.group is not None and not conv.group.left
    assert [m.user_id for m in conv.group.members] == [ADA, BOB]
    assert conv.messages[0].status == "read"  # everyone still in the group has read it
    assert Change(ChangeKind.CONVERSATIONS) in changes


def test_leaving_takes_the_group_off_the_list_and_closes_it() -> None:
    state, _ = run(created(), "message", group_message(1))
    state, _ = st.open_conversation(state, KEY)
    state, changes = groups.leave(state, KEY)
    assert state.open_conversation is None and Change(ChangeKind.OPEN, None) in changes
    assert st.conversation_list(state) == [] and st.total_unread(state) == 0
    update = {**group_object(GID, "Trip <b>", MEMBERS[1:]), "leftUserID": ADA}
    confirmed, _ = run(state, "groupUpdated", update)
    assert st.conversation_list(confirmed) == []
    other, _ = run(created(), "groupUpdated", update)  # told by another session of ours
    assert st.conversation_list(other) == []


def test_unread_count_from_login_until_read() -> None:
    state = created(unreadMessages=130)
    assert st.conversation_list(state)[0].unread == 130 and st.total_unread(state) == 130
    state, _ = run(state, "message", group_message(1))
    assert st.total_unread(state) == 130  # the held messages are part of the count
    state, changes = st.open_conversation(state, KEY)
    assert st.total_unread(state) == 0 and Change(ChangeKind.UNREAD, KEY) in changes
    assert created(state, unreadMessages=130) == state  # a redelivered push keeps it read


def test_group_history_pages_under_the_group() -> None:
    page = {"groupID": GID, "messages": [group_message(3), group_message(4)], "hasMore": True}
    state, _ = run(created(), "history", page)
    conv = st.conversation(state, KEY)
    assert [m.order for m in conv.messages] == [3, 4] and conv.has_more is True
    state, _ = run(state, "selectSearchUser", [group_message(5)])
    assert [m.order for m in st.conversation(state, KEY).messages] == [3, 4, 5]


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("groupCreated", {"name": "x"}),
        ("groupCreated", {"groupID": GID, "members": "x"}),
        ("groupUpdated", {"groupID": "", "members": []}),
        ("read", {"groupID": GID, "userID": BOB, "upToOrder": "7"}),
    ],
)
def test_malformed_group_pushes_are_errors_not_crashes(action: str, body: Any) -> None:
    state, changes = run(logged_in(), action, body)
    assert [c.kind for c in changes] == [ChangeKind.ERROR] and state.last_error is not None


def test_member_candidates_are_known_people_but_me() -> None:
    state = created()
    state, _ = run(
        st.begin_search(state, "d")[0],
        "searchUser",
        {"listOfUsers": [{"userID": "u-dan", "name": "Dan"}]},
    )
    assert [u.name for u in groups.candidates(state)] == ["Bob Babbage", "Cat Herder", "Dan"]


def test_targets() -> None:
    assert groups.target(KEY) == {"groupID": GID} and groups.target(BOB) == {"userID": BOB}


# --- session ------------------------------------------------------------------------------
@pytest.fixture
def worker() -> Iterator[FakeWorker]:
    transport = InMemoryTransport()
    fake = FakeWorker(
        transport, transport.create_queue("requests"), transport.create_queue("responses")
    )
    fake.users = [{"userID": BOB, "name": "Bob Babbage"}, {"userID": CAT, "name": "Cat Herder"}]
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def session(worker: FakeWorker) -> Iterator[Session]:
    made = Session(
        worker.transport, worker.request_url, worker.response_url, reply_timeout=3, wait_seconds=1
    )
    made.login("ada@example.com", "correct horse")
    yield made
    made.close()


def eventually(check: Any, timeout: float = 3.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_session_creates_opens_sends_and_leaves(session: Session, worker: FakeWorker) -> None:
    cid = session.create_group("  Trip  ", [BOB, CAT, ADA, BOB])
    request = worker.wait_for("create")
    assert (request.controller, request.body) == (
        "group",
        {"name": "Trip", "memberIDs": [BOB, CAT], "clientGroupId": cid},
    )
    eventually(lambda: session.state.open_conversation == KEY)
    session.open_conversation(KEY)
    assert worker.wait_for("selectSearchUser").body == {"groupID": GID}
    assert worker.wait_for("markMessagesAsRead").body == {"groupID": GID}
    sent = session.send_text(KEY, "hello all")
    assert worker.wait_for("add").body == {
        "body": "hello all",
        "groupID": GID,
        "clientMessageId": sent,
    }
    eventually(lambda: st.conversation(session.state, KEY).messages[0].status == "sent")
    worker.conversations[GID] = [group_message(1), group_message(2)]
    assert session.load_older(KEY) is False or worker.wait_for("history").body["groupID"] == GID
    session.leave_group(GID)
    assert worker.wait_for("leave").body == {"groupID": GID}
    assert session.state.open_conversation is None
    assert st.conversation_list(session.state) == []


def test_session_checks_a_group_before_sending(session: Session, worker: FakeWorker) -> None:
    with pytest.raises(errors.BadRequest, match="name"):
        session.create_group("   ", [BOB])
    with pytest.raises(errors.BadRequest, match="name"):
        session.create_group("n" * 51, [BOB])
    with pytest.raises(errors.BadRequest, match="pick 1"):
        session.create_group("Solo", [ADA])
    with pytest.raises(errors.BadRequest, match="pick 1"):
        session.create_group("Crowd", [f"u-{i}" for i in range(50)])
    assert [r.method for r in worker.requests if r.method == "create"] == []
