"""Constants and helpers of the source tests (a uniquely named module, importable from
test modules without clashing with other conftest.py files)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from forwarder.schema.ids import calendly_event_key, google_activity_event_keys
from forwarder.sources.base import SourceError

T0 = 1_800_000_000.0
HOUR = 3600.0


async def drain(source: Any) -> list[Any]:
    """Run one polling cycle and return its batches."""
    return [batch async for batch in source.poll()]


def event_ids(batches: list[Any]) -> list[str]:
    """The event ids of ``batches``, in order."""
    return [event.id for batch in batches for event in batch.events]


def batch_events(batches: list[Any]) -> list[Any]:
    """The events of ``batches``, in order."""
    return [event for batch in batches for event in batch.events]


async def poll_until_done(source: Any, attempts: int = 10) -> list[str]:
    """Poll as the pipeline does: a failed cycle is retried from the last yielded batch.
    Returns the ids of every event delivered."""
    delivered: list[str] = []
    for _ in range(attempts):
        try:
            async for batch in source.poll():
                delivered += [event.id for event in batch.events]
            return delivered
        except SourceError:
            continue
    raise AssertionError("the source never recovered")


def sample(metrics: Any, name: str, **labels: str) -> float:
    """The value of ``name`` with ``labels`` in ``metrics`` (0 when not yet exported)."""
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def calendly_truth_ids(simulator: Any) -> list[str]:
    """Ids of the Calendly simulator's well-formed entries, oldest first (a malformed one,
    injected with ``drop_fields``, lacks its namespace; every generated entry has one)."""
    return [calendly_event_key(entry["uri"]) for entry in simulator.truth() if "namespace" in entry]


def calendly_truth(simulator: Any) -> Counter[str]:
    """:func:`calendly_truth_ids`, counted."""
    return Counter(calendly_truth_ids(simulator))


def google_truth(
    simulator: Any, until: float, *, visible_before: float | None = None
) -> Counter[str]:
    """Ids of the events of the Google simulator's activities up to ``until`` (an activity
    malformed without ``events`` has none); with ``visible_before``, only the activities
    the API shows by then."""
    ids: Counter[str] = Counter()
    for record in simulator.truth(until):
        if visible_before is not None and record["visible_at_unix"] > visible_before:
            continue
        activity = record["activity"]
        if activity.get("events"):
            ids.update(google_activity_event_keys(activity))
    return ids
