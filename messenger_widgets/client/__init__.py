"""The client without widgets: `Session` talks to the worker, `state` holds what it said."""

from __future__ import annotations

from .session import Session, Uploader
from .state import (
    Change,
    ChangeKind,
    ChatMessage,
    Conversation,
    ConversationSummary,
    ErrorInfo,
    State,
    UserSummary,
    apply,
    conversation,
    conversation_list,
    total_unread,
)

__all__ = [
    "Change",
    "ChangeKind",
    "ChatMessage",
    "Conversation",
    "ConversationSummary",
    "ErrorInfo",
    "Session",
    "State",
    "Uploader",
    "UserSummary",
    "apply",
    "conversation",
    "conversation_list",
    "total_unread",
]
