"""Run the selected benchmark families, each on a fresh stack, and write the results."""

from __future__ import annotations

import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConfigError
from . import FAMILIES
from .core import Row, format_table, skipped, write_chart, write_json
from .stack import BenchStack

log = logging.getLogger("messenger.bench")


@dataclass(frozen=True)
class Sizes:
    latency_messages: int
    throughput_seconds: float
    trickle_messages: int
    load_messages_per_user: int
    idle_seconds: float
    history_messages: int
    cpu_messages: int
    voila_loads: int

    @classmethod
    def for_run(cls, quick: bool) -> Sizes:
        if quick:
            return cls(50, 6.0, 8, 5, 45.0, 300, 300, 1)  # idle: two 20 s polls at least
        return cls(200, 15.0, 20, 10, 60.0, 1000, 2000, 3)


def _on_stack(root: Path, name: str, body: Callable[[BenchStack], list[Row]]) -> list[Row]:
    with BenchStack(root / name) as stack:
        return body(stack)


def run_family(name: str, sizes: Sizes, root: Path) -> list[Row]:
    """One family's rows; a family that fails yields a row saying why, never a traceback."""
    started = time.monotonic()
    print(f"== {name} ...", flush=True)
    try:
        rows = _dispatch(name, sizes, root)
    except Exception as exc:
        traceback.print_exc()
        rows = [skipped(name, "failed", f"{type(exc).__name__}: {exc}")]
    print(f"== {name} done in {time.monotonic() - started:.0f} s", flush=True)
    return rows


def _dispatch(name: str, sizes: Sizes, root: Path) -> list[Row]:
    if name == "cpu":
        from . import cpu

        return cpu.run(root / "cpu", sizes.cpu_messages)
    if name == "latency":
        from . import latency

        return _on_stack(root, name, lambda s: latency.run(s, sizes.latency_messages))
    if name == "throughput":
        from . import throughput

        return _on_stack(root, name, lambda s: throughput.run(s, sizes.throughput_seconds))
    if name == "requests":
        from . import requests

        return _on_stack(
            root,
            name,
            lambda s: requests.run(s, sizes.trickle_messages, sizes.load_messages_per_user),
        )
    if name == "idle":
        from . import requests

        return _on_stack(root, name, lambda s: requests.run_idle(s, sizes.idle_seconds))
    if name == "history":
        from . import history

        return _on_stack(root, name, lambda s: history.run(s, sizes.history_messages))
    if name == "voila":
        from . import voila

        return _on_stack(root, name, lambda s: voila.run(s, sizes.voila_loads))
    raise ConfigError(f"unknown benchmark {name!r}")


def selected(only: str) -> list[str]:
    if not only.strip():
        return list(FAMILIES)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ConfigError(
            f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(FAMILIES)}"
        )
    return names


def report(rows: list[Row], out: Path, meta: dict[str, object]) -> None:
    print()
    print(format_table(rows))
    write_json(rows, out / "results.json", meta)
    charted = write_chart(rows, out / "results.png", f"messenger bench {meta['started']}")
    print(f"\nwrote {out / 'results.json'}" + (f" and {out / 'results.png'}" if charted else ""))


def main(*, quick: bool, out: str, only: str) -> int:
    names = selected(only)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(out) if out else Path("bench-results") / stamp
    folder.mkdir(parents=True, exist_ok=True)
    sizes = Sizes.for_run(quick)
    logging.getLogger("messenger").setLevel(logging.WARNING)
    meta: dict[str, object] = {
        "started": stamp,
        "quick": quick,
        "families": names,
        "sizes": vars(sizes),
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="messenger-bench-") as scratch:
        for name in names:
            rows += run_family(name, sizes, Path(scratch))
    report(rows, folder, meta)
    return 0
