"""Time decoding for the normalizers: event times and the odd encodings of Google parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime

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

# The hot path formats and parses times without datetime objects, through two caches of
# minutes. Both are bounded by emptying them when full: records arrive roughly in time
# order, so a cleared cache refills with the few minutes that matter next.
_CACHE_SIZE = 4096
_DAY_MINUTES = 1440
# ``date.fromordinal`` counts 0001-01-01 as day 1; Unix day 0 is 1970-01-01.
_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_SECOND_SUFFIXES = tuple(f":{second:02d}Z" for second in range(60))
_MINUTE_TEXTS: dict[int, str] = {}
"""Unix minute number -> ``YYYY-MM-DDTHH:MM``."""


def _minute_text(minute: int) -> str:
    text = _MINUTE_TEXTS.get(minute)
    if text is None:
        if len(_MINUTE_TEXTS) >= _CACHE_SIZE:
            _MINUTE_TEXTS.clear()
        day, minute_of_day = divmod(minute, _DAY_MINUTES)
        hour, minute_of_hour = divmod(minute_of_day, 60)
        # date.isoformat pads years below 1000 to four digits.
        day_text = date.fromordinal(day + _UNIX_EPOCH_ORDINAL).isoformat()
        text = _MINUTE_TEXTS[minute] = f"{day_text}T{hour:02d}:{minute_of_hour:02d}"
    return text


def format_unix_seconds(unix: int | float, digits: int = 0) -> str | None:
    """RFC 3339 UTC with ``digits`` (0, 3 or 6) fraction digits; ``None`` if out of range.

    Fractions are truncated, as in :func:`forwarder.timeutil.format_rfc3339`; unlike it,
    years below 1000 keep their four digits (``strftime("%Y")`` drops the zero padding).
    """
    if not _MIN_UNIX <= unix <= _MAX_UNIX:
        return None
    if type(unix) is int and not digits:
        # Whole seconds (Google's start_time/end_time): integer arithmetic is exact.
        minute, second = divmod(unix, 60)
        return _minute_text(minute) + _SECOND_SUFFIXES[second]
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


# Fast path of event_time: the layout both APIs send, ``YYYY-MM-DDTHH:MM:SS`` then
# ``Z``, ``.fffZ`` (Google) or ``.ffffffZ`` (Calendly), by its length.
_FRACTION_SCALE = {20: 0, 24: 1000, 27: 1}
_SECOND_TEXTS = {f":{second:02d}": second for second in range(60)}
# Minutes whose Unix time is below 2**32 - 60: there a float holds every microsecond to
# better than half a microsecond, so the slow path (through a float) could not round a
# time any differently from the fast one, which copies the digits.
_FAST_MAX = 2**32 - 60
_MINUTES: dict[str, int] = {}
"""``YYYY-MM-DDTHH:MM`` (as the slow path itself writes it) -> its Unix seconds."""


def event_time(value: object, field: str) -> tuple[float, str]:
    """Parse a record's RFC 3339 event time into ``(unix seconds, @timestamp)``.

    ``@timestamp`` is UTC with milliseconds and ``Z``. Raises :class:`MalformedRecordError`
    (``missing_field``, ``invalid_type`` or ``invalid_timestamp``) naming ``field``.
    """
    # Fast path, for a UTC time in a minute already parsed: the seconds and fraction are
    # checked and the time computed in integers, the way datetime.timestamp() does it.
    if type(value) is str:
        scale = _FRACTION_SCALE.get(len(value))
        if scale is not None and value[-1] == "Z":
            minute = _MINUTES.get(value[:16])
            second = _SECOND_TEXTS.get(value[16:19])
            if minute is not None and second is not None:
                if not scale:
                    return float(minute + second), f"{value[:19]}.000Z"
                fraction = value[20:-1]
                if value[19] == "." and fraction.isdigit() and fraction.isascii():
                    micros = (minute + second) * 1_000_000 + int(fraction) * scale
                    return micros / 1_000_000, f"{value[:23]}Z"
    unix, timestamp = _event_time(value, field)
    if 0 <= unix < _FAST_MAX:
        _remember_minute(unix, timestamp)
    return unix, timestamp


def _remember_minute(unix: float, timestamp: str) -> None:
    """Let the fast path take further times in the minute of one parsed by the slow path.

    Keyed by the minute as the slow path formats it, so a text only takes the fast path
    when its first 16 characters are exactly what the slow path would have written.
    """
    if len(_MINUTES) >= _CACHE_SIZE:
        _MINUTES.clear()
    whole = int(unix)
    _MINUTES[timestamp[:16]] = whole - whole % 60


def _event_time(value: object, field: str) -> tuple[float, str]:
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
