"""Browser harness: a LocalStack and a real Voila server per stack, real Chromium via Playwright.

Each LocalStack runs in a helper process of its own: moto keeps one in-memory state per
process, so two stacks in this process would share queues, and moto's threads would compete
with Playwright for this process's GIL. Voila is the real `python -m voila` command, started
as `messenger up` starts it, with `stack.child_env()` as its environment.

Logs (stack, workers, Voila) go to test-artifacts/logs/; screenshots of failed tests to
test-artifacts/failures/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from playwright.sync_api import Browser, expect

from ..integration.rawclient import RawClient
from .pages import App

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "messenger.ipynb"
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "failures"
LOGS = ARTIFACTS / "logs"
DOC_SCREENSHOTS = REPO / "docs" / "screenshots"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
STACK_START_SECONDS = 60
VOILA_START_SECONDS = 90
EXPIRY_TTL = 20  # seconds; the dedicated stack of the session-expiry test
PASSWORD = "correct horse battery"

expect.set_options(timeout=30_000)

# The helper process that owns one LocalStack: it writes child_env() to env.json, then
# waits for SIGTERM and stops the stack (workers first, then moto).
STACK_SCRIPT = r"""
import json, signal, sys, threading
from pathlib import Path
from messenger_widgets.local import LocalStack

root, ttl = Path(sys.argv[1]), int(sys.argv[2])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stack = LocalStack(root / "state", worker_wait_seconds=1, session_ttl=ttl or None)
stack.start()
try:
    tmp = root / "env.json.tmp"
    tmp.write_text(json.dumps(stack.child_env()))
    tmp.replace(root / "env.json")
    stop.wait()
finally:
    stack.stop()
"""


# --- Playwright: Debian's chromium, never a downloaded browser -------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 860}}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and report.when in ("setup", "call"):
        _screenshot_open_tabs(item.name)


def _screenshot_open_tabs(test_name: str) -> None:
    """Runs before fixture teardown closes the tabs, so the failure is still on screen."""
    FAILURES.mkdir(parents=True, exist_ok=True)
    for app in _OPEN:
        name = re.sub(r"[^\w.-]+", "_", f"{test_name}-{app.label}")
        with contextlib.suppress(Exception):
            app.page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)


_OPEN: list[App] = []  # every tab still open, for screenshots when a test fails


# --- the stack -----------------------------------------------------------------------------
@dataclass
class Stack:
    """A running LocalStack (in its helper process) and a raw boto3 view of it."""

    name: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    sqs: Any = field(repr=False)
    s3: Any = field(repr=False)

    @property
    def endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL"]

    @property
    def session_prefix(self) -> str:
        return self.env.get("MESSENGER_SESSION_QUEUE_PREFIX", "messenger-session-")

    def raw(self) -> RawClient:
        return RawClient(
            self.sqs,
            self.env["MESSENGER_REQUEST_QUEUE_URL"],
            self.env["MESSENGER_RESPONSE_QUEUE_URL"],
        )

    def session_queues(self) -> set[str]:
        urls = self.sqs.list_queues(QueueNamePrefix=self.session_prefix).get("QueueUrls", [])
        return set(urls)

    def register(self, first: str, last: str, email: str, password: str = PASSWORD) -> None:
        status, body = self.raw().register(first, last, email, password)
        assert status == 200, body


def _start_stack(name: str, root: Path, ttl: int = 0) -> Stack:
    root.mkdir(parents=True, exist_ok=True)
    env_file = root / "env.json"
    env_file.unlink(missing_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"stack-{name}.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", STACK_SCRIPT, str(root), str(ttl)],
            cwd=root,  # never pick up a .env from the repository
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + STACK_START_SECONDS
    while not env_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the {name} stack exited; see {LOGS / f'stack-{name}.log'}")
        if time.monotonic() > deadline:
            _stop_process(process, 5)
            raise RuntimeError(f"the {name} stack did not start in {STACK_START_SECONDS} s")
        time.sleep(0.1)
    env = json.loads(env_file.read_text())
    session = boto3.Session(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_REGION"]
    )
    return Stack(
        name,
        env,
        process,
        session.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"]),
        session.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]),
    )


def _stop_process(process: subprocess.Popen[bytes], wait: float) -> None:
    """SIGTERM the process we started, then its process group (Voila's kernels) if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group this harness created for it


# --- Voila -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_voila(stack: Stack) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"voila-{stack.name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(NOTEBOOK.relative_to(REPO)),
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
                "--show_tracebacks=False",
            ],
            cwd=REPO,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    # A static file, so readiness never starts (and leaks) a kernel.
    probe = f"{url}voila/static/voila.js"
    deadline = time.monotonic() + VOILA_START_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Voila exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(probe, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return process, url
        except OSError:  # refused while starting (HTTPError is an OSError too)
            pass
        if time.monotonic() > deadline:
            _stop_process(process, 5)
            raise RuntimeError(f"Voila did not answer in {VOILA_START_SECONDS} s; see {log_path}")
        time.sleep(0.2)


@dataclass
class Server:
    stack: Stack
    url: str


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = _start_stack("main", tmp_path_factory.mktemp("stack-main"))
    yield running
    _stop_process(running.process, 40)


@pytest.fixture(scope="session")
def server(stack: Stack) -> Iterator[Server]:
    process, url = _start_voila(stack)
    yield Server(stack, url)
    _stop_process(process, 20)


@pytest.fixture(scope="session")
def expiry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second stack whose sessions live EXPIRY_TTL seconds, with its own Voila."""
    short = _start_stack("expiry", tmp_path_factory.mktemp("stack-expiry"), ttl=EXPIRY_TTL)
    try:
        process, url = _start_voila(short)
        try:
            yield Server(short, url)
        finally:
            _stop_process(process, 20)
    finally:
        _stop_process(short.process, 40)


# --- users and pages -----------------------------------------------------------------------
@dataclass
class User:
    first: str
    last: str
    email: str
    password: str = PASSWORD

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


def tag(length: int = 6) -> str:
    """Random letters: makes names unique and searchable within one run."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(length))


def new_user(first: str, last: str | None = None) -> User:
    suffix = tag()
    return User(first, last or f"Q{suffix}", f"{first.lower()[:12]}.{suffix}@example.com")


def named_user(first: str, last: str) -> User:
    """A user whose names are given verbatim (hostile names); the email stays unique."""
    return User(first, last, f"u.{uuid.uuid4().hex[:10]}@example.com")


OpenApps = Callable[..., list[App]]


def _app_factory(browser: Browser, context_args: dict[str, Any]) -> Iterator[OpenApps]:
    opened: list[App] = []

    def open_apps(*labels: str, server: Server) -> list[App]:
        apps = []
        for label in labels:
            context = browser.new_context(**context_args)
            context.set_default_timeout(30_000)
            app = App(context.new_page(), server.url, label)
            opened.append(app)
            _OPEN.append(app)
            app.goto()  # navigations overlap: only the response headers are awaited here
            apps.append(app)
        for app in apps:
            app.wait_ready()
        return apps

    yield open_apps
    for app in opened:
        _OPEN.remove(app)
        with contextlib.suppress(Exception):
            app.close()


@pytest.fixture
def open_apps(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[OpenApps]:
    """`open_apps("alice", "bob", server=server)`: one browser context (one kernel) each."""
    yield from _app_factory(browser, browser_context_args)


@pytest.fixture(scope="module")
def open_apps_module(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[OpenApps]:
    """The same, for pages a whole module shares."""
    yield from _app_factory(browser, browser_context_args)


def screenshot(app: App, name: str, *, docs: str | None = None) -> Path:
    """Save a screen under test-artifacts/screenshots/.

    `docs`: also the README's copy in docs/screenshots/, written when missing or when
    UPDATE_DOC_SCREENSHOTS=1, so an ordinary test run leaves the working tree clean.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    app.page.screenshot(path=str(path), full_page=True)
    if docs:
        target = DOC_SCREENSHOTS / docs
        if not target.exists() or os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
            DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return path


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a condition outside the browser (queues, S3) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def seed_messages(stack: Stack, to: User, texts: list[str], sender: User) -> User:
    """`sender`, outside any browser, registers, writes `texts` to `to` and logs out."""
    raw = stack.raw()
    stack.register(sender.first, sender.last, sender.email, sender.password)
    login = raw.login(sender.email, sender.password)
    raw.send("user", "searchUser", {"name": to.last}, token=login.token)
    found = raw.expect(login.url, "searchUser").body["listOfUsers"]
    user_id = next(u["userID"] for u in found if u["name"] == to.name)
    for text in texts:  # one at a time, so the order is the sending order
        body = {"userID": user_id, "body": text, "clientMessageId": str(uuid.uuid4())}
        raw.send("message", "add", body, token=login.token)
        raw.expect(login.url, "sent")
    raw.send("user", "logout", {}, token=login.token)
    return sender
