"""Parallel backfill of both sources against the simulators (with real per-request
latency, so windows are really read at the same time): the ground truth exactly once and
in order, restarts from any checkpoint, late Google events, rate limits, bounded buffers."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from contextlib import aclosing
from typing import Any

import pytest
from google_harness import caught_by
from source_harness import (
    HOUR,
    T0,
    calendly_truth_ids,
    drain,
    event_ids,
    google_truth,
    poll_until_done,
    sample,
)
from state_harness import CommittedState, committed

from forwarder.schema.ids import google_activity_event_keys
from forwarder.simulators.timeline import to_micros
from forwarder.sources.base import SourceError

DAY = 24 * HOUR
LATENCY = 0.003

CALENDLY_SIM = {
    "start": T0 - 2 * DAY,
    "end": T0,
    "rate_per_minute": 2.0,
    "tie_fraction": 0.3,
    "latency_seconds": LATENCY,
}
CALENDLY_SOURCE = {
    "page_size": 40,
    "initial_lookback": 2 * DAY + HOUR,
    "backfill_window": 4 * HOUR,
    "backfill_concurrency": 4,
    "backfill_buffer_pages": 2,
}
GOOGLE_SIM = {"start": T0 - 2 * DAY, "rate_per_minute": 2.0, "latency_seconds": LATENCY}
GOOGLE_SOURCE = {
    "page_size": 30,
    "initial_lookback": 2 * DAY,
    "backfill_concurrency": 4,
    "backfill_buffer_pages": 2,
    # Google's own limit: these tests are about concurrency (the default budget, 120 a
    # minute, would make the catch-up wait on the simulated clock; it has tests of its own).
    "max_requests_per_minute": 2400,
}


def _requests(simulator: Any, route: str) -> int:
    return simulator.stats.count(route=route)


def _cuts(count: int, sample: int = 5) -> list[int]:
    """Restart points: the first batches, a seeded sample of the middle, the last ones."""
    middle = random.Random(7).sample(range(4, count - 2), min(sample, max(0, count - 6)))
    return sorted({1, 2, 3, *middle, count - 2, count - 1})


# -- Calendly ---------------------------------------------------------------------------


async def test_calendly_parallel_backfill_delivers_the_truth_in_order(calendly, clock) -> None:
    simulator, make_source = await calendly(CALENDLY_SIM, **CALENDLY_SOURCE)
    _add_boundary_entries(simulator)
    truth = calendly_truth_ids(simulator)
    assert len(truth) > 5000

    source = make_source()
    source.restore(None)
    batches = await drain(source)
    assert event_ids(batches) == truth
    assert source.backfill.windows_started >= 12
    # After the first windows, the widths follow the density: about a page (40 entries
    # at 2 a minute, 20 minutes) each rather than 4 hours.
    assert source.last_plan is not None
    assert max(source.last_plan.widths[8:]) < HOUR * 1_000_000
    assert simulator.stats.peak_in_flight == 4, "four windows were read at once"
    assert source.backfill.peak_buffered_pages <= 4 * 2
    cursors = [batch.checkpoint.cursor["cursor"] for batch in batches]
    assert cursors == sorted(cursors)
    assert cursors[-1] == simulator.truth()[-1]["occurred_at"]

    # Exactly what a sequential read (concurrency 1, the old behaviour) delivers.
    same, make_sequential = await calendly(
        CALENDLY_SIM, **{**CALENDLY_SOURCE, "backfill_concurrency": 1}
    )
    _add_boundary_entries(same)
    sequential = make_sequential()
    sequential.restore(None)
    assert event_ids(await drain(sequential)) == truth
    assert sequential.backfill.windows_started == 0


def _add_boundary_entries(simulator: Any) -> None:
    """Entries right on window boundaries: one microsecond before, on, and a tie on it."""
    first_start = to_micros(T0 - CALENDLY_SOURCE["initial_lookback"] - 5.0)
    # The first `backfill_concurrency` windows have the configured width.
    for k in (1, 3):
        boundary = first_start + k * to_micros(CALENDLY_SOURCE["backfill_window"])
        for time_us in (boundary - 1, boundary, boundary):
            simulator.add_entry(time_us / 1e6)


async def test_calendly_restart_from_any_backfill_checkpoint(calendly, clock) -> None:
    simulator, make_source = await calendly(CALENDLY_SIM, **CALENDLY_SOURCE)
    first = make_source()
    first.restore(None)
    batches = await drain(first)
    truth = calendly_truth_ids(simulator)
    for cut in _cuts(len(batches)):
        restarted = make_source()
        restarted.restore(committed(batches[:cut]))
        rest = event_ids(await drain(restarted))
        assert event_ids(batches[:cut]) + rest == truth, f"restart after batch {cut}"


def _scraped(metrics: Any, name: str, source: str = "cal") -> float | None:
    return metrics.registry.get_sample_value(name, {"source": source})


async def test_calendly_rate_limit_holds_every_worker(calendly, clock, metrics) -> None:
    simulator, make_source = await calendly(
        {**CALENDLY_SIM, "rate_limit_per_minute": 25}, **CALENDLY_SOURCE
    )
    simulator.faults.push("http_429", count=3)
    source = make_source()
    source.restore(None)
    started = clock.now()
    ids = await poll_until_done(source)
    assert ids == calendly_truth_ids(simulator)
    assert not simulator.faults.pending
    pages = _requests(simulator, "activity_log_entries")
    refused = simulator.stats.count(route="activity_log_entries", status=429)
    # ~190 requests at 25 a minute: the source waited out several rate-limit windows...
    assert clock.now() - started >= 5 * 60
    # ...and did not hammer: beyond the 3 injected 429s, at most the requests already in
    # flight when the limit ran out are refused in each minute.
    minutes = (clock.now() - started) / 60 + 1
    assert refused - 3 <= 4 * minutes, f"{refused} refusals out of {pages} requests"
    # Every refusal held the whole source once, and the scrape says so.
    holds = _scraped(metrics, "forwarder_source_rate_limit_holds_total")
    assert holds == source.gate.throttled >= 3
    assert _scraped(metrics, "forwarder_source_requests_in_flight") == 0


async def test_calendly_failure_in_a_prefetched_window_loses_nothing(calendly, clock) -> None:
    simulator, make_source = await calendly(CALENDLY_SIM, **CALENDLY_SOURCE)
    source = make_source()
    source.restore(None)
    # Refused outright (not retried): the poll fails when the pipeline reaches that window.
    simulator.faults.push("page_token_rejected")
    simulator.faults.push("http_500", count=CALENDLY_SOURCE.get("max_attempts", 5))
    ids = await poll_until_done(source)
    assert not simulator.faults.pending
    assert ids == calendly_truth_ids(simulator)


async def test_calendly_buffers_stay_bounded_when_the_pipeline_stops(
    calendly, clock, metrics
) -> None:
    simulator, make_source = await calendly(
        CALENDLY_SIM, **{**CALENDLY_SOURCE, "backfill_concurrency": 3, "page_size": 10}
    )
    source = make_source()
    source.restore(None)
    bound = 3 * 2
    async with aclosing(source.poll()) as poll:
        batches = [await anext(poll)]
        await asyncio.sleep(0.2)  # the pipeline is busy: no batch is taken meanwhile
        stalled = _requests(simulator, "activity_log_entries")
        await asyncio.sleep(0.2)
        assert _requests(simulator, "activity_log_entries") == stalled
        assert stalled <= 1 + bound
        assert source.backfill.buffered_pages <= bound
        # What an SRE sees meanwhile: three windows open, their buffers full, no request.
        assert _scraped(metrics, "forwarder_source_backfill_windows_in_flight") == 3
        assert _scraped(metrics, "forwarder_source_backfill_buffered_pages") == bound
        assert _scraped(metrics, "forwarder_source_requests_in_flight") == 0
        batches += [batch async for batch in poll]
    assert source.backfill.peak_buffered_pages <= bound
    assert event_ids(batches) == calendly_truth_ids(simulator)
    assert _scraped(metrics, "forwarder_source_backfill_windows_in_flight") == 0
    assert _scraped(metrics, "forwarder_source_backfill_buffered_pages") == 0
    # One batch per page fetched, all of them through the window reader.
    pages = _scraped(metrics, "forwarder_source_backfill_pages_total")
    assert pages == source.backfill.pages_fetched == len(batches)
    windows = _scraped(metrics, "forwarder_source_backfill_windows_total")
    assert windows == source.backfill.windows_started > 3


async def test_calendly_closing_the_poll_stops_every_worker(calendly, clock) -> None:
    simulator, make_source = await calendly(CALENDLY_SIM, **CALENDLY_SOURCE)
    source = make_source()
    source.restore(None)
    poll = source.poll()
    await anext(poll)
    await poll.aclose()
    await asyncio.sleep(0)
    assert not [task for task in asyncio.all_tasks() if "backfill" in task.get_name()]
    # Requests cancelled in flight are still counted by the server when it answers them.
    await asyncio.sleep(0.05)
    requests = _requests(simulator, "activity_log_entries")
    await asyncio.sleep(0.1)
    assert _requests(simulator, "activity_log_entries") == requests
    assert requests <= 1 + 4 * 2


async def test_calendly_caught_up_reads_one_request_at_a_time(calendly, clock) -> None:
    simulator, make_source = await calendly(
        {"end": None, "latency_seconds": LATENCY}, page_size=10, backfill_concurrency=8
    )
    source = make_source()
    source.restore(None)
    seen = event_ids(await drain(source))
    clock.advance(600)
    seen += event_ids(await drain(source))
    assert seen == calendly_truth_ids(simulator)
    assert simulator.stats.peak_in_flight == 1
    assert source.backfill.windows_started == 0


# -- Google Calendar --------------------------------------------------------------------


async def test_google_parallel_backfill_is_the_sequential_read_exactly(google, clock) -> None:
    simulator, make_source = await google(GOOGLE_SIM, **GOOGLE_SOURCE)
    truth = google_truth(simulator, T0 - 5)
    assert sum(truth.values()) > 5000
    source = make_source()
    source.restore(None)
    batches = await drain(source)
    assert Counter(event_ids(batches)) == truth
    assert source.backfill.windows_started >= 40
    assert simulator.stats.peak_in_flight == 4
    assert source.backfill.peak_buffered_pages <= 4 * 2
    heads = [batch.checkpoint.cursor["head"] for batch in batches]
    assert heads == sorted(heads)

    _, make_sequential = await google(GOOGLE_SIM, **{**GOOGLE_SOURCE, "backfill_concurrency": 1})
    sequential = make_sequential()
    sequential.restore(None)
    expected = await drain(sequential)
    # Same batches, same events, same checkpoints: the semantics did not change.
    assert [b.checkpoint for b in batches] == [b.checkpoint for b in expected]
    assert [[e.id for e in b.events] for b in batches] == [
        [e.id for e in b.events] for b in expected
    ]


async def test_google_restart_from_any_backfill_checkpoint(google, clock) -> None:
    simulator, make_source = await google(
        {**GOOGLE_SIM, "start": T0 - DAY}, **{**GOOGLE_SOURCE, "initial_lookback": DAY}
    )
    first = make_source()
    first.restore(None)
    batches = await drain(first)
    truth = google_truth(simulator, T0 - 5)
    for cut in _cuts(len(batches), sample=3):
        restarted = make_source()
        restarted.restore(committed(batches[:cut]))
        delivered = Counter(event_ids(batches[:cut]) + event_ids(await drain(restarted)))
        assert delivered == truth, f"restart after batch {cut}"


async def test_google_late_events_exactly_once_with_concurrency(google, clock, metrics) -> None:
    simulator, make_source = await google(
        {
            "start": T0 - DAY,
            "rate_per_minute": 2.0,
            "max_lag": 120.0,
            "late_fraction": 0.05,
            "late_lag": 5400.0,
            "latency_seconds": LATENCY,
        },
        **{**GOOGLE_SOURCE, "initial_lookback": DAY, "poll_interval": 600},
    )
    late = simulator.add_activity(T0 + 600, visible_after_seconds=90 * 60)
    [late_id] = google_activity_event_keys(late)
    source = make_source()
    source.restore(None)
    # The first poll is a backfill: stop it halfway (a crash) and restart from the
    # checkpoint of the last batch taken.
    async with aclosing(source.poll()) as poll:
        first = [batch async for _, batch in _take(poll, 20)]
    delivered = event_ids(first)
    store = CommittedState().commit_batches(first)
    source = make_source()
    source.restore(store.state())
    for step in range(24):
        if step % 4 == 3:
            source = make_source()
            source.restore(store.state())
        batches = await drain(source)
        delivered += event_ids(batches)
        store.commit_batches(batches)
        clock.advance(600)
    counts = Counter(delivered)
    assert counts[late_id] == 1
    assert max(counts.values()) == 1, "an event was forwarded twice"
    # Everything the schedule has re-read by the last poll (600 s ago) was delivered, late
    # ones included (reported 90 min late: caught by the 3 h step), and nothing the API
    # had not shown.
    last_poll = clock.now() - 600
    due = caught_by(simulator, last_poll)
    assert due - counts == Counter()
    assert sum(due.values()) > 2000
    assert counts - google_truth(simulator, last_poll, visible_before=last_poll) == Counter()
    caught = sample(
        metrics, "forwarder_source_late_events_by_step_total", source="gcal", step="10800"
    )
    assert caught >= 1
    assert metrics.registry.get_sample_value(
        "forwarder_source_late_events_total", {"source": "gcal"}
    )


async def test_google_quota_errors_hold_every_worker(google, clock) -> None:
    simulator, make_source = await google(
        {**GOOGLE_SIM, "quota_per_minute": 40}, **{**GOOGLE_SOURCE, "max_attempts": 20}
    )
    simulator.faults.push("rate_limit_403", count=3)
    source = make_source()
    source.restore(None)
    started = clock.now()
    ids = await poll_until_done(source)
    assert Counter(ids) == google_truth(simulator, T0 - 5)
    assert max(Counter(ids).values()) == 1
    refused = simulator.stats.count(route="activities", status=403)
    minutes = (clock.now() - started) / 60 + 1
    # One probe every 5 s while the quota is spent, not four workers each retrying.
    assert refused <= 3 + 16 * minutes, f"{refused} quota errors in {minutes:.0f} min"
    assert source.gate.throttled >= 1


async def test_google_buffers_stay_bounded_when_the_pipeline_stops(google, clock) -> None:
    simulator, make_source = await google(
        {**GOOGLE_SIM, "start": T0 - DAY},
        **{**GOOGLE_SOURCE, "initial_lookback": DAY, "backfill_concurrency": 3, "page_size": 10},
    )
    source = make_source()
    source.restore(None)
    bound = 3 * 2
    async with aclosing(source.poll()) as poll:
        batches = [await anext(poll)]
        await asyncio.sleep(0.2)
        stalled = _requests(simulator, "activities")
        await asyncio.sleep(0.2)
        assert _requests(simulator, "activities") == stalled
        assert stalled <= 1 + bound
        batches += [batch async for batch in poll]
    assert source.backfill.peak_buffered_pages <= bound
    assert Counter(event_ids(batches)) == google_truth(simulator, T0 - 5)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_google_steady_state_needs_no_backfill(google, clock, concurrency) -> None:
    simulator, make_source = await google(
        {"latency_seconds": LATENCY}, backfill_concurrency=concurrency
    )
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    for _ in range(4):
        delivered += event_ids(await drain(source))
        clock.advance(600)
    assert source.backfill.windows_started == 0
    assert simulator.stats.peak_in_flight == 1
    assert Counter(delivered) == google_truth(simulator, clock.now() - 600 - 5)


class OffsetClock:
    """The API's clock: the host's clock plus ``offset`` seconds."""

    def __init__(self, host: Any, offset: float) -> None:
        self.host, self.offset = host, offset

    def now(self) -> float:
        return self.host.now() + self.offset

    async def sleep(self, seconds: float) -> None:
        await self.host.sleep(seconds)


@pytest.mark.parametrize("offset", [-300.0, 300.0])
async def test_google_backfill_with_clock_skew_skips_nothing(google, clock, offset) -> None:
    simulator, make_source = await google(
        {"start": T0 - DAY, "rate_per_minute": 1.0, "latency_seconds": LATENCY},
        OffsetClock(clock, offset),
        **{**GOOGLE_SOURCE, "initial_lookback": DAY},
    )
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    for _ in range(4):
        delivered += await poll_until_done(source)
        clock.advance(600)
    assert source.backfill.windows_started >= 15
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    last_poll_api_time = clock.now() - 600 + offset - 10
    assert google_truth(simulator, last_poll_api_time) - counts == Counter()


async def test_google_prefetch_is_dropped_when_the_api_clock_jumps(google, clock) -> None:
    """Windows planned as settled stop being settled when the API's clock turns out to be
    far behind: the source notices at the next window start and reads on sequentially.
    (An offset this large is believed only because max_clock_offset allows it.)"""
    api_clock = OffsetClock(clock, 0.0)
    simulator, make_source = await google(
        {"start": T0 - DAY, "rate_per_minute": 1.0, "latency_seconds": LATENCY},
        api_clock,
        **{
            **GOOGLE_SOURCE,
            "initial_lookback": DAY,
            "backfill_concurrency": 2,
            "max_clock_offset": 3 * HOUR,
        },
    )
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    async with aclosing(source.poll()) as poll:
        delivered += [event.id for event in (await anext(poll)).events]
        api_clock.offset = -2.5 * HOUR
        try:
            async for batch in poll:
                delivered += [event.id for event in batch.events]
        except SourceError:
            pass  # the old horizon is now in the API's future: the next poll re-plans
    delivered += await poll_until_done(source)
    assert source.backfill.replanned == 1
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    # Everything up to the API's horizon (its now minus end_margin, Date has 1 s
    # resolution), and nothing the API had not shown.
    assert google_truth(simulator, api_clock.now() - 10) - counts == Counter()
    assert counts - google_truth(simulator, api_clock.now()) == Counter()


async def _take(poll: Any, count: int) -> Any:
    """The first ``count`` batches of a poll, numbered."""
    for number in range(count):
        yield number, await anext(poll)
