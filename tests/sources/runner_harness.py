"""A real source behind the real pipeline pieces: SourceRunner, OrderedCommitter, the file
dead-letter queue, the SQLite state store, and one sink worker recording what it receives.

The dead-letter directory can be made unwritable (a regular file where the directory
should be: a full or read-only volume, as far as the daemon can tell, even as root).
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from source_harness import sample

from forwarder.backoff import Backoff
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.clock import Clock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Event
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.sinks.base import SendResult


class RecordingSink:
    """Takes every batch and remembers the event ids, in order."""

    def __init__(self) -> None:
        self.id = "recording"
        self.format = "ecs"
        self.received: list[str] = []

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> SendResult:
        self.received.extend(event.id for event in events)
        return SendResult()

    async def aclose(self) -> None:
        return None


class SourcePipeline:
    """``await pipeline.poll()`` runs one polling cycle as the daemon does."""

    def __init__(self, source: Any, state: Path, metrics: Metrics, clock: Clock) -> None:
        self.source = source
        self.metrics = metrics
        self.store = SqliteCheckpointStore(state / "state")
        self.dead_dir = state / "dead"
        self.dead = FileDeadLetterQueue(self.dead_dir, metrics, clock)
        self.sink = RecordingSink()
        self.queue: EventBoundedQueue[Delivery] = EventBoundedQueue(1_000_000)
        self.worker = SinkWorker(
            self.sink, self.queue, self.dead, metrics, clock, Backoff(0.001, 0.002)
        )
        self.committer = OrderedCommitter(source.id, self.store, metrics, clock)
        self.runner = SourceRunner(
            source, self.committer, [self.queue], self.dead, metrics, clock, Backoff(1.0, 60.0)
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SourcePipeline:
        self._task = asyncio.create_task(self.worker.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        # Closes the connection (a later call opens it again).
        await self.store.aclose()

    async def poll(self) -> bool:
        """One polling cycle, then wait for every batch to be committed; ``True`` if the
        cycle succeeded."""
        polls = self.runner.polls
        await self.runner.poll_once()
        await asyncio.wait_for(self.committer.wait_idle(), 30)
        return self.runner.polls > polls

    @property
    def delivered(self) -> Counter[str]:
        return Counter(self.sink.received)

    def block_dead_letters(self) -> None:
        """Make the dead-letter path unwritable."""
        self.dead_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.dead_dir.is_dir():
            shutil.rmtree(self.dead_dir)
        self.dead_dir.write_bytes(b"not a directory")

    def unblock_dead_letters(self) -> None:
        if self.dead_dir.is_file():
            self.dead_dir.unlink()

    def dead_letters(self) -> list[dict[str, Any]]:
        path = self.dead_dir / "dead-letter.ndjson"
        if not path.is_file():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]

    def sample(self, name: str, **labels: str) -> float:
        return sample(self.metrics, name, **labels)
