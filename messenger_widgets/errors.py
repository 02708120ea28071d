"""One error hierarchy for the whole package.

Handlers raise `RequestError` subclasses, which carry the HTTP-like status the wire contract
puts in `statusCode`; everything else says what went wrong in a domain word so callers never
have to inspect botocore or sqlite exceptions.
"""

from __future__ import annotations


class MessengerError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(MessengerError):
    """A setting is missing or malformed; the message is one line naming the variable."""


class DecodeError(MessengerError):
    """Bytes from a queue could not be turned into a request, reply or push.

    `hints` keeps the message attributes that could be read, so the worker can still answer
    the sender (a reply for register/login, an `error` push for a live session).
    """

    def __init__(self, message: str, hints: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.hints = dict(hints or {})


class StoreError(MessengerError):
    """The store could not complete an operation (unavailable, locked, corrupt)."""


class AlreadyExists(StoreError):
    """A unique key (email, session id, idempotency key) is already taken."""


class NotFound(StoreError):
    """A record the caller named does not exist."""


class TransportError(MessengerError):
    """A queue operation failed after retries."""


class QueueGone(TransportError):
    """The queue no longer exists (a session queue deleted by logout or expiry)."""


class AttachmentError(MessengerError):
    """An attachment was refused (too large, wrong type, missing) or S3 failed."""


class ReplyTimeout(MessengerError):
    """No reply to a register/login request arrived in time."""


class RequestError(MessengerError):
    """A request was understood but refused; `status` goes into `statusCode`."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(RequestError):
    status = 400


class Unauthorized(RequestError):
    status = 401


class Forbidden(RequestError):
    """Understood and about something that exists, but not the caller's (a group they are
    not a member of)."""

    status = 403


class PayloadTooLarge(RequestError):
    status = 413


class Throttled(RequestError):
    status = 429


class DeadLetter(MessengerError):
    """The request must go to the DLQ: nobody can be answered (forged token, dead session)."""


class InvalidToken(MessengerError):
    """A token whose signature, algorithm or claims cannot be trusted."""


class ExpiredToken(InvalidToken):
    """A correctly signed token past its expiry: its session can still be told so."""

    def __init__(self, message: str, user_id: str, session_id: str) -> None:
        super().__init__(message)
        self.user_id = user_id
        self.session_id = session_id
