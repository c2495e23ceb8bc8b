"""What the daemon says at ``info`` while all is well: where each source resumed from at
start, and a periodic ``progress`` line (events per source and sink, read positions,
queue use), so that a quiet log still shows a working daemon."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from forwarder.clock import Clock
from forwarder.pipeline.sink_worker import SinkWorker
from forwarder.pipeline.source_runner import SourceRunner


class Positioned(Protocol):
    """A source that can say where it reads from (Calendly, Google Calendar)."""

    def position(self) -> dict[str, Any]:
        """Read positions as RFC 3339 times and counts: never a key, token or record."""
        ...


def source_position(source: object) -> dict[str, Any]:
    """``source``'s read position, or nothing for a source that cannot tell."""
    position = getattr(source, "position", None)
    return position() if callable(position) else {}


def log_resumed(log: Any, source: object, source_id: str, checkpoint_found: bool) -> None:
    """The start-up line of one source: from its committed cursor, or (no cursor yet) from
    its ``initial_lookback``."""
    log.info(
        "source_resumed",
        source=source_id,
        resumed_from="checkpoint" if checkpoint_found else "initial_lookback",
        **source_position(source),
    )


class ProgressReporter:
    """Logs ``progress`` every ``interval`` seconds: per source the events handed on (since
    the previous line and since the start), its read position and the batches not yet
    acknowledged by every sink; per sink the events it acknowledged, its queue use and
    whether it is failing."""

    def __init__(
        self,
        runners: Sequence[SourceRunner],
        workers: Sequence[SinkWorker],
        interval: float,
        clock: Clock,
        log: Any,
    ) -> None:
        self._runners = runners
        self._workers = workers
        self._interval = interval
        self._clock = clock
        self._log = log
        self._received = {runner.source.id: 0 for runner in runners}
        self._sent = {worker.sink.id: 0 for worker in workers}

    async def run(self) -> None:
        """Until cancelled (``interval`` > 0)."""
        while True:
            await self._clock.sleep(self._interval)
            self._log.info("progress", interval_seconds=self._interval, **self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The fields of one progress line; counts ``events`` since the previous call."""
        sources: dict[str, Any] = {}
        for runner in self._runners:
            source_id = runner.source.id
            total = runner.events_received
            sources[source_id] = {
                "events": total - self._received.get(source_id, 0),
                "events_total": total,
                "pending_batches": runner.committer.pending,
                "state": "ok" if runner.failing_since is None else "failing",
                **source_position(runner.source),
            }
            self._received[source_id] = total
        sinks: dict[str, Any] = {}
        for worker in self._workers:
            sink_id = worker.sink.id
            total = worker.events_sent
            queue = worker.queue
            sinks[sink_id] = {
                "events": total - self._sent.get(sink_id, 0),
                "events_total": total,
                "queued_events": queue.size,
                "queue_capacity": queue.capacity,
                "state": "ok" if worker.failing_since is None else "failing",
            }
            self._sent[sink_id] = total
        return {"sources": sources, "sinks": sinks}


def start_progress(reporter: ProgressReporter, interval: float) -> asyncio.Task[None] | None:
    """The reporter's task, or ``None`` when ``interval`` is 0 (turned off)."""
    if interval <= 0:
        return None
    return asyncio.create_task(reporter.run(), name="progress")
