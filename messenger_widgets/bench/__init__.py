"""`messenger bench`: every performance figure beside its reference, in one run.

This module stays light (argparse only): `messenger worker` imports `bench.counting` when it
is asked to count its SQS calls, and nothing else of the bench comes with it.
"""

from __future__ import annotations

import argparse
from typing import Any

FAMILIES = ("cpu", "latency", "throughput", "requests", "idle", "history", "voila")


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add `bench [--quick] [--out DIR] [--only NAME,...]` to the `messenger` subcommands."""
    bench = subparsers.add_parser(
        "bench", help="run the benchmarks on a fresh embedded stack; table, JSON and PNG"
    )
    bench.add_argument("--quick", action="store_true", help="smaller samples (a few minutes)")
    bench.add_argument(
        "--out", default="", help="results folder (default: bench-results/<timestamp>)"
    )
    bench.add_argument(
        "--only",
        default="",
        help=f"comma-separated families to run, of: {','.join(FAMILIES)}",
    )
    bench.set_defaults(run=_run)
    return bench  # type: ignore[no-any-return]


def _run(args: argparse.Namespace) -> int:
    from .runner import main

    return main(quick=args.quick, out=args.out, only=args.only)
