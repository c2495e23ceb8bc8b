"""Issue 18's acceptance test: three ``forwarder run`` processes share one config of 30
tenants (a ``sources_dir``, one file per tenant) against the simulators. Each source runs
in exactly one process, every event is delivered once, ``forwarder_source_info`` names
each source's tenant; then the layout is resharded 3 -> 4 (drained stop, ``cursors
export`` on every old replica, ``cursors import --replace`` on every new one,
``require_state``) and over both phases every event of every tenant is delivered exactly
once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from e2e_harness import Daemon, Simulators, file_documents, free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families

from forwarder.schema.ids import calendly_event_key, google_activity_event_keys
from forwarder.shard import owner
from forwarder.timeutil import format_rfc3339

pytestmark = pytest.mark.slow

TENANTS = tuple(f"t{n:02d}" for n in range(30))
# Every tenant has a Calendly source; two of them a Google one too (a tenant, two sources).
CALENDLY = {f"{tenant}-calendly": tenant for tenant in TENANTS}
GOOGLE = {f"{tenant}-google": tenant for tenant in TENANTS[:2]}
SOURCES = {**CALENDLY, **GOOGLE}


@pytest.fixture
def small_simulators(tmp_path: Path) -> Iterator[Simulators]:
    """A small fixed history (as ``finite_simulators``): 30 sources read all of it, in
    seconds. The 30 Calendly sources share the simulator's one token: its per-token rate
    limit is raised, or the daemons wait out its 429s for most of a minute."""
    now = time.time()
    sims = Simulators(
        tmp_path / "sim",
        "--seed", "18",
        "--start", format_rfc3339(now - 2 * 3600),
        "--end", format_rfc3339(now - 60),
        "--calendly-rate", "1", "--google-rate", "1",
        "--google-min-lag", "0", "--google-max-lag", "0", "--google-late-fraction", "0",
        "--calendly-rate-limit", "100000",
        # Slow answers: phase 1 (pages of 5) is stopped part way, phase 2 (one page) is not.
        "--calendly-latency", "0.25", "--google-latency", "0.1",
    )  # fmt: skip
    yield sims
    sims.stop()


def _write_sources_dir(
    directory: Path, simulators: Simulators, *, require_state: bool, page_size: int
) -> Path:
    """One YAML file per tenant, as a projected Secret per tenant would mount them."""
    endpoints = simulators.endpoints
    directory.mkdir()
    required = "\n    require_state: true" if require_state else ""
    for tenant in TENANTS:
        text = f"""sources:
  {tenant}-calendly:
    type: calendly
    tenant: {tenant}
    base_url: {endpoints["calendly_url"]}
    organization: {endpoints["organization"]}
    token_file: {endpoints["calendly_token_file"]}
    page_size: {page_size}
    poll_interval: 1s
    initial_lookback: 2d{required}
"""
        if f"{tenant}-google" in GOOGLE:
            text += f"""  {tenant}-google:
    type: google_calendar
    tenant: {tenant}
    base_url: {endpoints["google_url"]}
    credentials_file: {endpoints["google_key_file"]}
    delegated_admin: {endpoints["delegated_admin"]}
    page_size: {page_size}
    poll_interval: 1s
    initial_lookback: 2d
    end_margin: 1s{required}
"""
        (directory / f"{tenant}.yaml").write_text(text)
    return directory


class Replica:
    """One replica: its config (the shared sources_dir and shard count; its own state_dir,
    file sink and metrics port), its pod-like hostname and, once started, its daemon."""

    def __init__(self, root: Path, phase: int, index: int, count: int, sources_dir: Path) -> None:
        self.index = index
        self.state = root / f"replica-{index}"
        self.output = self.state / f"events-phase{phase}.ndjson"
        self.port = free_port()
        self.hostname = f"forwarder-{index}"
        self.config = root / f"config-phase{phase}-{index}.yaml"
        self.log = root / f"daemon-phase{phase}-{index}.log"
        self.config.write_text(
            f"""
state_dir: {self.state}
sources_dir: {sources_dir}
sinks:
  events: {{type: file, path: {self.output}}}
metrics:
  listen: 127.0.0.1:{self.port}
pipeline:
  shutdown_grace: 20s
shard:
  count: {count}
"""
        )
        self.daemon: Daemon | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "forwarder", *args, "--config", str(self.config)],
            capture_output=True,
            timeout=60,
            env={**os.environ, "HOSTNAME": self.hostname},
        )

    def start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The child inherits it: the shard index comes from the hostname's ordinal.
        monkeypatch.setenv("HOSTNAME", self.hostname)
        self.daemon = Daemon(self.config, self.log)

    def assignment(self) -> list[str]:
        assert self.daemon is not None
        events = [e for e in self.daemon.log_events() if e.get("event") == "shard_assignment"]
        assert len(events) == 1, events
        assert events[0]["index"] == self.index
        assert events[0]["sources_owned"] == len(events[0]["sources"])
        assert events[0]["sources_total"] == len(SOURCES) and not events[0]["truncated"]
        return list(events[0]["sources"])

    def delivered(self) -> list[tuple[str, str, str]]:
        """(tenant, provider, event id) of every whole line of the sink file."""
        return [
            (d["labels"]["tenant"], d["event"]["provider"], d["event"]["id"])
            for d in file_documents(self.output)
        ]

    def source_info(self) -> set[tuple[str, str, str]]:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        return {
            (sample.labels["source"], sample.labels["tenant"], sample.labels["provider"])
            for family in text_string_to_metric_families(text)
            if family.name == "forwarder_source_info"
            for sample in family.samples
            if sample.value == 1
        }

    def stop(self) -> int:
        assert self.daemon is not None
        return self.daemon.terminate()


def _check_partition(replicas: list[Replica]) -> dict[int, list[str]]:
    """Every source in exactly one replica, the one rendezvous hashing names."""
    assignments = {replica.index: replica.assignment() for replica in replicas}
    everyone = [source for owned in assignments.values() for source in owned]
    assert sorted(everyone) == sorted(SOURCES), "a source runs in no replica or in two"
    for index, owned in assignments.items():
        assert owned, f"replica {index} runs nothing"
        assert set(owned) == {s for s in SOURCES if owner(s, len(replicas)) == index}
    return assignments


def _kill_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        if replica.daemon is not None and replica.daemon.process.poll() is None:
            replica.daemon.kill()


def test_thirty_tenants_three_replicas_then_reshard_to_four(
    small_simulators: Simulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendly_ids = {calendly_event_key(e["uri"]) for e in small_simulators.truth("calendly")}
    google_ids = {
        key
        for record in small_simulators.truth("google")
        for key in google_activity_event_keys(record["activity"])
    }
    assert len(calendly_ids) > 50 and len(google_ids) > 50
    calendly_provider = google_provider = ""
    truth: set[tuple[str, str]] = set()
    for tenant in CALENDLY.values():
        truth.update((tenant, event_id) for event_id in calendly_ids)
    for tenant in GOOGLE.values():
        truth.update((tenant, event_id) for event_id in google_ids)
    every_stream = {(t, "calendly") for t in CALENDLY.values()} | {
        (t, "google") for t in GOOGLE.values()
    }

    # Phase 1: three replicas.
    sources_1 = _write_sources_dir(
        # Small pages: phase 1 is stopped part way through the history.
        tmp_path / "sources-1.d",
        small_simulators,
        require_state=False,
        page_size=5,
    )
    old = [Replica(tmp_path, 1, index, 3, sources_1) for index in range(3)]
    try:
        for replica in old:
            replica.start(monkeypatch)
        for replica in old:
            assert replica.daemon is not None
            replica.daemon.wait_started()
        assignments_1 = _check_partition(old)

        def streams_started() -> bool:
            seen = {
                (tenant, "google" if "google" in provider else "calendly")
                for replica in old
                for tenant, provider, _ in replica.delivered()
            }
            return seen >= every_stream

        # Every source delivered (and so commits at the drained stop) part of its events.
        wait_for(streams_started, 60, "a first event of every tenant's sources")
        for replica in old:
            owned = assignments_1[replica.index]
            expected_info = set()
            for source in owned:
                kind = "google_calendar" if source in GOOGLE else "calendly"
                expected_info.add((source, SOURCES[source], kind))
            assert replica.source_info() == expected_info
        for replica in old:
            assert replica.stop() == 0, "the stop did not drain"
    finally:
        _kill_all(old)

    phase_1: list[tuple[str, str]] = []
    for replica in old:
        owned_tenants = {SOURCES[s] for s in assignments_1[replica.index]}
        delivered = replica.delivered()
        # A replica delivers only its own sources' tenants.
        assert {tenant for tenant, _, _ in delivered} <= owned_tenants
        for tenant, provider, event_id in delivered:
            if "google" in provider:
                google_provider = provider
            else:
                calendly_provider = provider
            phase_1.append((tenant, event_id))
    assert calendly_provider and google_provider
    counts_1 = Counter(phase_1)
    assert not [k for k, n in counts_1.items() if n > 1], "phase 1 delivered an event twice"
    assert set(counts_1) <= truth
    assert len(counts_1) < len(truth), "phase 1 delivered everything: nothing left to move"

    # Export on every old replica (its old config), concatenate.
    exported: list[bytes] = []
    for replica in old:
        export = replica.cli("cursors", "export", "--output", str(tmp_path / "part.ndjson"))
        assert export.returncode == 0, export.stderr
        lines = (tmp_path / "part.ndjson").read_bytes().splitlines()
        assert sorted(orjson.loads(line)["source"] for line in lines) == sorted(
            assignments_1[replica.index]
        )
        exported.extend(lines)
    cursors = tmp_path / "cursors.ndjson"
    cursors.write_bytes(b"\n".join(exported) + b"\n")
    assert len(exported) == len(SOURCES)

    # Phase 2: four replicas on the same volumes plus a new one; require_state everywhere.
    sources_2 = _write_sources_dir(
        # Large pages: the rest, quickly (the page size is not part of the state).
        tmp_path / "sources-2.d",
        small_simulators,
        require_state=True,
        page_size=200,
    )
    new = [Replica(tmp_path, 2, index, 4, sources_2) for index in range(4)]
    refused = new[3].cli("run")
    assert refused.returncode == 3, refused.stderr
    assert b"cursors import" in refused.stderr
    for replica in new:
        args = ["cursors", "import", "--input", str(cursors)]
        if replica.index < len(old):
            # Without --replace an old replica's own older state is refused.
            kept = replica.cli(*args)
            assert kept.returncode == 3, kept.stderr
            args.append("--replace")
        imported = replica.cli(*args)
        assert imported.returncode == 0, imported.stderr
    try:
        for replica in new:
            replica.start(monkeypatch)
        for replica in new:
            assert replica.daemon is not None
            replica.daemon.wait_started()
        assignments_2 = _check_partition(new)
        # Going 3 -> 4 moves sources only to the new replica.
        for index in range(3):
            assert set(assignments_2[index]) <= set(assignments_1[index])

        remaining = truth - set(counts_1)

        def rest_delivered() -> bool:
            got = {(t, i) for replica in new for t, _, i in replica.delivered()}
            return got >= remaining

        wait_for(rest_delivered, 90, f"the remaining {len(remaining)} events")
        for replica in new:
            assert replica.stop() == 0
    finally:
        _kill_all(new)

    phase_2 = [(tenant, event_id) for r in new for tenant, _, event_id in r.delivered()]
    for replica in new:
        owned_tenants = {SOURCES[s] for s in assignments_2[replica.index]}
        assert {tenant for tenant, _, _ in replica.delivered()} <= owned_tenants
    both = Counter(phase_1 + phase_2)
    assert set(both) == truth, "an event was lost"
    assert not [k for k, n in both.items() if n > 1], "an event was delivered twice"
    # Labelled per tenant: every tenant got its whole history, no more.
    per_tenant = Counter(tenant for tenant, _ in both)
    for tenant in TENANTS:
        expected = len(calendly_ids) + (len(google_ids) if tenant in GOOGLE.values() else 0)
        assert per_tenant[tenant] == expected, tenant
