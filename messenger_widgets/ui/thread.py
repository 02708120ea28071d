"""The open conversation (message bubbles, thumbnails, download links) and the composer.

Bubbles are kept per message key and only the parts that changed are touched, so a status
tick moving from ✓ to ✓✓ is one small widget update, not a re-render of the thread. Text is
shown in Labels (never parsed as HTML); file cards are HTML built from escaped parts and
link only to the app's own short-lived presigned URLs, never to a URL a message carries.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from ..attachments import ALLOWED_TYPES, IMAGE_TYPES
from ..client.state import ChatMessage, Conversation
from .auth import on_enter
from .widgets import (
    ImageCache,
    classed,
    close_tree,
    esc,
    format_size,
    format_time,
    set_children,
    set_value,
    show,
    swap_class,
)

LinkFor = Callable[[Mapping[str, Any]], "str | None"]
TICKS = {"sending": "…", "sent": "✓", "read": "✓✓", "failed": "⚠ not sent"}
NO_THREAD = "Pick a conversation on the left, or search for someone by name to start chatting."
EMPTY_THREAD = "Say hello 👋"
ACCEPT = ",".join(sorted({*ALLOWED_TYPES, *(e for exts in ALLOWED_TYPES.values() for e in exts)}))


def file_card(body: Mapping[str, Any], url: str | None) -> str:
    """Name, size and (when we could sign one) a download link; every part escaped."""
    raw = str(body.get("name") or "file")
    name = esc(raw)
    size = esc(format_size(body.get("size")))
    ext = esc(raw.rpartition(".")[2][:4].upper() if "." in raw else "FILE")
    if url and url.startswith(("https://", "http://")):
        link = (
            f'<a class="msgr-download" href="{esc(url)}" download="{name}" target="_blank" '
            f'rel="noopener noreferrer">{name}</a>'
        )
    else:
        link = f'<span class="msgr-file-name">{name}</span>'
    return f'<div class="msgr-file"><span class="msgr-file-icon">{ext}</span>{link} ' \
        f'<span class="msgr-file-size">{size}</span></div>'  # fmt: skip


class Bubble:
    """One message: its content, time and (for own messages) a status tick."""

    def __init__(
        self,
        message: ChatMessage,
        link_for: LinkFor,
        images: ImageCache | None,
        on_retry: Callable[[str], None],
    ) -> None:
        self.message = message
        self._link_for = link_for
        self.file: Any = None
        parts = self._content(message, images)
        if message.sender_id and not message.outgoing:  # a group: say who wrote it
            parts.insert(0, classed(w.Label(value=message.name or "(no name)"), "msgr-sender"))
        self.time = classed(w.Label(value=format_time(message.date_time)), "msgr-time")
        self.status = classed(w.Label(value=""), "msgr-status")
        self.retry = classed(w.Button(description="Retry"), "msgr-retry")
        self.retry.on_click(lambda _b: self._retry(on_retry))
        meta = [self.time] + ([self.status, self.retry] if message.outgoing else [])
        direction = "msgr-outgoing" if message.outgoing else "msgr-incoming"
        self.widget = classed(
            w.VBox([*parts, classed(w.HBox(meta), "msgr-meta")]), "msgr-message", direction
        )
        self._status(message)

    def _content(self, message: ChatMessage, images: ImageCache | None) -> list[Any]:
        body = message.body
        if isinstance(body, str):
            return [classed(w.Label(value=body), "msgr-text")]
        self.file = classed(w.HTML(value=file_card(body, self._link_for(body))), "msgr-file-card")
        media = str(body.get("type") or "")
        key = body.get("key")
        if media not in IMAGE_TYPES or images is None or not isinstance(key, str):
            return [self.file]
        image = classed(w.Image(format=media.split("/", 1)[1]), "msgr-image")
        note = classed(w.Label(value="Loading image…"), "msgr-image-note")
        show(image, False)

        def ready(result: bytes | str) -> None:
            if isinstance(result, bytes):
                image.value = result
                show(image, True)
                show(note, False)
            else:
                note.value = f"Preview unavailable: {result}"

        images.get(key, ready)
        return [image, note, self.file]

    def _retry(self, on_retry: Callable[[str], None]) -> None:
        if self.message.client_message_id:
            self.retry.disabled = True
            on_retry(self.message.client_message_id)

    def _status(self, message: ChatMessage) -> None:
        if not message.outgoing:
            return
        status = message.status or "sent"
        text, tip = TICKS.get(status, ""), str(status)
        if message.read_by is not None and status in ("sent", "read"):
            k, n = message.read_by
            tip = f"read by {k} of {n}"
            if status == "sent" and k:  # a group message some members have read
                text = f"{TICKS['sent']} {k}/{n}"
        set_value(self.status, text)
        swap_class(self.status, "msgr-status-", f"msgr-status-{status}")
        self.status.tooltip = tip
        show(self.retry, status == "failed")
        self.retry.disabled = False

    def update(self, message: ChatMessage) -> None:
        """Same key, new facts: a new status, order or server time."""
        if message == self.message:
            return
        self.message = message
        set_value(self.time, format_time(message.date_time))
        self._status(message)

    def refresh_link(self) -> None:
        if self.file is not None and not isinstance(self.message.body, str):
            self.file.value = file_card(self.message.body, self._link_for(self.message.body))


class ThreadView:
    """Bubbles of the open conversation, newest at the bottom, older pages on request."""

    def __init__(
        self,
        *,
        link_for: LinkFor,
        images: ImageCache | None,
        on_load_older: Callable[[str], None],
        on_retry: Callable[[str], None],
        on_leave: Callable[[str], None] | None = None,
    ) -> None:
        self._link_for, self._images, self._on_retry = link_for, images, on_retry
        self._on_load_older = on_load_older
        self._on_leave = on_leave
        self.title = classed(w.Label(value=""), "msgr-thread-title")
        # groups (v1.1): who is in the open group, and the way out of it
        self.members = classed(w.Label(value=""), "msgr-group-members")
        self.leave = classed(
            w.Button(description="Leave group", tooltip="Leave this group"), "msgr-group-leave"
        )
        self.leave.on_click(lambda _b: self._leave())
        self.group_bar = classed(w.HBox([self.members, self.leave]), "msgr-group-bar")
        show(self.group_bar, False)
        self.load_older = classed(w.Button(description="Load older messages"), "msgr-load-older")
        self.load_older.on_click(lambda _b: self._older())
        self.empty = classed(w.Label(value=NO_THREAD), "msgr-empty")
        self.messages = classed(w.VBox(), "msgr-thread")
        inner = classed(w.VBox([self.load_older, self.empty, self.messages]), "msgr-thread-inner")
        self.scroller = classed(w.Box([inner]), "msgr-scroll")  # column-reverse: stays at newest
        self.widget = classed(
            w.VBox([self.title, self.group_bar, self.scroller]), "msgr-thread-panel"
        )
        self.user_id: str | None = None
        self.bubbles: dict[str, Bubble] = {}
        self._lock = threading.RLock()
        show(self.load_older, False)

    def show(self, conv: Conversation | None, name: str = "") -> None:
        """Switch to another conversation (None: nothing open)."""
        with self._lock:
            if conv is None or conv.user_id != self.user_id:
                old = list(self.bubbles.values())
                self.bubbles = {}
                set_children(self.messages, [])
                for bubble in old:
                    close_tree(bubble.widget)
            self.user_id = conv.user_id if conv else None
            if conv is None:
                set_value(self.title, "")
                show(self.group_bar, False)
                set_value(self.empty, NO_THREAD)
                self._empty(True)
                show(self.load_older, False)
                return
            self.update(conv, name)

    def update(self, conv: Conversation, name: str = "") -> None:
        """Reconcile bubbles with the conversation: reuse, update in place, add, drop."""
        with self._lock:
            if conv.user_id != self.user_id:
                return
            set_value(self.title, name or conv.name or "")
            self._group(conv)
            keep: dict[str, Bubble] = {}
            for message in conv.messages:
                bubble = self.bubbles.get(message.key)
                if bubble is None:
                    bubble = Bubble(message, self._link_for, self._images, self._on_retry)
                else:
                    bubble.update(message)
                keep[message.key] = bubble
            gone = [b for k, b in self.bubbles.items() if k not in keep]
            self.bubbles = keep
            set_children(self.messages, [b.widget for b in keep.values()])
            for bubble in gone:
                close_tree(bubble.widget)
            set_value(self.empty, EMPTY_THREAD)
            self._empty(not conv.messages)
            show(self.load_older, bool(conv.messages) and conv.can_load_older)
            self.load_older.disabled = False
            self.load_older.description = "Load older messages"

    def _group(self, conv: Conversation) -> None:
        group = conv.group
        show(self.group_bar, group is not None and not group.left)
        if group is not None:
            names = sorted(m.name or "(no name)" for m in group.members)
            set_value(self.members, f"{len(names)} members: {', '.join(names)}")
            self.members.tooltip = "\n".join(names)
            self.leave.disabled = False

    def _leave(self) -> None:
        if self.user_id is None or self._on_leave is None or self.leave.disabled:
            return
        self.leave.disabled = True
        self._on_leave(self.user_id)

    def _empty(self, empty: bool) -> None:
        """An empty state is centred; a thread sits at the bottom, at its newest message."""
        show(self.empty, empty)
        (self.scroller.add_class if empty else self.scroller.remove_class)("msgr-scroll-empty")

    def refresh_links(self) -> None:
        """Presigned links die after 15 minutes; the open thread gets fresh ones."""
        with self._lock:
            for bubble in self.bubbles.values():
                bubble.refresh_link()

    def _older(self) -> None:
        if self.user_id is None or self.load_older.disabled:
            return
        self.load_older.disabled = True
        self.load_older.description = "Loading…"
        self._on_load_older(self.user_id)


class Composer:
    """Text + Send (Enter sends) and a file picker whose upload progress is shown."""

    def __init__(
        self, on_send: Callable[[str], None], on_file: Callable[[str, bytes, str], None]
    ) -> None:
        self._on_send, self._on_file = on_send, on_file
        self.text = classed(
            w.Text(placeholder="Type a message — Enter sends", continuous_update=True),
            "msgr-composer",
        )
        self.send = classed(w.Button(description="Send", button_style="primary"), "msgr-send")
        self.attach = classed(
            w.FileUpload(
                description="Attach", tooltip="Attach files", accept=ACCEPT, multiple=True
            ),
            "msgr-attach",
        )
        self.progress = classed(w.IntProgress(value=0, min=0, max=100), "msgr-upload-progress")
        self.progress_label = classed(w.Label(value=""), "msgr-upload-label")
        self.upload_row = classed(w.HBox([self.progress, self.progress_label]), "msgr-upload")
        show(self.upload_row, False)
        self.send.on_click(lambda _b: self._send())
        on_enter(self.text, self._send)
        self.attach.observe(self._files, "value")
        row = classed(w.HBox([self.text, self.send, self.attach]), "msgr-composer-row")
        self.widget = classed(w.VBox([self.upload_row, row]), "msgr-composer-box")

    def set_enabled(self, enabled: bool) -> None:
        for item in (self.text, self.send, self.attach):
            item.disabled = not enabled

    def _send(self) -> None:
        text = self.text.value
        if self.send.disabled or not text.strip():
            return
        self.text.value = ""
        self._on_send(text)

    def restore(self, text: str) -> None:
        """A refused text comes back so the user can fix it instead of retyping it."""
        if not self.text.value:
            self.text.value = text

    def _files(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        self.attach.value = ()  # ready for the next pick, even of the same file
        for item in files:
            content = item.get("content", b"")
            data = content.tobytes() if isinstance(content, memoryview) else bytes(content)
            self._on_file(str(item.get("name") or "file"), data, str(item.get("type") or ""))

    def progress_for(self, name: str) -> Callable[[int, int], None]:
        """A callback for Attachments' (sent, total) reports, safe from transfer threads."""
        self.progress.value = 0
        self.progress_label.value = f"Uploading {name}…"
        show(self.upload_row, True)

        def report(done: int, total: int) -> None:
            percent = 100 if total <= 0 else min(100, done * 100 // total)
            self.progress.value = percent
            self.progress_label.value = f"Uploading {name}… {percent}%"

        return report

    def upload_finished(self) -> None:
        show(self.upload_row, False)
        self.progress.value = 0
        self.progress_label.value = ""
