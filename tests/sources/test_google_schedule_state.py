"""The pieces of the Google re-scan schedule on their own: the schedule's state, the
expiring keys and the request budget (no simulator needed)."""

from __future__ import annotations

import asyncio
import hashlib
import math

import pytest
from source_harness import HOUR, T0

from forwarder.clock import ManualClock
from forwarder.sources.budget import RequestBudget
from forwarder.sources.google.schedule import ScheduleState, Span
from forwarder.sources.seen import BUCKET_SECONDS, SeenKeys

STEPS = (120.0, 600.0, 2400.0, 10800.0)


def test_a_head_read_in_steady_state_moves_only_the_head() -> None:
    state = ScheduleState(STEPS, T0 - 65, (T0 - 180, T0 - 660, T0 - 2460, T0 - 10860), (None,) * 4)
    after = state.after_read(T0 - 65, T0 - 5, T0, head_read=True)
    assert after.head == T0 - 5
    assert after.until == state.until
    assert after.ahead == state.ahead


def test_a_re_scan_moves_its_step_to_the_end_it_read() -> None:
    state = ScheduleState(STEPS, T0 - 5, (T0 - 180, T0 - 660, T0 - 2460, T0 - 10860), (None,) * 4)
    assert state.rescan_window(0, T0, HOUR) == (T0 - 180, T0 - 120)
    after = state.after_read(T0 - 180, T0 - 120, T0, head_read=False)
    assert after.until == (T0 - 120, *state.until[1:])
    assert after.head == state.head
    # The last step waits until its slice is a twentieth of it wide (9 minutes).
    assert state.rescan_window(3, T0, HOUR) is None
    assert state.rescan_window(3, T0 + 480, HOUR) == (T0 - 10860, T0 + 480 - 10800)


def test_a_catch_up_read_at_an_age_beyond_a_step_needs_no_re_scan_of_it() -> None:
    state = ScheduleState.starting_at(STEPS, T0 - 6 * HOUR)
    for start in range(6):
        begin = T0 - (6 - start) * HOUR
        state = state.after_read(begin, begin + HOUR, T0, head_read=True)
    assert state.head == T0
    assert state.until == (T0 - 120, T0 - 600, T0 - 2400, T0 - 10800)
    assert all(stretch is None for stretch in state.ahead)


def test_a_stretch_the_head_read_late_enough_is_jumped_over_after_the_gap() -> None:
    # Down for five hours: the steps are behind the head, the head reads on.
    until = (T0 - 5 * HOUR - 120, T0 - 5 * HOUR - 600, T0 - 5 * HOUR - 2400, T0 - 8 * HOUR)
    state = ScheduleState(STEPS, T0 - 5 * HOUR, until, (None,) * 4)
    for hour in range(5, 0, -1):
        state = state.after_read(T0 - hour * HOUR, T0 - (hour - 1) * HOUR, T0, head_read=True)
    assert state.ahead[3] == Span(T0 - 5 * HOUR, T0 - 10800)
    assert state.until[3] == T0 - 8 * HOUR
    # The 3 h step reads the gap only, then jumps past what the head read at 3 h or more.
    assert state.rescan_window(3, T0, HOUR) == (T0 - 8 * HOUR, T0 - 7 * HOUR)
    state = state.after_read(T0 - 8 * HOUR, T0 - 7 * HOUR, T0, head_read=False)
    assert state.rescan_window(3, T0, HOUR) == (T0 - 7 * HOUR, T0 - 6 * HOUR)
    state = state.after_read(T0 - 7 * HOUR, T0 - 6 * HOUR, T0, head_read=False)
    assert state.rescan_window(3, T0, HOUR) == (T0 - 6 * HOUR, T0 - 5 * HOUR)
    state = state.after_read(T0 - 6 * HOUR, T0 - 5 * HOUR, T0, head_read=False)
    assert state.until[3] == T0 - 10800
    assert state.ahead[3] is None
    assert state.final_before == T0 - 10800


def test_a_read_covers_only_what_it_listed_at_the_step_s_age() -> None:
    """A read that went out earlier than planned (the API's clock moved back) covers
    only up to its own time minus the step."""
    state = ScheduleState(STEPS, T0 - 5, (T0 - 180,) + (T0 - 10860,) * 3, (None,) * 4)
    after = state.after_read(T0 - 180, T0 - 120, T0 - 30, head_read=False)
    assert after.until[0] == T0 - 150


def test_the_cursor_round_trips_and_follows_a_changed_schedule() -> None:
    state = ScheduleState(
        STEPS,
        T0 - 5,
        (T0 - 180, T0 - 660, T0 - 2460, T0 - 11000),
        (None, Span(T0 - 500, T0 - 400), None, None),
    )
    cursor = state.cursor()
    assert set(cursor["rescanned"]) == {"120", "600", "2400", "10800"}
    assert cursor["ahead"] == {"600": [T0 - 500, T0 - 400]}
    assert cursor["final_before"] == T0 - 11000
    assert ScheduleState.from_cursor(STEPS, cursor, legacy_margin=900) == state
    # 5 min takes the 10 min step's position (listed at 10 min is listed at 5); 4 h is
    # longer than any stored step: from the least position on.
    changed = ScheduleState.from_cursor((300.0, 10800.0, 14400.0), cursor, legacy_margin=900)
    assert changed.until == (T0 - 660, T0 - 11000, T0 - 11000)
    assert changed.head == T0 - 5


def test_a_cursor_of_the_previous_release_converts_without_skipping() -> None:
    legacy = {"watermark": T0 - 5, "final_before": T0 - 10800, "seen": {}}
    state = ScheduleState.from_cursor(STEPS, legacy, legacy_margin=900)
    assert state.head == T0 - 5
    assert state.until == (T0 - 1025, T0 - 1505, T0 - 3305, T0 - 10800)
    # A watermark behind final_before (a settled catch-up) re-reads nothing.
    settled = {"watermark": T0 - 9 * HOUR, "final_before": T0 - 9 * HOUR, "seen": {}}
    state = ScheduleState.from_cursor(STEPS, settled, legacy_margin=900)
    assert state.until == (T0 - 9 * HOUR,) * 4


@pytest.mark.parametrize(
    "cursor",
    [
        {"head": "soon", "rescanned": {}},
        {"head": T0, "rescanned": {"120": float("nan")}},
        {"head": T0, "rescanned": []},
        {"watermark": T0},
    ],
)
def test_a_cursor_of_another_shape_is_refused(cursor: dict) -> None:
    with pytest.raises((KeyError, TypeError, ValueError, AttributeError)):
        ScheduleState.from_cursor(STEPS, cursor, legacy_margin=900)


def test_seen_keys_expire_by_whole_buckets_never_early() -> None:
    a, b = b"a" * 16, b"b" * 16
    seen = SeenKeys([(a, T0 + 1), ("dl:x", T0 + 59)])
    seen.add(b, T0 + 61)
    seen.add(a, T0 + 1)  # known: not added twice
    assert seen.known(a, T0 + 1) and seen.known("dl:x", 0) and seen.known(b, T0 + 61)
    assert not seen.known(b"c" * 16, T0 + 1)
    assert len(seen) == 3
    # A digest's time is the last instant of its minute: never earlier than its own.
    last = math.nextafter
    assert dict(seen.items()) == {a: last(T0 + 60, 0), "dl:x": T0 + 59, b: last(T0 + 120, 0)}
    # T0 is a whole bucket: the first bucket ends at T0 + 60.
    assert T0 % BUCKET_SECONDS == 0
    assert seen.expire_before(T0 + 59.5) == 0, "the bucket holds a key at T0 + 59"
    assert seen.expire_before(T0 + 60) == 2
    assert set(seen) == {b}
    assert seen.expire_before(T0 + 120) == 1
    assert len(seen) == 0


def test_seen_digests_take_sixteen_bytes_and_stay_exact() -> None:
    """Many digests in one minute: sorted in once there are enough of them, still found,
    and never confused with one that was not added."""
    keys = [hashlib.blake2b(str(i).encode(), digest_size=16).digest() for i in range(3000)]
    seen = SeenKeys()
    for index, key in enumerate(keys[:2000]):
        seen.add(key, T0 + index % 60)
    assert len(seen) == 2000
    assert all(seen.known(key, T0 + index % 60) for index, key in enumerate(keys[:2000]))
    assert not any(seen.known(key, T0 + 1) for key in keys[2000:])
    # The same minute, another second: found; another minute: not.
    assert seen.known(keys[0], T0 + 30) and not seen.known(keys[0], T0 + 60)
    restored = SeenKeys(seen.items())
    restored.update(seen.items())  # twice: still one of each
    assert len(restored) == 2000
    assert all(restored.known(key, T0 + 5) for key in keys[:2000])


async def test_the_budget_never_lets_more_than_its_rate_through() -> None:
    clock = ManualClock(T0)
    counted: list[str] = []
    budget = RequestBudget(clock, 5, on_request=counted.append)
    sent: list[float] = []

    async def worker(purpose: str) -> None:
        for _ in range(6):
            await budget.acquire(purpose)
            sent.append(clock.now())
            await asyncio.sleep(0)

    assert budget.has_room(5) and not budget.has_room(6)
    await asyncio.gather(worker("head"), worker("backfill"), worker("rescan"))
    assert len(sent) == 18
    for when in sent:
        assert sum(1 for other in sent if when - 60 < other <= when) <= 5
    assert budget.requests == {"head": 6, "backfill": 6, "rescan": 6}
    assert sorted(counted) == sorted(["head", "backfill", "rescan"] * 6)
    assert budget.waits > 0
    assert budget.used_ratio() == pytest.approx(budget.used() / 5)
    clock.advance(60)
    assert budget.used() == 0 and budget.has_room(5)
