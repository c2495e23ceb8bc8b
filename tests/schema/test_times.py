"""Time decoding: event times, Google's Rata Die seconds and Unix-second periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.times import (
    decode_calendar_seconds,
    decode_requested_period,
    event_time,
    format_unix_seconds,
)


@pytest.mark.parametrize("value", [63879175800, 63879177600, 63_000_000_000, 86400])
def test_calendar_seconds_count_from_rata_die_day_zero(value: int) -> None:
    # Day 0 of Rata Die is 0000-12-31; datetime starts at 0001-01-01 (day 1).
    expected = datetime(1, 1, 1, tzinfo=UTC) + timedelta(seconds=value - 86400)
    assert decode_calendar_seconds(value) == (
        f"{expected.year:04d}-{expected.month:02d}-{expected.day:02d}"
        f"T{expected.hour:02d}:{expected.minute:02d}:{expected.second:02d}Z"
    )


def test_calendar_seconds_reference_example() -> None:
    assert decode_calendar_seconds(63879175800) == "2025-04-01T07:30:00Z"
    # The 0001-01-01 offset (62135596800) would give 2025-04-02: one day late.
    assert datetime.fromtimestamp(63879175800 - 62135596800, UTC).day == 2


def test_calendar_seconds_out_of_range() -> None:
    assert decode_calendar_seconds(0) is None  # would be 0000-12-31
    assert decode_calendar_seconds(-5) is None
    assert decode_calendar_seconds(10**15) is None


def test_requested_period_is_unix_seconds() -> None:
    assert decode_requested_period(1743748267) == "2025-04-04T06:31:07Z"
    assert decode_requested_period(0) == "1970-01-01T00:00:00Z"
    assert decode_requested_period(2**62) is None


def test_format_keeps_four_digit_years() -> None:
    assert format_unix_seconds(-62135596800) == "0001-01-01T00:00:00Z"
    assert format_unix_seconds(-62135596801) is None
    assert format_unix_seconds(253402300799) == "9999-12-31T23:59:59Z"
    assert format_unix_seconds(253402300800) is None


@pytest.mark.parametrize(
    ("text", "timestamp"),
    [
        ("2025-04-01T07:03:12.345Z", "2025-04-01T07:03:12.345Z"),
        ("2025-04-01T09:03:12.345+02:00", "2025-04-01T07:03:12.345Z"),
        ("2026-03-20T10:11:12.123999Z", "2026-03-20T10:11:12.123Z"),
        ("2026-03-20T10:11:12Z", "2026-03-20T10:11:12.000Z"),
    ],
)
def test_event_time(text: str, timestamp: str) -> None:
    unix, formatted = event_time(text, "occurred_at")
    assert formatted == timestamp
    assert unix == pytest.approx(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing_field"),
        (1743490992, "invalid_type"),
        ("2025-04-01T07:03:12", "invalid_timestamp"),
        ("", "invalid_timestamp"),
        ("9999-12-31T23:59:59-01:00", "invalid_timestamp"),
    ],
)
def test_event_time_errors(value: object, reason: str) -> None:
    with pytest.raises(MalformedRecordError) as caught:
        event_time(value, "occurred_at")
    assert caught.value.reason == reason
    assert "occurred_at" in caught.value.detail
