"""Pending versus committed cursors: a source's checkpoint moves only in source order,
and only over batches that every sink has acknowledged."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from forwarder.checkpoint.base import Checkpoint, CheckpointStore
from forwarder.clock import Clock
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics


@dataclass(slots=True, eq=False)
class Ticket:
    """One batch in flight: how many sinks still owe an acknowledgement, and the
    checkpoint that becomes committable once it and every earlier ticket are done."""

    sequence: int
    remaining: int
    checkpoint: Checkpoint | None
    cursor_time: float | None = None
    abandoned: bool = field(default=False)


class OrderedCommitter:
    """Commits a source's checkpoints in source order as acknowledgements arrive.

    Acknowledgements may arrive out of order (sinks run independently); a checkpoint is
    committed only when its ticket and all tickets before it are complete, and the commit
    is durable before :meth:`acknowledge` returns, which bounds the events re-sent after a
    crash to those not yet acknowledged.

    Each checkpoint is a change (cursor, keys added, expiry): the checkpoints of the
    consecutive tickets an acknowledgement completes are merged
    (:meth:`Checkpoint.followed_by`) and committed in one write. A write that fails keeps
    the merged checkpoint pending, later ones merge into it, and it is retried on the next
    acknowledgement and at shutdown (:meth:`flush`): no batch's keys are ever dropped.
    """

    def __init__(
        self, source_id: str, store: CheckpointStore, metrics: Metrics, clock: Clock
    ) -> None:
        self.source_id = source_id
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._pending: deque[Ticket] = deque()
        self._sequence = 0
        self._lock = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self.committed: Checkpoint | None = None
        """The last checkpoint written (merged: every change since the write before)."""
        # A checkpoint whose write failed (disk full, read-only volume): retried, with the
        # later ones merged into it, on the next acknowledgement and at shutdown; the
        # cursor stays where it durably is.
        self._unwritten: tuple[Checkpoint, float | None] | None = None
        self.commit_error: str | None = None
        self._log = get_logger("forwarder.checkpoint", source=source_id)
        # Nothing committed yet counts from the start: a pipeline stuck since the start
        # must age into ForwarderCheckpointStale like one stuck later.
        metrics.last_commit.labels(source_id).set(clock.now())

    def issue(
        self,
        checkpoint: Checkpoint | None,
        acknowledgements: int,
        cursor_time: float | None = None,
    ) -> Ticket:
        """Register a batch that ``acknowledgements`` sinks must confirm."""
        self._sequence += 1
        ticket = Ticket(self._sequence, acknowledgements, checkpoint, cursor_time)
        self._pending.append(ticket)
        self._idle.clear()
        self._metrics.pending_batches.labels(self.source_id).set(len(self._pending))
        return ticket

    async def acknowledge(self, ticket: Ticket) -> None:
        """One sink is done with the ticket's batch (delivered or dead-lettered)."""
        if ticket.abandoned:
            return
        ticket.remaining -= 1
        if ticket.remaining <= 0:
            await self._advance()

    def abandon_from(self, ticket: Ticket) -> None:
        """Forget ``ticket`` and every later one: their batch was only partly dispatched
        (shutdown), so nothing at or after it may be committed in this run."""
        while self._pending and self._pending[-1].sequence >= ticket.sequence:
            self._pending.pop().abandoned = True
        ticket.abandoned = True
        self._update_idle()

    async def _advance(self) -> None:
        async with self._lock:
            merged, cursor_time = self._unwritten or (None, None)
            while self._pending and self._pending[0].remaining <= 0:
                done = self._pending.popleft()
                if done.checkpoint is not None:
                    merged = (
                        done.checkpoint if merged is None else merged.followed_by(done.checkpoint)
                    )
                    if done.cursor_time is not None:
                        cursor_time = done.cursor_time
            try:
                if merged is not None:
                    await self._write(merged, cursor_time)
            finally:
                self._update_idle()

    async def _write(self, checkpoint: Checkpoint, cursor_time: float | None) -> None:
        try:
            # Shielded: a shutdown must not leave the new checkpoint half-recorded.
            await asyncio.shield(self._store.commit(self.source_id, checkpoint))
        except OSError as error:
            self._unwritten = (checkpoint, cursor_time)
            if self.commit_error is None:
                self._log.error("checkpoint_write_failed", error=str(error))
            self.commit_error = str(error)
            self._metrics.checkpoint_errors.labels(self.source_id).inc()
            return
        if self.commit_error is not None:
            self._log.info("checkpoint_write_recovered")
        self._unwritten = None
        self.commit_error = None
        self.committed = checkpoint
        self._metrics.last_commit.labels(self.source_id).set(self._clock.now())
        if cursor_time is not None:
            self._metrics.set_cursor_time(self.source_id, cursor_time)

    async def flush(self) -> bool:
        """Write a checkpoint whose earlier write failed; True when nothing is left."""
        async with self._lock:
            if self._unwritten is not None:
                await self._write(*self._unwritten)
            return self._unwritten is None

    def _update_idle(self) -> None:
        self._metrics.pending_batches.labels(self.source_id).set(len(self._pending))
        if not self._pending:
            self._idle.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def wait_idle(self) -> None:
        """Until every issued ticket has been acknowledged and committed."""
        await self._idle.wait()
