"""Deterministic event ids: the same audit event gets the same id on every run and machine.

Sinks and SIEMs de-duplicate on ``event.id``, and the pollers re-read overlapping windows
(Google's ``startTime`` is inclusive, late events are re-scanned), so an id must be a pure
function of what identifies the event itself, never of when or where it was read, nor of
how a collector shaped the record that carried it. The canonical string is a JSON array
(unambiguous whatever characters the parts hold) that starts with the provider, so the
two providers can never collide; it is hashed with BLAKE2b to 16 bytes (128 bits:
collisions are not a practical concern) and rendered as 32 hex digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from hashlib import blake2b
from typing import Any

import orjson

_DIGEST_SIZE = 16


def _digest(parts: list[str | int | None]) -> str:
    return blake2b(orjson.dumps(parts), digest_size=_DIGEST_SIZE).hexdigest()


def google_event_key(
    customer_id: str | None, time: str, unique_qualifier: str, name: str, occurrence: int = 0
) -> str:
    """The id of a Google Calendar audit event: the ``occurrence``-th event named ``name``
    (0 for the first) of the activity ``(customerId, id.time, id.uniqueQualifier)``.

    Why these parts:

    - ``id.time`` and ``id.uniqueQualifier`` are Google's own key of an *activity*
      (``time`` verbatim: the API renders it identically on every read);
      ``id.customerId`` scopes that key to one Workspace customer, so two domains
      forwarded into one SIEM cannot collide (``None`` when the record has none).
    - An activity can hold several events; the event's *name* tells them apart. Its
      position in ``events[]`` (the id of releases before, see
      :func:`legacy_google_event_key`) did not survive re-shaping: collectors and
      archives (Elastic's among them) split an activity into one record per event,
      where every event sits at position 0, so siblings collided, were dropped as
      duplicates and compacted away by Kafka. The name is in every shape.
    - ``occurrence`` counts earlier events of the same name in the same activity, and
      only matters when one activity holds two events of one name. A record holding one
      event (the split shape) cannot know it and uses 0: two same-named events of one
      activity can be told apart only when they arrive together, in the API's array.

    The array has six parts, the legacy one four: an old id never equals a new one.
    """
    return _digest(["google_calendar", customer_id, time, unique_qualifier, name, occurrence])


def google_event_keys(
    customer_id: str | None, time: str, unique_qualifier: str, names: Iterable[str]
) -> list[str]:
    """The ids of an activity's events, named ``names`` in ``events[]`` order."""
    seen: dict[str, int] = {}
    keys: list[str] = []
    for name in names:
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        keys.append(google_event_key(customer_id, time, unique_qualifier, name, occurrence))
    return keys


def google_activity_event_keys(activity: Mapping[str, Any]) -> list[str]:
    """The ids :func:`~forwarder.schema.google_calendar.normalize_activity` gives the
    events of a well-formed raw activity (``events`` a list, or one event as an object),
    without building any document: for tools and tests that check what was delivered.
    """
    ident = activity["id"]
    customer_id = ident.get("customerId")
    events = activity["events"]
    if not isinstance(events, list):
        events = [events]
    return google_event_keys(
        customer_id if isinstance(customer_id, str) else None,
        ident["time"],
        str(ident["uniqueQualifier"]),
        [event["name"] for event in events],
    )


def legacy_google_event_key(time: str, unique_qualifier: str, index: int) -> str:
    """The id releases before this one gave the ``index``-th event of ``events[]``.

    Kept because their checkpoints hold these ids in ``seen``: the Google source matches
    them (until they expire, one settle window after the upgrade) so that an event the
    old release delivered is not delivered again.
    """
    return _digest(["google_calendar", time, unique_qualifier, index])


def calendly_event_key(uri: str) -> str:
    """The id of the Calendly Activity Log entry ``uri`` (the entry's unique, stable URI)."""
    return _digest(["calendly", uri])
