"""Crash-safety with every real sink at once: the daemon is killed with SIGKILL at random
moments, restarted each time, and every sink is compared with the simulators' ground
truth: nothing missing, repeats bounded by what was in flight. And ``kill -9`` aimed at
the state database's commits: the state survives every one of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from e2e_harness import (
    Daemon,
    Simulators,
    file_ids,
    finite_simulators,
    wait_for,
    write_config,
)
from kafka_harness import Broker, consume
from syslog_harness import Pki, Rsyslog

from forwarder.timeutil import format_rfc3339

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
        daemon.wait_started()
        time.sleep(rng.uniform(0.05, 0.8))
        daemon.kill()
    final = Daemon(config, tmp_path / "final.log")
    final.wait_started()
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


def _wal_version(path: Path) -> tuple[int, int]:
    """Changes with every write to the WAL (after a checkpoint it is written over from
    the start, so its size alone may not change)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return (info.st_size, info.st_mtime_ns)


def _kill_as_the_wal_is_written(daemon: Daemon, wal: Path, within: float) -> bool:
    """SIGKILL the daemon the moment its state database's WAL is written (a commit:
    frames written, then fsynced); ``True`` if it did within ``within``."""
    version = _wal_version(wal)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _wal_version(wal) != version:
            daemon.kill()
            return True
    daemon.kill()
    return False


def _check_state(database: Path) -> dict[str, int]:
    """The database after a crash, read only (the daemon's next start recovers it): a
    sound file, and each source's seen keys."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return dict(db.execute("SELECT source, count(*) FROM seen GROUP BY source").fetchall())


@pytest.fixture
def unlimited_simulators(tmp_path: Path) -> Iterator[Simulators]:
    """The same history, with rate limits no read here reaches: the daemon commits as
    fast as it reads, never waiting on a limit."""
    now = time.time()
    sims = Simulators(
        tmp_path / "sim",
        "--seed", "23",
        "--start", format_rfc3339(now - 6 * 3600),
        "--end", format_rfc3339(now - 60),
        "--calendly-rate", "12", "--google-rate", "12",
        "--google-min-lag", "0", "--google-max-lag", "0", "--google-late-fraction", "0",
        "--calendly-rate-limit", "100000", "--google-quota", "100000",
    )  # fmt: skip
    yield sims
    sims.stop()


def test_kill_9_during_state_commits_loses_nothing(
    unlimited_simulators: Simulators, tmp_path: Path
) -> None:
    """Twelve kills, each the moment a commit starts writing the WAL (pages of 5: the
    daemon commits all the time while it catches up), then a run to the end: the file
    sink holds every event, repeats bounded by one batch per source per kill, and the
    database is sound after every kill."""
    simulators = unlimited_simulators
    kills, page = 12, 5
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", simulators, state, page_size=page)
    text = config.read_text()
    # The source's own request budget, and its Cloud project's, out of the way too
    # (Google's limit, 2400 a minute).
    config.write_text(
        text.replace(
            "    end_margin: 1s\n", "    end_margin: 1s\n    max_requests_per_minute: 2400\n"
        )
        + "google_quota: {max_requests_per_minute: 2400}\n"
    )
    assert "max_requests_per_minute" in config.read_text()
    output = state / "events.ndjson"
    database = state / "state.sqlite3"
    wal = state / "state.sqlite3-wal"
    truth = simulators.truth_ids()
    rng = random.Random(11)
    aimed = 0
    for kill in range(kills):
        daemon = Daemon(config, tmp_path / f"commits{kill}.log")
        daemon.wait_started()
        time.sleep(rng.uniform(0.02, 0.4))
        aimed += _kill_as_the_wal_is_written(daemon, wal, within=5)
        _check_state(database)
    assert aimed >= kills - 1, f"only {aimed} kills landed on a commit"
    assert 0 < len(set(file_ids(output))) < len(truth), "the kills did not interrupt the run"
    final = Daemon(config, tmp_path / "final.log")
    final.wait_started()
    wait_for(lambda: set(file_ids(output)) >= truth, 180, "every event in the file sink")
    assert final.terminate() == 0
    delivered = file_ids(output)
    assert set(delivered) == truth, "events lost"
    repeats = sum(count - 1 for count in Counter(delivered).values())
    assert repeats <= kills * 2 * page, f"{repeats} repeats"
    assert set(_check_state(database)) == {"calendly", "google_calendar"}
    print(orjson.dumps({"events": len(truth), "kills": kills, "repeats": repeats}).decode())
