"""`forwarder normalize` feeding a reader that stops early (`| head`): no traceback, exit
0, and skipped records are still reported."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from forwarder.clock import ManualClock
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator

pytestmark = pytest.mark.slow

T0 = 1_800_000_000.0


def _raw_records(path: Path, *, bad: bool = False) -> int:
    """A day of Calendly entries as NDJSON (several MB: far more than a pipe holds)."""
    simulator = CalendlySimulator(
        CalendlyConfig(start=T0 - 86_400, rate_per_minute=10), ManualClock(T0)
    )
    entries = simulator.truth()
    lines = [orjson.dumps(entry) for entry in entries]
    if bad:
        lines.append(b'{"not": "a calendly entry"}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(entries)


def _normalize_into_head(records: Path) -> subprocess.CompletedProcess[bytes]:
    command = (
        f"set -o pipefail; {shlex.quote(sys.executable)} -m forwarder normalize "
        f"--source calendly < {shlex.quote(str(records))} | head -1"
    )
    return subprocess.run(["bash", "-c", command], capture_output=True, timeout=120)


def test_normalize_into_head_exits_0_without_a_traceback(tmp_path: Path) -> None:
    records = tmp_path / "records.ndjson"
    assert _raw_records(records) > 10_000
    result = _normalize_into_head(records)
    assert result.stderr == b"", result.stderr.decode()
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and orjson.loads(lines[0])["event"]["provider"] == "calendly"


def test_a_bad_record_is_still_reported_when_the_reader_stopped_early(tmp_path: Path) -> None:
    records = tmp_path / "records.ndjson"
    _raw_records(records, bad=True)
    result = _normalize_into_head(records)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert stderr.startswith("forwarder: skipped record"), stderr
    assert result.returncode == 1
