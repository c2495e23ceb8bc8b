"""Crash-safety with every real sink at once: the daemon is killed with SIGKILL at random
moments, restarted each time, and every sink is compared with the simulators' ground
truth: nothing missing, repeats bounded by what was in flight."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from e2e_harness import Daemon, Simulators, file_ids, finite_simulators, wait_for
from kafka_harness import Broker, consume
from syslog_harness import Pki, Rsyslog

pytestmark = pytest.mark.slow

KILLS = 10
PAGE = 20
QUEUE = 200


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    sims = finite_simulators(tmp_path / "sim", seed=23, hours=6, rate=12)
    yield sims
    sims.stop()


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker()
    yield running
    running.stop()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    pki = Pki(tmp_path / "pki")
    receiver = Rsyslog(tmp_path / "rsyslog", pki, pki.issue("server", "localhost", client=False))
    receiver.start()
    yield receiver
    receiver.stop()


def _config(tmp_path: Path, sims: Simulators, broker: Broker, rsyslog: Rsyslog) -> Path:
    e = sims.endpoints
    state = tmp_path / "state"
    path = tmp_path / "forwarder.yaml"
    path.write_text(
        f"""state_dir: {state}
sources:
  calendly: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{e["calendly_token_file"]}", page_size: {PAGE}, poll_interval: 1s,
    initial_lookback: 2d}}
  google_calendar: {{type: google_calendar, base_url: "{e["google_url"]}",
    credentials_file: "{e["google_key_file"]}", delegated_admin: "{e["delegated_admin"]}",
    page_size: {PAGE}, poll_interval: 1s, initial_lookback: 2d, end_margin: 1s}}
sinks:
  file: {{type: file, path: "{state / "events.ndjson"}"}}
  kafka: {{type: kafka, bootstrap_servers: ["{broker.bootstrap}"], topic: audit,
    enable_idempotence: false, request_timeout: 5s}}
  syslog: {{type: syslog, host: 127.0.0.1, port: {rsyslog.ports.tcp}, transport: tcp,
    app_name: crash}}
pipeline: {{queue_capacity: {QUEUE}, shutdown_grace: 20s}}
metrics: {{enabled: false}}
"""
    )
    return path


def _syslog_ids(rsyslog: Rsyslog) -> list[str]:
    return [
        record["local"]["rfc5424-sd"]["forwarder@32473"]["id"]
        for record in rsyslog.records()
        if record.get("app_name") == "crash"
    ]


def _kafka_ids(broker: Broker, expected: int) -> list[str]:
    records = asyncio.run(consume(broker.bootstrap, "audit", expected, within=60))
    return [record.key.decode() for record in records]


def test_ten_kills_lose_nothing_in_any_sink(
    simulators: Simulators, broker: Broker, rsyslog: Rsyslog, tmp_path: Path
) -> None:
    config = _config(tmp_path, simulators, broker, rsyslog)
    output = tmp_path / "state" / "events.ndjson"
    truth = simulators.truth_ids()
    assert len(truth) > 6000
    rng = random.Random(5)
    for kill in range(KILLS):
        daemon = Daemon(config, tmp_path / f"run{kill}.log")
        wait_for(
            lambda daemon=daemon: any(
                e.get("event") == "forwarder_started" for e in daemon.log_events()
            ),
            30,
            "start",
        )
        time.sleep(rng.uniform(0.05, 0.8))
        daemon.kill()
    final = Daemon(config, tmp_path / "final.log")
    wait_for(lambda: set(file_ids(output)) >= truth, 180, "every event in the file sink")
    wait_for(lambda: set(_syslog_ids(rsyslog)) >= truth, 60, "every event in rsyslog")
    assert final.terminate() == 0
    sinks = {
        "file": file_ids(output),
        "syslog": _syslog_ids(rsyslog),
    }
    sinks["kafka"] = _kafka_ids(broker, len(sinks["file"]))
    report = {}
    for name, ids in sinks.items():
        missing = truth - set(ids)
        assert not missing, f"{len(missing)} events missing from the {name} sink"
        repeats = sum(count - 1 for count in Counter(ids).values())
        report[name] = repeats
        # Per kill: what one sink may have acknowledged beyond the slowest one (its queue)
        # plus the batch each source had in flight.
        assert repeats <= KILLS * (QUEUE + 2 * PAGE), f"{name}: {repeats} repeats"
    print(orjson.dumps({"events": len(truth), "kills": KILLS, "repeats": report}).decode())
