"""Peak RSS with a slow sink and a million events waiting upstream.

    .venv/bin/python bench/rss.py [--events 1000000] [--json PATH]

A synthetic Google source produces ``--events`` events (real activities through the real
normalizer) through the real pipeline (source runner, bounded queue, sink worker, ordered
committer, SQLite state store) into a sink that takes ``--sink-delay`` (100 ms) per batch:
the poller is held back by the queue the whole time. Reports the peak RSS (VmHWM) and the
throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.clock import SystemClock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Batch, Event
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.schema.google_calendar import normalize_activity
from forwarder.sinks.base import SendResult
from forwarder.timeutil import format_rfc3339

PAGE = 1000
# What the daemon has the sources seal events in for a sink that does not read documents
# (every sink but syslog): each event is encoded and its document released at once.
SINK_FORMATS = ("ecs",)


def _activity(n: int) -> dict[str, Any]:
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": format_rfc3339(1_800_000_000 + n / 10),
            "uniqueQualifier": str(-4_000_000_000_000_000 + n),
            "applicationName": "calendar",
            "customerId": "C03az79cb",
        },
        "actor": {"callerType": "USER", "email": f"user{n % 500}@example.com", "profileId": "1"},
        "ipAddress": f"203.0.113.{n % 250}",
        "events": [
            {
                "type": "event_change",
                "name": "create_event",
                "parameters": [
                    {"name": "event_title", "value": f"Meeting {n}"},
                    {"name": "calendar_id", "value": f"user{n % 500}@example.com"},
                    {"name": "event_id", "value": f"evt{n:010d}"},
                    {"name": "api_kind", "value": "web"},
                    {"name": "start_time", "intValue": str(63879175800 + n)},
                    {"name": "end_time", "intValue": str(63879179400 + n)},
                ],
            }
        ],
    }


class SyntheticSource:
    """Pages of real Google activities, normalized by the real normalizer."""

    id = "synthetic"
    provider = "google_calendar"
    poll_interval = 3600.0

    def __init__(self, total: int) -> None:
        self.total = total
        self.produced = 0
        self.seal_formats: tuple[str, ...] | None = SINK_FORMATS

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        return None

    async def poll(self) -> AsyncIterator[Batch]:
        ingested = format_rfc3339(time.time())
        for start in range(0, self.total, PAGE):
            events: list[Event] = []
            for n in range(start, min(start + PAGE, self.total)):
                normalized = normalize_activity(_activity(n), ingested=ingested)
                for event in normalized:
                    event.seal(SINK_FORMATS)
                events.extend(normalized)
            self.produced += len(events)
            yield Batch(
                self.id, events, Checkpoint({"next": start + PAGE}), cursor_time=1_800_000_000
            )

    async def aclose(self) -> None:
        return None


class SlowSink:
    id = "slow"
    format = "ecs"
    reads_documents = False

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received = 0

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> SendResult:
        await asyncio.sleep(self.delay)
        for event in events:
            event.encoded("ecs")
        self.received += len(events)
        return SendResult()

    async def aclose(self) -> None:
        return None


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _run(total: int, capacity: int, delay: float) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="forwarder-rss-"))
    clock = SystemClock()
    metrics = Metrics()
    sink = SlowSink(delay)
    queue: EventBoundedQueue[Delivery] = EventBoundedQueue(capacity)
    dead = FileDeadLetterQueue(directory / "dl", metrics, clock)
    worker = SinkWorker(sink, queue, dead, metrics, clock, Backoff())
    source = SyntheticSource(total)
    store = SqliteCheckpointStore(directory)
    committer = OrderedCommitter(source.id, store, metrics, clock)
    runner = SourceRunner(source, committer, [queue], dead, metrics, clock, Backoff())
    task = asyncio.create_task(worker.run())
    started = time.monotonic()
    max_ahead = 0
    polling = asyncio.create_task(runner.poll_once())
    while not polling.done():
        max_ahead = max(max_ahead, source.produced - sink.received)
        await asyncio.sleep(0.05)
    await committer.wait_idle()
    seconds = time.monotonic() - started
    task.cancel()
    await store.aclose()
    return {
        "events": sink.received,
        "queue_capacity_events": capacity,
        "max_events_read_ahead_of_sink": max_ahead,
        "sink_delay_seconds": delay,
        "seconds": round(seconds, 1),
        "events_per_second": round(sink.received / seconds),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queue", type=int, default=10_000, help="pipeline.queue_capacity")
    parser.add_argument("--sink-delay", type=float, default=0.1, help="seconds per batch")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(_run(args.events, args.queue, args.sink_delay))
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["peak_rss_mb"] < 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
