"""Metrics current at scrape time and series at 0 from the start, on the real pipeline
pieces (queue, sink worker, source runner) with a sink that does not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from pipeline_harness import Harness, RecordingSink, ScriptedSource
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from forwarder.clock import SystemClock
from forwarder.events import Event
from forwarder.observability.progress import ProgressReporter, start_progress
from forwarder.sinks.base import SendResult


async def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never: {what}")


async def test_the_queue_gauge_follows_the_queue_while_the_sink_hangs(tmp_path: Path) -> None:
    sink = RecordingSink("siem")
    sink.gate.clear()  # every send waits: the sink is down
    harness = Harness(tmp_path, ScriptedSource(batches=10, size=50), [sink], capacity=300)
    queue = harness.queues[0]

    def gauge() -> float | None:
        return harness.metrics.registry.get_sample_value(
            "forwarder_sink_queue_events", {"sink": "siem"}
        )

    assert gauge() == 0
    assert (
        harness.metrics.registry.get_sample_value(
            "forwarder_sink_queue_capacity_events", {"sink": "siem"}
        )
        == 300
    )
    poll = asyncio.create_task(harness.runner.poll_once())
    try:
        # The worker holds the first batch; the pollers fill the queue up to its capacity
        # and wait. The gauge was set when that first batch was taken (50) and stayed.
        await _until(lambda: queue.size == 300, "a full queue")
        assert gauge() == 300 == queue.size
        sink.gate.set()
        await poll
        await _until(lambda: queue.size == 0, "the queue to drain")
        assert gauge() == 0
        assert sorted(sink.received) == list(range(500))
    finally:
        poll.cancel()
        await harness.close()


async def test_series_of_what_did_not_happen_exist_at_zero(tmp_path: Path) -> None:
    harness = Harness(tmp_path, ScriptedSource(batches=0, size=0), [RecordingSink("siem")], 10)
    try:
        await harness.runner.poll_once()
        value = harness.metrics.registry.get_sample_value
        for name in (
            "forwarder_source_events_received_total",
            "forwarder_source_duplicates_dropped_total",
            "forwarder_source_unknown_events_total",
            "forwarder_checkpoint_write_errors_total",
            "forwarder_checkpoint_pending_batches",
        ):
            assert value(name, {"source": "scripted"}) == 0, name
        assert value("forwarder_source_poll_duration_seconds_count", {"source": "scripted"}) == 1
        for name in (
            "forwarder_sink_events_sent_total",
            "forwarder_sink_sent_bytes_total",
            "forwarder_sink_delivery_lag_seconds_count",
            "forwarder_sink_queue_events",
        ):
            assert value(name, {"sink": "siem"}) == 0, name
        text = generate_latest(harness.metrics.registry).decode()
        assert 'forwarder_sink_delivery_lag_seconds_bucket{le="+Inf",sink="siem"} 0.0' in text
    finally:
        await harness.close()


class RefusingSink(RecordingSink):
    """Answers 401 once (the receiver refuses our token), then 503 once, then takes all."""

    def __init__(self, sink_id: str) -> None:
        super().__init__(sink_id)
        self.answers = ["http_401", "http_503"]

    async def send(self, events: Sequence[Event]) -> SendResult:
        if self.answers:
            error_type = self.answers.pop(0)
            return SendResult.retry_later(f"HTTP {error_type[5:]}", error_type=error_type)
        return await super().send(events)


async def test_refused_sink_credentials_are_logged_at_error(tmp_path: Path) -> None:
    sink = RefusingSink("siem")
    harness = Harness(tmp_path, ScriptedSource(batches=1, size=5), [sink], 100)
    try:
        with capture_logs() as logs:
            await harness.runner.poll_once()
            await _until(lambda: len(sink.received) == 5, "delivery")
    finally:
        await harness.close()
    failing = [(e["log_level"], e["error_type"]) for e in logs if e["event"] == "sink_failing"]
    assert failing == [("error", "http_401"), ("warning", "http_503")]


async def test_progress_counts_since_the_previous_line(tmp_path: Path) -> None:
    sink = RecordingSink("siem")
    harness = Harness(tmp_path, ScriptedSource(batches=2, size=10), [sink], 100)
    reporter = ProgressReporter([harness.runner], harness.workers, 60, SystemClock(), None)
    try:
        await harness.runner.poll_once()
        await _until(lambda: len(sink.received) == 20, "delivery")
        await _until(lambda: harness.committer.pending == 0, "the commits")
        await _until(lambda: harness.queues[0].size == 0, "the queue to drain")
        first = reporter.snapshot()
        await harness.runner.poll_once()  # the scripted source yields the same again
        await _until(lambda: len(sink.received) == 40, "delivery")
        await _until(lambda: harness.committer.pending == 0, "the commits")
        await _until(lambda: harness.queues[0].size == 0, "the queue to drain")
        second = reporter.snapshot()
    finally:
        await harness.close()
    assert first["sources"]["scripted"] == {
        "events": 20,
        "events_total": 20,
        "pending_batches": 0,
        "state": "ok",
    }
    assert first["sinks"]["siem"] == {
        "events": 20,
        "events_total": 20,
        "queued_events": 0,
        "queue_capacity": 100,
        "state": "ok",
    }
    assert second["sources"]["scripted"]["events"] == 20
    assert second["sinks"]["siem"]["events"] == 20
    assert second["sinks"]["siem"]["events_total"] == 40
    assert start_progress(reporter, 0) is None
