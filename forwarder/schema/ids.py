"""Deterministic event ids: the same audit event gets the same id on every run and machine.

Sinks and SIEMs de-duplicate on ``event.id``, and the pollers re-read overlapping windows
(Google's ``startTime`` is inclusive, late events are re-scanned), so an id must be a pure
function of what the API itself uses to identify the event, never of when or where it was
read. The canonical string is a JSON array (unambiguous whatever characters the parts
hold) that starts with the provider, so the two providers can never collide; it is hashed
with BLAKE2b to 16 bytes (128 bits: collisions are not a practical concern) and rendered
as 32 hex digits.
"""

from __future__ import annotations

from hashlib import blake2b

import orjson

_DIGEST_SIZE = 16


def _digest(parts: list[str | int]) -> str:
    return blake2b(orjson.dumps(parts), digest_size=_DIGEST_SIZE).hexdigest()


def google_event_key(time: str, unique_qualifier: str, index: int) -> str:
    """The id of the ``index``-th event of the Google activity ``(id.time, id.uniqueQualifier)``.

    ``id.time`` and ``id.uniqueQualifier`` identify an activity (Google's own de-duplication
    key); one activity can hold several events, so the event's position in ``events[]``
    completes the identity. ``time`` is used verbatim: the API renders it identically on
    every read.
    """
    return _digest(["google_calendar", time, unique_qualifier, index])


def calendly_event_key(uri: str) -> str:
    """The id of the Calendly Activity Log entry ``uri`` (the entry's unique, stable URI)."""
    return _digest(["calendly", uri])
