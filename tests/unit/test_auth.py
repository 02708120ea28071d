"""Passwords are salted argon2 hashes; tokens are HS256 JWTs that only this secret can make."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from messenger_widgets.auth import Claims, Passwords, Tokens
from messenger_widgets.errors import ExpiredToken, InvalidToken

SECRET = "unit-test-token-secret-" + "s" * 48  # 64+ bytes: no key-length warning for HS512
OTHER_SECRET = "another-token-secret-" + "o" * 48


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords.fast_for_tests()


# --- passwords ---------------------------------------------------------------------------


def test_hashes_are_salted_argon2id(passwords: Passwords) -> None:
    first, second = passwords.hash("correct horse"), passwords.hash("correct horse")
    assert first != second
    assert first.startswith("$argon2id$") and "correct horse" not in first
    assert passwords.verify(first, "correct horse")
    assert passwords.verify(second, "correct horse")


def test_wrong_password_fails(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse")
    assert not passwords.verify(stored, "correct hors")
    assert not passwords.verify(stored, "Correct horse")
    assert not passwords.verify(stored, "")


def test_long_multibyte_passwords_are_not_truncated(passwords: Passwords) -> None:
    password = "é" * 100 + "x" * 28  # 128 characters, 228 bytes: bcrypt would cut at 72
    stored = passwords.hash(password)
    assert passwords.verify(stored, password)
    assert not passwords.verify(stored, "é" * 100 + "x" * 27 + "y")


def test_verify_without_a_hash_is_always_false(passwords: Passwords) -> None:
    assert not passwords.verify(None, "anything at all")
    # even the password of the internal dummy hash must not open an unknown account
    assert not passwords.verify(None, "not a real password, only spends the same time")


@pytest.mark.parametrize("stored", ["", "plain-text", "$argon2id$v=19$garbage"])
def test_verify_against_a_corrupt_hash_is_false(passwords: Passwords, stored: str) -> None:
    assert not passwords.verify(stored, "plain-text")


# --- tokens ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        # PyJWT checks `iat` against the real time, so tests move from now backwards.
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(clock: Clock) -> Tokens:
    return Tokens(SECRET, 3600, clock=clock)


def payload(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def signed(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims_at(now: datetime, **changes: Any) -> dict[str, Any]:
    base = {"sub": "u1", "sid": "s1", "iat": now, "exp": now + timedelta(hours=1)}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def test_token_round_trip(tokens: Tokens, clock: Clock) -> None:
    token, expires = tokens.issue("user-1", "session-1")
    assert expires == clock.now + timedelta(hours=1)
    assert tokens.verify(token) == Claims("user-1", "session-1", expires)
    assert payload(token)["sub"] == "user-1" and payload(token)["sid"] == "session-1"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_another_instance_with_the_same_secret_accepts_the_token(clock: Clock) -> None:
    token, _ = Tokens(SECRET, 60, clock=clock).issue("u", "s")
    assert Tokens(SECRET, 9999, clock=clock).verify(token).session_id == "s"


def test_expired_token_carries_user_and_session(tokens: Tokens, clock: Clock) -> None:
    clock.now -= timedelta(hours=2)
    token, expires = tokens.issue("user-1", "session-1")
    clock.now += timedelta(hours=2)
    with pytest.raises(ExpiredToken) as info:
        tokens.verify(token)
    assert (info.value.user_id, info.value.session_id) == ("user-1", "session-1")
    assert expires < clock.now


def test_token_expires_exactly_at_its_expiry(tokens: Tokens, clock: Clock) -> None:
    clock.now -= timedelta(hours=1)
    token, expires = tokens.issue("u", "s")
    clock.now = expires - timedelta(seconds=1)
    assert tokens.verify(token).user_id == "u"
    clock.now = expires
    with pytest.raises(ExpiredToken):
        tokens.verify(token)


def rejected(tokens: Tokens, token: str) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        tokens.verify(token)
    assert not isinstance(info.value, ExpiredToken)
    return info.value


def test_wrong_key_is_invalid_even_when_expired(tokens: Tokens, clock: Clock) -> None:
    forged, _ = Tokens(OTHER_SECRET, 3600, clock=clock).issue("u1", "s1")
    rejected(tokens, forged)
    clock.now -= timedelta(hours=3)
    old_forged, _ = Tokens(OTHER_SECRET, 3600, clock=clock).issue("u1", "s1")
    clock.now += timedelta(hours=3)
    rejected(tokens, old_forged)  # a forged token must not learn it "expired"


def test_alg_none_is_invalid(tokens: Tokens, clock: Clock) -> None:
    body = {"sub": "u1", "sid": "s1", "iat": int(clock.now.timestamp()), "exp": 4_000_000_000}
    rejected(tokens, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(body)}.")
    rejected(tokens, jwt.encode(body, None, algorithm="none"))


def test_other_hmac_algorithm_with_the_right_secret_is_invalid(
    tokens: Tokens, clock: Clock
) -> None:
    rejected(tokens, signed(claims_at(clock.now), algorithm="HS512"))
    rejected(tokens, signed(claims_at(clock.now), algorithm="HS384"))


@pytest.mark.parametrize(
    "changes",
    [
        {"sid": None},
        {"sub": None},
        {"exp": None},
        {"iat": None},
        {"sid": ""},
        {"sub": ""},
        {"sid": 5},
        {"sub": 5},
        {"exp": "tomorrow"},
        {"exp": 10**20},
    ],
    ids=repr,
)
def test_missing_or_malformed_claims_are_invalid(
    tokens: Tokens, clock: Clock, changes: dict[str, Any]
) -> None:
    rejected(tokens, signed(claims_at(clock.now, **changes)))


def test_tampered_payload_is_invalid(tokens: Tokens) -> None:
    token, _ = tokens.issue("user-1", "session-1")
    header, body, signature = token.split(".")
    claims = payload(token) | {"sub": "admin"}
    rejected(tokens, f"{header}.{b64(claims)}.{signature}")
    rejected(tokens, f"{header}.{body}.{signature[:-2]}AA")


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b"])
def test_garbage_is_invalid(tokens: Tokens, token: str) -> None:
    rejected(tokens, token)


def test_a_secret_is_required() -> None:
    with pytest.raises(ValueError):
        Tokens("", 60)


# --- session ids -------------------------------------------------------------------------


def test_session_id_for_is_deterministic_hex_and_keyed(tokens: Tokens) -> None:
    first = tokens.session_id_for("request-1")
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert tokens.session_id_for("request-1") == first
    assert Tokens(SECRET, 1).session_id_for("request-1") == first
    assert tokens.session_id_for("request-2") != first
    assert Tokens(OTHER_SECRET, 3600).session_id_for("request-1") != first
