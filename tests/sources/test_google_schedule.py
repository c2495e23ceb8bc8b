"""The Google source's re-scan schedule against the Reports API simulator, on the manual
clock: late activities caught at every step exactly once across restarts, a restart that
resumes the schedule, reads per record bounded by the schedule, the request budget under
a burst, a checkpoint of the previous release migrated, and the freshness metrics."""

from __future__ import annotations

from collections import Counter
from contextlib import aclosing
from typing import Any

import pytest
from google_harness import caught_by, event_keys
from legacy_state import legacy_google_ids
from source_harness import HOUR, T0, drain, event_ids, google_truth, sample
from state_harness import CommittedState

from forwarder.sources.google.keys import activity_key
from forwarder.sources.untrusted import dead_letter_key
from forwarder.timeutil import format_rfc3339, parse_rfc3339

STEPS = (120.0, 600.0, 2400.0, 10800.0)
# Lags each step (and only that step) catches at a 60 s poll: visible after the step
# before it has read the slice (its age then is at most the step + a poll + the slice).
LAGS = {"head": 0.0, "120": 100.0, "600": 590.0, "2400": 2390.0, "10800": 10790.0}
MINUTE = 60.0


def count_reads(source: Any, reads: Counter[bytes | None]) -> None:
    """Count every activity the source reads on a page, by key (re-reads too)."""
    accept = source._accept

    def counting(items: list[Any], window: Any) -> Any:
        for activity in items:
            reads[activity_key(activity)] += 1
        return accept(items, window)

    source._accept = counting


def record_requests(source: Any, sent: list[tuple[float, str]], clock: Any) -> None:
    """Record when each activities.list request went out (the simulated clock), and for
    what (from the window's purpose in the budget's counters)."""
    request = source._client.request
    budget = source.budget

    async def recording(method: str, url: str, **kwargs: Any) -> Any:
        if "/activity/" in url:
            purpose = _last_purpose(budget)
            sent.append((clock.now(), purpose))
        return await request(method, url, **kwargs)

    source._client.request = recording


def _last_purpose(budget: Any) -> str:
    # The budget was taken right before the request: its latest count moved.
    previous = getattr(budget, "_test_counts", Counter())
    current = Counter(budget.requests)
    budget._test_counts = current
    moved = current - previous
    return next(iter(moved)) if moved else "?"


def max_per_minute(times: list[float]) -> int:
    """The most requests in any 60 s (half-open) of the clock."""
    times = sorted(times)
    most = 0
    low = 0
    for high, when in enumerate(times):
        while times[low] <= when - MINUTE:
            low += 1
        most = max(most, high - low + 1)
    return most


async def test_late_events_at_every_step_are_delivered_exactly_once_across_restarts(
    google, clock, metrics
) -> None:
    simulator, make_source = await google(
        {"start": T0 - HOUR, "rate_per_minute": 2.0}, initial_lookback=HOUR, page_size=20
    )
    injected: dict[str, str] = {}
    for round_number in range(3):
        for offset, (label, lag) in enumerate(LAGS.items()):
            when = T0 + 300 + round_number * 977 + offset * 61
            activity = simulator.add_activity(when, visible_after_seconds=lag)
            injected[event_keys(activity)[0]] = label
    store = CommittedState()
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    first_seen: dict[str, float] = {}
    # 4 h 20 min of polls a minute apart; a daemon restart every 37 polls.
    for poll in range(260):
        if poll % 37 == 36:
            source = make_source()
            source.restore(store.state())
        batches = await drain(source)
        store.commit_batches(batches)
        for event_id in event_ids(batches):
            delivered.append(event_id)
            first_seen.setdefault(event_id, clock.now())
        clock.advance(MINUTE)
    counts = Counter(delivered)
    assert max(counts.values()) == 1, "an event was forwarded twice"
    assert all(counts[event_id] == 1 for event_id in injected)
    last_poll = clock.now() - MINUTE
    assert caught_by(simulator, last_poll, STEPS) - counts == Counter()
    assert counts - google_truth(simulator, last_poll, visible_before=last_poll) == Counter()
    # Each was caught by its own step: after it appeared, before the next step's age.
    truth = {event_keys(r["activity"])[0]: r for r in simulator.truth(last_poll)}
    for event_id, label in injected.items():
        record = truth[event_id]
        when = parse_rfc3339(record["activity"]["id"]["time"])
        age = first_seen[event_id] - when
        assert first_seen[event_id] >= record["visible_at_unix"]
        if label != "head":
            step = float(label)
            assert step <= age <= step * 1.05 + MINUTE + 1, (label, age)
    for label in STEPS:
        caught = sample(
            metrics, "forwarder_source_late_events_by_step_total", source="gcal", step=f"{label:g}"
        )
        assert caught == 3, label
    late_total = sample(metrics, "forwarder_source_late_events_total", source="gcal")
    assert late_total == 12


@pytest.mark.parametrize("poll_interval", [60.0, 300.0])
async def test_a_restart_resumes_the_schedule_and_reads_are_bounded_by_it(
    google, clock, metrics, poll_interval
) -> None:
    """Every activity is read at most 1 + len(schedule) times, whatever the poll interval,
    across restarts from the committed state (a restart re-reads nothing from scratch);
    a re-read activity is never normalized again; nothing is skipped."""
    simulator, make_source = await google(
        {"start": T0 - HOUR, "rate_per_minute": 20.0, "max_lag": 30.0},
        initial_lookback=HOUR,
        page_size=50,
        poll_interval=poll_interval,
    )
    reads: Counter[bytes | None] = Counter()
    store = CommittedState()
    source = make_source()
    source.restore(None)
    count_reads(source, reads)
    normalized = 0
    delivered: list[str] = []
    restarts = 0
    polls = int(4 * HOUR / poll_interval)
    # What one poll reads at most: the head's and each step's slice (the last step's
    # waits until it is 9 minutes wide), at 20 activities a minute.
    one_poll = 20 / MINUTE * (4 * poll_interval + max(poll_interval, 540.0)) * 1.2
    for poll in range(polls):
        if poll % 7 == 6:
            normalized += source.reads.normalized
            source = make_source()
            source.restore(store.state())
            count_reads(source, reads)
            restarts += 1
        batches = await drain(source)
        store.commit_batches(batches)
        delivered += event_ids(batches)
        if poll % 7 == 6:
            # The first poll after a restart costs what a poll costs, not a re-read of
            # the settle window (3,600 activities).
            assert source.reads.activities_read <= one_poll
        clock.advance(poll_interval)
    normalized += source.reads.normalized
    assert restarts >= 5
    assert None not in reads
    assert max(reads.values()) <= 1 + len(STEPS)
    # Activities of the live part (after the first catch-up) that every step has read:
    # read by the head and by each step, five times. A step shorter than the poll
    # interval is mostly paid by the head's own read (listed at an age beyond the step).
    last_poll = clock.now() - poll_interval
    settled = last_poll - STEPS[-1] * 1.05 - poll_interval
    live = {
        activity_key(record["activity"])
        for record in simulator.truth(settled)
        if parse_rfc3339(record["activity"]["id"]["time"]) > T0 + 60
    }
    assert len(live) > 500
    usual = 1 + sum(1 for step in STEPS if step > poll_interval)
    assert Counter(reads[key] for key in live).most_common(1)[0][0] == usual
    # Re-reads are skipped by key: each activity normalized once.
    assert normalized == len(reads)
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    assert caught_by(simulator, last_poll, STEPS) - counts == Counter()
    rereads = sample(metrics, "forwarder_source_rereads_total", source="gcal")
    assert rereads == sum(reads.values()) - len(reads)


async def test_a_restart_in_the_middle_of_a_poll_resumes_without_loss_or_repeats(
    google, clock
) -> None:
    """The daemon stops after some batches of a poll (the head's and some re-scans'): the
    batch it was given last is committed, the source never applied it (it never asked
    for the next one). The restarted source goes on from the committed state."""
    simulator, make_source = await google(
        {"start": T0 - HOUR, "rate_per_minute": 30.0, "max_lag": 30.0, "late_fraction": 0.1,
         "late_lag": 1500.0},
        initial_lookback=HOUR,
        page_size=10,
    )  # fmt: skip
    reads: Counter[bytes | None] = Counter()
    store = CommittedState()
    source = make_source()
    source.restore(None)
    count_reads(source, reads)
    delivered: list[str] = []
    for poll in range(240):
        if poll % 5 == 4:
            # Taken: the first `cut` batches; the poll is closed at the next one.
            cut = 1 + poll % 9
            async with aclosing(source.poll()) as batches:
                taken = [batch async for _, batch in _take(batches, cut)]
            store.commit_batches(taken)
            delivered += event_ids(taken)
            source = make_source()
            source.restore(store.state())
            count_reads(source, reads)
        else:
            batches = await drain(source)
            store.commit_batches(batches)
            delivered += event_ids(batches)
        clock.advance(MINUTE)
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    last_poll = clock.now() - MINUTE
    due = caught_by(simulator, last_poll, STEPS)
    assert sum(due.values()) > 5000
    assert due - counts == Counter()
    # A window cut in its middle is read again from its start: one read more at most.
    assert max(reads.values()) <= 2 + len(STEPS)


async def _take(poll: Any, count: int) -> Any:
    for number in range(count):
        try:
            yield number, await anext(poll)
        except StopAsyncIteration:
            return


async def test_the_request_budget_holds_under_a_burst_and_every_event_arrives_once(
    google, clock, metrics
) -> None:
    """Five hours down: the head's catch-up (backfill windows read four at a time) and
    every re-scan are due at once. Never more than the budget in any minute of the
    clock; the head goes first, re-scans wait for the next poll, and still happen."""
    simulator, make_source = await google(
        {"start": T0 - HOUR, "rate_per_minute": 10.0, "max_lag": 60.0, "late_fraction": 0.05,
         "late_lag": 1800.0},
        initial_lookback=HOUR,
        page_size=20,
        max_requests_per_minute=30,
    )  # fmt: skip
    sent: list[tuple[float, str]] = []
    store = CommittedState()
    source = make_source()
    source.restore(None)
    delivered: list[str] = []

    async def poll() -> list[tuple[float, str]]:
        first = len(sent)
        batches = await drain(source)
        store.commit_batches(batches)
        delivered.extend(event_ids(batches))
        return sent[first:]

    record_requests(source, sent, clock)
    for _ in range(30):
        await poll()
        clock.advance(MINUTE)
    # Down for five hours, then restarted from the committed state.
    clock.advance(5 * HOUR)
    source = make_source()
    source.restore(store.state())
    record_requests(source, sent, clock)
    started = clock.now()
    burst = await poll()
    purposes = [purpose for _, purpose in burst]
    # Two hours older than the settle window read four windows at a time, three hours
    # one window after the other: ~150 pages of 20.
    assert purposes.count("backfill") >= 50
    assert purposes.count("backfill") + purposes.count("head") >= 140
    assert "rescan" not in purposes, "re-scans wait while the head needs the budget"
    assert source.reads.rescans_deferred >= len(STEPS)
    assert clock.now() - started >= 3 * MINUTE, "the budget made the catch-up wait"
    clock.advance(MINUTE)
    after = await poll()
    assert "rescan" in [purpose for _, purpose in after], "deferred re-scans are read next"
    for _ in range(4 * 60):
        await poll()
        clock.advance(MINUTE)
    assert max_per_minute([when for when, _ in sent]) <= 30
    by_purpose = Counter(purpose for _, purpose in sent)
    for purpose in ("head", "rescan", "backfill"):
        assert (
            sample(metrics, "forwarder_source_requests_total", source="gcal", purpose=purpose)
            == by_purpose[purpose]
        )
    # Every step caught up: re-scans are late under a tight budget, never lost.
    now = clock.now()
    for step, until in zip(STEPS, source.schedule.until, strict=True):
        assert until >= now - MINUTE - step * 1.05 - 1
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    last_poll = now - MINUTE
    due = caught_by(simulator, last_poll, STEPS)
    assert sum(due.values()) > 4000
    assert due - counts == Counter()
    assert counts - google_truth(simulator, last_poll, visible_before=last_poll) == Counter()


def legacy_checkpoint(simulator: Any, at: float, settle: float = 3 * HOUR) -> dict[str, Any]:
    """The checkpoint the previous release committed after a poll at ``at`` (its last
    window ended ``end_margin`` before): ``watermark``, ``final_before`` and one id per
    event delivered at or after ``min(watermark, final_before)``, as it computed them
    (by position in ``events[]``)."""
    watermark = at - 5.0
    final_before = at - settle
    seen = {}
    for record in simulator.truth(watermark):
        activity = record["activity"]
        when = parse_rfc3339(activity["id"]["time"])
        if record["visible_at_unix"] <= at and final_before <= when < watermark:
            for event_id in legacy_google_ids(activity):
                seen[event_id] = when
    return {
        "watermark": watermark,
        "watermark_time": format_rfc3339(watermark),
        "final_before": final_before,
        "seen": seen,
    }


async def test_a_checkpoint_of_the_previous_release_resumes_with_nothing_lost_or_repeated(
    google, clock
) -> None:
    simulator, make_source = await google(
        {"start": T0 - 5 * HOUR, "rate_per_minute": 20.0, "max_lag": 60.0,
         "late_fraction": 0.05, "late_lag": 2000.0},
        page_size=50,
    )  # fmt: skip
    # A malformed activity the old release dead-lettered (its digest is in `seen`).
    broken = simulator.add_activity(T0 - 1800, drop_fields=("events",))
    checkpoint = legacy_checkpoint(simulator, T0)
    checkpoint["seen"][dead_letter_key(broken)] = T0 - 1800
    delivered_before = Counter(
        event_id
        for record in simulator.truth(T0 - 5)
        if record["visible_at_unix"] <= T0
        for event_id in event_keys(record["activity"])
    )
    source = make_source()
    source.restore(checkpoint)
    assert source.head == pytest.approx(T0 - 5)
    assert source.final_before == pytest.approx(T0 - 3 * HOUR)
    delivered: list[str] = []
    dead = []
    for poll in range(4 * 60):
        batches = await drain(source)
        delivered += event_ids(batches)
        dead += [letter for batch in batches for letter in batch.dead_letters]
        if poll == 0:
            # The migration re-reads only what the old cursor cannot vouch for: well
            # under the three hours of the settle window four times.
            settle_window = sum(
                1
                for record in simulator.truth(T0)
                if parse_rfc3339(record["activity"]["id"]["time"]) >= T0 - 3 * HOUR
            )
            assert source.reads.activities_read < settle_window
        clock.advance(MINUTE)
    assert dead == [], "dead-lettered once, by the previous release"
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    assert not set(counts) & set(delivered_before), "delivered before the upgrade"
    last_poll = clock.now() - MINUTE
    truth = caught_by(simulator, last_poll, STEPS)
    assert truth - (counts + delivered_before) == Counter()
    # The old ids kept de-duplicating until they expired; the keys replaced them.
    assert not any(isinstance(key, str) and len(key) == 32 for key in source.seen)
    late = Counter(
        event_id
        for record in simulator.truth(T0 - 5)
        if record["visible_at_unix"] > T0
        for event_id in event_keys(record["activity"])
    )
    assert late and late - counts == Counter(), "reported after the upgrade: delivered"


async def test_freshness_budget_and_request_series_from_the_start(google, clock, metrics) -> None:
    _, make_source = await google({"start": T0 - HOUR, "rate_per_minute": 6.0})
    source = make_source()

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"source": "gcal", **labels})

    for purpose in ("head", "rescan", "backfill"):
        assert value("forwarder_source_requests_total", purpose=purpose) == 0
    for step in ("120", "600", "2400", "10800"):
        assert value("forwarder_source_late_events_by_step_total", step=step) == 0
    assert value("forwarder_source_rereads_total") == 0
    assert value("forwarder_source_newest_event_timestamp_seconds") == 0
    assert value("forwarder_source_request_budget_per_minute") == 120
    assert value("forwarder_source_request_budget_used_ratio") == 0
    assert value("forwarder_source_head_lag_seconds") == 0
    source.restore(None)
    assert value("forwarder_source_head_lag_seconds") == pytest.approx(3 * HOUR)
    delivered = [event for batch in await drain(source) for event in batch.events]
    newest = max(event.timestamp for event in delivered)
    assert value("forwarder_source_newest_event_timestamp_seconds") == newest
    assert newest > clock.now() - 5 - 60
    # The head has read up to end_margin before now: fresh, while the settle position
    # (the committed cursor) stays hours behind by design.
    assert value("forwarder_source_head_lag_seconds") == pytest.approx(5.0, abs=0.01)
    assert source.final_before < clock.now() - 2 * HOUR
    clock.advance(30)
    assert value("forwarder_source_head_lag_seconds") == pytest.approx(35.0, abs=0.01)
    used = sum(source.budget.requests.values())
    assert used >= 1
    assert value("forwarder_source_request_budget_used_ratio") == pytest.approx(used / 120)
    clock.advance(61)
    assert value("forwarder_source_request_budget_used_ratio") == 0
