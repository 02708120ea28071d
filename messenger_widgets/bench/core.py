"""Rows of the benchmark table, their verdicts, and the table as text, JSON and a PNG chart."""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Goal(StrEnum):
    """How a row's target reads: on the ratio ours/reference, or on ours alone."""

    RATIO_MAX = "ratio<="  # ours / reference must be at most `target`
    RATIO_MIN = "ratio>="  # ours / reference must be at least `target`
    MAX = "<="  # ours must be at most `target`
    INFO = "info"  # no target: shown for context


@dataclass(frozen=True)
class Row:
    family: str
    figure: str
    unit: str
    ours: float | None
    reference: float | None = None
    reference_name: str = ""
    goal: Goal = Goal.INFO
    target: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.reference:
            return None
        return self.ours / self.reference

    @property
    def verdict(self) -> str:
        if self.ours is None:
            return "skip"
        if self.goal is Goal.INFO or self.target is None:
            return "info"
        value = self.ours if self.goal is Goal.MAX else self.ratio
        if value is None:
            return "n/a"
        ok = value >= self.target if self.goal is Goal.RATIO_MIN else value <= self.target
        return "pass" if ok else "MISS"

    @property
    def target_text(self) -> str:
        if self.goal is Goal.INFO or self.target is None:
            return "-"
        if self.goal is Goal.MAX:
            return f"<= {_num(self.target)} {self.unit}".rstrip()
        sign = ">=" if self.goal is Goal.RATIO_MIN else "<="
        return f"{sign} {_num(self.target)}x"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["goal"] = self.goal.value
        data["ratio"] = self.ratio
        data["verdict"] = self.verdict
        data["target_text"] = self.target_text
        return data


def skipped(family: str, figure: str, reason: str) -> Row:
    return Row(family, figure, "", None, note=f"skipped: {reason}")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


COLUMNS = ("figure", "ours", "reference", "ratio", "target", "verdict")


def table_rows(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for row in rows:
        unit = f" {row.unit}" if row.unit else ""
        reference = (
            f"{_num(row.reference)}{unit} ({row.reference_name})"
            if row.reference is not None
            else "-"
        )
        ratio = row.ratio
        out.append(
            (
                f"{row.family}: {row.figure}",
                f"{_num(row.ours)}{unit}" if row.ours is not None else "-",
                reference,
                f"{ratio:.2f}x" if ratio is not None else "-",
                row.target_text,
                row.verdict,
            )
        )
    return out


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table; skipped rows carry their reason on the line below."""
    body = table_rows(rows)
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row, cells in zip(rows, body, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if row.note:
            lines.append(f"    {row.note}")
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for cells in table_rows(rows):
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def write_json(rows: Sequence[Row], path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "columns": list(COLUMNS), "rows": [r.as_dict() for r in rows]}
    path.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def write_chart(rows: Sequence[Row], path: Path, title: str) -> bool:
    """One small panel per measured row: ours beside its reference, the target as a line.

    Returns False (and writes nothing) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [r for r in rows if r.ours is not None and not math.isnan(r.ours)]
    if not shown:
        return False
    cols = 4
    lines = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 2.8 * lines), squeeze=False)
    for ax, row in zip(axes.flat, shown, strict=False):
        names = ["ours"]
        values = [row.ours or 0.0]
        if row.reference is not None:
            names.append(row.reference_name or "reference")
            values.append(row.reference)
        colour = {"pass": "#2a9d8f", "MISS": "#e76f51"}.get(row.verdict, "#8d99ae")
        ax.bar(names, values, color=[colour, "#adb5bd"][: len(values)])
        if row.target is not None and row.goal is Goal.MAX:
            ax.axhline(row.target, color="#264653", linestyle="--", linewidth=1)
        elif row.target is not None and row.reference is not None:
            ax.axhline(row.reference * row.target, color="#264653", linestyle="--", linewidth=1)
        title = textwrap.fill(f"{row.family}: {row.figure}", 52)
        ax.set_title(f"{title}\n{row.verdict}", fontsize=8)
        ax.set_ylabel(row.unit, fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
