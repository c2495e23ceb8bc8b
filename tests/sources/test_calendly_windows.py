"""The Calendly backfill window plan: contiguous exact bounds, widths sized by density."""

from __future__ import annotations

from itertools import islice, pairwise

from forwarder.sources.calendly_windows import (
    MAX_WIDTH,
    MIN_WIDTH,
    TimeWindow,
    WindowPlan,
    format_micros,
    to_micros,
)

HOUR_US = 3600 * 1_000_000
DAY_US = 24 * HOUR_US


def _entries(start_us: int, gap_us: int, count: int) -> list[dict[str, str]]:
    return [{"occurred_at": format_micros(start_us + i * gap_us)} for i in range(count)]


def _assert_contiguous(windows: list[TimeWindow], start_us: int, tail_us: int) -> None:
    assert windows[0].start_us == start_us
    for before, after in pairwise(windows):
        assert before.end_us is not None
        assert after.start_us == before.end_us + 1, "a gap or an overlap"
    assert windows[-1] == TimeWindow(tail_us, None)


def test_windows_tile_the_range_exactly_then_one_open_window() -> None:
    start, tail = to_micros(1_700_000_000.123456), to_micros(1_700_000_000.123456) + 10 * DAY_US
    plan = WindowPlan(start, tail, DAY_US, page_size=100)
    assert not plan.single
    windows = list(plan)
    assert len(windows) == 11
    _assert_contiguous(windows, start, tail)
    assert plan.widths == [DAY_US] * 10


def test_last_closed_window_is_cut_at_the_tail() -> None:
    plan = WindowPlan(0, DAY_US + HOUR_US, DAY_US, page_size=100)
    windows = list(plan)
    assert plan.widths == [DAY_US, HOUR_US]
    _assert_contiguous(windows, 0, DAY_US + HOUR_US)


def test_less_than_one_window_behind_is_a_single_read() -> None:
    plan = WindowPlan(0, DAY_US - 1, DAY_US, page_size=100)
    assert plan.single
    assert list(plan) == [TimeWindow(0, None)]


def test_dense_log_shrinks_windows_towards_the_page_buffer() -> None:
    plan = WindowPlan(0, 1000 * DAY_US, DAY_US, page_size=100, pages_per_window=2)
    windows = iter(plan)
    for _ in range(40):
        window = next(windows)
        # Entries a minute apart: a full page spans 99 minutes, and there is more.
        plan.observe(window, _entries(window.start_us, 60_000_000, 100), more=True)
    # The first step is capped at 4x; later ones are smoothed, so the widths come down
    # steadily to 0.9 x 2 pages (about 178 minutes) rather than in one jump.
    assert plan.widths[:2] == [DAY_US, DAY_US // 4]
    assert plan.widths[1:] == sorted(plan.widths[1:], reverse=True)
    assert abs(plan.width_us - 0.9 * 2 * 99 * 0.6e8) < 0.6e8


def test_one_odd_window_does_not_swing_the_next_ones() -> None:
    plan = WindowPlan(0, 1000 * DAY_US, HOUR_US, page_size=60)
    windows = iter(plan)
    for _ in range(30):  # a steady minute-by-minute log: windows settle at ~54 minutes
        window = next(windows)
        plan.observe(window, _entries(window.start_us, 60_000_000, 60), more=True)
    settled = plan.width_us
    window = next(windows)
    plan.observe(window, _entries(window.start_us, 6_000_000, 60), more=True)  # 10x busier
    assert settled / 2 < plan.width_us < settled


def test_sparse_log_grows_windows_up_to_the_maximum() -> None:
    plan = WindowPlan(0, 10_000 * DAY_US, DAY_US, page_size=1000)
    for window in islice(plan, 12):
        plan.observe(window, _entries(window.start_us, HOUR_US, 3), more=False)
    assert plan.widths[1] == 4 * DAY_US
    assert plan.width_us == MAX_WIDTH


def test_widths_never_go_below_the_minimum() -> None:
    plan = WindowPlan(0, DAY_US, MIN_WIDTH, page_size=10)
    window = next(iter(plan))
    plan.observe(window, _entries(window.start_us, 1, 10), more=True)
    assert plan.width_us == MIN_WIDTH


def test_malformed_entries_teach_nothing() -> None:
    plan = WindowPlan(0, 10 * DAY_US, DAY_US, page_size=2)
    window = next(iter(plan))
    plan.observe(window, [{"occurred_at": "yesterday"}, {"uri": "x"}], more=True)
    assert plan.width_us == DAY_US


def test_bounds_are_formatted_exactly() -> None:
    assert format_micros(to_micros(1_800_000_000.000001)) == "2027-01-15T08:00:00.000001Z"
    assert format_micros(to_micros(1_800_000_000) - 1) == "2027-01-15T07:59:59.999999Z"
