"""Drives one source: polls on its interval, fans batches out, backs off on errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from forwarder.backoff import Backoff
from forwarder.clock import Clock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Batch
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery
from forwarder.sources.base import (
    CredentialsError,
    DeadLetterWriteError,
    Source,
    SourceError,
    TransientSourceError,
)

# Credentials need an operator: retry slowly rather than hammer the API.
CREDENTIALS_RETRY_SECONDS = 60.0


class SourceRunner:
    """Polls a source and hands every batch to every sink queue, in order.

    ``await queue.put`` blocks while a sink's queue is full, so a slow sink stops the
    poller between two pages (backpressure). Dead letters found in a page are written
    before the batch is dispatched, so the cursor can never move past an undelivered
    record. A failed poll (the source raised, or a batch could not be handed on) is logged
    when the failure starts and when it ends, counted on every attempt, and retried with
    backoff. The poll is closed at once: a source applies a batch's state change only when
    the runner asks for the next batch (see the Source protocol), so the change of a batch
    that was not handed on is never applied, and the retry starts from the last batch
    handed on.
    """

    def __init__(
        self,
        source: Source,
        committer: OrderedCommitter,
        queues: Sequence[EventBoundedQueue[Delivery]],
        dead_letters: FileDeadLetterQueue,
        metrics: Metrics,
        clock: Clock,
        backoff: Backoff,
    ) -> None:
        self.source = source
        self.committer = committer
        self._queues = queues
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff
        self._log = get_logger("forwarder.source", source=source.id)
        self.failing_since: float | None = None
        self.last_error: str | None = None
        self.last_error_type: str | None = None
        self.last_success: float | None = None
        # A batch dispatched or a poll completed: a long catch-up poll still progresses.
        self.last_progress: float | None = None
        self.polls = 0
        self.events_received = 0
        """Events handed on since the start (the progress line)."""
        metrics.start_source(source.id)
        # The start counts as the last progress until there is some: a source refused
        # from its first poll (a wrong token) must age into ForwarderSourceFailing, which
        # cannot fire on a series that does not exist.
        metrics.last_poll.labels(source.id).set(clock.now())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = await self.poll_once()
            if stop.is_set():
                break
            sleeper = asyncio.ensure_future(self._clock.sleep(delay))
            stopper = asyncio.ensure_future(stop.wait())
            _, waiting = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in waiting:
                task.cancel()

    async def poll_once(self) -> float:
        """Run one polling cycle; returns the delay before the next one."""
        started = self._clock.now()
        source_id = self.source.id
        try:
            try:
                batches = self.source.poll()
                try:
                    async for batch in batches:
                        await self.dispatch(batch)
                finally:
                    # Closed now, not when garbage collected: the generator stops at the
                    # yield of a batch that was not handed on (so that batch's change is
                    # never applied) and its window reads stop.
                    aclose = getattr(batches, "aclose", None)
                    if aclose is not None:
                        await aclose()
            except SourceError:
                raise
            except Exception as error:
                # A bug must not stop the daemon: the source retries from its last batch.
                self._log.exception("source_internal_error")
                raise SourceError(f"internal error: {type(error).__name__}: {error}") from error
        except SourceError as error:
            self._metrics.failed_polls.labels(source_id, error.error_type).inc()
            self.last_error = f"{error.error_type}: {error}"
            self.last_error_type = error.error_type
            if self.failing_since is None:
                self.failing_since = started
                # Refused credentials wait for a person (a new token, a delegation grant):
                # an error; anything else is retried and usually recovers: a warning.
                log = self._log.error if isinstance(error, CredentialsError) else self._log.warning
                log("source_failing", error_type=error.error_type, error=str(error))
            else:
                self._log.debug("source_still_failing", error=str(error))
            if isinstance(error, CredentialsError):
                return CREDENTIALS_RETRY_SECONDS
            retry_after = error.retry_after if isinstance(error, TransientSourceError) else None
            return self._backoff.next_delay(retry_after)
        finished = self._clock.now()
        self.polls += 1
        self.last_success = self.last_progress = finished
        self._metrics.poll_duration.labels(source_id).observe(max(0.0, finished - started))
        self._metrics.last_poll.labels(source_id).set(finished)
        if self.failing_since is not None:
            self._log.info(
                "source_recovered", failed_for_seconds=round(finished - self.failing_since, 3)
            )
            self.failing_since = None
            self.last_error = None
            self.last_error_type = None
        self._backoff.reset()
        return self.source.poll_interval

    async def dispatch(self, batch: Batch) -> None:
        self.last_progress = self._clock.now()
        # A catch-up poll can take longer than the alert's 15 minutes: each page handed
        # on is progress too.
        self._metrics.last_poll.labels(self.source.id).set(self.last_progress)
        if batch.dead_letters:
            try:
                await self._dead_letters.write(batch.dead_letters)
            except OSError as error:
                # Not handed on, so the position cannot pass these records: the poll
                # fails (the source never applies this batch's change) and reads this
                # page again after a backoff.
                raise DeadLetterWriteError(f"dead-letter write failed: {error}") from error
        events = batch.events
        if events:
            self.events_received += len(events)
            self._metrics.events_received.labels(self.source.id).inc(len(events))
        if not events:
            ticket = self.committer.issue(batch.checkpoint, 1, batch.cursor_time)
            await self.committer.acknowledge(ticket)
            return
        ticket = self.committer.issue(batch.checkpoint, len(self._queues), batch.cursor_time)
        delivery = Delivery(self.source.id, events, ticket, self.committer)
        try:
            for queue in self._queues:
                await queue.put(delivery, len(events))
        except asyncio.CancelledError:
            # Shutdown while some sinks have the batch and others not: it must not commit.
            self.committer.abandon_from(ticket)
            raise
