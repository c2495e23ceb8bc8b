"""A scripted source, controllable sinks and the real pipeline pieces wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.clock import SystemClock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Batch, DeadLetter, Event
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.sinks.base import SendResult


def _event(n: int) -> Event:
    return Event(f"e{n}", float(n), "test", "act", {"n": n}, {"n": n})


class ScriptedSource:
    """Yields ``batches`` batches of ``size`` events, counting how many it produced."""

    provider = "test"
    poll_interval = 3600.0

    def __init__(self, batches: int, size: int, bad_record_in: int | None = None) -> None:
        self.id = "scripted"
        self.batches, self.size = batches, size
        self.produced = 0
        self.bad_record_in = bad_record_in

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        self.restored = checkpoint

    def checkpoint(self) -> dict[str, Any]:
        return {}

    async def poll(self) -> AsyncIterator[Batch]:
        for b in range(self.batches):
            events = [_event(b * self.size + i) for i in range(self.size)]
            self.produced += len(events)
            dead = []
            if b == self.bad_record_in:
                dead = [
                    DeadLetter("source", "missing_field", self.id, {"broken": True}, None, "no id")
                ]
            yield Batch(self.id, events, Checkpoint({"batch": b}), dead)

    async def aclose(self) -> None:
        return None


class RecordingSink:
    def __init__(self, sink_id: str) -> None:
        self.id = sink_id
        self.format = "ecs"
        self.received: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.failures_left = 0
        self.reject_n: set[int] = set()

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> SendResult:
        await self.gate.wait()
        if self.failures_left:
            self.failures_left -= 1
            return SendResult.retry_later("receiver down")
        rejected = {
            i: "too_large" for i, e in enumerate(events) if e.document["n"] in self.reject_n
        }
        self.received.extend(e.document["n"] for i, e in enumerate(events) if i not in rejected)
        return SendResult(rejected=rejected)

    async def aclose(self) -> None:
        return None


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        source: ScriptedSource,
        sinks: list[RecordingSink],
        capacity: int,
        store: Any = None,
    ) -> None:
        self.metrics = Metrics()
        clock = SystemClock()
        self.store = store or SqliteCheckpointStore(tmp_path)
        self.dead = FileDeadLetterQueue(tmp_path / "dl", self.metrics, clock)
        self.queues: list[EventBoundedQueue[Delivery]] = [
            EventBoundedQueue(capacity) for _ in sinks
        ]
        self.workers = [
            SinkWorker(sink, queue, self.dead, self.metrics, clock, Backoff(0.001, 0.002))
            for sink, queue in zip(sinks, self.queues, strict=True)
        ]
        self.committer = OrderedCommitter(source.id, self.store, self.metrics, clock)
        self.runner = SourceRunner(
            source, self.committer, self.queues, self.dead, self.metrics, clock, Backoff()
        )
        self.tasks = [asyncio.create_task(worker.run()) for worker in self.workers]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.store.aclose()
