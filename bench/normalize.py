"""Normalization throughput on one core, next to the orjson loads+dumps ceiling.

    .venv/bin/python bench/normalize.py [records] [--rounds 7] [--cpu N] [--json PATH]

For each provider the same simulator records are measured three ways, interleaved, in
the same process, with the garbage collector tuned as the daemon tunes it (``--gc default``
for Python's defaults):

- **path**: what the daemon does per API response. One page (of the sources' default
  ``page_size``: 100 Calendly entries, 1000 Google activities) is parsed with ``orjson.loads``,
  every record is normalized (through ``normalize_payload``, the ``forwarder normalize``
  entry point, which calls the same ``normalize_entry`` / ``normalize_activity`` as the
  sources) and every event is encoded to ECS and sealed right after its record, as the
  sources do (``Event.seal``). The events of a page are then dropped, as the daemon drops
  a batch once delivered.
- **normalize**: the normalizer alone on already parsed records (no parsing, no encoding;
  the events of a page are kept until its end, as in a batch).
- **ceiling**: ``orjson.dumps(orjson.loads(line))`` for every record as one compact JSON
  line: what reading and writing the same data costs with nothing done to it.

Each round times all three; the table reports the best round of each (the least disturbed
by other processes), ``ratio`` = path throughput / ceiling throughput in records per
second. ``--json`` also writes every round's times. ``--hold N`` keeps the last N events
of the path alive, as the pipeline's queue does when the sinks fall behind: the garbage
collector then has that many more documents to walk through, which costs a lot.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from forwarder.cli import tune_garbage_collector
from forwarder.clock import ManualClock
from forwarder.config.model import CalendlySourceConfig, GoogleCalendarSourceConfig
from forwarder.events import Event
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.normalize_stream import normalize_payload
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount

INGESTED = "2026-01-01T00:00:00.000Z"
# The sources' default page sizes.
PAGE_SIZES = {
    "calendly": CalendlySourceConfig.model_fields["page_size"].default,
    "google_calendar": GoogleCalendarSourceConfig.model_fields["page_size"].default,
}


@dataclass(frozen=True, slots=True)
class Result:
    """One provider's measurements; times are the best round's, in seconds."""

    provider: str
    records: int
    events: int
    path_seconds: float
    normalize_seconds: float
    ceiling_seconds: float
    rounds: dict[str, list[float]]

    @property
    def events_per_second(self) -> float:
        return self.events / self.path_seconds

    @property
    def ratio(self) -> float:
        """Path throughput over ceiling throughput, both in records per second."""
        return self.ceiling_seconds / self.path_seconds

    def summary(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "records": self.records,
            "events": self.events,
            "events_per_second": round(self.events_per_second),
            "us_per_event": round(self.path_seconds / self.events * 1e6, 2),
            "normalize_only_us_per_event": round(self.normalize_seconds / self.events * 1e6, 2),
            "ceiling_records_per_second": round(self.records / self.ceiling_seconds),
            "ceiling_us_per_record": round(self.ceiling_seconds / self.records * 1e6, 2),
            "ratio": round(self.ratio, 3),
            # The ratio of every round, to show how much the best one is an outlier.
            "median_round_ratio": round(
                statistics.median(
                    c / p for c, p in zip(self.rounds["ceiling"], self.rounds["path"], strict=True)
                ),
                3,
            ),
        }


def _pages(provider: str, records: list[dict[str, Any]]) -> list[bytes]:
    """The records as the API serves them: whole response pages of the default size."""
    size = PAGE_SIZES[provider]
    pages = []
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        if provider == "calendly":
            page = {"collection": chunk, "pagination": {"count": size, "next_page": None}}
        else:
            page = {"kind": "admin#reports#activities", "etag": '"bench"', "items": chunk}
        pages.append(orjson.dumps(page))
    return pages


def _path(provider: str, pages: list[bytes], hold: int) -> Callable[[], None]:
    def run() -> None:
        # The events still queued for the sinks (none when they keep up): what the
        # garbage collector walks through on top of the page at hand.
        queued: deque[Event] = deque(maxlen=hold)
        for page in pages:
            # Sealed as the sources do when no sink reads documents (the default sinks).
            events, failures = normalize_payload(
                provider, page, ingested=INGESTED, seal_formats=("ecs",)
            )
            assert not failures
            if hold:
                queued.extend(events)

    return run


def _normalize(provider: str, pages: list[bytes]) -> Callable[[], float]:
    """Times the normalizer alone: each page is parsed outside the timed part."""
    key = _list_key(provider)

    def run() -> float:
        seconds = 0.0
        for page in pages:
            records = orjson.loads(page)[key]
            started = time.perf_counter()
            if provider == "calendly":
                events = [normalize_entry(record, ingested=INGESTED) for record in records]
            else:
                events = [normalize_activity(record, ingested=INGESTED) for record in records]
            seconds += time.perf_counter() - started
            del events
        return seconds

    return run


def _ceiling(lines: list[bytes]) -> Callable[[], None]:
    def run() -> None:
        loads, dumps = orjson.loads, orjson.dumps
        for line in lines:
            dumps(loads(line))

    return run


def _timed(run: Callable[[], float | None]) -> float:
    gc.collect()  # Every measurement starts from the same heap; GC stays on inside it.
    started = time.perf_counter()
    seconds = run()
    # The normalize run times itself (it leaves page parsing out); the others return None.
    return time.perf_counter() - started if seconds is None else seconds


def measure(
    provider: str, pages: list[bytes], lines: list[bytes], rounds: int, hold: int = 0
) -> Result:
    """Best-of-``rounds`` times of the path, the normalizer alone and the ceiling.

    ``pages`` and ``lines`` hold the same records. Only bytes stay in memory between runs:
    a heap full of parsed records would make every GC pass slower than in the daemon.
    """
    events = sum(len(normalize_payload(provider, page, ingested=INGESTED)[0]) for page in pages)
    runs: dict[str, Callable[[], float | None]] = {
        "path": _path(provider, pages, hold),
        "normalize": _normalize(provider, pages),
        "ceiling": _ceiling(lines),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(_timed(run))
    return Result(
        provider,
        len(lines),
        events,
        min(times["path"]),
        min(times["normalize"]),
        min(times["ceiling"]),
        times,
    )


def _list_key(provider: str) -> str:
    return "collection" if provider == "calendly" else "items"


def samples(count: int) -> dict[str, list[dict[str, Any]]]:
    """About ``count`` records per provider from the simulators (one per second)."""
    now = 1_800_000_000.0
    clock = ManualClock(now)
    start = now - count
    calendly = CalendlySimulator(CalendlyConfig(start=start, rate_per_minute=60), clock)
    google = GoogleReportsSimulator(
        GoogleConfig(start=start, rate_per_minute=60), clock, ServiceAccount.generate()
    )
    return {
        "calendly": calendly.truth(),
        "google_calendar": [record["activity"] for record in google.truth()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("records", nargs="?", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu", type=int, help="pin the process to this CPU")
    parser.add_argument(
        "--hold",
        type=int,
        default=0,
        help="keep the last N events alive in the path, as a full pipeline queue does "
        "(pipeline.queue_capacity, 10000 by default) when the sinks fall behind",
    )
    parser.add_argument(
        "--gc",
        choices=("daemon", "default"),
        default="daemon",
        help="the garbage collector as `forwarder run` tunes it, or Python's defaults",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    data = {
        provider: (_pages(provider, records), [orjson.dumps(record) for record in records])
        for provider, records in samples(args.records).items()
    }
    if args.gc == "daemon":
        tune_garbage_collector()
    results = [measure(provider, *data[provider], args.rounds, args.hold) for provider in data]
    header = (
        "provider", "records", "events", "events/s", "µs/event", "norm µs/ev",
        "ceiling rec/s", "ratio",
    )  # fmt: skip
    print("{:<16}{:>8}{:>8}{:>10}{:>10}{:>12}{:>15}{:>7}".format(*header))
    for result in results:
        row = result.summary()
        print(
            f"{row['provider']:<16}{row['records']:>8}{row['events']:>8}"
            f"{row['events_per_second']:>10,}{row['us_per_event']:>10.2f}"
            f"{row['normalize_only_us_per_event']:>12.2f}"
            f"{row['ceiling_records_per_second']:>15,}{row['ratio']:>7.2f}"
        )
    if args.json is not None:
        report = {
            "python": platform.python_version(),
            "orjson": orjson.__version__,
            "rounds": args.rounds,
            "hold": args.hold,
            "gc": args.gc,
            "results": [
                {**result.summary(), "rounds": asdict(result)["rounds"]} for result in results
            ],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
