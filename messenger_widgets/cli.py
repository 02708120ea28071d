"""`messenger up | stack | worker | provision`: one entry point for every process.

Every command loads the settings first, so a missing or malformed one ends the command with
one line naming the variable (exit 2), never a traceback from deep inside boto3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import logs
from .config import LOCAL_REGION, WORKER_REQUIRED, Settings
from .errors import MessengerError

DEFAULT_UI_PORT = 8866
NOTEBOOK = Path("notebooks/messenger.ipynb")


def _stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so loops finish what they hold and return."""
    stop = threading.Event()

    def handle(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def cmd_worker(args: argparse.Namespace) -> int:
    from .worker import build_worker

    settings = Settings.load(require=WORKER_REQUIRED)
    logs.configure()
    worker = build_worker(
        settings, wait_seconds=args.wait_seconds, ack_window=args.ack_window_ms / 1000
    )
    if os.environ.get("MESSENGER_COUNT_SQS_CALLS"):  # `messenger bench` counts SQS calls
        from .bench.counting import maybe_count

        maybe_count(worker.ctx.transport)
    worker.run(_stop_event())
    summary = {"event": "worker summary", **worker.counters.snapshot()}
    print(json.dumps(summary, separators=(",", ":")), file=sys.stderr, flush=True)
    return 0


def _print_settings(settings: Settings) -> None:
    print("Settings for clients of this stack (environment or .env):")
    for key, value in settings.to_env().items():
        if key != "MESSENGER_TOKEN_SECRET":
            print(f"  {key}={value}")


def cmd_stack(args: argparse.Namespace) -> int:
    from .local import LocalStack

    logs.configure()
    stop = _stop_event()
    with LocalStack(
        Path(args.state_dir),
        port=args.port,
        workers=args.workers,
        worker_wait_seconds=args.wait_seconds,
    ) as stack:
        _print_settings(stack.settings)
        if args.env_file:
            from .provision import write_env

            env = stack.settings.to_env()
            env.pop("MESSENGER_TOKEN_SECRET", None)
            write_env(Path(args.env_file), env)
            print(f"Wrote {args.env_file}")
        print("Local stack running. Press Ctrl-C to stop.", flush=True)
        stop.wait()
        print("Stopping...", flush=True)
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from .aws import make_clients
    from .provision import new_token_secret, provision, write_env

    settings = Settings.load(env_file=args.env_file)
    region = settings.region or LOCAL_REGION
    clients = make_clients(
        settings if settings.region else Settings(**{**vars(settings), "region": region})
    )
    bucket = args.bucket or settings.bucket or f"{args.prefix}-attachments-{os.urandom(4).hex()}"
    resources = provision(clients.sqs, clients.s3, prefix=args.prefix, bucket=bucket, region=region)
    values = {**resources.env(), "AWS_REGION": region}
    if not settings.token_secret:
        values["MESSENGER_TOKEN_SECRET"] = new_token_secret()
    write_env(Path(args.env_file), values)
    print(
        f"Provisioned {resources.request_queue_url}, {resources.response_queue_url}, "
        f"{resources.dead_letter_queue_url} and bucket {resources.bucket}; wrote {args.env_file}"
    )
    return 0


def _notebook(state_dir: Path) -> Path:
    if NOTEBOOK.is_file():
        return NOTEBOOK
    from .notebook import write_notebook

    return write_notebook(state_dir / "messenger.ipynb")


def cmd_up(args: argparse.Namespace) -> int:
    from .local import LocalStack

    logs.configure()
    stop = _stop_event()
    with LocalStack(Path(args.state_dir), workers=args.workers) as stack:
        notebook = _notebook(stack.state_dir)
        voila = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(notebook),
                "--no-browser",
                f"--port={args.port}",
                "--Voila.ip=127.0.0.1",
                "--show_tracebacks=False",
            ],
            env=stack.child_env(),
        )
        print(f"Messenger running at http://127.0.0.1:{args.port}/  (Ctrl-C to stop)", flush=True)
        while not stop.wait(0.5):
            if voila.poll() is not None:
                print("Voila exited; stopping.", file=sys.stderr)
                break
        if voila.poll() is None:
            voila.terminate()
            try:
                voila.wait(timeout=10)
            except subprocess.TimeoutExpired:
                voila.kill()
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="messenger", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the local stack and the app in Voila")
    up.add_argument("--port", type=int, default=DEFAULT_UI_PORT)
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--state-dir", default=".messenger")
    up.set_defaults(run=cmd_up)

    stack = sub.add_parser("stack", help="start moto, provision it and run the worker")
    stack.add_argument("--port", type=int, default=0, help="moto port (default: a free one)")
    stack.add_argument("--workers", type=int, default=1)
    stack.add_argument("--state-dir", default=".messenger")
    stack.add_argument("--env-file", default="", help="also write the client settings here")
    stack.add_argument(
        "--wait-seconds", type=int, default=20, help="worker long-poll wait (shorter stops faster)"
    )
    stack.set_defaults(run=cmd_stack)

    worker = sub.add_parser("worker", help="process requests until SIGTERM/SIGINT")
    worker.add_argument(
        "--wait-seconds", type=int, default=20, choices=range(0, 21), metavar="0-20"
    )
    worker.add_argument(
        "--ack-window-ms", type=int, default=50, choices=range(0, 1001), metavar="0-1000",
        help="hold sent acks up to this long so they share SendMessageBatch calls (0: off)",
    )  # fmt: skip
    worker.set_defaults(run=cmd_worker)

    prov = sub.add_parser("provision", help="create queues and bucket; write them to .env")
    prov.add_argument("--prefix", default="messenger")
    prov.add_argument("--bucket", default="")
    prov.add_argument("--env-file", default=".env")
    prov.set_defaults(run=cmd_provision)
    from .dlq import register_cli as dlq_cli

    dlq_cli(sub)
    from .bench import register_cli as bench_cli

    bench_cli(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except MessengerError as exc:
        print(f"messenger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    logging.basicConfig()
    raise SystemExit(main())
