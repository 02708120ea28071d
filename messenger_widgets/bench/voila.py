"""7. Voila: page request until the login panel is visible, and the memory of each kernel.

Real Chromium (`/usr/bin/chromium`) through Playwright opens the app served by `python -m
voila`, as `messenger up` serves it, on the bench stack. Each page load starts a kernel (no
preheating); its resident memory is read from /proc while the page is open. The reference is
the same Voila serving a notebook that shows one ipywidgets Label with the login panel's CSS
class: Voila's own floor for a page of widgets.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .core import Row, median, skipped
from .stack import BenchStack

FAMILY = "voila"
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
READY_CLASS = "msgr-login"
START_SECONDS = 90.0
PAGE_SECONDS = 90.0
REFERENCE_CELL = (
    f"import ipywidgets as w\nlabel = w.Label('login')\nlabel.add_class('{READY_CLASS}')\nlabel"
)


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _notebook(folder: Path, source: str) -> Path:
    from ..notebook import notebook_json

    data = notebook_json()
    data["cells"][0]["source"] = source  # type: ignore[index]
    path = folder / "reference.ipynb"
    path.write_text(json.dumps(data))
    return path


def _app_notebook(folder: Path) -> Path:
    from ..cli import NOTEBOOK
    from ..notebook import write_notebook

    return NOTEBOOK if NOTEBOOK.is_file() else write_notebook(folder / "messenger.ipynb")


def _start_voila(
    notebook: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(notebook),
                "--no-browser",
                f"--port={port}",
                "--Voila.ip=127.0.0.1",
                "--show_tracebacks=False",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Voila exited; see {log}")
        probe = f"{url}voila/static/voila.js"
        with contextlib.suppress(OSError), urllib.request.urlopen(probe, timeout=2) as response:  # noqa: S310
            if response.status == 200:
                return proc, url
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"Voila did not start in {START_SECONDS:g} s; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    import os
    import signal

    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # kernels left in the group this started


def kernel_rss_mb(voila_pid: int) -> dict[int, float]:
    """Resident memory (MiB) of each kernel process Voila started, from /proc."""
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() != str(voila_pid) or b"ipykernel" not in cmdline:
            continue
        rss = fields.get("VmRSS", "0 kB").split()[0]
        out[int(entry.name)] = int(rss) / 1024
    return out


def _load(browser: object, url: str, voila_pid: int) -> tuple[float, float]:
    """(seconds from the request to the login panel visible, the new kernel's RSS in MiB)."""
    from playwright.sync_api import expect

    before = set(kernel_rss_mb(voila_pid))
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        began = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=PAGE_SECONDS * 1000)
        expect(page.locator(f".{READY_CLASS}").first).to_be_visible(timeout=PAGE_SECONDS * 1000)
        elapsed = time.perf_counter() - began
        time.sleep(1.0)  # let the kernel settle after rendering
        new = {pid: mb for pid, mb in kernel_rss_mb(voila_pid).items() if pid not in before}
        rss = max(new.values()) if new else float("nan")
    finally:
        with contextlib.suppress(Exception):
            page.close(run_before_unload=True)
        context.close()
    return elapsed, rss


def run(stack: BenchStack, loads: int) -> list[Row]:
    reason = _missing()
    if reason is not None:
        print(f"voila: skipped, {reason}", flush=True)
        return [skipped(FAMILY, "page -> login panel; RSS per kernel", reason)]
    from playwright.sync_api import sync_playwright

    folder = stack.root
    env = stack.child_env()
    app, app_url = _start_voila(_app_notebook(folder), env, folder / "voila-app.log")
    ref, ref_url = _start_voila(_notebook(folder, REFERENCE_CELL), env, folder / "voila-ref.log")
    times: dict[str, list[float]] = {"ours": [], "ref": []}
    rss: dict[str, list[float]] = {"ours": [], "ref": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for _ in range(loads):
                    for kind, url, proc in (("ref", ref_url, ref), ("ours", app_url, app)):
                        seconds, mb = _load(browser, url, proc.pid)
                        times[kind].append(seconds)
                        rss[kind].append(mb)
            finally:
                browser.close()
    finally:
        _stop(app)
        _stop(ref)
        shutil.rmtree(folder / ".ipynb_checkpoints", ignore_errors=True)
    return [
        Row(
            FAMILY,
            f"page request -> login panel visible (median of {loads})",
            "s",
            median(times["ours"]),
            median(times["ref"]),
            "one-Label notebook",
            extra={"ours": times["ours"], "reference": times["ref"]},
        ),
        Row(
            FAMILY,
            "RSS per kernel",
            "MiB",
            median(rss["ours"]),
            median(rss["ref"]),
            "one-Label notebook",
            extra={"ours": rss["ours"], "reference": rss["ref"]},
        ),
    ]
