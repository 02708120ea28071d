"""Passwords (argon2id) and session tokens (JWT, HS256).

argon2 rather than bcrypt because bcrypt silently truncates at 72 bytes and the contract
allows 128-character passwords. Tokens carry the user id (`sub`), the session id (`sid`)
and an expiry; only HS256 is accepted, so `alg: none` and algorithm swaps fail.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import ExpiredToken, InvalidToken

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "sid", "exp", "iat")
SESSION_ID_HEX = 32  # 128 bits


class Passwords:
    """Salted, slow hashes. Parameters are injectable so tests can make them cheap."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against when the email is unknown, so both failures cost the same time.
        self._dummy = self._hasher.hash("not a real password, only spends the same time")

    @classmethod
    def fast_for_tests(cls) -> Passwords:
        return cls(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

    def hash(self, password: str) -> str:
        return str(self._hasher.hash(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash or self._dummy, password)) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class Claims:
    user_id: str
    session_id: str
    expires_at: datetime


class Tokens:
    """Issue and verify session tokens with one secret."""

    def __init__(
        self, secret: str, ttl_seconds: int, clock: Callable[[], datetime] | None = None
    ) -> None:
        if not secret:
            raise ValueError("a token secret is required")
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock or (lambda: datetime.now(UTC))

    def issue(self, user_id: str, session_id: str) -> tuple[str, datetime]:
        now = self._clock()
        expires = now + self._ttl
        payload = {"sub": user_id, "sid": session_id, "iat": now, "exp": expires}
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), expires

    def verify(self, token: str) -> Claims:
        """Return the claims; raise `ExpiredToken` (signature good, time up) or `InvalidToken`."""
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {type(exc).__name__}") from None
        user_id, session_id, exp = payload.get("sub"), payload.get("sid"), payload.get("exp")
        if not isinstance(user_id, str) or not isinstance(session_id, str):
            raise InvalidToken("token claims are malformed")
        if not user_id or not session_id:
            raise InvalidToken("token claims are malformed")
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise InvalidToken("token expiry is malformed")
        try:
            expires_at = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidToken("token expiry is malformed") from None
        if expires_at <= self._clock():
            raise ExpiredToken("session expired", user_id, session_id)
        return Claims(user_id, session_id, expires_at)

    def session_id_for(self, request_id: str) -> str:
        """A session id that is unguessable yet the same when a login request is redelivered."""
        digest = hmac.new(self._secret.encode(), b"session:" + request_id.encode(), hashlib.sha256)
        return digest.hexdigest()[:SESSION_ID_HEX]
