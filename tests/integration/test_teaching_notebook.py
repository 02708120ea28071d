"""The teaching notebook runs top to bottom, unattended, on the local stack it starts itself.

It is executed as a reader would run it: nbclient, a python3 kernel of this interpreter (the
kernelspec's `python` resolves to sys.executable), each cell within CELL_TIMEOUT seconds. The
notebook prints a `[check] ...` line at each step; every one must appear, in order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "under-the-hood.ipynb"
CELL_TIMEOUT = 120

CHECKS = [
    "[check] stack started",
    "[check] registered ada and bob",
    "[check] ada logged in",
    "[check] session queue attributes shown",
    "[check] history pushes: ['historyEnd']",
    "[check] message delivered: sent push to ada, message push to bob",
    "[check] waiting in the requests queue: 1",
    "[check] delivered after the restart",
    "[check] dead letter: no token",
    "[check] stack stopped",
]

pytestmark = pytest.mark.slow


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream"
    )


def test_the_notebook_is_stored_without_outputs() -> None:
    """Outputs would hold someone's run (tokens, queue URLs) and drift from the code."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.timeout(CELL_TIMEOUT * 12)
def test_the_teaching_notebook_runs_top_to_bottom(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the notebook needs no settings: it must not pick up a .env or AWS variables by accident
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MESSENGER_"))}
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)  # raises CellExecutionError, naming the cell, if any cell fails

    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert errors == []
    assert all(c.execution_count for c in code)
    text = "\n".join(_text(c) for c in code)
    positions = [text.find(check) for check in CHECKS]
    assert -1 not in positions, [c for c, p in zip(CHECKS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    # what the steps show: the reply's resTo, the queue depth while the worker was down
    assert re.search(r"reply attributes: \{'resTo': '[0-9a-f-]{36}', 'statusCode': '200'\}", text)
    assert "ApproximateNumberOfMessages = 1" in text
    assert "'deadLetterReason': 'no token'" in text
    assert "worker exit code: -9" in text
