"""The Google Calendar source against the Reports API simulator."""

from __future__ import annotations

from collections import Counter

import pytest
from source_harness import HOUR, T0, drain, event_ids
from state_harness import CommittedState

from forwarder.schema.ids import google_activity_event_keys
from forwarder.sources.base import CredentialsError, MalformedResponseError


def _truth_ids(simulator, until=None) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    for record in simulator.truth(until):
        ids += google_activity_event_keys(record["activity"])
    return ids


async def test_catch_up_reads_every_event_once_in_windows(google, clock) -> None:
    simulator, make_source = await google({"start": T0 - 5 * HOUR}, initial_lookback=6 * HOUR)
    source = make_source()
    source.restore(None)
    batches = await drain(source)
    ids = event_ids(batches)
    truth = _truth_ids(simulator, T0 - 5)
    assert len(truth) > 1000
    assert Counter(ids) == Counter(truth)
    # Catch-up moved in windows of at most max_window (1h): at least six commits.
    heads = [b.checkpoint.cursor["head"] for b in batches]
    assert len(set(heads)) >= 6
    assert heads == sorted(heads)
    assert source.head == pytest.approx(T0 - 5)
    # Each batch is handed on oldest first.
    for batch in batches:
        times = [event.timestamp for event in batch.events]
        assert times == sorted(times)


async def test_every_event_of_a_multi_event_activity_is_forwarded(google, clock) -> None:
    simulator, make_source = await google({"rate_per_minute": 0.01})
    simulator.add_activity(
        T0 - 600,
        event_name="create_event",
        extra_event_names=("add_event_guest", "add_event_guest"),
    )
    source = make_source()
    source.restore(None)
    events = [event for batch in await drain(source) for event in batch.events]
    injected = [e for e in events if e.timestamp == pytest.approx(T0 - 600)]
    assert [e.action for e in injected] == ["create_event", "add_event_guest", "add_event_guest"]
    assert len({e.id for e in injected}) == 3


async def test_an_event_90_minutes_late_is_forwarded_exactly_once(google, clock, metrics) -> None:
    simulator, make_source = await google(
        {"start": T0 - HOUR, "min_lag": 0.0, "max_lag": 120.0}, poll_interval=600
    )
    late = simulator.add_activity(
        T0 + 600, visible_after_seconds=90 * 60, event_name="change_calendar_acls"
    )
    [late_id] = google_activity_event_keys(late)
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    store = CommittedState()
    # Poll every 10 simulated minutes for 4 hours; restart from the committed checkpoint
    # (a new source object) every fourth poll, as a daemon restart would.
    for step in range(24):
        if step % 4 == 3:
            source = make_source()
            source.restore(store.state())
        batches = await drain(source)
        delivered += event_ids(batches)
        store.commit_batches(batches)
        if step == 8:
            assert late_id not in delivered, "visible only 90 minutes after its time"
        clock.advance(600)
    assert delivered.count(late_id) == 1
    counts = Counter(delivered)
    assert max(counts.values()) == 1, "an event was forwarded twice"
    # Everything visible at the last poll (600 s ago) was delivered.
    last_poll = clock.now() - 600
    assert Counter(_truth_ids(simulator, last_poll - 120 - 5)) - counts == Counter()
    late_total = metrics.registry.get_sample_value(
        "forwarder_source_late_events_total", {"source": "gcal"}
    )
    assert late_total >= 1


async def test_seen_ids_stay_bounded_to_the_settle_window(google, clock) -> None:
    _, make_source = await google({"start": T0 - 6 * HOUR, "rate_per_minute": 10.0})
    source = make_source()
    source.restore(None)
    for _ in range(12):
        await drain(source)
        clock.advance(1800)
    horizon = source.final_before
    assert source.final_before <= clock.now() - 3 * HOUR
    # Keys go a whole expiry bucket (a minute) at a time.
    assert all(when >= horizon - 60 for when in source.seen.values())
    # Ten activities a minute over a ~3h settle window (plus the last step's slice, up to
    # 9 min, and one poll): about 2,000 keys, not the whole history.
    assert len(source.seen) < 3.5 * 60 * 10 * 1.3


async def test_token_is_cached_and_refreshed_before_expiry(google, clock) -> None:
    simulator, make_source = await google({"token_lifetime": 900}, poll_interval=60)
    source = make_source()
    source.restore(None)
    for _ in range(30):  # 30 polls, one simulated minute apart
        await drain(source)
        clock.advance(60)
    statuses = simulator.stats.as_json()["by_route"]["token"]
    issued = statuses.get(200, statuses.get("200", 0))
    # A 900 s token refreshed 300 s before expiry: one token per ~10 minutes, not per poll.
    assert 3 <= issued <= 5


async def test_quota_403_is_retried_after_backoff(google, clock) -> None:
    simulator, make_source = await google()
    source = make_source()
    source.restore(None)
    simulator.faults.push("rate_limit_403", count=2)
    started = clock.now()
    ids = event_ids(await drain(source))
    assert Counter(ids) == Counter(_truth_ids(simulator, T0 - 5))
    assert clock.now() - started >= 10.0, "quota errors wait at least 5 s each"


@pytest.mark.parametrize("fault", ["truncated_json", "missing_field", "wrong_type", "http_503"])
async def test_malformed_pages_are_retried_then_fail_without_moving_the_watermark(
    google, clock, fault
) -> None:
    simulator, make_source = await google(max_attempts=2)
    source = make_source()
    source.restore(None)
    before = source.checkpoint()
    simulator.faults.push(fault, count=2)
    with pytest.raises(Exception) as caught:
        await drain(source)
    if fault != "http_503":
        assert isinstance(caught.value, MalformedResponseError)
    assert source.checkpoint() == before
    ids = event_ids(await drain(source))
    assert Counter(ids) == Counter(_truth_ids(simulator, T0 - 5))


async def test_bad_activity_is_dead_lettered_and_the_rest_flows(google, clock) -> None:
    simulator, make_source = await google(page_size=20)
    source = make_source()
    source.restore(None)
    simulator.faults.push("bad_record")
    batches = await drain(source)
    dead = [letter for batch in batches for letter in batch.dead_letters]
    assert len(dead) == 1 and dead[0].stage == "source"
    truth = Counter(_truth_ids(simulator, T0 - 5))
    # The broken copy is dead-lettered; the activity may come back intact in the re-scan
    # of the next window, else at most its (up to 3) events are missing.
    assert sum((truth - Counter(event_ids(batches))).values()) <= 3
    assert max(Counter(event_ids(batches)).values()) == 1


async def test_wrong_delegated_admin_is_a_credentials_error(google, clock) -> None:
    _, make_source = await google(delegated_admin="intern@example.com")
    source = make_source()
    source.restore(None)
    with pytest.raises(CredentialsError) as caught:
        await drain(source)
    assert "token request refused" in str(caught.value)
