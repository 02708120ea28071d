"""The `messenger` command as a user runs it: clear errors, provisioning, the local stack."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3

from ..conftest import REGION
from .rawclient import RawClient

MESSENGER = [sys.executable, "-m", "messenger_widgets"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MESSENGER_"))}
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        MESSENGER + args, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )


def test_worker_without_settings_fails_with_one_line(tmp_path: Path) -> None:
    result = run(["worker"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "messenger: MESSENGER_REQUEST_QUEUE_URL is not set "
        "(also accepted: SERVER_REQ_QUEUE, REACT_APP_SERVER_REQ_QUEUE)"
    ]


def test_malformed_setting_in_env_file_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SERVER_REQ_QUEUE=http://q/1\nSERVER_RES_QUEUE=http://q/2\nBUCKET=b\nREGION=eu-west-1\n"
        "KEY=" + "k" * 40 + "\nSESSIONEXP=12h\n"
    )
    result = run(["worker"], tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "MESSENGER_SESSION_TTL" in line and "SESSIONEXP" in line and "Traceback" not in line


def test_provision_is_idempotent_and_writes_env(tmp_path: Path, moto_endpoint: str) -> None:
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    first = run(["provision", "--prefix", "cli-prov"], tmp_path, **env)
    assert first.returncode == 0, first.stderr
    written = (tmp_path / ".env").read_text()
    second = run(["provision", "--prefix", "cli-prov"], tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / ".env").read_text() == written  # same queues, bucket and secret
    assert "MESSENGER_TOKEN_SECRET=" in written and "cli-prov-requests" in written
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"
    bucket = re.search(r"MESSENGER_BUCKET=(\S+)", written).group(1)  # type: ignore[union-attr]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_stack_serves_clients_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*MESSENGER, "stack", "--wait-seconds", "1", "--env-file", "client.env"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        settings: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if "=" in line:
                key, _, value = line.strip().partition("=")
                settings[key] = value
            if "Local stack running" in line:
                break
        assert "MESSENGER_TOKEN_SECRET" not in settings  # the secret stays with the worker
        assert "MESSENGER_TOKEN_SECRET" not in (tmp_path / "client.env").read_text()
        sqs = boto3.client(
            "sqs",
            region_name=settings["AWS_REGION"],
            endpoint_url=settings["AWS_ENDPOINT_URL"],
            aws_access_key_id=settings["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=settings["AWS_SECRET_ACCESS_KEY"],
        )
        client = RawClient(
            sqs, settings["MESSENGER_REQUEST_QUEUE_URL"], settings["MESSENGER_RESPONSE_QUEUE_URL"]
        )
        assert client.user("Stack").token
        assert (tmp_path / ".messenger" / "messenger.sqlite3").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        assert proc.wait(timeout=40) == 0
    assert time.monotonic() - started < 30


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_serves_the_app_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    """`messenger up` from a folder without the repo: it writes its own notebook."""
    import urllib.request

    port = free_port()
    proc = subprocess.Popen(
        [*MESSENGER, "up", "--port", str(port), "--state-dir", str(tmp_path / "state")],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/static/voila.js") as r:
                    page = r.read(64).decode(errors="replace")
                    break
            except OSError:
                time.sleep(0.5)
        assert page, "Voila never answered"
        assert (tmp_path / "state" / "messenger.ipynb").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    leftovers = subprocess.run(
        ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert leftovers == []  # worker and Voila are gone with it
