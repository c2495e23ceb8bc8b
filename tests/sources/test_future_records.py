"""Future-dated records and a lying clock (loss path 3): delivered and flagged, never
allowed to move a cursor past the API's now; the clock offset believed and the work one
poll plans are bounded."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from google_harness import activity_keys
from hostile import rewrite_json
from runner_harness import SourcePipeline
from source_harness import HOUR, T0, drain, event_ids, google_truth, sample

from forwarder.schema.ids import calendly_event_key, google_activity_event_keys
from forwarder.sources.google import calendar as google_calendar
from forwarder.sources.google.keys import activity_key
from forwarder.timeutil import parse_rfc3339

YEAR_9999 = parse_rfc3339("9999-12-31T00:00:00Z")


async def test_calendly_entry_dated_9999_is_delivered_and_does_not_blind_the_source(
    calendly, clock, metrics, capfd
) -> None:
    """The entry comes back on every later poll (min_occurred_at is before it): it is
    delivered once, its id stays in `seen` without `seen` growing, the cursor stays at the
    API's now, and every entry written after it is delivered."""
    simulator, make_source = await calendly({"start": T0 - HOUR, "end": None}, page_size=20)
    future = simulator.add_entry(YEAR_9999, served_from=T0 - 600)
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    sizes = []
    for _ in range(6):
        delivered += event_ids(await drain(source))
        assert source.cursor <= clock.now()
        sizes.append(len(source.seen))
        clock.advance(600)
    delivered += event_ids(await drain(source))
    truth = [calendly_event_key(entry["uri"]) for entry in simulator.truth()]
    assert len(truth) > 300
    assert Counter(delivered) == Counter([*truth, calendly_event_key(future["uri"])])
    assert max(sizes) <= 10, "seen holds the overlap and the future entry, not every poll"
    assert calendly_event_key(future["uri"]) in source.seen
    assert sample(metrics, "forwarder_source_future_events_total", source="cal") == 1
    assert "9999-12-31" in source.warnings["future_events"]
    assert capfd.readouterr().out.count("future_dated_records") == 1, "one line per streak"


async def test_calendly_entry_a_little_ahead_does_not_move_the_cursor(calendly, clock) -> None:
    """An entry 30 s ahead (a backend host's skew) is delivered but not flagged, and the
    entries other hosts stamp in those 30 s, arriving later, are not skipped."""
    simulator, make_source = await calendly({"start": T0 - HOUR, "end": T0 - 60}, page_size=20)
    ahead = simulator.add_entry(T0 + 30, served_from=T0)
    source = make_source()
    source.restore(None)
    first = event_ids(await drain(source))
    assert calendly_event_key(ahead["uri"]) in first
    assert source.cursor <= T0
    late = [simulator.add_entry(T0 + 5), simulator.add_entry(T0 + 20)]
    clock.advance(60)
    second = event_ids(await drain(source))
    assert second == [calendly_event_key(entry["uri"]) for entry in late]
    assert "future_events" not in source.warnings


async def test_calendly_flag_clears_when_the_future_entry_is_gone(calendly, clock, metrics) -> None:
    simulator, make_source = await calendly({"start": T0 - HOUR, "end": T0}, page_size=20)
    simulator.add_entry(T0 + 2 * HOUR, served_from=T0)
    source = make_source()
    source.restore(None)
    await drain(source)
    assert "future_events" in source.warnings
    # Two hours later the entry is no longer from the future: the streak ends.
    clock.advance(2 * HOUR + 120)
    await drain(source)
    assert "future_events" not in source.warnings
    assert sample(metrics, "forwarder_source_future_events_total", source="cal") == 1


async def test_calendly_cursor_left_in_year_9999_is_repaired(calendly, clock) -> None:
    """A checkpoint written by a version a future entry blinded: the source goes back to
    the earliest believable API now and delivers what was written since."""
    simulator, make_source = await calendly({"start": T0 - HOUR, "end": None}, page_size=20)
    source = make_source()
    source.restore({"cursor": "9999-12-31T00:00:00.000000Z", "seen": {}})
    clock.advance(300)
    added = simulator.add_entry(T0 + 200)
    delivered = event_ids(await drain(source))
    assert calendly_event_key(added["uri"]) in delivered
    assert source.cursor <= clock.now()


async def test_calendly_date_header_in_year_9999_is_believed_only_up_to_the_cap(
    calendly, clock, metrics
) -> None:
    simulator, make_source = await calendly(
        {"start": T0 - HOUR, "end": None, "date_offset": YEAR_9999 - T0}, page_size=20
    )
    source = make_source()
    source.restore(None)
    delivered = event_ids(await drain(source))
    assert source.clock_offset == 900.0
    assert sample(metrics, "forwarder_source_clock_offset_seconds", source="cal") > 2.5e11
    capped = sample(
        metrics, "forwarder_source_capped_values_total", source="cal", kind="clock_offset"
    )
    assert capped >= 1
    assert "max_clock_offset" in source.warnings["clock_offset"]
    simulator.config.date_offset = 0.0
    clock.advance(600)
    delivered += event_ids(await drain(source))
    assert "clock_offset" not in source.warnings
    assert Counter(delivered) == Counter(calendly_event_key(e["uri"]) for e in simulator.truth())


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_google_date_header_in_year_9999_plans_a_bounded_poll_and_loses_nothing(
    google, clock, metrics, tmp_path, concurrency
) -> None:
    """The first response's Date says 9999: only max_clock_offset of it is believed (the
    old code planned ~70 million windows and died of MemoryError). The API then refuses
    windows ending in its future, so polls fail loudly until the header heals; nothing is
    lost."""
    simulator, make_source = await google(
        {"start": T0 - 6 * HOUR, "date_offset": YEAR_9999 - T0},
        page_size=50,
        initial_lookback=6 * HOUR,
        backfill_concurrency=concurrency,
    )
    source = make_source()
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert await pipeline.poll()
        assert source.clock_offset == 900.0
        assert "clock_offset" in source.warnings
        assert sample(metrics, "forwarder_source_clock_offset_seconds", source="gcal") > 2.5e11
        clock.advance(300)
        assert not await pipeline.poll()
        assert "End time occurs after current time" in pipeline.runner.last_error
        simulator.config.date_offset = 0.0
        for _ in range(3):
            clock.advance(60)
            if await pipeline.poll():
                break
        else:
            raise AssertionError("the source never recovered")
        assert "clock_offset" not in source.warnings
        assert pipeline.delivered == google_truth(simulator, clock.now() - 5)


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_google_one_poll_plans_a_bounded_number_of_windows(
    google, clock, monkeypatch, concurrency
) -> None:
    monkeypatch.setattr(google_calendar, "MAX_WINDOWS_PER_POLL", 3)
    simulator, make_source = await google(
        {"start": T0 - 12 * HOUR},
        page_size=50,
        initial_lookback=12 * HOUR,
        backfill_concurrency=concurrency,
    )
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    heads = []
    for _ in range(6):
        delivered += event_ids(await drain(source))
        heads.append(source.head)
    # 12 one-hour windows, three per poll.
    assert heads[0] == pytest.approx(T0 - 9 * HOUR)
    assert heads[3] == pytest.approx(T0 - 5)
    assert Counter(delivered) == google_truth(simulator, T0 - 5)


async def test_google_activity_dated_9999_is_delivered_flagged_and_moves_nothing(
    google, hostile, clock, metrics
) -> None:
    """A hostile API slips an activity dated 9999 into every page: delivered once,
    flagged, kept in `seen` (without growing it per poll), head at the API's now."""
    simulator, make_source = await google({"start": T0 - 2 * HOUR, "rate_per_minute": 0.1})
    proxy = await hostile(simulator.url)
    template = simulator.truth()[-1]["activity"]
    future = {**template, "id": {**template["id"], "time": "9999-12-31T00:00:00.000Z"}}

    def slip_in(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "items": [future, *body.get("items", [])]}

    proxy.push("/activity/", rewrite_json(slip_in), count=1000)
    source = make_source(base_url=proxy.url)
    source.restore(None)
    future_ids = google_activity_event_keys(future)
    delivered: list[str] = []
    for _ in range(5):
        delivered += event_ids(await drain(source))
        assert source.head <= clock.now()
        assert source.final_before <= clock.now()
        # `seen` holds the keys a window can still return: the settle window's (give or
        # take the minute keys expire by), and the future one (once, however many polls
        # returned it).
        recent = activity_keys(simulator, source.final_before, clock.now() - 5)
        assert recent | {activity_key(future)} <= set(source.seen)
        older = activity_keys(simulator, source.final_before - 60, clock.now() - 5)
        assert set(source.seen) <= older | {activity_key(future)}
        clock.advance(600)
    expected = google_truth(simulator, clock.now() - 600 - 5) + Counter(future_ids)
    assert Counter(delivered) == expected
    assert sample(metrics, "forwarder_source_future_events_total", source="gcal") == len(future_ids)
    assert "future_events" in source.warnings
