"""messenger-widgets: a queue-decoupled messenger with an ipywidgets front end.

`from messenger_widgets import Messenger; Messenger()` in a notebook builds the app.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Messenger", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported lazily so the worker and CLI never pay for ipywidgets.
    if name == "Messenger":
        from .ui.app import Messenger

        return Messenger
    raise AttributeError(name)
