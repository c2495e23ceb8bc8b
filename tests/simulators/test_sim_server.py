"""The simulator server (demo and tests), its settings, CLI flags and seeded data."""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import statistics

import aiohttp
import orjson
import pytest
from sim_harness import T0, sign_assertion

from forwarder.clock import ManualClock
from forwarder.simulators.anchor import load_or_create_anchor
from forwarder.simulators.server import (
    SimulatorServer,
    SimulatorSettings,
    build_arg_parser,
    serve_forever,
    settings_from_args,
)
from forwarder.simulators.timeline import Timeline


def test_timeline_is_deterministic_with_ties_and_the_right_rate() -> None:
    first = Timeline("seed", 0, 60.0)
    second = Timeline("seed", 0, 60.0)
    first.extend_to(600_000_000)
    # Generating in two steps gives the same times as in one.
    second.extend_to(100_000_000)
    second.extend_to(600_000_000)
    times = [first.time_of(i) for i in range(first.generated)]
    assert times == [second.time_of(i) for i in range(second.generated)]
    assert times == sorted(times)
    assert 0.02 < sum(a == b for a, b in itertools.pairwise(times)) / len(times) < 0.09
    counts = [Timeline(f"s{i}", 0, 60.0).count_until(600_000_000) for i in range(40)]
    assert 570 < statistics.mean(counts) < 630
    assert Timeline("seed", 0, 60.0, end_us=60_000_000).count_until(600_000_000) < 100
    assert Timeline("seed", 0, 0.0).count_until(600_000_000) == 0


def test_anchor_is_written_once(tmp_path) -> None:
    path = tmp_path / "state" / "anchor.json"
    assert load_or_create_anchor(path, 1234.5) == 1234.5
    assert load_or_create_anchor(path, 9999.0) == 1234.5
    path.write_text("garbage")
    with pytest.raises(ValueError):
        load_or_create_anchor(path, 1.0)


def demo_settings(tmp_path, **overrides) -> SimulatorSettings:
    settings = SimulatorSettings(output_dir=tmp_path, history=1800, google_late_fraction=0.1)
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


async def test_server_starts_both_and_writes_credentials(tmp_path) -> None:
    clock = ManualClock(T0)
    server = SimulatorServer(demo_settings(tmp_path), clock)
    async with server as endpoints, aiohttp.ClientSession() as session:
        assert endpoints.calendly_url.startswith("http://127.0.0.1:")
        assert endpoints.google_token_uri == endpoints.google_url + "/token"
        key = orjson.loads(endpoints.google_key_file.read_bytes())
        assert key["token_uri"] == endpoints.google_token_uri
        token = endpoints.calendly_token_file.read_text().strip()
        assert token == endpoints.calendly_token

        async with session.get(
            endpoints.calendly_url + "/activity_log_entries",
            params={"organization": endpoints.organization},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200
            assert (await response.json())["total_count"] > 0

        assert server.google is not None
        assertion = sign_assertion(server.google.account, token_uri=key["token_uri"], now=T0)
        async with session.post(
            key["token_uri"],
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        ) as response:
            assert response.status == 200
    # Stopped: nothing listens any more.
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(endpoints.calendly_url + "/activity_log_entries")


async def test_restart_serves_the_same_data_and_key(tmp_path) -> None:
    clock = ManualClock(T0)
    first = SimulatorServer(demo_settings(tmp_path), clock)
    async with first as endpoints:
        start = endpoints.start
        private_key = orjson.loads(endpoints.google_key_file.read_bytes())["private_key"]
        calendly_truth, google_truth = first.calendly.truth(), first.google.truth()
    assert start == T0 - 1800

    clock.advance(3600)  # an hour later, the anchor keeps the dataset where it was
    second = SimulatorServer(demo_settings(tmp_path), clock)
    async with second as endpoints:
        assert endpoints.start == start
        assert second.calendly.truth(T0) == calendly_truth
        assert second.google.truth(T0) == google_truth
        assert len(second.calendly.truth()) > len(calendly_truth)
        # The key is reused so that a running forwarder keeps its credentials.
        key = orjson.loads(endpoints.google_key_file.read_bytes())
        assert key["private_key"] == private_key


async def test_only_one_simulator(tmp_path) -> None:
    settings = demo_settings(tmp_path, enable_calendly=False)
    async with SimulatorServer(settings, ManualClock(T0)) as endpoints:
        assert endpoints.calendly_url is None and endpoints.calendly_token_file is None
        assert endpoints.google_url is not None


async def test_serve_forever_prints_one_json_line_and_stops(tmp_path) -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve_forever(demo_settings(tmp_path), stop, clock=ManualClock(T0), out=out)
    )
    for _ in range(200):
        if out.getvalue():
            break
        await asyncio.sleep(0.01)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    info = orjson.loads(line)
    assert set(info) >= {"calendly_url", "google_url", "google_key_file", "calendly_token_file"}
    stop.set()
    await asyncio.wait_for(task, 5)


def test_arg_parser_round_trip(tmp_path) -> None:
    parser = build_arg_parser(argparse.ArgumentParser())
    args = parser.parse_args(
        [
            "--seed", "9", "--start", "2027-01-15T00:00:00Z", "--google-max-lag", "120",
            "--calendly-port", "18081", "--output-dir", str(tmp_path), "--only", "google",
        ]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert settings.seed == 9
    assert settings.start == 1_799_971_200.0
    assert settings.google_max_lag == 120
    assert settings.calendly_port == 18081
    assert settings.output_dir == tmp_path
    assert (settings.enable_calendly, settings.enable_google) == (False, True)
    defaults = settings_from_args(build_arg_parser(argparse.ArgumentParser()).parse_args([]))
    assert defaults == SimulatorSettings()
    with pytest.raises(SystemExit):
        parser.parse_args(["--start", "not a time"])
