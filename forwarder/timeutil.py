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
    if digits == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    fraction = f"{moment.microsecond:06d}"[:digits]
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"
