"""Page object for the messenger UI: every CSS hook the browser tests use is named here.

The UI marks its widgets with `add_class("msgr-...")`; ipywidgets puts the class on the
widget's element, so for text fields the <input>/<textarea> is inside the marked element.
Everything waits for a condition (Playwright's auto-waiting `expect`), never for a time.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Dialog, Locator, Page, expect

PAGE_READY_MS = 90_000  # Voila: kernel start + notebook execution + widget render
ROUND_TRIP_MS = 30_000  # a request through the queues and back, on a busy 2-core machine

DARK_CLASS = re.compile(r"(^|\s)msgr-dark(\s|$)")
NONZERO_BADGE = re.compile(r"[1-9]")


class App:
    """One user's browser tab (its own context, so its own Voila kernel)."""

    def __init__(self, page: Page, base_url: str, label: str) -> None:
        self.page = page
        self.base_url = base_url
        self.label = label
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        """Close the tab as a person does: `beforeunload` lets Voila shut the kernel down."""
        if not self.page.is_closed():
            with self.page.expect_event("close", timeout=10_000):
                self.page.close(run_before_unload=True)
        self.page.context.close()

    # --- navigation ---------------------------------------------------------------------------
    def goto(self) -> None:
        self.page.goto(self.base_url, wait_until="commit", timeout=PAGE_READY_MS)

    def wait_ready(self) -> None:
        expect(self.css("msgr-login")).to_be_visible(timeout=PAGE_READY_MS)

    # --- locators -----------------------------------------------------------------------------
    def css(self, cls: str) -> Locator:
        return self.page.locator(f".{cls}").first

    def all(self, cls: str) -> Locator:
        return self.page.locator(f".{cls}")

    def field(self, cls: str) -> Locator:
        """The editable element of a Text/Password/Textarea widget marked `cls`."""
        return self.page.locator(
            f".{cls} input, .{cls} textarea, input.{cls}, textarea.{cls}"
        ).first

    @property
    def root(self) -> Locator:
        return self.css("msgr-app")

    @property
    def thread(self) -> Locator:
        return self.css("msgr-thread")

    def messages(self) -> Locator:
        return self.thread.locator(".msgr-message")

    def message(self, text: str, direction: str | None = None) -> Locator:
        kind = f".msgr-{direction}" if direction else ".msgr-message"
        return self.thread.locator(f".msgr-message{kind}", has_text=text).first

    def user_rows(self, name: str) -> Locator:
        return self.page.locator(".msgr-user", has_text=name)

    def row(self, name: str) -> Locator:
        """The shown row naming `name` (search results and conversations never show together)."""
        return self.user_rows(name).filter(visible=True).first

    def badges(self, name: str) -> Locator:
        """Visible unread badges with a count > 0 on any row naming `name`."""
        return (
            self.user_rows(name)
            .locator(".msgr-unread")
            .filter(visible=True)
            .filter(has_text=NONZERO_BADGE)
        )

    def images(self, direction: str) -> Locator:
        """Inline images in the thread's incoming/outgoing bubbles (the <img> is the widget)."""
        return self.thread.locator(f".msgr-{direction}").locator("img.msgr-image, .msgr-image img")

    def downloads(self, direction: str, name: str) -> Locator:
        return (
            self.thread.locator(f".msgr-{direction}")
            .locator("a.msgr-download, .msgr-download a")
            .filter(has_text=name)
        )

    # --- actions ------------------------------------------------------------------------------
    def fill(self, cls: str, value: str) -> None:
        box = self.field(cls)
        box.fill(value)
        # `change` too, so a widget with continuous_update=False syncs its value as well
        box.dispatch_event("change")

    def click(self, cls: str) -> None:
        self.css(cls).click()

    def go_to_register(self) -> None:
        self.click("msgr-goto-register")
        expect(self.css("msgr-register")).to_be_visible()

    def fill_register(self, first: str, last: str, email: str, password: str) -> None:
        self.fill("msgr-register-first", first)
        self.fill("msgr-register-last", last)
        self.fill("msgr-register-email", email)
        self.fill("msgr-register-password", password)
        self.fill("msgr-register-confirm", password)

    def register(self, user: Any) -> None:
        """Register through the form; the app then shows login with the email filled in."""
        self.go_to_register()
        self.fill_register(user.first, user.last, user.email, user.password)
        self.click("msgr-register-submit")
        expect(self.css("msgr-login")).to_be_visible(timeout=ROUND_TRIP_MS)

    def login(self, user: Any) -> None:
        if self.css("msgr-home").is_visible():
            return
        self.fill("msgr-login-email", user.email)
        self.fill("msgr-login-password", user.password)
        self.click("msgr-login-submit")
        expect(self.css("msgr-home")).to_be_visible(timeout=ROUND_TRIP_MS)

    def search(self, text: str) -> None:
        self.fill("msgr-search", text)
        self.click("msgr-search-submit")

    def find(self, name: str, query: str | None = None) -> Locator:
        """Search everyone and wait for the row naming `name`."""
        self.search(query if query is not None else name)
        row = self.row(name)
        expect(row).to_be_visible(timeout=ROUND_TRIP_MS)
        return row

    def open_conversation(self, name: str, query: str | None = None) -> None:
        """Open the thread with `name`: click their shown row, or search for them first."""
        row = self.row(name)
        if not row.is_visible():
            row = self.find(name, query)
        target = row.locator("button").first if row.locator("button").count() else row
        target.click()
        expect(self.css("msgr-thread-title")).to_have_text(name, timeout=ROUND_TRIP_MS)
        expect(self.field("msgr-composer")).to_be_enabled(timeout=ROUND_TRIP_MS)

    def send(self, text: str, *, expect_shown: str | None = None) -> None:
        """Send a text and wait for it in the thread as an outgoing message."""
        self.fill("msgr-composer", text)
        self.click("msgr-send")
        expect(self.message(expect_shown or text, "outgoing")).to_be_visible(timeout=ROUND_TRIP_MS)

    def attach(self, path: str) -> None:
        """Pick a file in the FileUpload (ipywidgets 8 never puts its <input> in the page)."""
        with self.page.expect_file_chooser() as chooser:
            self.click("msgr-attach")
        chooser.value.set_files(path)

    def toggle_dark(self) -> None:
        toggle = self.css("msgr-dark-toggle")
        box = toggle.locator("input[type=checkbox]")
        (box.first if box.count() else toggle).click()

    def toggle_hood(self) -> None:
        """Switch the "Under the hood" panel (a ToggleButton in the header)."""
        self.click("msgr-hood-toggle")

    def hood_entries(self, label: str) -> Locator:
        """Rows of the hood's SQS log whose method/action cell is exactly `label`."""
        what = self.page.locator(".msgr-hood-what", has_text=re.compile(f"^{re.escape(label)}$"))
        return self.all("msgr-hood-entry").filter(has=what)

    # --- groups (v1.1) -------------------------------------------------------------------------
    def group_row(self, name: str) -> Locator:
        """Every group row naming `name` (a group row is `msgr-user msgr-group`)."""
        return self.page.locator(".msgr-user.msgr-group", has_text=name)

    def create_group(self, name: str, members: list[str]) -> None:
        """New group: name it, tick `members` (people this tab already knows), create; the
        new group opens in this tab."""
        self.click("msgr-new-group")
        expect(self.css("msgr-group-form")).to_be_visible()
        self.fill("msgr-group-name", name)
        for member in members:
            box = self.all("msgr-group-member").filter(has_text=member).first
            box.locator("input[type=checkbox]").check()
        self.click("msgr-group-create")
        expect(self.css("msgr-group-form")).to_be_hidden(timeout=ROUND_TRIP_MS)
        expect(self.css("msgr-thread-title")).to_have_text(name, timeout=ROUND_TRIP_MS)
        expect(self.css("msgr-group-leave")).to_be_visible()

    def sender_of(self, text: str) -> Locator:
        """The sender label of the incoming group bubble holding `text`."""
        return self.message(text, "incoming").locator(".msgr-sender")

    def leave_group(self, name: str) -> None:
        self.click("msgr-group-leave")
        expect(self.group_row(name)).to_have_count(0, timeout=ROUND_TRIP_MS)

    def logout(self) -> None:
        self.click("msgr-logout")
        expect(self.css("msgr-login")).to_be_visible(timeout=ROUND_TRIP_MS)

    # --- reading the page ----------------------------------------------------------------------
    def is_dark(self) -> bool:
        return bool(DARK_CLASS.search(self.root.get_attribute("class") or ""))

    def background_luminance(self) -> float:
        """Relative luminance (0 black .. 1 white) of what shows behind the page content."""
        value: float = self.page.evaluate(
            """() => {
                const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
                for (const el of [document.body, document.documentElement]) {
                    const [r, g, b, a = 1] = parse(getComputedStyle(el).backgroundColor);
                    if (a > 0) {
                        const lin = (v) => { v /= 255;
                            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
                        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
                    }
                }
                return 1;  // both transparent: the canvas is white
            }"""
        )
        return value

    def pwned(self) -> Any:
        return self.page.evaluate("() => window.__pwned")

    def overflow(self, locator: Locator) -> int:
        """How many px the element's content is wider than its box (0 if it fits)."""
        value: int = locator.evaluate("el => el.scrollWidth - el.clientWidth")
        return value
