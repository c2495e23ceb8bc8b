"""Constants and helpers of the source tests (a uniquely named module, importable from
test modules without clashing with other conftest.py files)."""

from __future__ import annotations

from typing import Any

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
