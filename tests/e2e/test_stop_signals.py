"""Stopping the daemon (a real subprocess) while a sink is down: the first SIGINT/SIGTERM
drains within the grace period, a second one stops at once; either way a stop that could
not drain exits 4 and commits nothing that was not acknowledged."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from e2e_harness import Daemon, Simulators, file_ids, free_port, wait_for, write_config

from forwarder.timeutil import parse_rfc3339

pytestmark = pytest.mark.slow

EXIT_NOT_DRAINED = 4


def _config_with_a_dead_sink(tmp_path: Path, simulators: Simulators, grace: str) -> Path:
    """The file sink plus an HTTP sink on a port nobody listens on."""
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", simulators, state)
    text = config.read_text()
    dead = (
        "  siem:\n"
        "    type: http\n"
        f"    url: http://127.0.0.1:{free_port()}/ingest\n"
        "    encoding: ndjson\n"
        "    compression: none\n"
        "metrics:"
    )
    for old, new in (
        ("\nmetrics:", "\n" + dead),
        ("shutdown_grace: 20s", f"shutdown_grace: {grace}"),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    config.write_text(text)
    return config


def _events(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.log_events() if e.get("event") == name]


def _start_with_batches_pending(config: Path, tmp_path: Path) -> Daemon:
    daemon = Daemon(config, tmp_path / "daemon.log")
    daemon.wait_started()
    # The file sink took batches the HTTP sink cannot: they are pending, uncommitted.
    wait_for(lambda: len(file_ids(tmp_path / "state" / "events.ndjson")) > 0, 60, "events read")
    wait_for(lambda: bool(_events(daemon, "sink_failing")), 60, "the HTTP sink failing")
    return daemon


def _cursors(config: Path) -> list[dict[str, Any]]:
    shown = subprocess.run(
        [sys.executable, "-m", "forwarder", "cursors", "show", "--config", str(config)],
        capture_output=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr.decode()
    return [orjson.loads(line) for line in shown.stdout.splitlines()]


def _assert_no_event_committed(config: Path, simulators: Simulators) -> None:
    """No event was acknowledged by every sink: each cursor may have moved over empty
    time (before the first event of the dataset), never past an event."""
    cursors = {cursor["source"]: cursor for cursor in _cursors(config)}
    first_calendly = min(
        parse_rfc3339(entry["occurred_at"]) for entry in simulators.truth("calendly")
    )
    first_google = min(
        parse_rfc3339(record["activity"]["id"]["time"]) for record in simulators.truth("google")
    )
    calendly, google = cursors["calendly"], cursors["google_calendar"]
    if calendly["committed"]:
        assert parse_rfc3339(calendly["cursor"]) < first_calendly, calendly
    if google["committed"]:
        assert google["head"] <= first_google, google


def test_a_second_sigint_stops_at_once_with_exit_4(simulators: Simulators, tmp_path: Path) -> None:
    # A grace period far longer than the test waits: only the second signal can end it.
    config = _config_with_a_dead_sink(tmp_path, simulators, "10m")
    daemon = _start_with_batches_pending(config, tmp_path)
    try:
        daemon.process.send_signal(signal.SIGINT)
        wait_for(lambda: bool(_events(daemon, "forwarder_stopping")), 30, "the drain to start")
        assert daemon.process.poll() is None, "the first SIGINT did not wait for the drain"
        daemon.process.send_signal(signal.SIGINT)
        code = daemon.wait(60)
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    assert code == EXIT_NOT_DRAINED
    assert _events(daemon, "stopping_now")[0]["signal"] == "SIGINT"
    stopped = _events(daemon, "forwarder_stopped_before_drain")
    assert stopped and stopped[0]["cause"] == "second_signal"
    assert stopped[0]["undelivered_batches"] > 0
    assert not _events(daemon, "forwarder_stopped")
    _assert_no_event_committed(config, simulators)


def test_a_grace_period_running_out_exits_4(simulators: Simulators, tmp_path: Path) -> None:
    config = _config_with_a_dead_sink(tmp_path, simulators, "1s")
    daemon = _start_with_batches_pending(config, tmp_path)
    try:
        code = daemon.terminate(60)
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    assert code == EXIT_NOT_DRAINED
    stopped = _events(daemon, "forwarder_stopped_before_drain")
    assert stopped and stopped[0]["cause"] == "grace_expired"
    assert not _events(daemon, "stopping_now")
    _assert_no_event_committed(config, simulators)


# `forwarder run` with a SIGTERM sent to itself while its config loads: before the event
# loop and its signal handlers exist.
_STOPPED_WHILE_STARTING = """
import os, signal, sys
import forwarder.cli as cli

load = cli._load

def load_then_stop(path):
    config = load(path)
    os.kill(os.getpid(), signal.SIGTERM)
    return config

cli._load = load_then_stop
sys.exit(cli.main(["run", "--config", sys.argv[1]]))
"""


def test_a_stop_request_during_start_up_is_honoured_not_fatal(
    simulators: Simulators, tmp_path: Path
) -> None:
    """A SIGTERM before the loop's handlers exist (a pod deleted as it starts) used to kill
    the process by the signal's default action (-15, nothing logged): it is kept, and the
    daemon starts, drains at once and exits 0."""
    config = write_config(tmp_path / "forwarder.yaml", simulators, tmp_path / "state")
    log = tmp_path / "daemon.log"
    with open(log, "wb") as stderr:
        code = subprocess.run(
            [sys.executable, "-c", _STOPPED_WHILE_STARTING, str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=60,
        ).returncode
    events = [orjson.loads(line) for line in log.read_bytes().splitlines() if line[:1] == b"{"]
    names = [event.get("event") for event in events]
    assert code == 0, log.read_text()
    assert "forwarder_stopping" in names and "forwarder_stopped" in names
