"""The embedded local stack: a moto server on loopback, the resources, and worker processes.

Laptops without an AWS account run everything here. Data that must outlive the moto process
(users, messages) lives in SQLite under the state folder; moto holds only queues and objects.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import boto3
from botocore.config import Config

from .config import LOCAL_REGION, Settings
from .provision import Resources, new_token_secret, provision

STATE_DIR = Path(".messenger")
LOCAL_BUCKET = "messenger-attachments"
LOCAL_KEY = "local"  # moto accepts any credentials; these never leave the machine
WORKER_STOP_SECONDS = 30


def local_secret(state_dir: Path) -> str:
    """The stack's token secret, generated once and kept private in the state folder."""
    path = state_dir / "token-secret"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_token_secret())
    return path.read_text().strip()


class LocalStack:
    """Start with `start()` (or `with LocalStack() as stack:`); `stop()` ends everything."""

    def __init__(
        self,
        state_dir: Path = STATE_DIR,
        *,
        port: int = 0,
        workers: int = 1,
        worker_wait_seconds: int = 20,
        prefix: str = "messenger",
        session_ttl: int | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.port = port
        self.worker_count = workers
        self.worker_wait_seconds = worker_wait_seconds
        self.prefix = prefix
        self.session_ttl = session_ttl
        self.workers: list[subprocess.Popen[bytes]] = []
        self.resources: Resources | None = None
        self._server: object | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise RuntimeError("the local stack is not started")
        return self._settings

    def start(self) -> Settings:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        settings = Settings(
            region=LOCAL_REGION,
            access_key_id=LOCAL_KEY,
            secret_access_key=LOCAL_KEY,
            endpoint_url=endpoint,
            token_secret=local_secret(self.state_dir),
            store=f"sqlite:///{self.state_dir / 'messenger.sqlite3'}",
        )
        if self.session_ttl:
            settings = replace(settings, session_ttl=self.session_ttl)
        session = boto3.Session(LOCAL_KEY, LOCAL_KEY, region_name=LOCAL_REGION)
        sqs = session.client("sqs", endpoint_url=endpoint)
        s3 = session.client("s3", endpoint_url=endpoint, config=Config(signature_version="s3v4"))
        self.resources = provision(
            sqs, s3, prefix=self.prefix, bucket=LOCAL_BUCKET, region=LOCAL_REGION
        )
        self._settings = replace(
            settings,
            request_queue_url=self.resources.request_queue_url,
            response_queue_url=self.resources.response_queue_url,
            bucket=self.resources.bucket,
        )
        for _ in range(self.worker_count):
            self.start_worker()
        return self._settings

    def child_env(self) -> dict[str, str]:
        """The environment for processes that use the stack (worker, Voila, its kernels)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MESSENGER_"))}
        env.update(self.settings.to_env())
        return env

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "messenger_widgets",
                "worker",
                "--wait-seconds",
                str(self.worker_wait_seconds),
            ],
            env=self.child_env(),
        )
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for worker in self.workers:
            try:
                worker.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self.workers.clear()
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]
            self._server = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
