"""Per-request latency of both simulators, and the Calendly time windows a parallel
backfill relies on (inclusive bounds that partition the log exactly)."""

from __future__ import annotations

import argparse
import asyncio
import time

import pytest
from sim_harness import T0, StartCalendly, StartGoogle

from forwarder.simulators.server import SimulatorSettings, build_arg_parser, settings_from_args
from forwarder.simulators.timeline import format_micros, to_micros
from forwarder.timeutil import format_rfc3339

LATENCY = 0.2


async def test_calendly_latency_delays_each_request_but_not_the_others(
    start_calendly: StartCalendly,
) -> None:
    api = await start_calendly(latency_seconds=LATENCY, rate_limit_per_minute=4)
    started = time.monotonic()
    responses = await asyncio.gather(*(api.get() for _ in range(6)))
    elapsed = time.monotonic() - started
    # Real time: each request waited, concurrently (not 6 x the latency).
    assert LATENCY <= elapsed < 3 * LATENCY
    assert api.sim.stats.peak_in_flight == 6
    # The rate limit applies as without latency: 4 per minute, the rest refused.
    assert sorted(status for status, _, _ in responses) == [200, 200, 200, 200, 429, 429]
    # The test helper routes are not delayed.
    started = time.monotonic()
    async with api.session.get(api.url + "/_sim/stats") as response:
        assert response.status == 200
        assert (await response.json())["peak_in_flight"] == 6
    assert time.monotonic() - started < LATENCY


async def test_google_latency_delays_the_api_and_the_token_endpoint(
    start_google: StartGoogle,
) -> None:
    api = await start_google(latency_seconds=LATENCY, quota_per_minute=3)
    started = time.monotonic()
    await api.access_token()
    assert time.monotonic() - started >= LATENCY
    params = {"startTime": format_rfc3339(T0 - 1800), "endTime": format_rfc3339(T0 - 60)}
    started = time.monotonic()
    responses = await asyncio.gather(*(api.list(params) for _ in range(5)))
    assert time.monotonic() - started >= LATENCY
    # Concurrent, not one after the other (counted, not timed: a loaded host is slow).
    assert api.sim.stats.peak_in_flight == 5
    statuses = sorted(status for status, _, _ in responses)
    assert statuses == [200, 200, 200, 403, 403], "the quota still applies"


async def test_no_latency_by_default(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    started = time.monotonic()
    for _ in range(5):
        status, _, _ = await api.get()
        assert status == 200
    # Five delayed requests would take 5 x LATENCY; allow for a busy machine.
    assert time.monotonic() - started < 2.5 * LATENCY


def test_latency_flags(tmp_path) -> None:
    parser = build_arg_parser(argparse.ArgumentParser())
    settings = settings_from_args(
        parser.parse_args(["--calendly-latency", "0.15", "--google-latency", "0.2"])
    )
    assert (settings.calendly_latency, settings.google_latency) == (0.15, 0.2)
    defaults = SimulatorSettings()
    assert (defaults.calendly_latency, defaults.google_latency) == (0.0, 0.0)
    for bad in ("-1", "soon", "61"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--calendly-latency", bad])


async def test_adjacent_windows_partition_the_log_exactly(start_calendly: StartCalendly) -> None:
    """Windows [s, s + w - 1 µs] neither overlap nor leave a gap, ties included."""
    api = await start_calendly(tie_fraction=0.3)
    width = to_micros(300)
    start = to_micros(T0 - 1800)
    # Entries exactly on a boundary, one microsecond before it, and a tie on it.
    boundary = start + 2 * width
    for time_us in (boundary - 1, boundary, boundary):
        api.sim.add_entry(time_us / 1e6)
    collected: list[str] = []
    while start <= to_micros(T0):
        params = api.params(
            count=7,
            sort="occurred_at:asc",
            min_occurred_at=format_micros(start),
            max_occurred_at=format_micros(start + width - 1),
        )
        entries, _ = await api.collect(params)
        collected += [entry["uri"] for entry in entries]
        start += width
    assert collected == [entry["uri"] for entry in api.sim.truth()]


async def test_paging_sees_entries_injected_between_requests(
    start_calendly: StartCalendly,
) -> None:
    """The ordered result cache never hides a change of the log."""
    api = await start_calendly()
    params = api.params(count=1000, sort="occurred_at:asc")
    first, _ = await api.collect(params)
    added = api.sim.add_entry(T0 - 900)
    second, _ = await api.collect(params)
    assert len(second) == len(first) + 1
    assert added["uri"] in {entry["uri"] for entry in second}
