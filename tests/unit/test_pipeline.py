"""The pipeline with a scripted source and controllable sinks: ordering, acknowledgement
gating of the cursor, backpressure, retries and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from pipeline_harness import Harness, RecordingSink, ScriptedSource, _event

from forwarder.checkpoint.base import Checkpoint
from forwarder.events import Batch, DeadLetter, Event
from forwarder.sinks.base import Coalescing, SendResult
from forwarder.sources.base import TransientSourceError


async def test_every_sink_gets_every_event_in_order_and_cursor_commits(tmp_path: Path) -> None:
    sinks = [RecordingSink("a"), RecordingSink("b")]
    source = ScriptedSource(batches=20, size=7)
    harness = Harness(tmp_path, source, sinks, capacity=50)
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    for sink in sinks:
        assert sink.received == list(range(140))
    assert await harness.store.load("scripted") == {"batch": 19, "seen": {}}


async def test_slow_sink_pauses_the_poller_and_holds_the_cursor(tmp_path: Path) -> None:
    fast, slow = RecordingSink("fast"), RecordingSink("slow")
    slow.gate.clear()
    source = ScriptedSource(batches=100, size=10)
    harness = Harness(tmp_path, source, [fast, slow], capacity=30)
    polling = asyncio.create_task(harness.runner.poll_once())
    await asyncio.sleep(0.2)
    # Queue holds 30 events plus one batch in the slow sink's hands, plus one batch the
    # poller is trying to put: memory stays bounded, far below 1000 produced events.
    assert source.produced <= 30 + 10 + 10
    assert not polling.done()
    assert await harness.store.load("scripted") is None, "cursor moved before the slow sink acked"
    slow.gate.set()
    await asyncio.wait_for(polling, 5)
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert slow.received == fast.received == list(range(1000))
    assert await harness.store.load("scripted") == {"batch": 99, "seen": {}}


async def test_retriable_failures_are_retried_never_dropped(tmp_path: Path) -> None:
    sink = RecordingSink("flaky")
    sink.failures_left = 5
    harness = Harness(tmp_path, ScriptedSource(batches=3, size=4), [sink], capacity=100)
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert sink.received == list(range(12))
    errors = harness.metrics.registry.get_sample_value(
        "forwarder_sink_errors_total", {"sink": "flaky", "error_type": "send_failed"}
    )
    assert errors == 5


async def test_rejected_events_and_bad_records_go_to_dead_letters(tmp_path: Path) -> None:
    sink = RecordingSink("picky")
    sink.reject_n = {5}
    harness = Harness(tmp_path, ScriptedSource(batches=2, size=4, bad_record_in=1), [sink], 100)
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert sink.received == [0, 1, 2, 3, 4, 6, 7]
    letters = [orjson.loads(line) for line in harness.dead.path.read_bytes().splitlines()]
    assert {(d["stage"], d["reason"]) for d in letters} == {
        ("source", "missing_field"),
        ("sink", "too_large"),
    }
    sink_letter = next(d for d in letters if d["stage"] == "sink")
    assert sink_letter["payload"] == {"n": 5} and sink_letter["sink"] == "picky"
    sample = harness.metrics.registry.get_sample_value
    assert (
        sample("forwarder_dead_letter_events_total", {"stage": "sink", "reason": "too_large"}) == 1
    )
    assert await harness.store.load("scripted") == {"batch": 1, "seen": {}}


class HalfThenAllSink(RecordingSink):
    """Acknowledges the first half of the first batch, then fails the rest once."""

    def __init__(self) -> None:
        super().__init__("half")
        self.calls: list[list[int]] = []

    async def send(self, events: Sequence[Event]) -> SendResult:
        numbers = [e.document["n"] for e in events]
        self.calls.append(numbers)
        if len(self.calls) == 1:
            half = len(events) // 2
            self.received.extend(numbers[:half])
            return SendResult(
                retry="broker timeout",
                delivered=frozenset(range(half)),
                rejected={half: "too_large"},
            )
        self.received.extend(numbers)
        return SendResult()


async def test_a_partial_failure_resends_only_what_is_undelivered(tmp_path: Path) -> None:
    sink = HalfThenAllSink()
    harness = Harness(tmp_path, ScriptedSource(batches=1, size=10), [sink], capacity=100)
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert sink.calls == [list(range(10)), [6, 7, 8, 9]]
    assert sink.received == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    letters = [orjson.loads(line) for line in harness.dead.path.read_bytes().splitlines()]
    assert [(d["reason"], d["payload"]["n"]) for d in letters] == [("too_large", 5)]
    sent = harness.metrics.registry.get_sample_value(
        "forwarder_sink_events_sent_total", {"sink": "half"}
    )
    assert sent == 9


class CoalescingSink(RecordingSink):
    coalescing = Coalescing(max_events=100, max_wait=0.2)

    def __init__(self) -> None:
        super().__init__("coalescing")
        self.sizes: list[int] = []

    async def send(self, events: Sequence[Event]) -> SendResult:
        self.sizes.append(len(events))
        return await super().send(events)


async def test_queued_batches_are_merged_up_to_the_sinks_limit(tmp_path: Path) -> None:
    sink = CoalescingSink()
    sink.gate.clear()  # let the queue fill before the first send
    harness = Harness(tmp_path, ScriptedSource(batches=10, size=20), [sink], capacity=1000)
    polling = asyncio.create_task(harness.runner.poll_once())
    await asyncio.sleep(0.05)
    sink.gate.set()
    await polling
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert sink.received == list(range(200))
    assert sum(sink.sizes) == 200
    assert max(sink.sizes) == 100 and len(sink.sizes) <= 4
    assert await harness.store.load("scripted") == {"batch": 9, "seen": {}}


class MovingSource:
    """Follows the Source rule: builds each batch without touching its position, and
    moves the position only once the batch was handed on (the ``yield`` returned). Batch
    ``bad`` carries a dead letter; reading batch ``fail_at`` raises once. No
    ``checkpoint()``: the pipeline must not need one."""

    id = "moving"
    provider = "test"
    poll_interval = 3600.0

    def __init__(self, total: int, bad: int | None = None, fail_at: int | None = None) -> None:
        self.total, self.bad, self.fail_at = total, bad, fail_at
        self.position = 0
        self.restored: list[Any] = []
        self.closed_at: list[int] = []
        """The batch whose ``yield`` each closed poll was stopped at."""

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        self.restored.append(checkpoint)

    async def poll(self) -> AsyncIterator[Batch]:
        while self.position < self.total:
            number = self.position + 1
            if number == self.fail_at:
                self.fail_at = None
                raise TransientSourceError("HTTP 503: backend error")
            dead = []
            if number == self.bad:
                dead = [DeadLetter("source", "missing_field", self.id, {"broken": True})]
            try:
                yield Batch(self.id, [_event(number)], Checkpoint({"position": number}), dead)
            except GeneratorExit:
                self.closed_at.append(number)
                raise
            self.position = number

    async def aclose(self) -> None:
        return None


async def test_a_batch_whose_dead_letters_cannot_be_written_never_changes_the_source(
    tmp_path: Path,
) -> None:
    """Batch 4 cannot be handed on: the runner closes the poll at its yield, so the
    source never applies its change (nothing to restore), and the next poll reads it
    again: every event once, the malformed record dead-lettered once."""
    sink = RecordingSink("all")
    source = MovingSource(total=10, bad=4)
    harness = Harness(tmp_path, source, [sink], capacity=100)  # type: ignore[arg-type]
    (tmp_path / "dl").write_bytes(b"a file where the dead-letter directory should be")
    await harness.runner.poll_once()
    assert source.closed_at == [4], "the poll was not closed at the batch left behind"
    assert source.position == 3, "the change of the batch that was not handed on was applied"
    assert source.restored == [], "the pipeline restored the source"
    assert harness.runner.last_error_type == "dead_letter_write"
    failed = harness.metrics.registry.get_sample_value(
        "forwarder_source_failed_polls_total",
        {"source": "moving", "error_type": "dead_letter_write"},
    )
    assert failed == 1
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    assert await harness.store.load("moving") == {"position": 3, "seen": {}}
    (tmp_path / "dl").unlink()
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert sink.received == list(range(1, 11))
    assert len(harness.dead.path.read_bytes().splitlines()) == 1
    assert await harness.store.load("moving") == {"position": 10, "seen": {}}


async def test_a_failing_poll_goes_on_from_the_last_batch_handed_on(tmp_path: Path) -> None:
    sink = RecordingSink("all")
    source = MovingSource(total=8, fail_at=5)
    harness = Harness(tmp_path, source, [sink], capacity=100)  # type: ignore[arg-type]
    await harness.runner.poll_once()
    assert source.position == 4 and source.restored == []
    assert harness.runner.last_error_type == "transient"
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    assert sink.received == list(range(1, 9))
    assert await harness.store.load("moving") == {"position": 8, "seen": {}}
