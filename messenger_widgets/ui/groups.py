"""The "New group" form (v1.1): a name and a member picker of the people the user knows.

The people offered are everyone in the user's conversations, groups and search results
(`client.groups.candidates`); the list grows while the form is open as searches answer, and
ticks survive that. Names are shown as Checkbox descriptions and Labels, which render text,
never HTML. The form only checks what it can see (a name, someone picked); every other rule
is the Session's and the worker's, whose refusal comes back through `fail`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import ipywidgets as w

from ..client.state import UserSummary
from ..protocol import GROUP_MAX_MEMBERS, GROUP_NAME_MAX_CHARS
from .auth import on_enter
from .widgets import classed, close_tree, set_children, set_value, show

PICK_HINT = f"Pick up to {GROUP_MAX_MEMBERS - 1} people. Search to find more."
NOBODY_YET = "Nobody to pick yet: search for people by name first."


class GroupForm:
    def __init__(self, on_create: Callable[[str, list[str]], None]) -> None:
        self._on_create = on_create
        self._lock = threading.RLock()
        self.title = classed(w.Label(value="New group"), "msgr-group-title")
        self.name = classed(
            w.Text(placeholder=f"Group name (up to {GROUP_NAME_MAX_CHARS} characters)"),
            "msgr-group-name",
        )
        self.hint = classed(w.Label(value=PICK_HINT), "msgr-group-hint")
        self.nobody = classed(w.Label(value=NOBODY_YET), "msgr-empty", "msgr-group-nobody")
        self.people = classed(w.VBox(), "msgr-group-people")
        self.error = classed(w.Label(value=""), "msgr-error-text", "msgr-group-error")
        self.create = classed(
            w.Button(description="Create", button_style="primary"), "msgr-group-create"
        )
        self.cancel = classed(w.Button(description="Cancel"), "msgr-group-cancel")
        self.boxes: dict[str, w.Checkbox] = {}
        self.create.on_click(lambda _b: self._submit())
        self.cancel.on_click(lambda _b: self.close())
        on_enter(self.name, self._submit)
        buttons = classed(w.HBox([self.create, self.cancel]), "msgr-group-buttons")
        self.widget = classed(
            w.VBox(
                [self.title, self.name, self.hint, self.nobody, self.people, self.error, buttons]
            ),
            "msgr-group-form",
        )
        show(self.widget, False)

    @property
    def is_open(self) -> bool:
        return bool(self.widget.layout.display != "none")

    def open(self, people: Sequence[UserSummary]) -> None:
        with self._lock:
            self.name.value = ""
            for box in self.boxes.values():
                box.value = False
            self.set_people(people)
            self._busy(False)
            set_value(self.error, "")
            show(self.error, False)
            show(self.widget, True)

    def close(self) -> None:
        with self._lock:
            show(self.widget, False)
            self._busy(False)

    def set_people(self, people: Sequence[UserSummary]) -> None:
        """Offer these people, in this order; a ticked box stays ticked."""
        with self._lock:
            boxes: dict[str, w.Checkbox] = {}
            for person in people:
                box = self.boxes.get(person.user_id)
                if box is None:
                    box = classed(
                        w.Checkbox(value=False, description="", indent=False),
                        "msgr-group-member",
                    )
                box.description = person.name or "(no name)"
                boxes[person.user_id] = box
            gone = [b for uid, b in self.boxes.items() if uid not in boxes]
            self.boxes = boxes
            set_children(self.people, list(boxes.values()))
            for box in gone:
                close_tree(box)
            show(self.nobody, not boxes)

    def selected(self) -> list[str]:
        return [user_id for user_id, box in self.boxes.items() if box.value]

    def fail(self, text: str) -> None:
        """A refusal (from the Session or the worker): say why, keep what was entered."""
        with self._lock:
            set_value(self.error, text)
            show(self.error, True)
            self._busy(False)

    def _submit(self) -> None:
        if self.create.disabled or not self.is_open:
            return
        name, picked = self.name.value.strip(), self.selected()
        if not name:
            self.fail("Give the group a name.")
        elif not picked:
            self.fail("Pick at least one person.")
        else:
            self._busy(True)
            self._on_create(name, picked)

    def _busy(self, busy: bool) -> None:
        self.create.disabled = busy
        self.create.description = "Creating…" if busy else "Create"
