"""State transitions: every push action, duplicates, arrival order, statuses, bad bodies."""

from __future__ import annotations

from typing import Any

import pytest

from messenger_widgets.client import state as st
from messenger_widgets.client.state import Change, ChangeKind, State
from messenger_widgets.protocol import Push

from .fakeworker import message

BOB, CAROL = "u-bob", "u-carol"


def logged_in() -> State:
    return st.start_session(State(), "u-ada", "Ada Lovelace", False)[0]


def run(state: State, action: str, body: Any, status: int = 200) -> tuple[State, list[Change]]:
    return st.apply(state, Push(action, body, status))


def orders(state: State, user_id: str = BOB) -> list[int | None]:
    return [m.order for m in st.conversation(state, user_id).messages]


# --- message ------------------------------------------------------------------------------
def test_message_is_filed_under_the_other_party_and_names_them() -> None:
    state, changes = run(logged_in(), "message", message(1))
    conv = st.conversation(state, BOB)
    assert [m.message_id for m in conv.messages] == ["m-u-bob-1"]
    assert conv.name == "Bob Babbage" and state.directory[BOB] == "Bob Babbage"
    assert Change(ChangeKind.MESSAGES, BOB) in changes
    assert Change(ChangeKind.UNREAD, BOB) in changes
    assert state.unread[BOB] == 1
    assert conv.messages[0].status is None and not conv.messages[0].outgoing


def test_duplicate_message_is_dropped_and_counted_once() -> None:
    state, _ = run(logged_in(), "message", message(1))
    again, changes = run(state, "message", message(1))
    assert orders(again) == [1]
    assert again.unread[BOB] == 1
    assert again.history_applied == 1
    assert changes == []


def test_redelivered_copy_may_only_turn_read_on() -> None:
    state, _ = run(logged_in(), "message", message(1, read=True))
    state, _ = run(state, "message", message(1, read=False))
    assert st.conversation(state, BOB).messages[0].is_read
    state, _ = run(logged_in(), "message", message(2, to=BOB))
    state, changes = run(state, "message", message(2, to=BOB, read=True))
    assert st.conversation(state, BOB).messages[0].status == "read"
    assert Change(ChangeKind.MESSAGES, BOB) in changes


def test_out_of_order_arrival_is_kept_sorted_by_order() -> None:
    state = logged_in()
    for order in (3, 1, 5, 2, 4):
        state, _ = run(state, "message", message(order))
    assert orders(state) == [1, 2, 3, 4, 5]


def test_unread_counts_only_incoming_unread_messages_outside_the_open_conversation() -> None:
    state, _ = st.open_conversation(logged_in(), CAROL)
    state, _ = run(state, "message", message(1, CAROL, name="Carol"))  # open: not counted
    state, _ = run(state, "message", message(1))  # counted
    state, _ = run(state, "message", message(2, to=BOB))  # my own: not counted
    state, _ = run(state, "message", message(3, read=True))  # already read: not counted
    assert dict(state.unread) == {BOB: 1}
    assert st.total_unread(state) == 1


def test_opening_a_conversation_clears_its_unread_count_and_marks_it_read() -> None:
    state = logged_in()
    for order in (1, 2):
        state, _ = run(state, "message", message(order))
    state, changes = st.open_conversation(state, BOB)
    assert state.open_conversation == BOB and st.total_unread(state) == 0
    assert all(m.is_read for m in st.conversation(state, BOB).messages)
    assert {Change(ChangeKind.OPEN, BOB), Change(ChangeKind.UNREAD, BOB)} <= set(changes)


def test_conversation_list_is_ordered_by_latest_activity_with_preview_and_unread() -> None:
    state = logged_in()
    state, _ = run(state, "message", message(1, date_time="2026-01-01T10:00:00.000Z"))
    state, _ = run(
        state, "message", message(1, CAROL, name="Carol", date_time="2026-01-01T11:00:00Z")
    )
    assert [c.user_id for c in st.conversation_list(state)] == [CAROL, BOB]
    late = message(2, body="a reply\nover two lines", date_time="2026-01-01T12:00:00.000Z")
    state, _ = run(state, "message", late)
    first = st.conversation_list(state)[0]
    assert (first.user_id, first.preview, first.unread) == (BOB, "a reply over two lines", 2)
    # an older message arriving late does not move the conversation
    state, _ = run(
        state, "message", message(1, CAROL, name="C", message_id="old", date_time="2025")
    )
    assert st.conversation_list(state)[0].user_id == BOB


def test_preview_marks_own_messages_and_attachments() -> None:
    attachment = {"key": "attachments/x/a.png", "name": "a.png", "type": "image/png", "size": 3}
    state, _ = run(logged_in(), "message", message(1, to=BOB, body=attachment))
    summary = st.conversation_list(state)[0]
    assert summary.preview.startswith("You: ") and "a.png" in summary.preview
    assert summary.last_message is not None and summary.last_message.is_attachment


# --- historyEnd ---------------------------------------------------------------------------
def test_history_is_complete_only_when_count_distinct_messages_arrived() -> None:
    state, changes = run(logged_in(), "historyEnd", {"count": 2})  # arrives first
    assert not state.history_complete and changes == []
    state, _ = run(state, "message", message(1))
    state, _ = run(state, "message", message(1))  # duplicate does not count
    assert not state.history_complete
    state, changes = run(state, "message", message(2))
    assert state.history_complete and Change(ChangeKind.HISTORY_COMPLETE) in changes


def test_empty_history_is_complete_at_once() -> None:
    state, changes = run(logged_in(), "historyEnd", {"count": 0})
    assert state.history_complete and changes == [Change(ChangeKind.HISTORY_COMPLETE)]


# --- searchUser ---------------------------------------------------------------------------
def test_search_results_live_apart_from_conversations() -> None:
    state, _ = st.begin_search(logged_in(), "car")
    users = [{"name": "Carol Ca", "userID": CAROL, "unreadMessages": -1}]
    state, changes = run(state, "searchUser", {"listOfUsers": users})
    assert changes == [Change(ChangeKind.SEARCH)]
    assert [u.user_id for u in state.search_results] == [CAROL]
    assert dict(state.conversations) == {} and state.directory[CAROL] == "Carol Ca"
    state, _ = run(state, "message", message(1))  # a message meanwhile leaves results alone
    assert [u.user_id for u in state.search_results] == [CAROL]
    assert list(state.conversations) == [BOB]


def test_search_never_lists_me_and_late_results_after_clear_are_ignored() -> None:
    state, _ = st.begin_search(logged_in(), "a")
    me = {"name": "Ada Lovelace", "userID": "u-ada", "unreadMessages": -1}
    state, _ = run(state, "searchUser", {"listOfUsers": [me]})
    assert state.search_results == ()
    state, _ = st.clear_search(state)
    bob = {"name": "Bob", "userID": BOB, "unreadMessages": -1}
    state, changes = run(state, "searchUser", {"listOfUsers": [bob]})
    assert state.search_query is None and state.search_results == () and changes == []


# --- selectSearchUser / history -----------------------------------------------------------
def test_select_merges_into_the_conversation() -> None:
    state, _ = run(logged_in(), "message", message(3))
    state, changes = run(state, "selectSearchUser", [message(2), message(3), message(4)])
    assert orders(state) == [2, 3, 4]
    assert Change(ChangeKind.MESSAGES, BOB) in changes
    assert state.unread[BOB] == 1  # fetched messages do not bump the count
    assert run(state, "selectSearchUser", []) == (state, [])


def test_history_merges_older_messages_and_keeps_has_more() -> None:
    state, _ = run(logged_in(), "message", message(60))
    assert st.conversation(state, BOB).can_load_older
    page = [message(order) for order in range(10, 60)]
    state, _ = run(state, "history", {"userID": BOB, "messages": page, "hasMore": True})
    conv = st.conversation(state, BOB)
    assert conv.oldest_order == 10 and conv.has_more is True and conv.can_load_older
    rest = [message(order) for order in range(1, 10)]
    state, _ = run(state, "history", {"userID": BOB, "messages": rest, "hasMore": False})
    conv = st.conversation(state, BOB)
    assert orders(state) == list(range(1, 61)) and not conv.can_load_older


# --- sent / read --------------------------------------------------------------------------
def ack(cid: str = "c1", order: int = 7, mid: str = "m-7") -> dict[str, Any]:
    return {
        "clientMessageId": cid,
        "messageID": mid,
        "order": order,
        "dateTime": "2026-01-02T00:00:00.000Z",
        "userID": BOB,
    }


def test_pending_message_becomes_sent_with_order_and_keeps_its_key() -> None:
    state, _ = run(logged_in(), "message", message(6))
    state, _ = st.add_pending(state, BOB, "c1", "hello", "2026-01-02T00:00:00.000Z")
    pending = st.conversation(state, BOB).messages[-1]
    assert (pending.status, pending.order, pending.message_id) == ("sending", None, None)
    state, changes = run(state, "sent", ack())
    stored = st.conversation(state, BOB).messages[-1]
    assert (stored.status, stored.order, stored.message_id) == ("sent", 7, "m-7")
    assert stored.key == pending.key and stored.outgoing
    assert Change(ChangeKind.MESSAGES, BOB) in changes
    assert run(state, "sent", ack()) == (state, [])  # a redelivered ack changes nothing


def test_sent_ack_out_of_order_keeps_messages_sorted_and_pending_last() -> None:
    state = logged_in()
    for cid in ("c1", "c2", "c3"):
        state, _ = st.add_pending(state, BOB, cid, cid, "2026-01-02T00:00:00.000Z")
    state, _ = run(state, "sent", ack("c2", 1, "m-1"))
    state, _ = run(state, "sent", ack("c3", 2, "m-2"))
    msgs = st.conversation(state, BOB).messages
    assert [(m.body, m.status) for m in msgs] == [("c2", "sent"), ("c3", "sent"), ("c1", "sending")]


def test_sent_for_a_message_already_held_drops_the_pending_copy() -> None:
    state, _ = st.add_pending(logged_in(), BOB, "c1", "hello", "2026-01-02T00:00:00.000Z")
    state, _ = run(state, "selectSearchUser", [message(7, to=BOB, body="hello", message_id="m-7")])
    state, _ = run(state, "sent", ack())
    assert [m.message_id for m in st.conversation(state, BOB).messages] == ["m-7"]


def test_read_marks_own_messages_up_to_order_and_applies_to_late_arrivals() -> None:
    state = logged_in()
    for order, to in ((1, BOB), (2, None), (3, BOB), (5, BOB)):
        state, _ = run(state, "message", message(order, to=to))
    state, changes = run(state, "read", {"userID": BOB, "upToOrder": 4})
    by_order = {m.order: m for m in st.conversation(state, BOB).messages}
    assert [by_order[o].status for o in (1, 3, 5)] == ["read", "read", "sent"]
    assert not by_order[2].is_read  # incoming messages are untouched
    assert changes == [Change(ChangeKind.MESSAGES, BOB)]
    state, _ = run(state, "message", message(4, to=BOB))  # late, already covered
    state, _ = st.add_pending(state, BOB, "c1", "x", "2026")
    state, _ = run(state, "sent", ack("c1", 6, "m-6"))
    by_order = {m.order: m for m in st.conversation(state, BOB).messages}
    assert (by_order[4].status, by_order[6].status) == ("read", "sent")
    state, changes = run(state, "read", {"userID": BOB, "upToOrder": 2})  # older: no regress
    assert changes == [] and st.conversation(state, BOB).read_up_to == 4


# --- error and malformed ------------------------------------------------------------------
def test_error_push_is_kept_and_401_expires_the_session() -> None:
    state, changes = run(
        logged_in(), "error", {"message": "name too long", "method": "searchUser"}, 400
    )
    assert state.last_error == st.ErrorInfo(400, "name too long", "searchUser")
    assert changes == [Change(ChangeKind.ERROR, detail="name too long")] and not state.expired
    state, changes = run(state, "error", {"message": "session expired", "method": "add"}, 401)
    assert state.expired and state.connection == "offline"
    assert Change(ChangeKind.EXPIRED) in changes


def test_refused_add_fails_the_only_message_in_flight() -> None:
    state, _ = st.add_pending(logged_in(), BOB, "c1", "x", "2026")
    state, _ = run(state, "error", {"message": "recipient unknown", "method": "add"}, 400)
    assert st.conversation(state, BOB).messages[0].status == "failed"


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("message", None),
        ("message", []),
        ("message", {"messageID": "m"}),
        ("message", {**message(1), "order": "x"}),
        ("message", {**message(1), "messageID": ""}),
        ("message", {**message(1), "body": 5}),
        ("historyEnd", {"count": "3"}),
        ("historyEnd", {"count": True}),
        ("historyEnd", []),
        ("searchUser", {"listOfUsers": "nope"}),
        ("searchUser", {"listOfUsers": [{"name": "x"}]}),
        ("selectSearchUser", [message(1), "junk"]),
        ("selectSearchUser", "text"),
        ("history", {"userID": BOB, "messages": [], "hasMore": "yes"}),
        ("history", {"messages": []}),
        ("sent", {"clientMessageId": "c1"}),
        ("sent", {**ack(), "order": 1.5}),
        ("read", {"userID": BOB, "upToOrder": None}),
        ("read", "x"),
        ("somethingElse", {}),
    ],
)
def test_malformed_bodies_become_an_error_change_and_change_nothing_else(
    action: str, body: Any
) -> None:
    before, _ = st.add_pending(logged_in(), BOB, "c1", "x", "2026")
    after, changes = run(before, action, body)
    assert [c.kind for c in changes] == [ChangeKind.ERROR]
    assert after.last_error is not None and after.last_error.status == 0
    assert after.conversations == before.conversations and after.unread == before.unread


def test_error_push_with_a_malformed_body_still_reports_an_error() -> None:
    state, changes = run(logged_in(), "error", ["junk"], 500)
    assert state.last_error == st.ErrorInfo(500, "request failed (500)", "")
    assert [c.kind for c in changes] == [ChangeKind.ERROR]


# --- immutability and local transitions ---------------------------------------------------
def test_apply_returns_a_new_state_and_leaves_the_old_one_alone() -> None:
    before = logged_in()
    after, _ = run(before, "message", message(1))
    assert before.conversations == {} and len(after.conversations) == 1
    with pytest.raises(TypeError):
        after.conversations[BOB] = st.Conversation(BOB)  # type: ignore[index]


def test_failed_pending_can_be_retried() -> None:
    state, _ = st.add_pending(logged_in(), BOB, "c1", "x", "2026")
    state, _ = st.mark_pending(state, "c1", "failed")
    assert st.conversation(state, BOB).messages[0].status == "failed"
    state, _ = st.mark_pending(state, "c1", "sending")
    assert st.pending_message(state, "c1") is not None
    assert st.pending_message(state, "nope") is None


def test_end_session_keeps_only_the_theme() -> None:
    state, _ = st.set_dark_mode(logged_in(), True)
    state, _ = run(state, "message", message(1))
    fresh, changes = st.end_session(state)
    assert fresh == State(dark_mode=True) and changes == [Change(ChangeKind.SESSION)]
