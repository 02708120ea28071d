"""The embedded stack for benchmarks: a fresh moto server, the resources, worker processes.

It is `LocalStack` assembled from the same parts (`provision`, `Settings`, the `messenger
worker` command), with one difference: moto runs in a process of its own, so its request
threads never share a GIL with the clients being measured (on AWS, SQS is not in the client's
process either). Everything lives under one scratch folder and is thrown away afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from ..client.session import Session
from ..client.state import State
from ..config import LOCAL_REGION, Settings
from ..local import LOCAL_BUCKET, LOCAL_KEY
from ..protocol import MAX_RECEIVE_MESSAGES, Reply, Request
from ..provision import Resources, new_token_secret, provision
from ..transport import SqsTransport
from .counting import ENV_VAR, CallCounter

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("messenger.bench")

PASSWORD = "bench password 1"  # noqa: S105 - throwaway accounts on a scratch stack
START_SECONDS = 30.0
# As `aws.CLIENT_CONFIG`, plus enough connections for the many threads of a bench.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    read_timeout=40,
    connect_timeout=5,
    max_pool_connections=50,
)

MOTO_SCRIPT = r"""
import logging, sys, threading
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
threading.Event().wait()
"""


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


@dataclass
class RawUser:
    """A logged-in user seen through raw SQS calls: what a load generator needs."""

    email: str
    user_id: str
    token: str
    queue_url: str


class BenchStack:
    """`with BenchStack(folder) as stack:` moto and the queues; workers on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.moto: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.resources: Resources | None = None
        self._settings: Settings | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._sessions: list[Session] = []

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> Settings:
        self.root.mkdir(parents=True, exist_ok=True)
        self.moto = subprocess.Popen(
            [sys.executable, "-c", MOTO_SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.moto.stdout is not None
        self.endpoint = self.moto.stdout.readline().decode().strip()
        if not self.endpoint.startswith("http://"):
            raise RuntimeError("the moto server did not start")
        sqs = self.sqs()
        s3 = boto3.Session(LOCAL_KEY, LOCAL_KEY, region_name=LOCAL_REGION).client(
            "s3", endpoint_url=self.endpoint, config=Config(signature_version="s3v4")
        )
        self.resources = provision(
            sqs, s3, prefix="bench", bucket=LOCAL_BUCKET, region=LOCAL_REGION
        )
        self._settings = Settings(
            request_queue_url=self.resources.request_queue_url,
            response_queue_url=self.resources.response_queue_url,
            bucket=self.resources.bucket,
            region=LOCAL_REGION,
            access_key_id=LOCAL_KEY,
            secret_access_key=LOCAL_KEY,
            endpoint_url=self.endpoint,
            token_secret=new_token_secret(),
            store=f"sqlite:///{(self.root / 'store.sqlite3').resolve()}",
        )
        return self._settings

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("the bench stack is not started")
        return self._settings

    def stop(self) -> None:
        for session in self._sessions:
            with contextlib.suppress(Exception):
                session.close()
        self._sessions.clear()
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        # A worker finishes its long poll before it stops; without moto that ends at once.
        time.sleep(0.3)
        if self.moto is not None and self.moto.poll() is None:
            self.moto.terminate()
            self.moto.wait(timeout=10)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.workers.clear()

    def __enter__(self) -> BenchStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- clients --------------------------------------------------------------------------
    def sqs(self, counter: CallCounter | None = None) -> SQSClient:
        client = boto3.Session(LOCAL_KEY, LOCAL_KEY, region_name=LOCAL_REGION).client(
            "sqs", endpoint_url=self.endpoint, config=CLIENT_CONFIG
        )
        if counter is not None:
            counter.attach(client)
        return client

    def new_queue(self, name: str) -> str:
        return self.sqs().create_queue(QueueName=f"bench-{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    # --- workers --------------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MESSENGER_"))}
        env.update(self.settings.to_env())
        return env

    def start_workers(
        self,
        count: int = 1,
        *,
        wait_seconds: int = 20,
        count_calls: Path | None = None,
        ack_window_ms: int | None = None,
    ) -> list[subprocess.Popen[bytes]]:
        """`messenger worker` processes; returns once each is polling."""
        started = []
        for _ in range(count):
            env = self.child_env()
            if count_calls is not None:
                env[ENV_VAR] = str(count_calls.resolve())
            log_path = self.root / f"worker-{uuid.uuid4().hex[:6]}.log"
            extra = [] if ack_window_ms is None else ["--ack-window-ms", str(ack_window_ms)]
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "messenger_widgets",
                        "worker",
                        "--wait-seconds",
                        str(wait_seconds),
                        *extra,
                    ],
                    env=env,
                    stderr=log_file,
                )
            proc.log_path = log_path  # type: ignore[attr-defined]
            self.workers.append(proc)
            started.append(proc)
        for proc in started:
            path: Path = proc.log_path  # type: ignore[attr-defined]
            wait_until(
                lambda p=path: b"worker started" in p.read_bytes(),  # type: ignore[misc]
                START_SECONDS,
                "a worker to start",
            )
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited; see {path}")
        time.sleep(0.2)  # from "started" to its first receive in flight
        return started

    def stop_workers(
        self, workers: list[subprocess.Popen[bytes]], wake: Callable[[], object] | None = None
    ) -> None:
        """SIGTERM, then wait: up to one long poll each, all at once; `wake` cuts it short."""
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        if wake is not None:
            time.sleep(0.2)
            wake()
        for proc in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc in self.workers:
                self.workers.remove(proc)

    # --- users ----------------------------------------------------------------------------
    def session(self, counter: CallCounter | None = None, wait_seconds: int = 20) -> Session:
        resources = self.resources
        assert resources is not None
        session = Session(
            SqsTransport(self.sqs(counter)),
            resources.request_queue_url,
            resources.response_queue_url,
            wait_seconds=wait_seconds,
        )
        self._sessions.append(session)
        return session

    def user_session(
        self, first: str, counter: CallCounter | None = None, *, login: bool = True
    ) -> tuple[Session, str]:
        """A registered (and by default logged-in, history applied) Session and its email."""
        session = self.session(counter)
        email = f"{first.lower()}.{uuid.uuid4().hex[:10]}@bench.example"
        session.register(first, "Bench", email, PASSWORD)
        if login:
            session.login(email, PASSWORD)
            wait_for_state(session, lambda s: s.history_complete, 30, "the login history")
        return session, email

    def raw_user(self, first: str) -> RawUser:
        email = f"{first.lower()}.{uuid.uuid4().hex[:10]}@bench.example"
        body = {"fName": first, "lName": "Raw", "email": email, "password": PASSWORD}
        self.raw_call(Request("user", "register", body))
        reply = self.raw_call(Request("user", "login", {"email": email, "password": PASSWORD}))
        return RawUser(email, reply.body["userID"], reply.body["token"], reply.body["url"])

    def raw_call(self, request: Request, timeout: float = 30) -> Reply:
        """Send a register/login and wait for its reply; other clients' replies are released."""
        resources = self.resources
        assert resources is not None
        transport = SqsTransport(self.sqs())
        sent = transport.send(resources.request_queue_url, request.encode())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for envelope in transport.receive(
                resources.response_queue_url, MAX_RECEIVE_MESSAGES, 2
            ):
                if envelope.attributes.get("resTo") == sent:
                    transport.delete_batch(resources.response_queue_url, [envelope.receipt_handle])
                    reply = Reply.decode(envelope)
                    if reply.status != 200:
                        raise RuntimeError(f"{request.method} failed: {reply.body}")
                    return reply
                transport.change_visibility(
                    resources.response_queue_url, envelope.receipt_handle, 0
                )
        raise TimeoutError(f"no reply to {request.method}")


def wait_for_state(
    session: Session, check: Callable[[State], bool], timeout: float, what: str
) -> State:
    """Wait for a condition on the session's state, woken by its observer (no polling lag)."""
    changed = threading.Event()
    unsubscribe = session.observe(lambda _s, _c: changed.set())
    try:
        deadline = time.monotonic() + timeout
        while not check(session.state):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
            changed.wait(min(remaining, 0.5))
            changed.clear()
        return session.state
    finally:
        unsubscribe()


def call_rate_per_hour(times: list[float], window: float) -> float:
    """Calls per hour: from the spacing of the calls when there are two or more, else count."""
    times = sorted(times)
    if len(times) >= 2 and times[-1] > times[0]:
        return (len(times) - 1) / (times[-1] - times[0]) * 3600
    return len(times) / window * 3600
