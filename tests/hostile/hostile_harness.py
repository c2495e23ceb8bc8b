"""Running and watching the daemon under a hostile peer: a background event loop for the
in-process servers, the config, a sampler of ``/readyz``, ``/metrics`` and memory, the
secret scan, the JSON-log check and a collector of failed checks (so that one run
reports every broken promise of a case, not only the first)."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from aiohttp import web
from e2e_harness import Daemon, free_port
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

# The chart's memory limit (deploy/helm/forwarder/values.yaml, resources.limits.memory).
CHART_MEMORY_LIMIT = 512 * 1024 * 1024
# Above this the sampler kills the daemon: a broken build must not take the CI host down
# with it (the issue measured 1.7-6 GB). The case then fails on the chart limit anyway.
RSS_KILL_SWITCH = 1536 * 1024 * 1024
# /readyz and /metrics are read this often while a case runs.
SAMPLE_INTERVAL = 0.25


class BackgroundLoop:
    """An asyncio loop in a thread, for in-process aiohttp servers the (synchronous) tests
    talk to while the daemon runs in its own process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._runners: list[web.AppRunner] = []

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[[], Any]) -> None:
        """Run ``function`` on the loop's thread (e.g. setting an asyncio.Event)."""
        self.loop.call_soon_threadsafe(function)

    def serve(self, app: web.Application) -> str:
        """Start ``app`` on 127.0.0.1 (ephemeral port); returns its base URL."""

        async def start() -> str:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._runners.append(runner)
            host, port = runner.addresses[0][:2]
            return f"http://{host}:{port}"

        return self.run(start())

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in reversed(self._runners):
                await runner.cleanup()

        try:
            self.run(cleanup(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


# -- Config ------------------------------------------------------------------------------


def daemon_config(
    state: Path,
    *,
    sources: Mapping[str, Mapping[str, Any]],
    sinks: Mapping[str, Mapping[str, Any]] | None = None,
    log_level: str = "info",
    dead_letter_dir: Path | None = None,
) -> dict[str, Any]:
    """A whole config: the given sources, a file sink by default, fast sink retries (a
    healed peer is retried within a second), metrics on a free loopback port."""
    config: dict[str, Any] = {
        "state_dir": str(state),
        "sources": {name: dict(body) for name, body in sources.items()},
        "sinks": dict(sinks or {"events": {"type": "file", "path": str(state / "events.ndjson")}}),
        "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        "pipeline": {
            "shutdown_grace": "10s",
            "retry_initial_backoff": "200ms",
            "retry_max_backoff": "1s",
        },
        "log": {"level": log_level},
    }
    if dead_letter_dir is not None:
        config["dead_letter"] = {"path": str(dead_letter_dir)}
    return config


def write_yaml(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return path


# -- Metrics -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricSample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_metrics(text: str) -> list[MetricSample]:
    """Every sample of a Prometheus text exposition (``prometheus_client``'s parser)."""
    return [
        MetricSample(sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def metric_values(samples: Iterable[MetricSample], name: str, **labels: str) -> list[float]:
    """Values of the series named ``name`` whose labels include ``labels``."""
    return [
        sample.value
        for sample in samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def metric_total(samples: Iterable[MetricSample], name: str, **labels: str) -> float:
    return sum(metric_values(samples, name, **labels))


# -- Sampling a running daemon -----------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One look at the daemon: /readyz (status and body), /metrics, resident memory."""

    at: float
    ready_status: int | None
    readyz_text: str
    readyz: dict[str, Any] | None
    metrics_text: str
    metrics: list[MetricSample]
    rss: int | None


def memory_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak) of ``pid`` in bytes, from /proc; empty once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def _http_get(url: str, timeout: float = 2.0) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None, ""


class Observer:
    """Samples a daemon every ``SAMPLE_INTERVAL`` in a thread, keeps every sample (the
    secret scan reads them all), tracks peak memory, and kills the daemon if its RSS
    passes ``RSS_KILL_SWITCH``."""

    def __init__(self, daemon: Daemon, metrics_listen: str) -> None:
        self.daemon = daemon
        self.base = f"http://{metrics_listen}"
        self.samples: list[Sample] = []
        self.peak_hwm = 0
        self.killed_for_memory: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.daemon.process.pid

    def alive(self) -> bool:
        return self.daemon.process.poll() is None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_INTERVAL)

    def sample(self) -> Sample | None:
        if not self.alive():
            return None
        memory = memory_status(self.pid)
        self._note_memory(memory)
        status, readyz_text = _http_get(self.base + "/readyz")
        _, metrics_text = _http_get(self.base + "/metrics")
        try:
            readyz = orjson.loads(readyz_text) if readyz_text else None
        except orjson.JSONDecodeError:
            readyz = None
        try:
            metrics = parse_metrics(metrics_text)
        except ValueError:
            metrics = []
        sample = Sample(
            time.monotonic(),
            status,
            readyz_text,
            readyz if isinstance(readyz, dict) else None,
            metrics_text,
            metrics,
            memory.get("VmRSS"),
        )
        self.samples.append(sample)
        return sample

    def _note_memory(self, memory: Mapping[str, int]) -> None:
        self.peak_hwm = max(self.peak_hwm, memory.get("VmHWM", 0))
        rss = memory.get("VmRSS", 0)
        if rss > RSS_KILL_SWITCH and self.killed_for_memory is None:
            self.killed_for_memory = rss
            self.daemon.process.kill()

    def final_memory(self) -> None:
        """Read the peak once more (call right before stopping the daemon)."""
        self._note_memory(memory_status(self.pid))

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def first(self, predicate: Callable[[Sample], bool], since: int = 0) -> Sample | None:
        """The first sample from index ``since`` on that satisfies ``predicate``."""
        for sample in self.samples[since:]:
            if predicate(sample):
                return sample
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def start_daemon(config: Mapping[str, Any], directory: Path, name: str) -> tuple[Daemon, Observer]:
    path = write_yaml(directory / f"{name}.yaml", config)
    daemon = Daemon(path, directory / f"{name}.log")
    return daemon, Observer(daemon, config["metrics"]["listen"])


# -- /readyz -----------------------------------------------------------------------------


def source_status(sample: Sample, source: str) -> dict[str, Any]:
    readyz = sample.readyz or {}
    entry = (readyz.get("sources") or {}).get(source)
    return entry if isinstance(entry, dict) else {}


def sink_status(sample: Sample, sink: str) -> dict[str, Any]:
    readyz = sample.readyz or {}
    entry = (readyz.get("sinks") or {}).get(sink)
    return entry if isinstance(entry, dict) else {}


def source_error_is(sample: Sample, source: str, error_type: str) -> bool:
    """The source's ``error`` field reads ``"<error_type>: ..."`` (the contract's form)."""
    error = source_status(sample, source).get("error")
    return isinstance(error, str) and error.startswith(f"{error_type}:")


def source_flagged(sample: Sample, source: str) -> bool:
    """The source shows a warning or an error, or a problem names it."""
    entry = source_status(sample, source)
    problems = (sample.readyz or {}).get("problems") or []
    return bool(
        entry.get("warnings") or entry.get("error") or any(source in str(p) for p in problems)
    )


def source_warned(sample: Sample, source: str) -> bool:
    return bool(source_status(sample, source).get("warnings"))


def sink_flagged(sample: Sample, sink: str) -> bool:
    entry = sink_status(sample, sink)
    return bool(entry.get("error") or entry.get("warnings"))


# -- Logs, secrets ----------------------------------------------------------------------


def non_json_log_lines(path: Path) -> list[str]:
    """stderr lines that are not one JSON object each (the daemon logs JSON only)."""
    bad = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            bad.append(line[:160].decode("utf-8", "replace"))
    return bad


def log_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_bytes().splitlines():
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            events.append(parsed)
    return events


@dataclass
class Secrets:
    """Secret values by name. A value is looked for as is and JSON-escaped (a token
    with a CR/LF appears as ``\\r\\n`` in a JSON log line); parts of a value split at a
    control character are looked for too."""

    values: dict[str, str] = field(default_factory=dict)

    # Shorter values are too likely to occur by chance (and no real credential is).
    MIN_LENGTH = 12

    def add(self, name: str, value: str) -> None:
        value = value.strip()
        if len(value) >= self.MIN_LENGTH:
            self.values.setdefault(value, name)
        for part in value.replace("\r", "\n").split("\n"):
            part = part.strip()
            if len(part) >= self.MIN_LENGTH and part != value:
                self.values.setdefault(part, f"{name} (part)")

    def found_in(self, where: str, text: str) -> list[str]:
        """One line per secret (by name, never the value) found in ``text``."""
        findings = []
        for value, name in self.values.items():
            escaped = orjson.dumps(value).decode()[1:-1]
            if value in text or escaped in text:
                findings.append(f"{name} appears in {where}")
        return findings


# -- Collected checks --------------------------------------------------------------------


class Checks:
    """Failed promises of one case, collected so that the report names them all."""

    def __init__(self, case: str) -> None:
        self.case = case
        self.failures: list[str] = []
        self.notes: list[str] = []

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.failures.append(message)
        return condition

    def note(self, message: str) -> None:
        self.notes.append(message)

    def wait(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
        *,
        alive: Callable[[], bool] | None = None,
    ) -> bool:
        """Wait for ``condition``; on timeout (or when ``alive`` turns false) record a
        failure instead of raising, and return False."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if alive is not None and not alive():
                if condition():
                    return True
                self.failures.append(f"the daemon died while waiting for {what}")
                return False
            time.sleep(0.1)
        if condition():
            return True
        self.failures.append(f"timed out after {timeout:.0f}s waiting for {what}")
        return False

    def verdict(self) -> None:
        notes = "".join(f"\n  note: {note}" for note in self.notes)
        print(f"{self.case}: {len(self.failures)} failed check(s){notes}")
        assert not self.failures, (
            f"{self.case}: {len(self.failures)} failed check(s):\n- "
            + "\n- ".join(self.failures)
            + notes
        )


def sink_error_is(sample: Sample, sink: str, error_type: str) -> bool:
    """The sink's ``error`` field reads ``"<error_type>: ..."``."""
    error = sink_status(sample, sink).get("error")
    return isinstance(error, str) and error.startswith(f"{error_type}:")
