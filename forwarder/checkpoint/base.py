"""The CheckpointStore protocol."""

from __future__ import annotations

from typing import Any, Protocol


class CheckpointCorruptError(Exception):
    """A stored checkpoint cannot be read. Never silently reset: an operator decides."""


class CheckpointStore(Protocol):
    """Stores one JSON-able state per source id; ``commit`` is durable when it returns."""

    async def load(self, source_id: str) -> dict[str, Any] | None: ...

    async def commit(self, source_id: str, state: dict[str, Any]) -> None: ...

    async def reset(self, source_id: str) -> bool: ...

    async def list_sources(self) -> list[str]: ...
