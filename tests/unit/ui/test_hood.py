"""The "Under the hood" panel: toggle, escaped rows, chart, gauges and their rate limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence

import pytest

from messenger_widgets import errors
from messenger_widgets.client.session import Session
from messenger_widgets.client.traffic import TrafficLog
from messenger_widgets.memory import InMemoryTransport
from messenger_widgets.protocol import Outgoing, Request
from messenger_widgets.ui.app import Messenger
from messenger_widgets.ui.hood import GAUGE_SECONDS, UNAVAILABLE, HoodPanel

from ..client.fakeworker import FakeWorker
from .conftest import FakeAttachments, Transport, eventually, find, login, visible

HOSTILE = '<img src=x onerror="window.__pwned=1">'


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingTransport(InMemoryTransport):
    """Counts GetQueueAttributes; fails them all while `failing` holds an exception."""

    def __init__(self) -> None:
        super().__init__()
        self.attribute_reads = 0
        self.failing: Exception | None = None

    def queue_attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        self.attribute_reads += 1
        if self.failing is not None:
            raise self.failing
        return super().queue_attributes(queue_url, names)


@pytest.fixture
def inner() -> CountingTransport:
    return CountingTransport()


@pytest.fixture
def traffic(inner: CountingTransport) -> TrafficLog:
    dlq = inner.create_queue("dlq")
    policy = {"deadLetterTargetArn": "arn:aws:sqs:memory:000000000000:dlq", "maxReceiveCount": 5}
    requests = inner.create_queue("requests", {"RedrivePolicy": json.dumps(policy)})
    responses = inner.create_queue("responses")
    inner.send(dlq, Outgoing("{}", {"deadLetterReason": "no token"}))
    return TrafficLog(inner, request_queue_url=requests, response_queue_url=responses)


@pytest.fixture
def panel(traffic: TrafficLog) -> Iterator[HoodPanel]:
    clock = Clock()
    made = HoodPanel(traffic, clock=clock, background=False)
    made.clock = clock  # type: ignore[attr-defined]
    yield made
    made.close()


# --- the toggle in a real app --------------------------------------------------------------
@pytest.fixture
def hood_app(
    transport: Transport, worker: FakeWorker, attachments: FakeAttachments
) -> Iterator[Messenger]:
    traffic = TrafficLog(
        transport, request_queue_url=worker.request_url, response_queue_url=worker.response_url
    )
    session = Session(
        traffic, worker.request_url, worker.response_url, reply_timeout=3, wait_seconds=1
    )
    app = Messenger(session, attachments=attachments, traffic=traffic)
    yield app
    app.close()


def test_the_header_toggle_shows_and_hides_the_panel(hood_app: Messenger) -> None:
    login(hood_app)
    assert hood_app.home is not None and hood_app.hood is not None
    toggle = hood_app.home.header.hood
    (panel,) = find(hood_app.widget, "msgr-hood")
    assert panel is hood_app.hood.widget
    assert "msgr-hood-toggle" in toggle._dom_classes and visible(toggle)
    assert toggle.value is False and not visible(panel)  # off by default

    toggle.value = True
    assert visible(panel) and hood_app.hood.is_open
    (log,) = find(panel, "msgr-hood-log")
    assert "user/login" in log.value and "reply user/login" in log.value
    assert "msgr-hood-entry" in log.value
    threads = {t.name for t in threading.enumerate()}
    assert {"messenger-hood", "messenger-hood-gauges"} <= threads
    (gauges,) = find(panel, "msgr-hood-gauges")
    eventually(lambda: "requests" in gauges.value and "in flight" in gauges.value)
    (chart,) = find(panel, "msgr-hood-chart")
    assert "<svg" in chart.value and "polling loop" in chart.value

    toggle.value = False
    assert not visible(panel) and not hood_app.hood.is_open
    eventually(
        lambda: (
            not {"messenger-hood", "messenger-hood-gauges"}
            & {t.name for t in threading.enumerate()}
        )
    )


def test_new_traffic_reaches_an_open_panel_within_a_second(hood_app: Messenger) -> None:
    login(hood_app)
    assert hood_app.home is not None and hood_app.hood is not None
    hood_app.home.header.hood.value = True
    session = hood_app.session
    assert session is not None
    session.search("bob")
    (log,) = find(hood_app.hood.widget, "msgr-hood-log")
    eventually(lambda: "user/searchUser" in log.value, timeout=3)


def test_logging_out_closes_the_panel_and_its_timers(hood_app: Messenger) -> None:
    login(hood_app)
    assert hood_app.home is not None and hood_app.hood is not None
    hood_app.home.header.hood.value = True
    hood = hood_app.hood
    hood_app.home.header.logout.click()
    assert hood_app.wait_idle()
    eventually(lambda: hood_app.hood is None)
    assert not hood.is_open
    eventually(lambda: "messenger-hood" not in {t.name for t in threading.enumerate()})


def test_without_a_traffic_log_there_is_no_toggle(app: Messenger) -> None:
    login(app)
    assert app.home is not None and app.hood is None
    assert not visible(app.home.header.hood)
    assert find(app.widget, "msgr-hood") == []


# --- rows --------------------------------------------------------------------------------
def test_rows_are_escaped(panel: HoodPanel, traffic: TrafficLog, inner: CountingTransport) -> None:
    hostile_queue = inner.create_queue(HOSTILE)
    attrs = {"controller": HOSTILE, "method": HOSTILE, "token": "secret"}
    traffic.send(traffic.request_queue_url or "", Outgoing(json.dumps({"x": HOSTILE}), attrs))
    inner.send(hostile_queue, Outgoing(HOSTILE, {"action": HOSTILE, "statusCode": "200"}))
    traffic.receive(hostile_queue, 10, 0)
    panel.set_open(True)
    html = panel.log.value
    assert "<img" not in html and 'onerror="' not in html
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in html
    assert html.count('class="msgr-hood-entry') == 2
    assert "secret" not in html


def test_rows_show_direction_size_status_latency_and_a_short_id(
    panel: HoodPanel, traffic: TrafficLog, inner: CountingTransport
) -> None:
    requests = traffic.request_queue_url or ""
    responses = traffic.response_queue_url or ""
    login_id = traffic.send(requests, Request("user", "login", {"password": "pw"}).encode())
    inner.send(responses, Outgoing("{}", {"resTo": login_id, "statusCode": "401"}))
    traffic.receive(responses, 10, 0)
    for _ in range(3):
        traffic.receive(responses, 10, 0)
    panel.set_open(True)
    html = panel.log.value
    rows = html.split('<div class="msgr-hood-entry')[1:]
    assert len(rows) == 3  # request, reply, and one row for the three empty receives
    assert "→" in rows[0] and "user/login" in rows[0] and " B</span>" in rows[0]
    assert f'<span class="msgr-hood-id">{login_id[:8]}…</span>' in rows[0]
    assert "←" in rows[1] and ">401<" in rows[1] and "msgr-hood-failed" in rows[1]
    assert " ms<" in rows[1]
    assert "empty receive \N{MULTIPLICATION SIGN}3" in rows[2]
    assert '"pw"' not in html


def test_the_log_keeps_the_newest_rows_at_the_bottom(traffic: TrafficLog) -> None:
    panel = HoodPanel(traffic, background=False, max_rows=5)
    try:
        for index in range(12):
            traffic.send(traffic.request_queue_url or "", Outgoing("{}", {"method": f"m{index}"}))
        panel.set_open(True)
        html = panel.log.value
        assert html.count('class="msgr-hood-entry') == 5
        assert html.index("?/m7") < html.index("?/m11") and "?/m6<" not in html
        assert panel.flush() is False  # nothing new: no re-render
        traffic.send(traffic.request_queue_url or "", Outgoing("{}", {"method": "m12"}))
        assert panel.flush() is True and "?/m12" in panel.log.value
    finally:
        panel.close()


def test_the_chart_counts_requests_and_prices_them(panel: HoodPanel, traffic: TrafficLog) -> None:
    for _ in range(4):
        traffic.receive(traffic.response_queue_url or "", 10, 0)
    panel.refresh_chart()
    html = panel.chart.value
    assert "<svg" in html and "<script" not in html
    assert "4 requests" in html and "4 empty receives" in html
    assert "$0.40 per million" in html and "0.5 s polling loop" in html


# --- gauges ------------------------------------------------------------------------------
def test_gauges_read_both_queues_and_the_dlq(panel: HoodPanel, traffic: TrafficLog) -> None:
    traffic.inner.send(traffic.request_queue_url or "", Outgoing("{}", {}))
    traffic.inner.send(traffic.request_queue_url or "", Outgoing("{}", {}))
    traffic.inner.receive(traffic.request_queue_url or "", 1, 0)  # one in flight
    assert panel.refresh_gauges() is True
    html = panel.gauges.value
    assert "<th>requests</th><td>1</td><td>1</td>" in html
    assert "<th>responses</th><td>0</td><td>0</td>" in html
    assert "<th>dead letters</th><td>1</td><td>0</td>" in html
    assert UNAVAILABLE not in html
    assert traffic.entries() == []  # the panel's own reads are not the session's traffic


@pytest.mark.parametrize(
    "failure",
    [errors.TransportError("SQS get_queue_attributes failed: AccessDenied"), RuntimeError("x")],
)
def test_gauges_say_unavailable_when_the_reads_fail(
    panel: HoodPanel, inner: CountingTransport, failure: Exception
) -> None:
    inner.failing = failure
    assert panel.refresh_gauges() is True  # never raises
    assert panel.gauges.value.count(f">{UNAVAILABLE}<") == 3
    # the DLQ is found once SQS answers again
    inner.failing = None
    panel.clock.now += GAUGE_SECONDS  # type: ignore[attr-defined]
    panel.refresh_gauges()
    assert UNAVAILABLE not in panel.gauges.value


def test_gauges_without_queue_urls_are_unavailable(inner: CountingTransport) -> None:
    panel = HoodPanel(TrafficLog(inner), background=False)
    try:
        panel.refresh_gauges()
        assert panel.gauges.value.count(f">{UNAVAILABLE}<") == 3 and inner.attribute_reads == 0
    finally:
        panel.close()


def test_gauges_are_read_at_most_every_ten_seconds(
    panel: HoodPanel, inner: CountingTransport
) -> None:
    clock: Clock = panel.clock  # type: ignore[attr-defined]
    assert panel.refresh_gauges() is True
    reads = inner.attribute_reads
    assert reads == 4  # requests, its redrive policy, responses, the DLQ
    clock.now += GAUGE_SECONDS - 0.1
    assert panel.refresh_gauges() is False and inner.attribute_reads == reads
    clock.now += 0.1
    assert panel.refresh_gauges() is True
    assert inner.attribute_reads == reads + 3  # the DLQ URL is looked up once


def test_a_closed_panel_does_nothing(panel: HoodPanel, traffic: TrafficLog) -> None:
    panel.close()
    traffic.receive(traffic.response_queue_url or "", 10, 0)
    assert panel.flush() is False and panel.refresh_gauges() is False
    panel.set_open(True)
    assert not panel.is_open
