"""What a source commits after a batch, and the CheckpointStore protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

SeenKey = str | bytes
"""A record a source has delivered: an event id (str) or a compact digest (bytes)."""


class CheckpointCorruptError(Exception):
    """A stored checkpoint cannot be read. Never silently reset: an operator decides."""


@dataclass(slots=True)
class Checkpoint:
    """A source's position once a batch is delivered: what changed, not the whole state.

    - ``cursor``: the small part (times, watermarks), replacing the stored one whole;
    - ``seen_added``: the keys of the records the batch delivered (key -> the time that
      decides when it expires), added to the stored ones;
    - ``seen_expire_before``: stored keys whose time is before this can no longer come
      back from the API and are dropped (``None``: none expire).

    A store applies one in a single transaction, so the cost of a commit follows what the
    batch changed, never the size of everything seen. Consecutive checkpoints of one
    source merge (:meth:`followed_by`) into one that has the same effect.
    """

    cursor: dict[str, Any]
    seen_added: dict[SeenKey, float] = field(default_factory=dict)
    seen_expire_before: float | None = None

    def followed_by(self, later: Checkpoint) -> Checkpoint:
        """One checkpoint with the effect of committing ``self`` and then ``later``.

        Expiry only moves forward and drops every key before it, whichever batch added
        it, so applying the union of the keys and then the later expiry is the same."""
        added = dict(self.seen_added)
        added.update(later.seen_added)
        expiries = [e for e in (self.seen_expire_before, later.seen_expire_before) if e is not None]
        return Checkpoint(later.cursor, added, max(expiries) if expiries else None)

    def state(self) -> dict[str, Any]:
        """What ``Source.restore`` takes: the cursor plus ``seen`` (this batch's keys
        only; a store returns every live key). For tests and single-batch stores."""
        seen = {key: when for key, when in self.seen_added.items()}
        return {**self.cursor, "seen": seen}


class CheckpointStore(Protocol):
    """Stores each source's cursor and seen keys; ``commit`` is durable when it returns.

    ``load`` returns ``{**cursor, "seen": {key: time}}`` (every live key), the shape
    ``Source.restore`` takes, or ``None`` when the source has never committed.
    """

    async def load(self, source_id: str) -> dict[str, Any] | None: ...

    async def commit(self, source_id: str, checkpoint: Checkpoint) -> None: ...

    async def reset(self, source_id: str) -> bool: ...

    async def list_sources(self) -> list[str]: ...
