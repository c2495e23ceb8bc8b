"""What a checkpoint store holds once it has committed a source's batches, in memory.

Batches carry a change (:class:`~forwarder.checkpoint.base.Checkpoint`), not the whole
state, so a test that restarts a source "from the checkpoint of batch N" needs the
committed state of batches 1..N: the last cursor, every key added, minus the expired
ones. This is what any store returns from ``load`` (``{**cursor, "seen": {...}}``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from forwarder.checkpoint.base import Checkpoint, SeenKey


class CommittedState:
    """One source's committed state, built by committing checkpoints in order."""

    def __init__(self) -> None:
        self.cursor: dict[str, Any] | None = None
        self.seen: dict[SeenKey, float] = {}
        self.commits = 0
        self.keys_written = 0
        """Keys added over every commit (what a store writes, for the tests of cost)."""

    def commit(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is None:
            return
        self.commits += 1
        self.cursor = dict(checkpoint.cursor)
        self.seen.update(checkpoint.seen_added)
        self.keys_written += len(checkpoint.seen_added)
        expiry = checkpoint.seen_expire_before
        if expiry is not None:
            self.seen = {key: when for key, when in self.seen.items() if when >= expiry}

    def commit_batches(self, batches: Iterable[Any]) -> CommittedState:
        for batch in batches:
            self.commit(batch.checkpoint)
        return self

    def state(self) -> dict[str, Any] | None:
        """What ``Source.restore`` takes (``None``: nothing committed yet)."""
        if self.cursor is None:
            return None
        return {**self.cursor, "seen": dict(self.seen)}


def committed(batches: Iterable[Any]) -> dict[str, Any] | None:
    """The state a store holds after committing ``batches`` from nothing."""
    return CommittedState().commit_batches(batches).state()
