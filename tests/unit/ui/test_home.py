"""The logged-in screen driven through widgets: lists, search, thread, composer."""

from __future__ import annotations

from datetime import datetime

from messenger_widgets.ui.app import Messenger
from messenger_widgets.ui.home import NO_CONVERSATIONS, HomePanel
from messenger_widgets.ui.thread import EMPTY_THREAD

from ..client.fakeworker import FakeWorker, message
from .conftest import FakeAttachments, Transport, eventually, find, login, press_enter, visible

BOB = "u-bob"


def home(app: Messenger) -> HomePanel:
    assert app.home is not None
    return app.home


def open_with(app: Messenger, user_id: str) -> None:
    eventually(lambda: user_id in home(app).users.rows)
    home(app).users.rows[user_id].name.click()
    assert app.wait_idle()
    eventually(lambda: home(app).thread.user_id == user_id)


def statuses(app: Messenger) -> list[str]:
    return [b.status.value for b in home(app).thread.bubbles.values() if b.message.outgoing]


def test_empty_states_say_what_to_do(app: Messenger) -> None:
    login(app)
    users = home(app).users
    assert users.empty.value == NO_CONVERSATIONS and visible(users.empty)
    assert "search for someone" in home(app).thread.empty.value
    assert home(app).composer.text.disabled  # nothing to send to yet


def test_conversation_list_and_opening_a_thread(app: Messenger, worker: FakeWorker) -> None:
    worker.history = [message(1, BOB, read=True), message(2, BOB, to=BOB, body="hello bob")]
    worker.conversations[BOB] = worker.history
    login(app)
    row = home(app).users.rows[BOB]
    assert row.name.description == "Bob Babbage"
    assert row.preview.value == "You: hello bob"
    assert "msgr-user" in row.widget._dom_classes and not visible(row.badge)
    open_with(app, BOB)
    thread = home(app).thread
    assert thread.title.value == "Bob Babbage"
    classes = [b.widget._dom_classes for b in thread.bubbles.values()]
    assert ["msgr-incoming" in c for c in classes] == [True, False]
    assert all("msgr-message" in c for c in classes)
    assert not visible(thread.empty)
    assert not home(app).composer.text.disabled
    assert "msgr-active" in row.widget._dom_classes


def test_incoming_message_bumps_the_badge_and_opening_clears_it(
    app: Messenger, worker: FakeWorker
) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    worker.push("message", message(2, BOB, body="are you there?"))
    worker.push("message", message(3, BOB, body="hello?"))
    eventually(lambda: home(app).users.rows[BOB].badge.value == "2")
    row = home(app).users.rows[BOB]
    assert visible(row.badge) and "msgr-unread" in row.badge._dom_classes
    assert row.preview.value == "hello?"
    open_with(app, BOB)
    eventually(lambda: not visible(home(app).users.rows[BOB].badge))
    worker.wait_for("markMessagesAsRead")


def test_search_results_stay_apart_and_clear_returns(app: Messenger, worker: FakeWorker) -> None:
    worker.history = [message(1, "u-cat", name="Cat Herder", read=True)]
    worker.users = [{"userID": BOB, "name": "Bob Babbage"}]
    login(app)
    users = home(app).users
    users.search.value = "bob"  # typing filters the conversation list locally at once
    assert not visible(users.rows["u-cat"].widget)
    assert "press Enter to search everyone" in users.empty.value
    users.search_submit.click()
    assert app.wait_idle()
    eventually(lambda: BOB in users.result_rows)
    assert worker.wait_for("searchUser").body == {"name": "bob"}
    assert users.heading.value == "Search results for “bob”"
    assert visible(users.results) and not visible(users.conversations)
    assert BOB not in users.rows  # never mixed into the conversations
    assert [r.widget for r in users.result_rows.values()] == list(users.results.children)
    users.search_clear.click()
    assert app.wait_idle()
    eventually(lambda: visible(users.conversations))
    assert not visible(users.results) and users.search.value == ""
    assert users.heading.value == "Conversations"
    assert visible(users.rows["u-cat"].widget)


def test_enter_in_the_search_box_searches_and_no_match_says_so(
    app: Messenger, worker: FakeWorker
) -> None:
    login(app)
    users = home(app).users
    users.search.value = "nobody"
    press_enter(users.search)
    assert app.wait_idle()
    eventually(lambda: users.results_note.value.startswith("Nobody found"))
    assert visible(users.results_note)


def test_opening_a_search_result_opens_its_thread(app: Messenger, worker: FakeWorker) -> None:
    worker.users = [{"userID": BOB, "name": "Bob Babbage"}]
    login(app)
    users = home(app).users
    users.search.value = "bob"
    users.search_submit.click()
    eventually(lambda: BOB in users.result_rows)
    users.result_rows[BOB].name.click()
    assert app.wait_idle()
    eventually(lambda: home(app).thread.user_id == BOB)
    eventually(lambda: home(app).thread.empty.value == EMPTY_THREAD)
    assert home(app).thread.title.value == "Bob Babbage"
    eventually(lambda: BOB in users.rows and visible(users.conversations))


def test_sending_adds_an_outgoing_bubble_whose_tick_moves(
    app: Messenger, worker: FakeWorker
) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    open_with(app, BOB)
    worker.silent.add("add")
    composer = home(app).composer
    composer.text.value = "hi bob"
    composer.send.click()
    assert composer.text.value == ""
    assert app.wait_idle()
    eventually(lambda: statuses(app) == ["…"])
    bubble = next(b for b in home(app).thread.bubbles.values() if b.message.outgoing)
    assert "msgr-outgoing" in bubble.widget._dom_classes
    assert bubble.widget.children[0].value == "hi bob"
    add = worker.wait_for("add")
    cid = add.body["clientMessageId"]
    worker.push("sent", {"clientMessageId": cid, "messageID": "m-9", "order": 2,
                         "dateTime": "2026-01-01T00:01:00.000Z", "userID": BOB})  # fmt: skip
    eventually(lambda: statuses(app) == ["✓"])
    worker.push("read", {"userID": BOB, "upToOrder": 2})
    eventually(lambda: statuses(app) == ["✓✓"])
    same = next(b for b in home(app).thread.bubbles.values() if b.message.outgoing)
    assert same is bubble  # updated in place, not rebuilt
    assert "msgr-status-read" in bubble.status._dom_classes


def test_enter_in_the_composer_sends(app: Messenger, worker: FakeWorker) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    open_with(app, BOB)
    home(app).composer.text.value = "via enter"
    press_enter(home(app).composer.text)
    assert app.wait_idle()
    assert worker.wait_for("add").body["body"] == "via enter"
    eventually(lambda: statuses(app) == ["✓"])


def test_a_failing_send_shows_a_toast_and_retry_sends_again(
    app: Messenger, worker: FakeWorker, transport: Transport
) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    open_with(app, BOB)
    transport.failing = True
    home(app).composer.text.value = "lost in transit"
    home(app).composer.send.click()
    assert app.wait_idle()
    assert any("Could not reach the server" in t for t in app.toasts.messages)
    assert find(app.toasts.widget, "msgr-toast")
    eventually(lambda: statuses(app) == ["⚠ not sent"])
    bubble = next(b for b in home(app).thread.bubbles.values() if b.message.outgoing)
    assert visible(bubble.retry)
    transport.failing = False
    bubble.retry.click()
    assert app.wait_idle()
    eventually(lambda: statuses(app) == ["✓"])
    assert not visible(bubble.retry)


def test_an_empty_message_is_not_sent(app: Messenger, worker: FakeWorker) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    open_with(app, BOB)
    home(app).composer.text.value = "   "
    home(app).composer.send.click()
    assert app.wait_idle()
    assert not [r for r in worker.requests if r.method == "add"]


def test_file_upload_sends_the_file_and_shows_progress(
    app: Messenger, worker: FakeWorker, attachments: FakeAttachments
) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    open_with(app, BOB)
    composer = home(app).composer
    seen: list[int] = []
    composer.progress.observe(lambda c: seen.append(c["new"]), "value")
    content = b"\x89PNG fake image bytes"
    composer.attach.value = (
        {
            "name": "photo.png",
            "type": "image/png",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime(2026, 1, 1),
        },
    )
    assert app.wait_idle()
    assert attachments.uploads == [("photo.png", content, "image/png")]
    assert any(0 < v < 100 for v in seen) and 100 in seen
    assert "msgr-upload-progress" in composer.progress._dom_classes
    assert not visible(composer.upload_row) and composer.attach.value == ()
    add = worker.wait_for("add")
    assert add.body["body"]["key"] == "attachments/k1/photo.png"
    eventually(lambda: statuses(app) == ["✓"])
    bubble = next(b for b in home(app).thread.bubbles.values() if b.message.outgoing)
    image = find(bubble.widget, "msgr-image")[0]
    eventually(lambda: image.value != b"")  # bytes fetched in the kernel, not by the page
    assert attachments.fetched == ["attachments/k1/photo.png"]
    assert 'class="msgr-download"' in bubble.file.value


def test_a_refused_file_shows_a_toast(app: Messenger, worker: FakeWorker) -> None:
    worker.history = [message(1, BOB, read=True)]
    login(app)
    open_with(app, BOB)
    composer = home(app).composer
    composer.attach.value = (
        {"name": "x.exe", "type": "application/x-msdownload", "size": 3,
         "content": memoryview(b"MZ!"), "last_modified": datetime(2026, 1, 1)},
    )  # fmt: skip
    assert app.wait_idle()
    assert any("cannot be sent" in t for t in app.toasts.messages)


def test_load_older_fetches_the_previous_page(app: Messenger, worker: FakeWorker) -> None:
    worker.conversations[BOB] = [message(n, BOB, read=True) for n in range(1, 61)]
    worker.history = [worker.conversations[BOB][-1]]
    login(app)
    open_with(app, BOB)
    thread = home(app).thread
    eventually(lambda: len(thread.bubbles) == 20)
    assert visible(thread.load_older) and "msgr-load-older" in thread.load_older._dom_classes
    thread.load_older.click()
    assert app.wait_idle()
    assert worker.wait_for("history").body["beforeOrder"] == 41
    eventually(lambda: len(thread.bubbles) == 60)
    eventually(lambda: not visible(thread.load_older))


def test_logout_returns_to_login(app: Messenger, worker: FakeWorker) -> None:
    login(app)
    home(app).header.logout.click()
    assert app.wait_idle()
    worker.wait_for("logout")
    eventually(lambda: app.panel is app.login.widget)
    assert app.home is None
    assert app.login.message.value == "You have logged out."
