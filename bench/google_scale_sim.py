"""The Google simulator of ``bench/google_scale.py``, in a process of its own, on a clock
the benchmark moves. Started by that script, not by hand:

    python bench/google_scale_sim.py SETTINGS_JSON

The simulated time is a float in a shared-memory file: :class:`SharedClock` (a
``ManualClock`` in the forwarder's process) writes it, :class:`MappedClock` (here) reads
it, so both processes see every move at once, with no request in between. The
simulator's CPU and memory thus stay out of the forwarder's figures.

Besides the API and ``/_sim/``, routes for the benchmark only:

- ``GET /_bench/stats``: listing work, requests by route, this process's CPU seconds (the
  sink reading below excluded) and peak RSS;
- ``POST /_bench/consume``: read the forwarder's sink file from where the last call
  stopped and remember every event id (the file is cut once large, as logrotate's
  copytruncate would, which the file sink supports); the benchmark calls it between
  polls, when nothing is being written;
- ``POST /_bench/verify`` ``{"due_before": unix}``: compare what was delivered with the
  simulator's ground truth: every event of an activity older than ``due_before`` must
  have been delivered, every event at most once, nothing that does not exist.

The process exits when its standard input closes (the benchmark ends or dies).
"""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from forwarder.clock import ManualClock
from forwarder.schema.ids import google_activity_event_keys
from forwarder.simulators.google import TOKEN_ROUTE, GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.server import run_app
from forwarder.timeutil import parse_rfc3339

_CLOCK = struct.Struct("d")
# The sink file is cut back to empty once read past this (copytruncate).
CUT_SINK_AT = 256 * 1024 * 1024
READ_CHUNK = 16 * 1024 * 1024


class SharedClock(ManualClock):
    """A ``ManualClock`` whose time lives in a shared-memory file (see the module)."""

    def __init__(self, start: float, path: Path) -> None:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(descriptor, _CLOCK.size)
            self._map = mmap.mmap(descriptor, _CLOCK.size)
        finally:
            os.close(descriptor)
        super().__init__(start)

    @property  # type: ignore[override]
    def _now(self) -> float:
        return float(_CLOCK.unpack_from(self._map)[0])

    @_now.setter
    def _now(self, value: float) -> None:
        _CLOCK.pack_into(self._map, 0, value)


class MappedClock:
    """Reads the time a :class:`SharedClock` writes; the simulator never sleeps on it."""

    def __init__(self, path: Path) -> None:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            self._map = mmap.mmap(descriptor, _CLOCK.size, access=mmap.ACCESS_READ)
        finally:
            os.close(descriptor)

    def now(self) -> float:
        return float(_CLOCK.unpack_from(self._map)[0])

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class SinkReader:
    """Event ids read from the forwarder's file sink, with how often each came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.ids: set[bytes] = set()
        self.repeats: Counter[bytes] = Counter()
        self.events = 0
        self.activities = 0
        self.cpu_seconds = 0.0
        self._last_activity: tuple[str, str] | None = None

    def consume(self) -> dict[str, int]:
        """Read what was appended since the last call: ``{"events", "activities"}``."""
        started = time.process_time()
        events = activities = 0
        if not self.path.exists():  # the sink creates it when it starts
            return {"events": 0, "activities": 0}
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            rest = b""
            # A catch-up poll leaves gigabytes: read them a piece at a time.
            while chunk := file.read(READ_CHUNK):
                data = rest + chunk
                end = data.rfind(b"\n") + 1
                rest = data[end:]
                for line in data[:end].splitlines():
                    activities += self._line(line)
                    events += 1
                self.offset += end
        if self.offset > CUT_SINK_AT:
            os.truncate(self.path, 0)
            self.offset = 0
        self.events += events
        self.activities += activities
        self.cpu_seconds += time.process_time() - started
        return {"events": events, "activities": activities}

    def _line(self, line: bytes) -> bool:
        """Remember the line's event id; True if it starts another activity."""
        document = orjson.loads(line)
        key = bytes.fromhex(document["event"]["id"])
        if key in self.ids:
            self.repeats[key] += 1
        else:
            self.ids.add(key)
        # An activity's events are consecutive in the sink (one page, in order).
        ident = document["google_workspace"]["id"]
        activity = (ident["time"], ident["unique_qualifier"])
        if activity == self._last_activity:
            return False
        self._last_activity = activity
        return True


def verify(sim: GoogleReportsSimulator, reader: SinkReader, due_before: float) -> dict[str, Any]:
    """Delivered events against the ground truth (every activity generated so far)."""
    now = sim.clock.now()
    due = missed = later = later_delivered = matched = 0
    for record in sim.truth_records():
        activity = record["activity"]
        ident = activity["id"]
        visible = record["visible_at_unix"] <= now
        is_due = visible and parse_rfc3339(ident["time"]) < due_before
        for event_id in google_activity_event_keys(activity):
            key = bytes.fromhex(event_id)
            delivered = key in reader.ids
            matched += delivered
            if is_due:
                due += 1
                missed += not delivered
            else:
                later += 1
                later_delivered += delivered
    return {
        "due_before": due_before,
        "events_due": due,
        "missed": missed,
        "duplicated": sum(reader.repeats.values()),
        "unexpected": len(reader.ids) - matched,
        "events_not_yet_due": later,
        "not_yet_due_delivered": later_delivered,
        "delivered_distinct": len(reader.ids),
    }


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def bench_routes(app: web.Application, sim: GoogleReportsSimulator, reader: SinkReader) -> None:
    """Add the ``/_bench/`` routes (see the module docstring)."""

    def stats() -> dict[str, Any]:
        return {
            "listing": sim.listing.as_json(),
            "requests": sim.stats.as_json()["by_route"],
            "cpu_seconds": time.process_time() - reader.cpu_seconds,
            "sink_reading_cpu_seconds": reader.cpu_seconds,
            "peak_rss_kb": _peak_rss_kb(),
            "sink_events": reader.events,
            "sink_activities": reader.activities,
        }

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats())

    async def consume(request: web.Request) -> web.Response:
        read = reader.consume()
        return web.json_response({**read, "stats": stats()})

    async def check(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(verify(sim, reader, float(body["due_before"])))

    app.router.add_get("/_bench/stats", get_stats)
    app.router.add_post("/_bench/consume", consume)
    app.router.add_post("/_bench/verify", check)


async def serve(settings: dict[str, Any]) -> None:
    clock = MappedClock(Path(settings["clock_file"]))
    sim = GoogleReportsSimulator(GoogleConfig(**settings["google"]), clock)
    reader = SinkReader(Path(settings["sink_file"]))
    app = sim.app()
    bench_routes(app, sim, reader)
    async with run_app(app) as url:
        key_file = sim.write_service_account_key(Path(settings["key_file"]), url + TOKEN_ROUTE)
        print(orjson.dumps({"url": url, "key_file": str(key_file)}).decode(), flush=True)
        # Until the benchmark closes our standard input (or dies).
        await asyncio.to_thread(sys.stdin.buffer.read)


if __name__ == "__main__":
    asyncio.run(serve(orjson.loads(sys.argv[1])))
