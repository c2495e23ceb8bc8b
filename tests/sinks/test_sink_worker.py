"""The sink worker labels each failed send with the sink's ``error_type`` (default
``send_failed``, ``exception`` for a sink that raised) and shows it in ``last_error``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from http_harness import ScriptedSource, make_event, run_pipeline

from forwarder.backoff import Backoff
from forwarder.clock import ManualClock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Event
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.sinks.base import SendResult


class FailingTwice:
    """Fails the first two sends as told, then takes everything."""

    format = "ecs"
    reads_documents = False

    def __init__(self, failure: SendResult | Exception) -> None:
        self.id = "flaky"
        self.failure = failure
        self.failures = 0
        self.received: list[str] = []

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> SendResult:
        if self.failures < 2:
            self.failures += 1
            if isinstance(self.failure, Exception):
                raise self.failure
            return self.failure
        self.received.extend(event.id for event in events)
        return SendResult.acknowledged()

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    ("failure", "label"),
    [
        (SendResult.retry_later("HTTP 302 redirect", error_type="redirect"), "redirect"),
        (SendResult.retry_later("socket closed"), "send_failed"),
        (RuntimeError("bug"), "exception"),
    ],
)
async def test_error_type_labels_the_failures(
    tmp_path: Path, failure: SendResult | Exception, label: str
) -> None:
    sink = FailingTwice(failure)
    metrics = Metrics()
    store, _, metrics = await run_pipeline(tmp_path, sink, ScriptedSource(2, 50), metrics=metrics)
    counted = metrics.registry.get_sample_value(
        "forwarder_sink_errors_total", {"sink": "flaky", "error_type": label}
    )
    assert counted == 2
    assert sorted(sink.received) == sorted(f"{n:032x}" for n in range(100))
    assert await store.load("cal") == {"b": 1, "seen": {}}


class NoCommitter:
    async def acknowledge(self, ticket: object) -> None:
        return None


async def test_last_error_names_the_type_while_failing(tmp_path: Path) -> None:
    metrics = Metrics()
    clock = ManualClock(0)
    sink = FailingTwice(SendResult.retry_later("HTTP 307 redirect", error_type="redirect"))
    queue: EventBoundedQueue[Delivery] = EventBoundedQueue(10)
    dead = FileDeadLetterQueue(tmp_path / "dl", metrics, clock)
    worker = SinkWorker(sink, queue, dead, metrics, clock, Backoff(0.01, 0.05))
    seen: list[str | None] = []
    send = sink.send

    async def spy(events: Sequence[Event]) -> SendResult:
        seen.append(worker.last_error)
        return await send(events)

    sink.send = spy  # type: ignore[method-assign]
    delivery = Delivery("cal", [make_event(1)], None, NoCommitter())  # type: ignore[arg-type]
    await worker._deliver([delivery])
    assert seen == [None, "redirect: HTTP 307 redirect", "redirect: HTTP 307 redirect"]
    assert worker.last_error is None and worker.failing_since is None
