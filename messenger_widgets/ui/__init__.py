"""The ipywidgets front end: `Messenger` (app.py) and the panels it switches between."""

from __future__ import annotations

from .app import Messenger

__all__ = ["Messenger"]
