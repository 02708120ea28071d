"""Small shared pieces: escaping, readable errors, the action lane, toasts, image cache.

Everything here is plain ipywidgets and callables: no Session, no boto3. The panels and the
app build on these so the rules (escape user strings, never raise into the notebook, never
block the kernel on the network) live in one place.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import ipywidgets as w

from .. import errors
from ..protocol import parse_iso

log = logging.getLogger(__name__)

TOAST_SECONDS = 5.0
MAX_TOASTS = 4
IMAGE_CACHE_BYTES = 64 * 1024 * 1024  # thumbnails kept per kernel; the oldest go first


# --- text ---------------------------------------------------------------------------------
def esc(text: object) -> str:
    """Every user-supplied string goes through here before it becomes HTML."""
    return html.escape(str(text), quote=True)


def classed(widget: Any, *classes: str) -> Any:
    """Add stable CSS classes (test hooks and styling) and return the widget."""
    for name in classes:
        widget.add_class(name)
    return widget


def show(widget: Any, visible: bool) -> None:
    display = None if visible else "none"
    if widget.layout.display != display:
        widget.layout.display = display


def set_children(box: Any, children: Iterable[Any]) -> None:
    """Assign children only when they differ, so an unchanged list costs no message."""
    new = tuple(children)
    old = tuple(box.children)
    if len(new) != len(old) or any(a is not b for a, b in zip(new, old, strict=True)):
        box.children = new


def set_value(widget: Any, value: Any) -> None:
    if widget.value != value:
        widget.value = value


def swap_class(widget: Any, prefix: str, name: str) -> None:
    """Replace the one class starting with `prefix` (e.g. a status) by `name`."""
    for old in [c for c in widget._dom_classes if c.startswith(prefix) and c != name]:
        widget.remove_class(old)
    if name not in widget._dom_classes:
        widget.add_class(name)


def walk(widget: Any) -> Iterator[Any]:
    """The widget and all its descendants (used to close trees and by tests)."""
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from walk(child)


def close_tree(widget: Any) -> None:
    """Close a widget and its descendants so their comms do not outlive them."""
    for item in list(walk(widget)):
        item.close()


def format_size(size: object) -> str:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # pragma: no cover


def format_time(iso: str, now: datetime | None = None) -> str:
    """`14:05` today, `3 Mar 14:05` otherwise, in the kernel's local time."""
    try:
        moment = parse_iso(iso).astimezone()
    except (TypeError, ValueError, OverflowError):
        return ""
    today = (now or datetime.now().astimezone()).date()
    if moment.date() == today:
        return moment.strftime("%H:%M")
    return f"{moment.day} {moment.strftime('%b %H:%M')}"


def describe(exc: BaseException) -> str:
    """One readable sentence for any failure; details of unexpected ones stay in the log."""
    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, errors.AttachmentError):  # those start with a file name
        text = text[0].upper() + text[1:]
    if isinstance(exc, errors.Throttled):
        return "Too many requests: please wait a moment and try again."
    if isinstance(exc, errors.ReplyTimeout):
        return f"The server did not answer in time. {text}"
    if isinstance(exc, errors.TransportError):
        return f"Could not reach the server. {text}"
    if isinstance(exc, errors.MessengerError):
        return text
    return f"Something went wrong ({type(exc).__name__}); please try again."


# --- running work off the kernel's main thread ----------------------------------------------
class Lane:
    """One daemon thread that runs UI actions in order, so a click never blocks the kernel.

    Clicks arrive on the kernel's main thread; a login may wait 30 s for its reply and every
    request is a network call. Order matters (a text sent after a file stays after it), so
    there is one lane, not a pool. `join` lets tests wait for queued work.
    """

    def __init__(self, name: str = "messenger-ui") -> None:
        self._name = name
        self._tasks: list[Callable[[], None]] = []
        self._cond = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, task: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                return
            self._tasks.append(task)
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted task ran; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._tasks) or self._closed)
                if not self._tasks:
                    return
                task = self._tasks.pop(0)
            try:
                task()
            except Exception:  # tasks guard themselves; this keeps the lane alive regardless
                log.exception("a UI task failed")
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()


# --- toasts -------------------------------------------------------------------------------
class Toasts:
    """Errors and notices in a corner, each dismissed by a timer or its close button."""

    def __init__(self, seconds: float = TOAST_SECONDS) -> None:
        self.seconds = seconds
        self.widget = classed(w.VBox(), "msgr-toasts")
        self._lock = threading.RLock()

    def error(self, text: str) -> None:
        self._add(text, "msgr-toast-error")

    def notice(self, text: str) -> None:
        self._add(text, "msgr-toast-notice")

    @property
    def messages(self) -> list[str]:
        return [t.children[0].value for t in self.widget.children]

    def _add(self, text: str, kind: str) -> None:
        label = classed(w.Label(value=text), "msgr-toast-text")
        close = w.Button(description="\N{MULTIPLICATION SIGN}", tooltip="Dismiss")
        classed(close, "msgr-toast-close")
        toast = classed(w.HBox([label, close]), "msgr-toast", kind)
        close.on_click(lambda _b: self._remove(toast))
        with self._lock:
            current = list(self.widget.children)
            if current and current[-1].children[0].value == text:
                return  # the same failure twice in a row is one toast
            for old in current[: max(0, len(current) - MAX_TOASTS + 1)]:
                self._remove(old)
            self.widget.children = (*self.widget.children, toast)
        if self.seconds > 0:
            timer = threading.Timer(self.seconds, self._remove, args=(toast,))
            timer.daemon = True
            timer.start()

    def _remove(self, toast: Any) -> None:
        with self._lock:
            if toast in self.widget.children:
                self.widget.children = tuple(t for t in self.widget.children if t is not toast)
                close_tree(toast)


# --- thumbnails ---------------------------------------------------------------------------
class ImageCache:
    """Image bytes per attachment key, fetched once in the kernel on a small pool.

    The browser never talks to S3 for thumbnails: bytes go into a `widgets.Image`, so a
    message can never make the page load a URL of its choosing.
    """

    def __init__(self, fetch: Callable[[str], bytes], max_bytes: int = IMAGE_CACHE_BYTES) -> None:
        self._fetch, self._max_bytes = fetch, max_bytes
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="messenger-image")
        self._lock = threading.Lock()
        self._done: dict[str, bytes] = {}  # key -> bytes, oldest first
        self._waiting: dict[str, list[Callable[[bytes | str], None]]] = {}

    def get(self, key: str, ready: Callable[[bytes | str], None]) -> None:
        """Call `ready(bytes)` or `ready(reason)` now if known, else once fetched."""
        with self._lock:
            found: bytes | str | None = self._done.get(key)
            if found is None:
                waiting = self._waiting.setdefault(key, [])
                waiting.append(ready)
                if len(waiting) == 1:
                    self._pool.submit(self._load, key)
                return
        ready(found)

    def _load(self, key: str) -> None:
        try:
            result: bytes | str = self._fetch(key)
        except Exception as exc:
            result = describe(exc)
        with self._lock:
            if isinstance(result, bytes):  # failures are retried the next time it is shown
                self._done[key] = result
                while sum(map(len, self._done.values())) > self._max_bytes and len(self._done) > 1:
                    del self._done[next(iter(self._done))]
            callbacks = self._waiting.pop(key, [])
        for callback in callbacks:
            try:
                callback(result)
            except Exception:
                log.exception("showing a thumbnail failed")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
