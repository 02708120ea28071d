"""The "Under the hood" panel: this session's SQS traffic, live, for people learning queues.

Three parts, all plain HTML widgets built from strings (every value escaped):
- the log: one row per request sent, reply or push received, empty receive (runs of them
  collapsed), delete and visibility change, newest at the bottom;
- the chart: SQS requests per minute as a tiny inline SVG, the running count and estimated
  cost, next to what a client polling every 0.5 s would have spent over the same time;
- the gauges: messages visible and in flight on the requests and responses queues, and the
  dead-letter queue's depth, read with GetQueueAttributes at most every 10 s.

The polling thread only sets an Event when an entry arrives; a timer thread re-renders at
most every 0.5 s, and only while the panel is open. The gauges read through the unlogged
transport underneath the `TrafficLog`: the panel's own reads are not the messenger's traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import ipywidgets as w

from ..client.traffic import (
    POLLING_INTERVAL_SECONDS,
    SQS_PRICE_PER_MILLION_USD,
    SQS_PRICE_READ_ON,
    Direction,
    Entry,
    Kind,
    Stats,
    TrafficLog,
)
from ..transport import dead_letter_queue_url
from .widgets import classed, close_tree, esc, format_size, set_value, show

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5  # the log re-renders at most this often
CHART_SECONDS = 3.0
GAUGE_SECONDS = 10.0
MAX_ROWS = 200
CHART_MINUTES = 15
ID_CHARS = 8
QUEUE_CHARS = 22
UNAVAILABLE = "unavailable"
GAUGE_NAMES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
ARROWS = {Direction.OUT: "→", Direction.IN: "←"}
INTRO = "Every SQS call of this page: → to SQS, ← from SQS. Hover a row for its masked body."


@dataclass(frozen=True)
class Row:
    entry: Entry
    repeat: int = 1  # a run of empty receives on one queue becomes one row


def collapse(entries: Sequence[Entry]) -> list[Row]:
    rows: list[Row] = []
    for entry in entries:
        last = rows[-1] if rows else None
        if (
            last is not None
            and entry.kind is Kind.EMPTY
            and last.entry.kind is Kind.EMPTY
            and last.entry.queue == entry.queue
        ):
            rows[-1] = Row(entry, last.repeat + 1)
        else:
            rows.append(Row(entry))
    return rows


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clock_time(at: float) -> str:
    try:
        return datetime.fromtimestamp(at).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return ""


def latency_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def row_html(row: Row) -> str:
    e = row.entry
    label = e.label if row.repeat == 1 else f"{e.label} \N{MULTIPLICATION SIGN}{row.repeat}"
    details = [f"{e.operation} on {e.queue}"]
    if e.attributes:
        details.append("attributes: " + ", ".join(f"{k}={v}" for k, v in e.attributes.items()))
    if e.preview:
        details.append(f"body: {e.preview}")
    if e.note:
        details.append(e.note)
    if e.message_id:
        details.append(f"MessageId: {e.message_id}")
    cells = [
        ("time", clock_time(e.at)),
        ("dir", ARROWS[e.direction]),
        ("what", label),
        ("queue", short(e.queue, QUEUE_CHARS)),
        ("size", format_size(e.size) if e.size else ""),
        ("status", "" if e.status is None else str(e.status)),
        ("latency", latency_text(e.latency)),
        ("id", short(e.message_id, ID_CHARS + 1)),
    ]
    spans = "".join(f'<span class="msgr-hood-{name}">{esc(text)}</span>' for name, text in cells)
    classes = f"msgr-hood-entry msgr-hood-kind-{e.kind.value} msgr-hood-{e.direction.value}"
    if e.status is not None and e.status >= 400:
        classes += " msgr-hood-failed"
    return f'<div class="{classes}" title="{esc(chr(10).join(details))}">{spans}</div>'


def log_html(entries: Sequence[Entry], max_rows: int = MAX_ROWS) -> str:
    rows = collapse(entries)[-max_rows:]
    if not rows:
        return (
            '<div class="msgr-hood-rows"><div class="msgr-hood-none">No SQS calls yet.</div></div>'
        )
    return '<div class="msgr-hood-rows">' + "".join(row_html(r) for r in rows) + "</div>"


def dollars(amount: float) -> str:
    return f"${amount:.6f}"


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def chart_svg(per_minute: Sequence[int], width: int = 360, height: int = 54) -> str:
    """Bars of requests per minute, oldest left; only numbers go into the markup."""
    top = max(per_minute, default=0) or 1
    slot = width / max(1, len(per_minute))
    bars = []
    for index, count in enumerate(per_minute):
        h = round((height - 14) * count / top, 1)
        x = round(index * slot + 1, 1)
        bars.append(
            f'<rect class="msgr-hood-bar" x="{x}" y="{round(height - 12 - h, 1)}" '
            f'width="{round(slot - 2, 1)}" height="{h}"><title>{count}</title></rect>'
        )
    return (
        f'<svg class="msgr-hood-svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="SQS requests per minute">'
        + "".join(bars)
        + f'<text x="0" y="{height - 1}">-{len(per_minute) - 1} min</text>'
        + f'<text x="{width}" y="{height - 1}" text-anchor="end">now</text>'
        + f'<text x="0" y="9">max {top}/min</text></svg>'
    )


def chart_html(stats: Stats) -> str:
    saved = stats.polling_requests - stats.billed
    lines = [
        '<div class="msgr-hood-chart-title">SQS requests per minute</div>',
        chart_svg(stats.per_minute),
        '<div class="msgr-hood-figures">',
        f'<div class="msgr-hood-ours"><b>This page:</b> {stats.requests} requests'
        f" ({stats.billed} billable, {stats.empty_receives} empty receives)"
        f" · est. {dollars(stats.cost)}</div>",
        f'<div class="msgr-hood-polling"><b>{POLLING_INTERVAL_SECONDS:g} s polling loop</b>'
        f" over the same {duration(stats.elapsed)}: {stats.polling_requests} requests"
        f" · est. {dollars(stats.polling_cost)}"
        + (f" ({saved} more)" if saved > 0 else "")
        + "</div>",
        f'<div class="msgr-hood-price">At ${SQS_PRICE_PER_MILLION_USD:.2f} per million requests'
        f" (SQS standard, read {esc(SQS_PRICE_READ_ON)}); long polls wait up to 20 s.</div>",
        "</div>",
    ]
    return "".join(lines)


Gauge = tuple[int, int] | None  # (visible, in flight), None when it could not be read


def gauges_html(values: dict[str, Gauge], updated: str) -> str:
    rows = []
    for name, value in values.items():
        if value is None:
            cells = f'<td colspan="2" class="msgr-hood-unavailable">{UNAVAILABLE}</td>'
        else:
            cells = f"<td>{value[0]}</td><td>{value[1]}</td>"
        rows.append(f'<tr class="msgr-hood-gauge"><th>{esc(name)}</th>{cells}</tr>')
    return (
        '<table class="msgr-hood-table"><tr><th>queue</th><th>visible</th><th>in flight</th></tr>'
        + "".join(rows)
        + f'</table><div class="msgr-hood-updated">{esc(updated)}</div>'
    )


class HoodPanel:
    """Hidden until `set_open(True)`; `close()` stops its timers and closes its widgets.

    `background=False` runs no threads (tests call `flush`, `refresh_chart` and
    `refresh_gauges` themselves); `clock` limits the gauge reads (monotonic seconds).
    """

    def __init__(
        self,
        traffic: TrafficLog,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.traffic = traffic
        self._clock, self._background, self._max_rows = clock, background, max_rows
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stop.set()  # nothing runs while closed
        self._closed = False
        self._rendered = -1
        self._last_gauges: float | None = None
        self._dlq_url: str | None = None
        self.is_open = False
        title = classed(w.Label(value="Under the hood"), "msgr-hood-title")
        intro = classed(w.Label(value=INTRO), "msgr-hood-intro")
        self.log = classed(w.HTML(value=log_html([])), "msgr-hood-log")
        self.chart = classed(w.HTML(value=""), "msgr-hood-chart")
        self.gauges = classed(w.HTML(value="Reading the queues…"), "msgr-hood-gauges")
        side = classed(w.VBox([self.chart, self.gauges]), "msgr-hood-side")
        main = classed(w.VBox([title, intro, self.log]), "msgr-hood-main")
        self.widget = classed(w.HBox([main, side]), "msgr-hood")
        show(self.widget, False)
        self._unsubscribe = traffic.subscribe(self._on_entry)

    # --- open / close -----------------------------------------------------------------------
    def set_open(self, on: bool) -> None:
        with self._lock:
            if self._closed or on == self.is_open:
                return
            self.is_open = on
            show(self.widget, on)
            # the CSS gives the thread less height while the panel takes its share
            (self.widget.add_class if on else self.widget.remove_class)("msgr-hood-open")
            if not on:
                self._stop.set()
                self._wake.set()
                return
            self.flush()
            self.refresh_chart()
            if not self._background:
                return
            self._stop = stop = threading.Event()
        threading.Thread(
            target=self._render_loop, args=(stop,), name="messenger-hood", daemon=True
        ).start()
        threading.Thread(
            target=self._gauge_loop, args=(stop,), name="messenger-hood-gauges", daemon=True
        ).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.is_open = False
            self._stop.set()
            self._wake.set()
        self._unsubscribe()
        close_tree(self.widget)

    # --- rendering --------------------------------------------------------------------------
    def _on_entry(self, _entry: Entry) -> None:
        """On the thread that made the SQS call: only a flag, never widget work."""
        if self.is_open:
            self._wake.set()

    def flush(self) -> bool:
        """Re-render the log if there is anything new; True when it did."""
        with self._lock:
            seq = self.traffic.last_seq
            if seq == self._rendered or self._closed:
                return False
            self._rendered = seq
            set_value(self.log, log_html(self.traffic.entries(), self._max_rows))
            return True

    def refresh_chart(self) -> None:
        with self._lock:
            if not self._closed:
                set_value(self.chart, chart_html(self.traffic.stats(CHART_MINUTES)))

    def refresh_gauges(self) -> bool:
        """Read the queue depths unless that was done less than GAUGE_SECONDS ago."""
        with self._lock:
            now = self._clock()
            if self._closed or (
                self._last_gauges is not None and now - self._last_gauges < GAUGE_SECONDS
            ):
                return False
            self._last_gauges = now
        values = self._read_gauges()
        updated = f"read {datetime.now().strftime('%H:%M:%S')}, every {GAUGE_SECONDS:g} s"
        with self._lock:
            if not self._closed:
                set_value(self.gauges, gauges_html(values, updated))
        return True

    def _read_gauges(self) -> dict[str, Gauge]:
        inner = self.traffic.inner
        request_url, response_url = self.traffic.request_queue_url, self.traffic.response_queue_url
        values = {"requests": self._gauge(request_url), "responses": self._gauge(response_url)}
        if self._dlq_url is None and request_url is not None:
            try:
                self._dlq_url = dead_letter_queue_url(inner, request_url)
            except Exception as exc:
                log.info("the dead-letter queue could not be found: %s", exc)
        values["dead letters"] = self._gauge(self._dlq_url)
        return values

    def _gauge(self, url: str | None) -> Gauge:
        if url is None:
            return None
        try:
            found = self.traffic.inner.queue_attributes(url, GAUGE_NAMES)
            return int(found[GAUGE_NAMES[0]]), int(found[GAUGE_NAMES[1]])
        except Exception as exc:  # the gauges are a view: a failure is a word, not a raise
            log.info("queue attributes unavailable for %s: %s", url, exc)
            return None

    # --- timers -----------------------------------------------------------------------------
    def _render_loop(self, stop: threading.Event) -> None:
        next_chart = time.monotonic() + CHART_SECONDS
        while not stop.is_set():
            self._wake.wait(timeout=CHART_SECONDS)
            self._wake.clear()
            if stop.is_set():
                return
            try:
                self.flush()
                if time.monotonic() >= next_chart:
                    self.refresh_chart()
                    next_chart = time.monotonic() + CHART_SECONDS
            except Exception:
                log.exception("rendering the traffic log failed")
            stop.wait(FLUSH_SECONDS)  # batch whatever arrives meanwhile into one update

    def _gauge_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.refresh_gauges()
            except Exception:
                log.exception("reading the queue gauges failed")
            stop.wait(GAUGE_SECONDS)
