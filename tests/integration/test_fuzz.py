"""Hostile requests, sent with raw boto3 to the requests queue of a running worker process.

A fixed corpus (bad characters, deep JSON, huge numbers, bodies near and over 256 KiB,
attribute injection, forged tokens) and hypothesis-generated requests (a wrong type in every
field of every method; random controller/method/attribute sets). Between every two bad
requests, a valid message goes from one logged-in user to the other.

Each bad request is sent alone and its outcome awaited before the next, so every outcome is
attributed: a 4xx reply (register/login), a 4xx `error` push on the live session named by
the token, or the DLQ (found by the unique marker `fz-...` in its body). At the end of each
test: no unattributed error push, exactly the expected markers in the DLQ (each once), every
valid message delivered to its recipient and acknowledged to its sender under one
messageID, stored once (history), the requests queue empty and the worker process alive.

CI size: 30 hypothesis examples per property; MESSENGER_FUZZ_EXAMPLES=500 for a bench.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import unicodedata
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import jwt
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messenger_widgets.config import Settings
from messenger_widgets.protocol import MAX_JSON_DEPTH, MAX_SQS_MESSAGE_BYTES, MAX_TEXT_CHARS
from messenger_widgets.provision import Resources

from ..conftest import REGION
from .conftest import SECRET
from .rawclient import Login, Push, RawClient

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("worker_process")]

EXAMPLES = int(os.environ.get("MESSENGER_FUZZ_EXAMPLES", "30"))
OUTCOME_TIMEOUT = 30.0  # one bad request's answer; SQS redrive alone would take ~31 s
ONE_MIB = 1 << 20
MARKER = re.compile(r"fz-[0-9a-f]{12}")
PASSWORD = "correct horse battery"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # a shared checkout: no .hypothesis directory
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Characters worth trying in a queue message. SQS documents the characters it accepts as
# #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF; the probe below shows
# what the endpoint in use really refuses, and only the rest is sent to the worker.
HOSTILE_CHARS = (
    "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\x9f",
    "\ud800", "\udbff", "\udc00", "\udfff", "\ufffe", "\uffff", "\ufdd0", "\ufeff",
    "\u200b", "\u202e", "\u2028", "\ufffd", "\U0001f600", "\U0010ffff", "\t", "\n", "\r",
)  # fmt: skip


def sqs_documented(text: str) -> bool:
    return all(
        c in "\t\n\r"
        or "\x20" <= c <= "\ud7ff"
        or "\ue000" <= c <= "\ufffd"
        or "\U00010000" <= c <= "\U0010ffff"
        for c in text
    )


def string(value: str, data_type: str = "String") -> dict[str, Any]:
    return {"DataType": data_type, "StringValue": value}


def forge(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():  # HS512 with the 56-byte test secret: short, on purpose
        warnings.simplefilter("ignore")
        return jwt.encode(claims, key, algorithm=algorithm)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@dataclass
class Case:
    """One bad request and the outcome the contract demands for it."""

    label: str
    controller: str | None
    method: str | None
    body: str
    expect: str  # "reply" | "error" | "dlq"
    token: str | None = None
    status: int | None = None  # exact status, or any 4xx when None
    who: Login | None = None  # whose session gets the error push (default: ada)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)


class Fuzz:
    """Sends bad requests one at a time, attributes every outcome, interleaves valid chat."""

    def __init__(self, raw: RawClient, dlq_url: str, ada: Login, bob: Login, worker: Any) -> None:
        self.raw, self.dlq_url, self.ada, self.bob, self.worker = raw, dlq_url, ada, bob, worker
        self.run = uuid.uuid4().hex[:6]
        self.pushes: dict[str, list[Push]] = {}  # non-error pushes, per session queue
        self.errors: dict[str, list[Push]] = {}  # error pushes not yet attributed
        self.dead: Counter[str] = Counter()  # marker -> copies seen in the DLQ
        self.expected_dead: set[str] = set()
        self.valid: list[tuple[Login, Login, str, str]] = []  # sender, recipient, text, cid
        self.checked = 0  # valid messages already verified by an earlier `finish`
        self.stats: Counter[str] = Counter()
        self.unsendable: list[str] = []  # bodies the worker sent that AWS SQS would refuse
        for login in (ada, bob):
            self.watch(login)

    def watch(self, login: Login) -> None:
        self.pushes.setdefault(login.url, [])
        self.errors.setdefault(login.url, [])

    @staticmethod
    def marker() -> str:
        return f"fz-{uuid.uuid4().hex[:12]}"

    def send(self, attributes: dict[str, dict[str, Any]], body: str) -> str:
        response = self.raw.sqs.send_message(
            QueueUrl=self.raw.request_url, MessageBody=body, MessageAttributes=attributes
        )
        return str(response["MessageId"])

    def poll(self) -> None:
        for url in self.pushes:
            got = self.raw.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for m in got:
                if not sqs_documented(m["Body"]):
                    self.unsendable.append(m["Body"][:300])
                attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
                push = Push(attrs["action"], int(attrs["statusCode"]), json.loads(m["Body"]))
                (self.errors if push.action == "error" else self.pushes)[url].append(push)
            if got:
                self.raw.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(got)
                    ],
                )
        got = self.raw.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for m in got:
            self.dead.update(set(MARKER.findall(m["Body"])))
        if got:
            self.raw.sqs.delete_message_batch(
                QueueUrl=self.dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )

    def bad(self, case: Case) -> None:
        markers = set(MARKER.findall(case.body))
        assert len(markers) == 1, f"{case.label}: a case needs exactly one marker"
        (marker,) = markers
        attrs = dict(case.extra)
        for name, value in (
            ("controller", case.controller),
            ("method", case.method),
            ("token", case.token),
        ):
            if value is not None:
                attrs[name] = string(value)
        echo = attrs.get("method", {}).get("StringValue", "")  # an error push names it
        started = time.monotonic()
        message_id = self.send(attrs, case.body)
        where = f"{case.label} ({marker})"
        if case.expect == "reply":
            status, body = self.raw.reply(message_id, OUTCOME_TIMEOUT)
            self._status(where, status, case.status)
            assert isinstance(body.get("message"), str), where
        else:
            url = (case.who or self.ada).url
            deadline = time.monotonic() + OUTCOME_TIMEOUT
            while True:
                self.poll()
                if case.expect == "error" and self.errors[url]:
                    push = self.errors[url].pop(0)
                    self._status(where, push.status, case.status)
                    assert push.body["method"] == echo, where
                    break
                if case.expect == "dlq" and self.dead[marker]:
                    self.expected_dead.add(marker)
                    break
                assert time.monotonic() < deadline, f"{where}: no {case.expect} in time"
                time.sleep(0.05)
        self.stats[case.expect] += 1
        self.stats["slowest_ms"] = max(
            self.stats["slowest_ms"], int((time.monotonic() - started) * 1000)
        )
        self.chat()

    @staticmethod
    def _status(where: str, got: int, want: int | None) -> None:
        if want is None:
            assert 400 <= got < 500, f"{where}: status {got}"
        else:
            assert got == want, f"{where}: status {got}, wanted {want}"

    def chat(self, extra: dict[str, dict[str, Any]] | None = None, tail: str = "") -> None:
        """One valid message, alternating ada -> bob and bob -> ada; unique text and cid."""
        n = len(self.valid)
        sender, recipient = (self.ada, self.bob) if n % 2 == 0 else (self.bob, self.ada)
        text, cid = f"valid {self.run} #{n}{tail}", f"cid-{self.run}-{n}"
        body = {"body": text, "userID": recipient.user_id, "name": "", "clientMessageId": cid}
        attrs = {
            **(extra or {}),
            "controller": string("message"),
            "method": string("add"),
            "token": string(sender.token),
        }
        self.send(attrs, json.dumps(body))
        self.valid.append((sender, recipient, text, cid))

    def finish(self) -> None:
        """Everything so far is accounted for; the worker is alive; the queue is empty."""
        self.raw.settle(60)
        fresh = self.valid[self.checked :]

        def texts(url: str) -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for p in self.pushes[url]:
                if p.action == "message":
                    out.setdefault(p.body["body"], set()).add(p.body["messageID"])
            return out

        def acks(url: str) -> dict[str, set[str]]:
            out: dict[str, set[str]] = {}
            for p in self.pushes[url]:
                if p.action == "sent":
                    out.setdefault(p.body["clientMessageId"], set()).add(p.body["messageID"])
            return out

        deadline = time.monotonic() + 60
        while not all(
            text in texts(recipient.url) and cid in acks(sender.url)
            for sender, recipient, text, cid in fresh
        ):
            assert time.monotonic() < deadline, "valid messages were not all delivered"
            self.poll()
            time.sleep(0.1)
        end = time.monotonic() + 1.5  # late duplicates or stray answers would show up now
        while time.monotonic() < end:
            self.poll()
            time.sleep(0.1)

        for sender, recipient, text, cid in fresh:
            delivered = texts(recipient.url)[text]
            assert len(delivered) == 1, f"{text!r} delivered under {delivered}"
            assert acks(sender.url)[cid] == delivered, f"{text!r}: ack and delivery disagree"
        wanted = {text for _, _, text, _ in self.valid}
        for url in (self.ada.url, self.bob.url):
            strays = set(texts(url)) - wanted
            assert not strays, f"messages nobody validly sent were delivered: {strays}"
        assert not self.unsendable, f"pushes AWS SQS would refuse: {self.unsendable}"
        unattributed = {url: ps for url, ps in self.errors.items() if ps}
        assert not unattributed, f"error pushes no bad request accounts for: {unattributed}"
        assert set(self.dead) == self.expected_dead, "unexpected dead letters"
        assert all(n == 1 for n in self.dead.values()), f"dead-lettered twice: {self.dead}"

        stored = self.history()
        assert sorted(m["body"] for m in stored) == sorted(wanted), "stored != validly sent"
        assert [m["order"] for m in stored] == list(range(1, len(stored) + 1))
        assert len({m["messageID"] for m in stored}) == len(stored)

        assert self.worker.poll() is None, "the worker process died"
        assert self.raw.depth(self.raw.request_url) == 0
        self.checked = len(self.valid)
        for pushes in self.pushes.values():
            pushes.clear()

    def history(self) -> list[dict[str, Any]]:
        """The ada-bob conversation as stored, paged through `history` on ada's session."""
        out: list[dict[str, Any]] = []
        before = None
        while True:
            body: dict[str, Any] = {"userID": self.bob.user_id, "limit": 100}
            if before:
                body["beforeOrder"] = before
            self.raw.send("message", "history", body, self.ada.token)
            deadline = time.monotonic() + OUTCOME_TIMEOUT
            page = None
            while page is None:
                assert time.monotonic() < deadline, "no history push"
                self.poll()
                found = [p for p in self.pushes[self.ada.url] if p.action == "history"]
                if found:
                    page = found[0].body
                    self.pushes[self.ada.url].remove(found[0])
            out = page["messages"] + out
            if not page["hasMore"]:
                return out
            before = page["messages"][0]["order"]


@pytest.fixture(scope="module")
def raw(stack: tuple[Settings, Resources]) -> RawClient:
    settings, resources = stack
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=settings.endpoint_url)
    # SQS now allows up to 1 MiB per message and an operator may raise the requests queue to
    # it: the worker must still answer or dead-letter what arrives.
    sqs.set_queue_attributes(
        QueueUrl=resources.request_queue_url, Attributes={"MaximumMessageSize": str(ONE_MIB)}
    )
    return RawClient(sqs, resources.request_queue_url, resources.response_queue_url)


@pytest.fixture(scope="module")
def fuzz(raw: RawClient, stack: tuple[Settings, Resources], worker_process: Any) -> Iterator[Fuzz]:
    ada, bob = raw.user("Ada", "Fuzz", PASSWORD), raw.user("Bob", "Fuzz", PASSWORD)
    harness = Fuzz(raw, stack[1].dead_letter_queue_url, ada, bob, worker_process)
    yield harness
    print(f"\nfuzz: {dict(harness.stats)}, {len(harness.valid)} valid messages")


@pytest.fixture(scope="module")
def sqs_accepts(stack: tuple[Settings, Resources]) -> dict[str, bool]:
    """Which hostile characters the SQS endpoint accepts in a body, probed on a scratch queue.

    A refused character never reaches the worker. (moto answers a lone surrogate with a 500
    after storing the message, which then breaks every receive of that queue: never send
    one to a queue a worker reads.)
    """
    settings, _ = stack
    sqs = boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=settings.endpoint_url,
        config=Config(retries={"max_attempts": 1}),
    )
    url = sqs.create_queue(QueueName=f"fuzz-probe-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    accepted: dict[str, bool] = {}
    server_log = logging.getLogger("werkzeug")  # moto's 500s would print tracebacks
    level = server_log.level
    server_log.setLevel(logging.CRITICAL)
    try:
        for char in HOSTILE_CHARS:
            try:
                sqs.send_message(QueueUrl=url, MessageBody=f"x{char}x")
                accepted[char] = True
            except ClientError:
                accepted[char] = False
    finally:
        server_log.setLevel(level)
        sqs.delete_queue(QueueUrl=url)
    return accepted


# --- the characters SQS refuses ---------------------------------------------------------------
def test_sqs_refuses_invalid_utf8_and_lone_surrogates_before_any_worker_sees_them(
    stack: tuple[Settings, Resources], sqs_accepts: dict[str, bool]
) -> None:
    settings, resources = stack
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=settings.endpoint_url)
    # Bytes that are not UTF-8 cannot even be put in a request: boto3 refuses them locally.
    with pytest.raises(ParamValidationError):
        sqs.send_message(QueueUrl=resources.request_queue_url, MessageBody=b"\xff\xfe")  # type: ignore[arg-type]
    # Their Python stand-ins (surrogates, as `surrogateescape` makes them) are refused by SQS.
    refused = sorted(f"U+{ord(c):04X}" for c, ok in sqs_accepts.items() if not ok)
    beyond_docs = sorted(
        f"U+{ord(c):04X}" for c, ok in sqs_accepts.items() if ok and not sqs_documented(c)
    )
    print(f"\nSQS endpoint refused {refused}; accepted outside the documented set: {beyond_docs}")
    assert all(not sqs_accepts[c] for c in HOSTILE_CHARS if unicodedata.category(c) == "Cs")
    assert all(sqs_accepts[c] for c in HOSTILE_CHARS if sqs_documented(c))


# --- the fixed corpus -------------------------------------------------------------------------
def corpus(fuzz: Fuzz, carol: Login, accepted: list[str]) -> list[Case]:
    ada, bob = fuzz.ada, fuzz.bob
    m = fuzz.marker
    cases: list[Case] = []

    def add(label: str, body: Any, expect: str = "error", **kw: Any) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        kw.setdefault("controller", "message")
        kw.setdefault("method", "add")
        if expect == "error":
            kw.setdefault("token", ada.token)
        cases.append(Case(label, body=text, expect=expect, **kw))

    def msg(marker: str, text: Any = None, **more: Any) -> dict[str, Any]:
        body = text if text is not None else marker
        return {"body": body, "userID": bob.user_id, "fuzzMarker": marker, **more}

    # Characters: raw inside JSON (control characters make it invalid JSON), and in names.
    for c in accepted:
        mk, code = m(), f"U+{ord(c):04X}"
        raw_json = '{"body":"' + mk + c + '","userID":"' + bob.user_id + '"}'
        if unicodedata.category(c) != "Cc" or c in "\t\n\r":
            continue  # an ordinary character: it travels in a valid message (see the test)
        if c < "\x20":  # JSON forbids raw C0 controls in strings; DEL and C1 are legal JSON
            add(f"raw {code} in a JSON string", raw_json, status=400)
            add(
                f"raw {code} in a JSON string, forged token",
                raw_json.replace(mk, m()),
                "dlq",
                token="x.y.z",
            )
        fname = {"fName": f"A{c}b", "lName": mk, "email": f"{mk}@example.com", "password": PASSWORD}
        add(f"{code} in fName", fname, "reply", controller="user", method="register", status=400)
    # Escaped lone surrogates: legal JSON text, but no string SQS or UTF-8 can carry.
    for esc in ("\\ud800", "\\udfff", "\\udbff\\u0041"):
        mk = m()
        body = '{"body":"' + mk + esc + '","userID":"' + bob.user_id + '"}'
        add(f"escaped {esc} in text", body, status=400)
        add(
            f"escaped {esc} in register",
            '{"fName":"' + esc + '","lName":"' + mk + '"}',
            "reply",
            controller="user",
            method="register",
            status=400,
        )
        add(
            f"escaped {esc} in login",
            '{"email":"' + mk + esc + '","password":"x"}',
            "reply",
            controller="user",
            method="login",
            status=400,
        )
        add(f"escaped {esc} as a key", '{"' + esc + '":1,"m":"' + mk + '"}', "dlq")
    # Deep JSON.
    for depth in (MAX_JSON_DEPTH + 1, 1000, 100_000):
        mk = m()
        deep = '{"m":"' + mk + '","x":' + "[" * depth + "]" * depth + "}"
        add(f"depth {depth}", deep, status=400)
        add(f"depth {depth} login", deep, "reply", controller="user", method="login", status=400)
        add(f"depth {depth} without token", deep.replace(mk, m()), "dlq")
    # Huge numbers.
    for label, number in (
        ("1e400", "1e400"),
        ("-1e400", "-1e400"),
        ("10**5000", "1" + "0" * 5000),
        ("10**4000", "1" + "0" * 4000),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("1e-400", "1e-400"),
        ("-0", "-0"),
        ("2**53+1", str(2**53 + 1)),
    ):
        mk = m()
        history = '{"userID":"' + bob.user_id + '","m":"' + mk + '","beforeOrder":' + number + "}"
        add(f"history beforeOrder {label}", history, method="history", status=400)
        dark = '{"darkModeState":' + number + ',"m":"' + m() + '"}'
        add(
            f"darkModeState {label}", dark, controller="user", method="setDarkModeState", status=400
        )
        register = '{"fName":' + number + ',"lName":"' + m() + '"}'
        add(f"fName {label}", register, "reply", controller="user", method="register", status=400)
    # Sizes: near 256 KiB, exactly 256 KiB with the attributes, and 1 MiB.
    near = MAX_SQS_MESSAGE_BYTES - 2048
    for label, size in (("near 256 KiB", near), ("1 MiB", ONE_MIB)):
        mk = m()
        add(f"{label} text", msg(mk, mk + "x" * (size - 200)), status=413)
        add(f"{label} not JSON", mk + "{" * (size - 100))
        add(
            f"{label} register",
            {"fName": "x" * (size - 200), "lName": mk},
            "reply",
            controller="user",
            method="register",
            status=400,
        )
        add(
            f"{label} forged token",
            msg(m(), "y" * (size - 200)),
            "dlq",
            token=forge({**claims_of(ada.token)}, key="k" * 40),
        )
        add(f"{label} no token", {"m": m(), "pad": "z" * (size - 200)}, "dlq")
    forged_token = forge({**claims_of(ada.token)}, key="k" * 40)
    mk = m()
    exact_attrs = {"controller": "message", "method": "add", "token": forged_token}
    overhead = sum(len(k) + len(v) + len("String") for k, v in exact_attrs.items())
    exact = json.dumps({"m": mk, "pad": ""})
    exact = exact[:-2] + "p" * (MAX_SQS_MESSAGE_BYTES - overhead - len(exact)) + '"}'
    add("exactly 256 KiB with attributes, forged token", exact, "dlq", token=forged_token)
    # Attribute injection.
    ten = {f"x-{i}": string(f"extra {i}") for i in range(7)}
    add("10 attributes, bad body", msg(m(), 5), status=400, extra=ten)
    add("10 attributes, no valid token", msg(m()), "dlq", token="garbage", extra=ten)
    add(
        "binary token attribute",
        msg(m()),
        "dlq",
        extra={"token": {"DataType": "Binary", "BinaryValue": ada.token.encode()}},
    )
    add(
        "binary controller attribute",
        msg(m()),
        controller=None,
        status=400,
        extra={"controller": {"DataType": "Binary", "BinaryValue": b"message"}},
    )
    add(
        "Number method", msg(m()), method=None, status=400, extra={"method": string("12", "Number")}
    )
    add(
        "String.custom method, bad body",
        msg(m(), []),
        method=None,
        status=400,
        extra={"method": string("add", "String.fuzz")},
    )
    for controller, method in (
        ("mess\uff41ge", "add"),
        ("message", "add\u200b"),
        ("message", "ADD"),
        ("message", "add "),
        ("\u202emessage", "add"),
        ("message", "__class__"),
        ("message", "ad\u0301d"),
        ("user", "log\u0456n"),  # Cyrillic i
        ("user", "register\U0001f600"),
        ("message", "add\x00"),
    ):
        if not all(sqs_documented(c) or c in accepted for c in controller + method):
            continue
        add(
            f"{controller!r}/{method!r}", msg(m()), controller=controller, method=method, status=400
        )
        add(
            f"{controller!r}/{method!r} without token",
            msg(m()),
            "dlq",
            controller=controller,
            method=method,
        )
    add(
        "sessionUrl names bob's queue",
        msg(m(), 7),
        status=400,
        extra={"sessionUrl": string(bob.url)},
    )
    add("sessionUrl alone, no token", msg(m()), "dlq", extra={"sessionUrl": string(ada.url)})
    # Forged tokens.
    claims = claims_of(ada.token)
    past = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
    for label, token in (
        ("wrong key", forge(claims, key="k" * 40)),
        ("alg none", jwt.encode(claims, None, algorithm="none")),  # type: ignore[arg-type]
        ("HS512 with the right key", forge(claims, algorithm="HS512")),
        ("bob's sub with ada's sid", forge({**claims, "sub": bob.user_id})),
        ("unknown sid", forge({**claims, "sid": uuid.uuid4().hex})),
        ("sub is a number", forge({**claims, "sub": 7})),
        ("no exp", forge({k: v for k, v in claims.items() if k != "exp"})),
        ("exp 10**30", forge({**claims, "exp": 10**30})),
        ("expired, bob's sub with ada's sid", forge({**claims, "sub": bob.user_id, "exp": past})),
        ("truncated signature", ada.token[:-4]),
        ("garbage", "not.a.token"),
        ("huge", "e" * 50_000),
    ):
        add(f"token: {label}", msg(m()), "dlq", token=token)
    # A well-signed, expired token: 401 on its own session, which then ends for good.
    expired = forge({**claims_of(carol.token), "exp": past})
    add("expired token", msg(m()), status=401, token=expired, who=carol)
    add("the ended session's own token", msg(m()), "dlq", token=carol.token)
    return cases


def test_fixed_corpus_of_hostile_requests(
    fuzz: Fuzz, raw: RawClient, sqs_accepts: dict[str, bool]
) -> None:
    carol = raw.user("Carol", "Fuzz", PASSWORD)
    fuzz.watch(carol)
    accepted = [c for c, ok in sqs_accepts.items() if ok]
    # Every character the endpoint accepts also travels inside a valid message, verbatim.
    for c in accepted:
        fuzz.chat(tail=f" {c} U+{ord(c):04X}")
    fuzz.chat(extra={f"x-{i}": string(f"extra {i}") for i in range(7)}, tail=" 10 attributes")
    fuzz.chat(extra={"sessionUrl": string(fuzz.bob.url)}, tail=" sessionUrl")
    fuzz.chat(tail=" " + "w" * (MAX_TEXT_CHARS - 40))
    for case in corpus(fuzz, carol, accepted):
        fuzz.bad(case)
    fuzz.finish()


# --- hypothesis: a wrong type in every field of every method ----------------------------------
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**53 + 1, -(2**63), 10**300, 0, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# field -> (the methods it belongs to, whether a value is right for it)
STR_FIELDS = {"fName", "lName", "email", "password", "name", "userID", "body"}


def right(method: str, name: str, value: Any) -> bool:
    """Would `value` be acceptable for this field? (Generated cases keep only wrong ones.)"""
    if name in STR_FIELDS:
        return isinstance(value, str)
    if name == "clientMessageId":
        return value is None or isinstance(value, str)
    if name == "darkModeState":
        return isinstance(value, bool) or (value is None and method == "register")
    if name in ("beforeOrder", "limit"):
        high = 2**53 if name == "beforeOrder" else 100
        ok_int = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high
        return value is None or ok_int
    raise AssertionError(name)


def valid_bodies(fuzz: Fuzz, mk: str) -> dict[tuple[str, str], dict[str, Any]]:
    bob = fuzz.bob.user_id
    return {
        ("user", "register"): {
            "fName": "F",
            "lName": "T",
            "email": f"{mk}@example.com",
            "password": PASSWORD,
            "darkModeState": False,
        },
        ("user", "login"): {"email": f"{mk}@example.com", "password": PASSWORD},
        ("user", "setDarkModeState"): {"darkModeState": True},
        ("user", "searchUser"): {"name": "fuzz"},
        ("message", "add"): {"body": "hello", "userID": bob, "clientMessageId": mk},
        ("message", "selectSearchUser"): {"userID": bob},
        ("message", "markMessagesAsRead"): {"userID": bob},
        ("message", "history"): {"userID": bob, "beforeOrder": 5, "limit": 10},
    }


@st.composite
def wrong_typed(draw: st.DrawFn) -> tuple[tuple[str, str], str, Any, str]:
    method = draw(st.sampled_from(sorted(METHOD_FIELDS)))
    name = draw(st.sampled_from(METHOD_FIELDS[method]))
    value = draw(JSON_VALUES.filter(lambda v: not right(method[1], name, v)))
    token = draw(st.sampled_from(["ada", "none", "forged"]))
    return method, name, value, token


METHOD_FIELDS: dict[tuple[str, str], list[str]] = {
    ("user", "register"): ["fName", "lName", "email", "password", "darkModeState"],
    ("user", "login"): ["email", "password"],
    ("user", "setDarkModeState"): ["darkModeState"],
    ("user", "searchUser"): ["name"],
    ("message", "add"): ["body", "userID", "clientMessageId"],  # `name` is ignored: no type
    ("message", "selectSearchUser"): ["userID"],
    ("message", "markMessagesAsRead"): ["userID"],
    ("message", "history"): ["userID", "beforeOrder", "limit"],
}


def test_a_wrong_type_in_any_field_of_any_method(fuzz: Fuzz) -> None:
    forged_token = forge(claims_of(fuzz.ada.token), key="k" * 40)

    @FUZZ_SETTINGS
    @given(wrong_typed())
    def one(case: tuple[tuple[str, str], str, Any, str]) -> None:
        (controller, method), name, value, token_kind = case
        mk = fuzz.marker()
        body = valid_bodies(fuzz, mk)[(controller, method)]
        body[name] = value
        body["fuzzMarker"] = mk
        if (controller, method) in (("user", "register"), ("user", "login")):
            expect, token = "reply", None
        else:
            token = {"ada": fuzz.ada.token, "none": None, "forged": forged_token}[token_kind]
            expect = "error" if token_kind == "ada" else "dlq"
        label = f"{controller}/{method} {name}={value!r:.60} token={token_kind}"
        fuzz.bad(Case(label, controller, method, json.dumps(body), expect, token, status=400))

    one()
    fuzz.finish()


# --- hypothesis: random controller, method and attributes -------------------------------------
SQS_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(sqs_documented),
    min_size=1,
    max_size=30,
)
METHOD_NAMES = sorted({m for _, m in METHOD_FIELDS} | {"logout", "__init__", "Add", "add\u200b"})
ATTRIBUTE_NAME = st.from_regex(r"[A-Za-z0-9_-]{1,30}", fullmatch=True).filter(
    lambda n: n not in ("controller", "method", "token")
)


@st.composite
def random_requests(draw: st.DrawFn) -> dict[str, Any]:
    controller = draw(st.sampled_from(["user", "message", "User", ""]) | SQS_TEXT)
    method = draw(st.sampled_from(METHOD_NAMES) | SQS_TEXT)
    token = draw(st.sampled_from(["ada", "none", "forged"]))
    extra = draw(st.dictionaries(ATTRIBUTE_NAME, SQS_TEXT, max_size=7))
    binary = draw(st.booleans())
    body = draw(
        st.sampled_from(["text", "array", "scalar", "empty"]).flatmap(
            lambda kind: {
                "text": SQS_TEXT.map(lambda t: "\u00a7" + t),  # never JSON
                "array": st.lists(JSON_VALUES, max_size=4).map(json.dumps),
                "scalar": JSON_SCALARS.map(json.dumps),
                "empty": st.just(""),
            }[kind]
        )
    )
    return {
        "controller": controller,
        "method": method,
        "token": token,
        "extra": extra,
        "binary": binary,
        "body": body,
    }


def test_random_attributes_and_unparsable_bodies(fuzz: Fuzz) -> None:
    forged_token = forge(claims_of(fuzz.ada.token), key="k" * 40)

    @FUZZ_SETTINGS
    @given(random_requests())
    def one(req: dict[str, Any]) -> None:
        mk = fuzz.marker()
        extra = {k: string(v) for k, v in req["extra"].items()}
        if req["binary"]:
            extra["blob"] = {"DataType": "Binary", "BinaryValue": os.urandom(16)}
            extra = dict(list(extra.items())[-7:])
        # The marker rides in the body, after whatever makes the body unparsable.
        body = req["body"] + " " + mk if req["body"] else mk
        controller, method = req["controller"] or None, req["method"] or None
        key = (controller, method)
        if key in (("user", "register"), ("user", "login")):
            expect, token = "reply", None
        else:
            token = {"ada": fuzz.ada.token, "none": None, "forged": forged_token}[req["token"]]
            expect = "error" if req["token"] == "ada" else "dlq"
        label = f"{controller!r}/{method!r} token={req['token']} body={body[:40]!r}"
        fuzz.bad(Case(label, controller, method, body, expect, token, status=400, extra=extra))

    one()
    fuzz.finish()
