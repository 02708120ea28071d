"""An isolated stack per test module on the shared moto server, and a worker to serve it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from messenger_widgets.attachments import Attachments
from messenger_widgets.auth import Passwords
from messenger_widgets.config import Settings
from messenger_widgets.provision import Resources, provision
from messenger_widgets.store.sqlite import SqliteStore
from messenger_widgets.transport import SqsTransport, dead_letter_queue_url
from messenger_widgets.worker import Worker, build_context

from ..conftest import REGION
from .rawclient import RawClient

SECRET = "integration-test-secret-" + "x" * 32


def make_settings(moto_endpoint: str, tmp: Path) -> tuple[Settings, Resources]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    resources = provision(sqs, s3, prefix=prefix, bucket=f"{prefix}-bucket", region=REGION)
    settings = Settings(
        request_queue_url=resources.request_queue_url,
        response_queue_url=resources.response_queue_url,
        bucket=resources.bucket,
        region=REGION,
        access_key_id="testing",
        secret_access_key="testing",
        endpoint_url=moto_endpoint,
        token_secret=SECRET,
        store=f"sqlite:///{tmp / 'store.sqlite3'}",
        session_queue_prefix=f"{prefix}-session-",
    )
    return settings, resources


@pytest.fixture(scope="module")
def stack(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, Resources]:
    return make_settings(moto_endpoint, tmp_path_factory.mktemp("stack"))


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MESSENGER_"))}
    env.update(settings.to_env())
    return env


def start_worker_process(settings: Settings, wait_seconds: int = 1) -> subprocess.Popen[bytes]:
    """`messenger worker`; its JSON log goes to worker-<pid>.log beside the store."""
    log = open(settings.sqlite_path.parent / f"worker-{uuid.uuid4().hex[:6]}.log", "ab")  # noqa: SIM115
    with log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "messenger_widgets",
                "worker",
                "--wait-seconds",
                str(wait_seconds),
            ],
            env=worker_env(settings),
            stderr=log,
        )


@pytest.fixture(scope="module")
def worker_process(stack: tuple[Settings, Resources]) -> Iterator[subprocess.Popen[bytes]]:
    """The real `messenger worker` command, as a separate process."""
    proc = start_worker_process(stack[0])
    yield proc
    stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an operator would; SIGKILL only if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def aws_clients(endpoint: str) -> tuple[Any, Any]:
    """Fresh SQS and S3 (s3v4) clients for the moto server."""
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    s3 = boto3.client(
        "s3", region_name=REGION, endpoint_url=endpoint, config=Config(signature_version="s3v4")
    )
    return sqs, s3


@pytest.fixture
def client(stack: tuple[Settings, Resources], moto_endpoint: str) -> RawClient:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    return RawClient(sqs, stack[1].request_queue_url, stack[1].response_queue_url)


WorkerFactory = Callable[..., tuple[Worker, threading.Event]]


@pytest.fixture
def in_process_worker(moto_endpoint: str) -> Iterator[WorkerFactory]:
    """A worker thread in this process, so a test can inject a store or a clock."""
    running: list[tuple[threading.Thread, threading.Event]] = []

    def start(
        settings: Settings, run: bool = True, **overrides: Any
    ) -> tuple[Worker, threading.Event]:
        sqs, s3 = aws_clients(moto_endpoint)
        transport = SqsTransport(sqs)
        overrides.setdefault("store", SqliteStore(settings.sqlite_path))
        overrides.setdefault("passwords", Passwords.fast_for_tests())
        ctx = build_context(
            settings,
            transport=transport,
            attachments=Attachments(s3, settings.bucket, endpoint_url=moto_endpoint),
            **overrides,
        )
        worker = Worker(
            ctx,
            settings.request_queue_url,
            dead_letter_queue_url(transport, settings.request_queue_url),
            wait_seconds=1,
        )
        stop = threading.Event()
        if run:
            thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
            thread.start()
            running.append((thread, stop))
        return worker, stop

    yield start
    for thread, stop in running:
        stop.set()
        thread.join(timeout=10)


@pytest.fixture
def fresh_stack(moto_endpoint: str, tmp_path: Path) -> tuple[Settings, Resources]:
    """A stack of its own, for tests that run their own worker."""
    return make_settings(moto_endpoint, tmp_path)


def with_store(settings: Settings, path: Path) -> Settings:
    return replace(settings, store=f"sqlite:///{path}")
