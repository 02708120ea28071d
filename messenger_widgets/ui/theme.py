"""The page theme: one <style> widget, and the `msgr-dark` class on the app root.

The CSS lives in theme.css (shipped as package data); it is injected through an HTML widget
because a Voila page has no other place for app CSS. It is our own constant text, never
built from user data.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import ipywidgets as w

from .widgets import classed

DARK = "msgr-dark"


@cache
def css() -> str:
    return resources.files(__package__).joinpath("theme.css").read_text(encoding="utf-8")


def style_widget() -> Any:
    return classed(w.HTML(value=f"<style>{css()}</style>"), "msgr-style")


def apply(root: Any, dark: bool) -> None:
    """Dark on: the root carries `msgr-dark`, which the CSS turns into a whole-page theme."""
    if dark and DARK not in root._dom_classes:
        root.add_class(DARK)
    elif not dark and DARK in root._dom_classes:
        root.remove_class(DARK)
