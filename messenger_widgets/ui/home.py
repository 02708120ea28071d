"""The logged-in screen: header, conversation list with search, thread and composer.

`HomePanel.apply` maps each `Change` kind to the one part it concerns, so a status tick or
an unread count re-renders a label, not the screen. Every action goes out through the
`HomeActions` callbacks; nothing here knows about the Session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from ..client import groups
from ..client import state as st
from ..client.state import Change, ChangeKind, ConversationSummary, State, UserSummary
from .auth import on_enter
from .groups import GroupForm
from .thread import Composer, LinkFor, ThreadView
from .widgets import ImageCache, classed, close_tree, set_children, set_value, show, swap_class

NO_CONVERSATIONS = "No conversations yet — search for someone by name to start chatting"
CONNECTION_TEXT = {
    "online": "● Online",
    "connecting": "● Connecting…",
    "reconnecting": "● Reconnecting…",
    "offline": "● Offline",
}


@dataclass(frozen=True)
class HomeActions:
    """What the home screen can ask for; the app wires these to the Session."""

    open: Callable[[str], None]
    search: Callable[[str], None]
    clear_search: Callable[[], None]
    send: Callable[[str], None]
    send_file: Callable[[str, bytes, str], None]
    load_older: Callable[[str], None]
    retry: Callable[[str], None]
    dark: Callable[[bool], None]
    logout: Callable[[], None]
    link_for: LinkFor
    images: ImageCache | None = None
    create_group: Callable[[str, list[str]], None] = lambda _name, _ids: None
    leave_group: Callable[[str], None] = lambda _key: None


class Header:
    """Who is logged in, whether the queue is reachable, the theme switch and logout."""

    def __init__(self, on_dark: Callable[[bool], None], on_logout: Callable[[], None]) -> None:
        self._on_dark = on_dark
        self._quiet = False
        brand = classed(w.Label(value="Messenger"), "msgr-brand")
        self.me = classed(w.Label(value=""), "msgr-me")
        self.connection = classed(w.Label(value=""), "msgr-connection")
        self.dark = classed(
            w.ToggleButton(value=False, description="☾ Dark mode", tooltip="Dark mode"),
            "msgr-dark-toggle",
        )
        self.logout = classed(w.Button(description="Log out"), "msgr-logout")
        # the app wires this to its "Under the hood" panel (ui/hood.py); off by default
        self.hood = classed(
            w.ToggleButton(value=False, description="Under the hood", tooltip="SQS traffic"),
            "msgr-hood-toggle",
        )
        self.dark.observe(self._toggled, "value")
        self.logout.on_click(lambda _b: on_logout())
        spacer = classed(w.Box(), "msgr-spacer")
        self.widget = classed(
            w.HBox([brand, spacer, self.connection, self.me, self.hood, self.dark, self.logout]),
            "msgr-header",
        )

    def _toggled(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._on_dark(bool(change["new"]))

    def set_dark(self, on: bool) -> None:
        """Reflect the theme without calling back (it came from the session)."""
        self._quiet = True
        try:
            set_value(self.dark, on)
        finally:
            self._quiet = False

    def set_connection(self, status: str) -> None:
        set_value(self.connection, CONNECTION_TEXT.get(status, status))
        swap_class(self.connection, "msgr-conn-", f"msgr-conn-{status}")


class UserRow:
    """A person in a list: name (the click target), last message preview, unread badge."""

    def __init__(self, user_id: str, on_open: Callable[[str], None]) -> None:
        self.user_id = user_id
        self.name = classed(w.Button(description=""), "msgr-user-name")
        self.preview = classed(w.Label(value=""), "msgr-preview")
        self.badge = classed(w.Label(value=""), "msgr-unread")
        self.name.on_click(lambda _b: on_open(user_id))
        text = classed(w.VBox([self.name, self.preview]), "msgr-user-text")
        self.widget = classed(w.HBox([text, self.badge]), "msgr-user")
        show(self.badge, False)

    def update(self, name: str, preview: str, unread: int, active: bool) -> None:
        self.name.description = name or "(no name)"
        self.name.tooltip = name
        set_value(self.preview, preview)
        show(self.preview, bool(preview))
        set_value(self.badge, str(unread) if unread < 100 else "99+")
        show(self.badge, unread > 0)
        (self.widget.add_class if active else self.widget.remove_class)("msgr-active")

    def matches(self, text: str) -> bool:
        return text.casefold() in self.name.description.casefold()


class UserList:
    """Conversations, filtered as you type; server search results in their own list."""

    def __init__(
        self,
        on_open: Callable[[str], None],
        on_search: Callable[[str], None],
        on_clear: Callable[[], None],
    ) -> None:
        self._on_open, self._on_search, self._on_clear = on_open, on_search, on_clear
        self._lock = threading.RLock()
        self.search = classed(
            w.Text(placeholder="Search people…", continuous_update=True), "msgr-search"
        )
        self.search_submit = classed(
            w.Button(description="Search", tooltip="Search everyone by name"), "msgr-search-submit"
        )
        self.search_clear = classed(
            w.Button(description="✕", tooltip="Back to conversations"), "msgr-search-clear"
        )
        self.heading = classed(w.Label(value="Conversations"), "msgr-list-heading")
        self.empty = classed(w.Label(value=NO_CONVERSATIONS), "msgr-empty")
        self.conversations = classed(w.VBox(), "msgr-conversations")
        self.results_note = classed(w.Label(value=""), "msgr-empty", "msgr-results-note")
        self.results = classed(w.VBox(), "msgr-results")
        self.tools = classed(w.VBox(), "msgr-list-tools")  # the home panel's "New group"
        self.rows: dict[str, UserRow] = {}
        self.result_rows: dict[str, UserRow] = {}
        self.searching = False  # a query was sent and its results have not arrived yet
        self._pending: str | None = None
        self._events = 0
        self.search.observe(lambda _c: self._filter(), "value")
        on_enter(self.search, self._submit)
        self.search_submit.on_click(lambda _b: self._submit())
        self.search_clear.on_click(lambda _b: self._clear())
        bar = classed(
            w.HBox([self.search, self.search_submit, self.search_clear]), "msgr-searchbar"
        )
        lists = classed(
            w.VBox([self.empty, self.conversations, self.results_note, self.results]),
            "msgr-lists",
        )
        self.widget = classed(w.VBox([bar, self.tools, self.heading, lists]), "msgr-sidebar")
        self._query: str | None = None
        show(self.search_clear, False)
        self._mode()

    # --- conversations ------------------------------------------------------------------
    def set_conversations(
        self, summaries: Sequence[ConversationSummary], open_id: str | None
    ) -> None:
        with self._lock:
            rows: dict[str, UserRow] = {}
            for item in summaries:
                row = self.rows.get(item.user_id) or UserRow(item.user_id, self._on_open)
                if item.is_group:
                    row.widget.add_class("msgr-group")
                row.update(item.name, item.preview, item.unread, item.user_id == open_id)
                rows[item.user_id] = row
            self._swap(self.rows, rows, self.conversations)
            self.rows = rows
            self._filter()

    def _filter(self) -> None:
        """Local, instant: hide conversations whose name does not contain the typed text."""
        with self._lock:
            text = self.search.value.strip()
            visible = 0
            for row in self.rows.values():
                match = row.matches(text)
                show(row.widget, match)
                visible += match
            show(self.search_clear, bool(text) or self._query is not None)
            if not self.rows:
                set_value(self.empty, NO_CONVERSATIONS)
            else:
                set_value(
                    self.empty, f"No conversation matches “{text}” — press Enter to search everyone"
                )
            show(self.empty, self._query is None and visible == 0)

    # --- search -------------------------------------------------------------------------
    def _submit(self) -> None:
        text = self.search.value.strip()
        if text:
            self.searching, self._pending, self._events = True, text, 0
            self._on_search(text)
        else:
            self._clear()

    def _clear(self) -> None:
        self.search.value = ""
        self.searching = False
        self._on_clear()

    def search_failed(self) -> None:
        with self._lock:
            self.searching = False
            set_value(self.results_note, "The search could not be sent. Try again.")
            self._mode()

    def set_search(
        self,
        query: str | None,
        results: Iterable[UserSummary],
        unread: Mapping[str, int],
        *,
        changed: bool = True,
    ) -> None:
        """`changed`: a SEARCH change; the first for a sent query is the query itself, the
        second its results (State keeps the previous results until new ones arrive)."""
        with self._lock:
            if changed and self.searching:
                self._events += 1
                if query != self._pending or self._events >= 2:
                    self.searching = False
            self._query = query
            rows: dict[str, UserRow] = {}
            if query is not None and not self.searching:
                for user in results:
                    row = self.result_rows.get(user.user_id) or UserRow(
                        user.user_id, self._open_result
                    )
                    row.update(user.name, "", unread.get(user.user_id, 0), False)
                    rows[user.user_id] = row
            self._swap(self.result_rows, rows, self.results)
            self.result_rows = rows
            if self.searching:
                note = f"Searching for “{query}”…"
            elif rows:
                note = ""
            else:
                note = f"Nobody found for “{query}”. Try another name."
            set_value(self.results_note, note)
            self._mode()

    def _open_result(self, user_id: str) -> None:
        self._on_open(user_id)
        self._clear()

    def _mode(self) -> None:
        """Results and conversations are never mixed: one list shows at a time."""
        searching = self._query is not None
        set_value(
            self.heading, f"Search results for “{self._query}”" if searching else "Conversations"
        )
        show(self.conversations, not searching)
        show(self.results, searching)
        show(self.results_note, searching and bool(self.results_note.value))
        self._filter()

    @staticmethod
    def _swap(old: dict[str, UserRow], new: dict[str, UserRow], box: Any) -> None:
        set_children(box, [r.widget for r in new.values()])
        for key, row in old.items():
            if key not in new:
                close_tree(row.widget)


class HomePanel:
    def __init__(self, actions: HomeActions) -> None:
        self.header = Header(actions.dark, actions.logout)
        self.users = UserList(actions.open, actions.search, actions.clear_search)
        self.thread = ThreadView(
            link_for=actions.link_for,
            images=actions.images,
            on_load_older=actions.load_older,
            on_retry=actions.retry,
            on_leave=actions.leave_group,
        )
        self._state = State()
        self.group_form = GroupForm(actions.create_group)
        self.new_group = classed(
            w.Button(description="New group", tooltip="Start a group conversation"),
            "msgr-new-group",
        )
        self.new_group.on_click(lambda _b: self.group_form.open(groups.candidates(self._state)))
        set_children(self.users.tools, [self.new_group, self.group_form.widget])
        self.composer = Composer(actions.send, actions.send_file)
        self.composer.set_enabled(False)
        main = classed(w.VBox([self.thread.widget, self.composer.widget]), "msgr-main")
        body = classed(w.HBox([self.users.widget, main]), "msgr-body")
        self.widget = classed(w.VBox([self.header.widget, body]), "msgr-home", "msgr-panel")

    def render(self, state: State) -> None:
        self.apply(state, [Change(kind) for kind in ChangeKind])

    def apply(self, state: State, changes: Sequence[Change]) -> None:
        self._state = state
        kinds = {c.kind for c in changes}
        if self.group_form.is_open and kinds & {ChangeKind.SEARCH, ChangeKind.CONVERSATIONS}:
            self.group_form.set_people(groups.candidates(state))
        if kinds & {ChangeKind.SESSION, ChangeKind.CONNECTION}:
            self.header.set_connection(state.connection)
        if ChangeKind.SESSION in kinds and state.me is not None:
            set_value(self.header.me, state.me.name)
        if kinds & {ChangeKind.SESSION, ChangeKind.DARK_MODE}:
            self.header.set_dark(state.dark_mode)
        lists = {ChangeKind.CONVERSATIONS, ChangeKind.UNREAD, ChangeKind.OPEN, ChangeKind.MESSAGES}
        if kinds & lists:
            self.users.set_conversations(st.conversation_list(state), state.open_conversation)
        if kinds & {ChangeKind.SEARCH, ChangeKind.UNREAD}:
            self.users.set_search(
                state.search_query,
                state.search_results,
                state.unread,
                changed=ChangeKind.SEARCH in kinds,
            )
        open_id = state.open_conversation
        conv = st.conversation(state, open_id) if open_id else None
        name = (conv.name or state.directory.get(open_id, "")) if conv and open_id else ""
        if ChangeKind.OPEN in kinds or ChangeKind.SESSION in kinds:
            self.thread.show(conv, name)
            self.composer.set_enabled(conv is not None)
        elif conv is not None and (
            Change(ChangeKind.MESSAGES, open_id) in changes or ChangeKind.CONVERSATIONS in kinds
        ):
            self.thread.update(conv, name)

    def close(self) -> None:
        close_tree(self.widget)
