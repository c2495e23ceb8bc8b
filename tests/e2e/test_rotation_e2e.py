"""Rotating the file sink's output under a running daemon (a real subprocess): `mv` with
and without SIGHUP, deletion, and the shipped logrotate config run by the real logrotate.
New events go to a new file at the configured path, and the files together hold every
event of the ground truth exactly once; SIGHUP never stops the daemon."""

from __future__ import annotations

import grp
import gzip
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from e2e_harness import Daemon, Simulators, file_ids, wait_for, write_config

from forwarder.timeutil import format_rfc3339

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LOGROTATE_CONFIG = ROOT / "deploy" / "logrotate" / "forwarder"


@pytest.fixture
def slow_simulators(tmp_path: Path) -> Iterator[Simulators]:
    """Two hours of history served with 50 ms per request: with pages of 10 the daemon
    needs a few seconds to read it all, so a rotation lands mid-stream."""
    now = time.time()
    sims = Simulators(
        tmp_path / "sim",
        "--seed", "11",
        "--start", format_rfc3339(now - 2 * 3600),
        "--end", format_rfc3339(now - 60),
        "--calendly-rate", "4", "--google-rate", "4",
        "--google-min-lag", "0", "--google-max-lag", "0", "--google-late-fraction", "0",
        "--calendly-latency", "0.05", "--google-latency", "0.05",
    )  # fmt: skip
    yield sims
    sims.stop()


def _ids(data: bytes) -> list[str]:
    return [orjson.loads(line)["event"]["id"] for line in data.splitlines() if line.endswith(b"}")]


def _reasons(daemon: Daemon) -> list[str]:
    return [e["reason"] for e in daemon.log_events() if e.get("event") == "file_reopened"]


def _assert_exactly_once(parts: list[list[str]], truth: set[str]) -> None:
    delivered = [event_id for part in parts for event_id in part]
    repeats = {event_id: n for event_id, n in Counter(delivered).items() if n > 1}
    assert not repeats, f"{len(repeats)} events in the files more than once"
    assert set(delivered) == truth, f"{len(truth - set(delivered))} events missing"


@pytest.mark.parametrize("rotation", ["mv_then_sighup", "mv_only", "delete"])
def test_rotation_under_a_running_daemon_loses_and_repeats_nothing(
    slow_simulators: Simulators, tmp_path: Path, rotation: str
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", slow_simulators, state, page_size=10)
    output = state / "events.ndjson"
    rotated = state / "events.ndjson.1"
    truth = slow_simulators.truth_ids()
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: len(file_ids(output)) >= len(truth) // 4, 60, "a quarter of the events")
        held: int | None = None
        if rotation == "delete":
            # The test keeps the deleted file open to read what the daemon wrote into it.
            held = os.open(output, os.O_RDONLY)
            output.unlink()
        else:
            output.rename(rotated)
            if rotation == "mv_then_sighup":
                daemon.process.send_signal(signal.SIGHUP)

        def before() -> list[str]:
            if held is None:
                return file_ids(rotated)
            return _ids(os.pread(held, os.fstat(held).st_size, 0))

        wait_for(
            lambda: set(before()) | set(file_ids(output)) >= truth,
            90,
            "every event in the old and the new file",
        )
        assert daemon.process.poll() is None, "the daemon stopped"
        assert daemon.terminate() == 0
        old, new = before(), file_ids(output)
        if held is not None:
            os.close(held)
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    assert new, "nothing was written to a new file"
    assert old, "nothing was written before the rotation"
    _assert_exactly_once([old, new], truth)
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    expected = {"mv_then_sighup": "sighup", "mv_only": "renamed", "delete": "deleted"}[rotation]
    reasons = _reasons(daemon)
    assert expected in reasons, reasons
    if rotation != "mv_then_sighup":
        assert reasons == [expected], reasons


def test_sighup_without_a_rotation_keeps_the_daemon_running_and_the_file(
    slow_simulators: Simulators, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", slow_simulators, state, page_size=10)
    output = state / "events.ndjson"
    truth = slow_simulators.truth_ids()
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        for count in (1, 2, 3):
            daemon.process.send_signal(signal.SIGHUP)
            wait_for(
                lambda count=count: _reasons(daemon) == ["sighup"] * count,
                30,
                f"file_reopened number {count}",
            )
        wait_for(lambda: set(file_ids(output)) >= truth, 90, "every event in the file")
        assert daemon.process.poll() is None, "SIGHUP stopped the daemon"
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    _assert_exactly_once([file_ids(output)], truth)
    assert _reasons(daemon) == ["sighup"] * 3
    assert not (state / "events.ndjson.1").exists()


def _logrotate_config(state: Path, pid: int, directory: Path) -> Path:
    """The shipped config, pointed at ``state``, rotating as this test's user, and
    signalling ``pid`` directly instead of through systemd."""
    text = LOGROTATE_CONFIG.read_text()
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    replacements = {
        "/var/lib/forwarder/": f"{state}/",
        "su forwarder forwarder": f"su {user} {group}",
        "systemctl reload forwarder.service": f"kill -HUP {pid}",
    }
    for old, new in replacements.items():
        assert old in text, f"{LOGROTATE_CONFIG} no longer has {old!r}"
        text = text.replace(old, new)
    path = directory / "logrotate.conf"
    path.write_text(text)
    return path


@pytest.mark.skipif(
    shutil.which("logrotate") is None, reason="logrotate is not installed (make system-deps)"
)
def test_the_shipped_logrotate_config_rotates_a_running_daemon_twice(
    slow_simulators: Simulators, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", slow_simulators, state, page_size=10)
    output = state / "events.ndjson"
    truth = slow_simulators.truth_ids()
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        rotate = _logrotate_config(state, daemon.process.pid, tmp_path)
        command = [
            "logrotate",
            "--force",
            "--state",
            str(tmp_path / "logrotate.state"),
            str(rotate),
        ]
        dry = subprocess.run(
            ["logrotate", "--debug", *command[1:]], capture_output=True, text=True, timeout=60
        )
        assert dry.returncode == 0, dry.stdout + dry.stderr
        for share in (4, 2):
            wait_for(
                lambda share=share: len(file_ids(output)) >= len(truth) // share,
                60,
                f"1/{share} of the events",
            )
            run = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stdout + run.stderr
        parts = [
            _ids(gzip.decompress((state / "events.ndjson.2.gz").read_bytes())),
            file_ids(state / "events.ndjson.1"),
        ]
        wait_for(
            lambda: set(parts[0]) | set(parts[1]) | set(file_ids(output)) >= truth,
            90,
            "every event in the rotated and the new files",
        )
        assert daemon.process.poll() is None, "the rotation stopped the daemon"
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    parts[1] = file_ids(state / "events.ndjson.1")  # the batch in flight at the rename
    new = file_ids(output)
    assert all(parts) and new, [len(part) for part in [*parts, new]]
    _assert_exactly_once([*parts, new], truth)
    for name in ("events.ndjson", "events.ndjson.1", "events.ndjson.2.gz"):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    assert _reasons(daemon).count("sighup") == 2
