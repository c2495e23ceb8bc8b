"""Pagination that does not end (loss path 6): a repeated page token, the same records
under a new token, or more than max_pages_per_window pages fail the poll loudly after a
bounded number of requests, and the next poll starts from the last batch handed on."""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

import pytest
from aiohttp import web
from hostile import Upstream
from runner_harness import SourcePipeline
from source_harness import HOUR, T0, calendly_truth, drain, google_truth

from forwarder.schema.ids import calendly_event_key

MODES = {"sequential": {"backfill_concurrency": 1}, "backfill": {"backfill_concurrency": 4}}


def api_requests(simulator: Any) -> int:
    routes = simulator.stats.as_json()["by_route"]
    return sum(
        count
        for route, statuses in routes.items()
        if route in ("activity_log_entries", "activities")
        for count in statuses.values()
    )


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_page_token_handed_out_forever_fails_the_poll_after_two_requests(
    calendly, google, clock, metrics, tmp_path, provider, mode
) -> None:
    """The API answers every page-token request with that same token again (before the
    fix: 1,337 requests in 12 s, RSS past 1 GB for Google)."""
    if provider == "calendly":
        simulator, make_source = await calendly(
            {"start": T0 - 3 * HOUR},
            page_size=20,
            initial_lookback=4 * HOUR,
            backfill_window=1800,
            **MODES[mode],
        )
        source_id = "cal"
    else:
        simulator, make_source = await google(
            {"start": T0 - 7 * HOUR}, page_size=20, initial_lookback=8 * HOUR, **MODES[mode]
        )
        source_id = "gcal"
    source = make_source()
    source.restore(None)
    simulator.faults.push("page_token_loop", count=100_000)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        for attempt in (1, 2, 3):
            before = api_requests(simulator)
            delay = await pipeline.runner.poll_once()
            assert delay > 0
            # A window's second page gives it away (each concurrent window notices on its
            # own; an empty first window costs one more request).
            assert api_requests(simulator) - before <= 2 * MODES[mode]["backfill_concurrency"] + 1
            assert pipeline.runner.last_error_type == "pagination_loop"
            assert (
                pipeline.sample(
                    "forwarder_source_failed_polls_total",
                    source=source_id,
                    error_type="pagination_loop",
                )
                == attempt
            )
        assert "pagination_loop: " in pipeline.runner.last_error
        assert "already followed" in pipeline.runner.last_error
        simulator.faults.clear()
        assert await pipeline.poll()
        if provider == "calendly":
            assert pipeline.delivered == calendly_truth(simulator)
        else:
            assert pipeline.delivered == google_truth(simulator, T0 - 5)


async def test_the_same_records_under_a_new_token_fail_the_poll(
    calendly, hostile, clock, metrics, tmp_path
) -> None:
    simulator, make_source = await calendly({"start": T0 - HOUR}, page_size=20)
    proxy = await hostile(simulator.url)
    first: list[Any] = []

    async def same_records(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        if not first:
            first.append(upstream.json())
        body = dict(first[0])
        body["pagination"] = {**body["pagination"], "next_page_token": secrets.token_urlsafe(24)}
        return web.json_response(body)

    proxy.push("/activity_log_entries", same_records, count=100_000)
    source = make_source(base_url=proxy.url)
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert not await pipeline.poll()
        assert "repeats the records of the page before" in pipeline.runner.last_error
        assert sum(proxy.requests.values()) == 2
        # The first page was handed on, once.
        first_ids = {calendly_event_key(entry["uri"]) for entry in first[0]["collection"]}
        assert set(pipeline.delivered) == first_ids
        proxy.clear()
        assert await pipeline.poll()
        assert pipeline.delivered == calendly_truth(simulator)


@pytest.mark.parametrize("spare", [0, -1], ids=["at_budget", "over_budget"])
async def test_calendly_window_of_many_pages_within_the_budget(
    calendly, clock, metrics, tmp_path, spare
) -> None:
    """A legitimately large window (31 pages) reads in one poll with a budget of 31; with
    30 the poll fails loudly after 30 pages and the next poll goes on from there."""
    simulator, make_source = await calendly(
        {"start": T0 - 2 * HOUR, "end": T0, "rate_per_minute": 5.0, "tie_fraction": 0.0},
        page_size=20,
        backfill_concurrency=1,
    )
    truth = calendly_truth(simulator)
    pages = -(-len(truth) // 20)
    assert pages > 25
    source = make_source(max_pages_per_window=pages + spare)
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        if spare == 0:
            assert await pipeline.poll()
        else:
            assert not await pipeline.poll()
            assert "more than" in pipeline.runner.last_error
            assert "max_pages_per_window" in pipeline.runner.last_error
            assert await pipeline.poll()
        assert pipeline.delivered == truth


async def test_google_window_over_the_page_budget_fails_loudly_and_loses_nothing(
    google, clock, metrics, tmp_path
) -> None:
    simulator, make_source = await google({"start": T0 - 2 * HOUR}, page_size=10)
    source = make_source(max_pages_per_window=3)
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert not await pipeline.poll()
        assert pipeline.runner.last_error_type == "pagination_loop"
        assert not await pipeline.poll()
        handed_on = pipeline.delivered
    # With a budget the windows fit in, from the committed checkpoint.
    again = make_source()
    again.restore(await pipeline.store.load("gcal"))
    rest = Counter(event.id for batch in await drain(again) for event in batch.events)
    assert handed_on + rest == google_truth(simulator, T0 - 5)


async def test_the_guard_counts_only_this_window(calendly, clock) -> None:
    """Tokens of one window are not held against the next one (the backfill reads many
    windows, each with its own tokens and pages)."""
    simulator, make_source = await calendly(
        {"start": T0 - 6 * HOUR, "end": T0},
        page_size=5,
        initial_lookback=7 * HOUR,
        backfill_window=1800,
        max_pages_per_window=40,
    )
    source = make_source()
    source.restore(None)
    ids = [event.id for batch in await drain(source) for event in batch.events]
    assert len(ids) > 5 * 40, "more pages in all than one window may have"
    assert Counter(ids) == calendly_truth(simulator)
    assert source.backfill.windows_started > 3
