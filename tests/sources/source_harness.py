"""Constants and helpers of the source tests (a uniquely named module, importable from
test modules without clashing with other conftest.py files)."""

from __future__ import annotations

from typing import Any

T0 = 1_800_000_000.0
HOUR = 3600.0


async def drain(source: Any) -> list[Any]:
    """Run one polling cycle and return its batches."""
    return [batch async for batch in source.poll()]
