"""Time decoding for the normalizers: event times and the odd encodings of Google parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from forwarder.schema.errors import (
    INVALID_TIMESTAMP,
    INVALID_TYPE,
    MISSING_FIELD,
    MalformedRecordError,
)
from forwarder.timeutil import parse_rfc3339

# Google Calendar's ``start_time`` / ``end_time`` parameters (``intValue``) are not Unix
# time: they count seconds on the proleptic Gregorian calendar from the Rata Die epoch
# (day 0 = 0000-12-31), e.g. 63879175800 = 2025-04-01T07:30:00Z. The best public evidence
# (a SIEM vendor's Calendar pipeline and its test data, where a meeting created at 07:03Z
# starts at 07:15Z the same day) subtracts 62135683200. The "obvious" offset from
# 0001-01-01, 62135596800, lands exactly one day late. Keep this the only place it lives.
CALENDAR_SECONDS_TO_UNIX_OFFSET = 62135683200

# ``requested_period_start`` / ``requested_period_end`` are plain Unix SECONDS (e.g.
# 1743748267). The same vendor decodes them as milliseconds and lands in January 1970.
REQUESTED_PERIOD_UNIT_SECONDS = 1

# What ``datetime`` can represent (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z); checking
# the range first is cheaper and clearer than catching its overflow errors.
_MIN_UNIX = -62135596800
_MAX_UNIX = 253402300799
_TIMESPECS = {0: "seconds", 3: "milliseconds", 6: "microseconds"}


def format_unix_seconds(unix: int | float, digits: int = 0) -> str | None:
    """RFC 3339 UTC with ``digits`` (0, 3 or 6) fraction digits; ``None`` if out of range.

    Fractions are truncated, as in :func:`forwarder.timeutil.format_rfc3339`; unlike it,
    years below 1000 keep their four digits (``strftime("%Y")`` drops the zero padding).
    """
    if not _MIN_UNIX <= unix <= _MAX_UNIX:
        return None
    try:
        moment = datetime.fromtimestamp(unix, UTC)
    except (OverflowError, ValueError, OSError):
        # Rounding to microseconds can still carry 9999-12-31T23:59:59.9999999 over.
        return None
    # isoformat ends with "+00:00" for UTC; RFC 3339 producers conventionally write "Z".
    return moment.isoformat(timespec=_TIMESPECS[digits])[:-6] + "Z"


def decode_calendar_seconds(value: int) -> str | None:
    """RFC 3339 for a Google ``start_time``/``end_time`` value, ``None`` when out of range."""
    return format_unix_seconds(value - CALENDAR_SECONDS_TO_UNIX_OFFSET)


def decode_requested_period(value: int) -> str | None:
    """RFC 3339 for a ``requested_period_*`` value (Unix seconds), ``None`` when out of range."""
    return format_unix_seconds(value * REQUESTED_PERIOD_UNIT_SECONDS)


def event_time(value: object, field: str) -> tuple[float, str]:
    """Parse a record's RFC 3339 event time into ``(unix seconds, @timestamp)``.

    ``@timestamp`` is UTC with milliseconds and ``Z``. Raises :class:`MalformedRecordError`
    (``missing_field``, ``invalid_type`` or ``invalid_timestamp``) naming ``field``.
    """
    if value is None:
        raise MalformedRecordError(MISSING_FIELD, f"{field} is missing")
    if not isinstance(value, str):
        raise MalformedRecordError(INVALID_TYPE, f"{field} is not a string")
    try:
        unix = parse_rfc3339(value)
    except ValueError as exc:
        raise MalformedRecordError(INVALID_TIMESTAMP, f"{field} is not RFC 3339: {exc}") from None
    timestamp = format_unix_seconds(unix, 3)
    if timestamp is None:
        # A local offset can push year 1 or 9999 outside what UTC can represent.
        raise MalformedRecordError(INVALID_TIMESTAMP, f"{field} is out of range")
    return unix, timestamp
