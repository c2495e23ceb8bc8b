"""The Google source at enterprise volume: what keeping up with a busy domain costs, per
hour, in API requests, re-reads, state writes, CPU and memory; and whether every event
arrives exactly once.

    .venv/bin/python bench/google_scale.py [--rates 1 10 100] [--measure 30m] [--json PATH]

Each rate (events per second) runs in a process of its own: the REAL Google source
(``forwarder.daemon.build_source`` from a ``GoogleCalendarSourceConfig`` at its defaults:
60 s poll, 3 h settle window, 1,000 per page...) through the real pipeline pieces, wired
as ``Daemon._pump`` wires them (``SourceRunner``, a bounded queue, ``SinkWorker``,
``OrderedCommitter``, the checkpoint store ``Daemon`` builds for the state directory, a
file sink), against the Google simulator on a simulated clock: poll, wait until the
sink has everything and the checkpoint is committed, move the clock by the delay the
runner asks for (``poll_interval``), poll again.

The simulator runs in its own process (``google_scale_sim.py``), on the same clock (a
shared-memory float), so its CPU and memory are not the forwarder's. Its log:

- ``--history`` (default: settle window + 10 min) of activities before the forwarder
  starts, so the settle window is full from the first poll; then live activities at the
  rate, up to the end of the measured phase;
- reporting lag: 5-60 s for most; ``--late-fraction`` (5 %) late by 1 min up to the
  settle window minus two polls (later than that is not a settle window's promise);
- Google's default 2,400 queries per minute per project.

Phases (simulated time): catch-up and ``--warmup`` (default: settle window + 10 min, so
every re-read a source schedules at steady state has happened), ``--measure`` (30 min,
the figures), ``--drain`` (settle window + 10 min with the log no longer growing: every
late activity shows up and is read), then the check against the simulator's ground
truth: every event of every activity delivered once (``missed``, ``duplicated``;
``unexpected``: delivered but not in the log). With a shorter drain only the activities
older than (last poll - settle window - 2 polls) are required.

Figures, over the measured phase, per hour of simulated time:

- API requests by route (the simulator's counters) and the most in one poll (one
  simulated minute at the default interval);
- records read: activities the simulator served, per new activity and per new event the
  sink received;
- state bytes written: ``write_bytes`` of ``/proc/self/io`` (bytes this process sent to
  the disk; the sink's file is on tmpfs, which does not count, so this is the state
  directory), and for the JSON file store the checkpoint bytes written (file size after
  each commit); commits per hour;
- CPU seconds of this process (the forwarder; the simulator's are shown apart);
- peak RSS (``VmHWM``) of this process: over the measured phase (reset at its start
  through ``/proc/self/clear_refs``) and over the whole run, catch-up included.

``PYTHONPATH`` chooses the forwarder measured (e.g. a worktree of an older commit); the
output names the package path it imported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from report import text_table

import forwarder
from forwarder.backoff import Backoff
from forwarder.checkpoint.statedir import prepare_state
from forwarder.config.durations import parse_duration
from forwarder.config.model import Config, GoogleCalendarSourceConfig
from forwarder.daemon import Daemon, build_sink, build_source, event_seal_formats
from forwarder.observability.logging import configure_logging
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.pipeline.source_runner import SourceRunner

BENCH = Path(__file__).resolve().parent
sys.path.insert(1, str(BENCH))

from google_scale_sim import SharedClock  # noqa: E402

T0 = 1_800_000_000.0
SOURCE_ID = "gcal"
# Events per activity in the simulator's data: 90 % hold one event, 10 % several (a
# meeting created with 1-2 guests added, or moved): 0.9 + 0.1 * 2.35.
EVENTS_PER_ACTIVITY = 1.135
# The source's defaults, as validated (some follow from others).
DEFAULTS = GoogleCalendarSourceConfig(
    type="google_calendar", credentials_file=Path("unused"), delegated_admin="admin@example.com"
)
POLL_INTERVAL = DEFAULTS.poll_interval
SETTLE_WINDOW = DEFAULTS.settle_window


def _io() -> dict[str, int]:
    counters = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        name, value = line.split(":")
        counters[name] = int(value)
    return counters


def _peak_rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# The source's own counters worth a figure (those its version has): requests by purpose,
# re-read records, late events by schedule step, duplicates dropped.
COUNTERS = (
    "forwarder_source_requests_total",
    "forwarder_source_rereads_total",
    "forwarder_source_late_events_by_step_total",
    "forwarder_source_late_events_total",
    "forwarder_source_duplicates_dropped_total",
)


def _counters(metrics: Metrics) -> dict[str, float]:
    """The source's :data:`COUNTERS`, one entry per label set (``name{label=value}``)."""
    values: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name in COUNTERS and sample.labels.get("source") == SOURCE_ID:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def _size_on_disk(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


class StoreProbe:
    """The daemon's store, counting commits (and, for the JSON file store, the bytes of
    each checkpoint file written); everything else is passed through."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.commits = 0
        self.file_bytes = 0
        self.commit_seconds = 0.0
        directory = getattr(store, "directory", None)
        self._files = Path(directory) if directory is not None else None

    async def commit(self, source_id: str, checkpoint: Any) -> None:
        started = time.perf_counter()
        await self.store.commit(source_id, checkpoint)
        self.commit_seconds += time.perf_counter() - started
        self.commits += 1
        if self._files is not None:
            self.file_bytes += (self._files / f"{source_id}.json").stat().st_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class SimulatorProcess:
    """``google_scale_sim.py`` running the Google simulator on the shared clock."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "google_scale_sim.py"), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise SystemExit("the simulator did not start")
        started = json.loads(line)
        self.url: str = started["url"]
        self.key_file = Path(started["key_file"])
        self.stats: dict[str, Any] = {}

    async def call(
        self, session: aiohttp.ClientSession, path: str, body: Any = None
    ) -> dict[str, Any]:
        method = "GET" if body is None and path.endswith("stats") else "POST"
        async with session.request(method, self.url + path, json=body) as response:
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
        return result

    async def consume(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """Have the simulator read the sink; keep its latest counters."""
        result = await self.call(session, "/_bench/consume", {})
        self.stats = result["stats"]
        return result

    def stop(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


API_ROUTES = ("activities", "token")


def _requests(stats: Mapping[str, Any]) -> dict[str, int]:
    """API requests by route (the benchmark's own calls to ``/_bench/`` left out)."""
    by_route = stats["requests"]
    return {route: sum(by_route.get(route, {}).values()) for route in API_ROUTES}


class Scenario:
    """One rate: simulator, forwarder pipeline, phases, figures (see the module)."""

    def __init__(self, rate: float, args: argparse.Namespace) -> None:
        self.rate = rate
        self.args = args
        self.history = args.history if args.history is not None else SETTLE_WINDOW + 600
        self.warmup = args.warmup if args.warmup is not None else SETTLE_WINDOW + 600
        self.drain = args.drain if args.drain is not None else SETTLE_WINDOW + 600
        self.late_max = SETTLE_WINDOW - 2 * POLL_INTERVAL
        self.end = T0 + self.warmup + args.measure
        self.work = Path(tempfile.mkdtemp(prefix="forwarder-gscale-", dir=args.state_parent))
        # tmpfs: the sink's writes must not count as disk writes of this process.
        self.shm = Path(tempfile.mkdtemp(prefix="forwarder-gscale-", dir=args.sink_parent))
        self.clock = SharedClock(T0, self.shm / "clock")
        self.poll_requests: list[int] = []
        self.failed_polls = 0

    def simulator_settings(self) -> dict[str, Any]:
        return {
            "clock_file": str(self.shm / "clock"),
            "sink_file": str(self.shm / "events.ndjson"),
            "key_file": str(self.shm / "google-key.json"),
            "google": {
                "start": T0 - self.history,
                "end": self.end,
                "seed": self.args.seed,
                "rate_per_minute": self.rate * 60 / EVENTS_PER_ACTIVITY,
                "min_lag": 5.0,
                "max_lag": 60.0,
                "late_fraction": self.args.late_fraction,
                "late_min_lag": 60.0,
                "late_lag": self.late_max,
            },
        }

    def config(self, sim: SimulatorProcess) -> Config:
        source: dict[str, Any] = {
            "type": "google_calendar",
            "base_url": sim.url,
            "credentials_file": str(sim.key_file),
            "delegated_admin": "admin@example.com",
        }
        if self.history + 60 > DEFAULTS.initial_lookback:
            source["initial_lookback"] = self.history + 60
        return Config.model_validate(
            {
                "state_dir": str(self.work / "state"),
                "sources": {SOURCE_ID: source},
                "sinks": {"file": {"type": "file", "path": str(self.shm / "events.ndjson")}},
                "metrics": {"enabled": False},
                "log": {"level": "warning"},
            }
        )

    async def run(self) -> dict[str, Any]:
        sim = SimulatorProcess(self.simulator_settings())
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
                return await self._run(sim, http)
        finally:
            sim.stop()
            shutil.rmtree(self.work, ignore_errors=True)
            shutil.rmtree(self.shm, ignore_errors=True)

    async def _run(self, sim: SimulatorProcess, http: aiohttp.ClientSession) -> dict[str, Any]:
        config = self.config(sim)
        prepare_state(config)
        metrics = Metrics()
        # The store the daemon uses, built the way it builds it.
        daemon = Daemon(config, clock=self.clock, metrics=metrics)
        store = StoreProbe(daemon.store)
        sink = build_sink("file", config.sinks["file"], metrics)
        await sink.start()
        source = build_source(SOURCE_ID, config.sources[SOURCE_ID], metrics, self.clock)
        source.seal_formats = event_seal_formats([sink])
        source.restore(await store.load(SOURCE_ID))
        pipeline = config.pipeline
        queue: EventBoundedQueue[Delivery] = EventBoundedQueue(pipeline.queue_capacity)
        backoff = Backoff(pipeline.retry_initial_backoff, pipeline.retry_max_backoff)
        worker = SinkWorker(sink, queue, daemon.dead_letters, metrics, self.clock, backoff)
        committer = OrderedCommitter(source.id, store, metrics, self.clock)  # type: ignore[arg-type]
        runner = SourceRunner(
            source,
            committer,
            [queue],
            daemon.dead_letters,
            metrics,
            self.clock,
            Backoff(initial=2.0, maximum=300.0),
        )
        worker_task = asyncio.create_task(worker.run())
        try:
            started_wall = time.monotonic()
            await self._polls(runner, committer, sim, http, T0 + self.warmup)
            warmup_wall = time.monotonic() - started_wall
            run_peak_kb = _peak_rss_kb()
            peak_reset = _reset_peak_rss()
            before = self._snapshot(sim, store, metrics)
            self.poll_requests = []
            await self._polls(runner, committer, sim, http, self.end)
            after = self._snapshot(sim, store, metrics)
            measured_peak_kb = _peak_rss_kb()
            measured_polls = list(self.poll_requests)
            await self._polls(runner, committer, sim, http, self.end + self.drain)
            state_size = _size_on_disk(self.work / "state")
            due_before = self.clock.now() - SETTLE_WINDOW - 2 * POLL_INTERVAL
            check = await sim.call(http, "/_bench/verify", {"due_before": due_before})
        finally:
            worker_task.cancel()
            await asyncio.gather(worker_task, return_exceptions=True)
            await source.aclose()
            await sink.aclose()
            closing = getattr(store, "aclose", None)
            if closing is not None:
                await closing()
        return self._figures(
            before,
            after,
            measured_polls=measured_polls,
            warmup_wall=warmup_wall,
            run_peak_kb=max(run_peak_kb, measured_peak_kb),
            measured_peak_kb=measured_peak_kb if peak_reset else None,
            state_size=state_size,
            check=check,
            store=store,
        )

    async def _polls(
        self,
        runner: SourceRunner,
        committer: OrderedCommitter,
        sim: SimulatorProcess,
        http: aiohttp.ClientSession,
        until: float,
    ) -> None:
        while self.clock.now() < until:
            requests_before = sum(_requests(sim.stats).values()) if sim.stats else 0
            delay = await runner.poll_once()
            await committer.wait_idle()
            await sim.consume(http)
            self.poll_requests.append(sum(_requests(sim.stats).values()) - requests_before)
            if runner.failing_since is not None:
                self.failed_polls += 1
            self.clock.advance(delay)

    def _snapshot(
        self, sim: SimulatorProcess, store: StoreProbe, metrics: Metrics
    ) -> dict[str, Any]:
        return {
            "counters": _counters(metrics),
            "clock": self.clock.now(),
            "wall": time.monotonic(),
            "cpu": time.process_time(),
            "io": _io(),
            "sim": sim.stats,
            "commits": store.commits,
            "file_bytes": store.file_bytes,
            "commit_seconds": store.commit_seconds,
        }

    def _figures(
        self,
        before: dict[str, Any],
        after: dict[str, Any],
        *,
        measured_polls: list[int],
        warmup_wall: float,
        run_peak_kb: int,
        measured_peak_kb: int | None,
        state_size: int,
        check: dict[str, Any],
        store: StoreProbe,
    ) -> dict[str, Any]:
        hours = (after["clock"] - before["clock"]) / 3600
        sim_before, sim_after = before["sim"], after["sim"]
        routes_before, routes_after = _requests(sim_before), _requests(sim_after)
        requests = {
            route: round((n - routes_before.get(route, 0)) / hours)
            for route, n in sorted(routes_after.items())
        }
        read = sim_after["listing"]["items_served"] - sim_before["listing"]["items_served"]
        touched = sim_after["listing"]["records_touched"] - sim_before["listing"]["records_touched"]
        events = sim_after["sink_events"] - sim_before["sink_events"]
        activities = sim_after["sink_activities"] - sim_before["sink_activities"]
        written = after["io"]["write_bytes"] - before["io"]["write_bytes"]
        cancelled = after["io"]["cancelled_write_bytes"] - before["io"]["cancelled_write_bytes"]
        file_store = store._files is not None
        return {
            "rate_events_per_second": self.rate,
            "activities_per_minute": round(self.rate * 60 / EVENTS_PER_ACTIVITY, 1),
            "forwarder": str(Path(forwarder.__file__).parent),
            "store": type(store.store).__name__,
            "phases_seconds": {
                "history": self.history,
                "warmup": self.warmup,
                "measure": after["clock"] - before["clock"],
                "drain": self.drain,
            },
            "late": {
                "fraction": self.args.late_fraction,
                "lag_seconds": [60.0, self.late_max],
                "others_lag_seconds": [5.0, 60.0],
            },
            "wall_seconds": {
                "catch_up_and_warmup": round(warmup_wall, 1),
                "measure": round(after["wall"] - before["wall"], 1),
            },
            "polls_measured": len(measured_polls),
            "failed_polls": self.failed_polls,
            "events_delivered": events,
            "events_per_second": round(events / (hours * 3600), 2),
            "requests_per_hour": {**requests, "total": sum(requests.values())},
            "requests_per_poll_max": max(measured_polls, default=0),
            "records_read": read,
            "reads_per_activity": round(read / activities, 2) if activities else None,
            "reads_per_event": round(read / events, 2) if events else None,
            "simulator_records_touched": touched,
            "state_write_bytes_per_hour": round(written / hours),
            "state_cancelled_write_bytes_per_hour": round(cancelled / hours),
            "checkpoint_commits_per_hour": round((after["commits"] - before["commits"]) / hours),
            "checkpoint_file_bytes_per_hour": (
                round((after["file_bytes"] - before["file_bytes"]) / hours) if file_store else None
            ),
            "commit_seconds_per_hour": round(
                (after["commit_seconds"] - before["commit_seconds"]) / hours, 1
            ),
            "state_size_bytes_at_end": state_size,
            "source_counters_per_hour": {
                name: round((value - before["counters"].get(name, 0.0)) / hours)
                for name, value in after["counters"].items()
            },
            "cpu_seconds_per_hour": round((after["cpu"] - before["cpu"]) / hours, 1),
            "simulator_cpu_seconds_per_hour": round(
                (sim_after["cpu_seconds"] - sim_before["cpu_seconds"]) / hours, 1
            ),
            "peak_rss_mb_measured": (
                round(measured_peak_kb / 1024, 1) if measured_peak_kb is not None else None
            ),
            "peak_rss_mb_run": round(run_peak_kb / 1024, 1),
            "simulator_peak_rss_mb": round(sim_after["peak_rss_kb"] / 1024, 1),
            "check": check,
        }


COLUMNS = (
    ("events/s", lambda r: f"{r['rate_events_per_second']:g}"),
    ("req/h", lambda r: f"{r['requests_per_hour']['total']:,}"),
    ("req/poll max", lambda r: f"{r['requests_per_poll_max']:,}"),
    ("reads/activity", lambda r: f"{r['reads_per_activity']}"),
    ("reads/event", lambda r: f"{r['reads_per_event']}"),
    ("state MB/h", lambda r: f"{r['state_write_bytes_per_hour'] / 1e6:,.1f}"),
    ("commits/h", lambda r: f"{r['checkpoint_commits_per_hour']:,}"),
    ("CPU s/h", lambda r: f"{r['cpu_seconds_per_hour']:,}"),
    ("RSS MiB", lambda r: f"{r['peak_rss_mb_measured']} / {r['peak_rss_mb_run']}"),
    ("missed", lambda r: f"{r['check']['missed']}/{r['check']['events_due']:,}"),
    ("dup", lambda r: f"{r['check']['duplicated']}"),
)


def table(rows: list[dict[str, Any]]) -> str:
    return text_table(COLUMNS, rows)


def _duration(text: str) -> float:
    return parse_duration(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add = parser.add_argument
    add("--rates", type=float, nargs="+", default=[1.0, 10.0, 100.0], help="events/s")
    add("--history", type=_duration, default=None, help="default: settle window + 10m")
    add("--warmup", type=_duration, default=None, help="default: settle window + 10m")
    add("--measure", type=_duration, default=1800.0)
    add("--drain", type=_duration, default=None, help="default: settle window + 10m")
    add("--late-fraction", type=float, default=0.05)
    add("--seed", type=int, default=15)
    add("--state-parent", default=None, help="where the state directory goes (a disk)")
    add("--sink-parent", default="/dev/shm", help="where the sink file goes (tmpfs)")
    add("--json", type=Path, default=None)
    add("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("warning")
    if args.child:
        result = asyncio.run(Scenario(args.rates[0], args).run())
        assert args.json is not None
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    print(f"forwarder: {Path(forwarder.__file__).parent}", flush=True)
    rows = []
    for rate in args.rates:
        rows.append(_child(rate, args))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["check"]["missed"] == r["check"]["duplicated"] == 0 for r in rows) else 1


def _child(rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Run one rate in a fresh process: its CPU, memory and disk figures are its own."""
    command = [sys.executable, __file__, "--child", "--rates", str(rate)]
    for name in ("history", "warmup", "measure", "drain"):
        value = getattr(args, name)
        if value is not None:
            command += [f"--{name}", f"{value}s"]
    command += ["--late-fraction", str(args.late_fraction), "--seed", str(args.seed)]
    command += ["--sink-parent", args.sink_parent]
    if args.state_parent:
        command += ["--state-parent", args.state_parent]
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        subprocess.run([*command, "--json", output.name], check=True, env=os.environ.copy())
        result: dict[str, Any] = json.loads(Path(output.name).read_text())
    return result


if __name__ == "__main__":
    raise SystemExit(main())
