"""RFC 3339 parsing and formatting shared by the sources, the schema and the simulators."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_rfc3339(value: str) -> float:
    """Parse an RFC 3339 timestamp (``Z`` or offset, any fraction) into Unix seconds.

    Raises ``ValueError`` on anything else, including a missing time zone.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return parsed.timestamp()


def format_rfc3339(timestamp: float, digits: int = 3) -> str:
    """Format Unix seconds as UTC RFC 3339 with ``digits`` fraction digits (0, 3 or 6) and ``Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    # Not strftime("%Y"): glibc writes year 1 as "1", not "0001".
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + "Z"
