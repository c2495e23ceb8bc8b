"""The Google source's re-scan schedule and request budget in the configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from forwarder.config.loader import ConfigError, parse_config

TEXT = """
state_dir: {state}
sources:
  gcal:
    type: google_calendar
    credentials_file: /run/secrets/key.json
    delegated_admin: admin@example.com
{extra}
sinks:
  out: {{type: file, path: {state}/out.ndjson}}
"""


def _google(tmp_path: Path, extra: str = "") -> object:
    indented = "\n".join(f"    {line}" for line in extra.splitlines())
    config = parse_config(TEXT.format(state=tmp_path / "state", extra=indented), {})
    return config.sources["gcal"]


def _error(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _google(tmp_path, extra)
    return str(caught.value)


def test_defaults(tmp_path: Path) -> None:
    source = _google(tmp_path)
    assert source.rescan_schedule == [120.0, 600.0, 2400.0, 10800.0]
    assert source.settle_window == 10800.0
    assert source.max_requests_per_minute == 120


def test_a_settle_window_alone_keeps_working(tmp_path: Path) -> None:
    """Configs written before rescan_schedule: the default steps below it, then it."""
    assert _google(tmp_path, "settle_window: 4h").rescan_schedule == [120, 600, 2400, 14400]
    assert _google(tmp_path, "settle_window: 2h").rescan_schedule == [120, 600, 2400, 7200]


def test_a_schedule_alone_sets_the_settle_window(tmp_path: Path) -> None:
    source = _google(tmp_path, "rescan_schedule: [5m, 30m, 150m]")
    assert source.rescan_schedule == [300, 1800, 9000]
    assert source.settle_window == 9000
    both = _google(tmp_path, "rescan_schedule: [1m, 3h]\nsettle_window: 3h")
    assert both.rescan_schedule == [60, 10800]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("rescan_schedule: [5m, 1h, 150m]\nsettle_window: 3h", "must equal settle_window"),
        ("rescan_schedule: [10m, 5m, 3h]", "strictly increasing"),
        ("rescan_schedule: [10m, 10m, 3h]", "strictly increasing"),
        ("rescan_schedule: [5s, 3h]", "at least 10s"),
        ("rescan_schedule: [2m, 1h]", "at least 2h"),
        ("rescan_schedule: []", "rescan_schedule"),
        ("rescan_schedule: [1m, 2m, 3m, 4m, 5m, 6m, 7m, 8m, 3h]", "rescan_schedule"),
        ("max_requests_per_minute: 0", "max_requests_per_minute"),
        ("settle_window: 30m", "at least 2h"),
    ],
)
def test_inconsistent_schedules_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    assert message in _error(tmp_path, extra)
