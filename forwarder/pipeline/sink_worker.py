"""Drives one sink: takes batches from its queue, retries until delivered, acknowledges."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from forwarder.backoff import Backoff
from forwarder.clock import Clock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import DeadLetter, Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter, Ticket
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.sinks.base import SendResult, Sink

# forwarder_sink_errors_total{error_type}: a sink that gives no type, and a sink that raised
# (a bug: the batch is retried all the same).
DEFAULT_ERROR_TYPE = "send_failed"
EXCEPTION_ERROR_TYPE = "exception"
# The receiver refused our credentials (HTTP sink): nothing recovers without a person.
CREDENTIAL_ERROR_TYPES = frozenset({"http_401", "http_403"})


@dataclass(slots=True)
class Delivery:
    """A batch on its way to one sink, and whom to tell when it is done."""

    source: str
    events: list[Event]
    ticket: Ticket
    committer: OrderedCommitter


class SinkWorker:
    """Sends each queued batch until the sink takes it; never skips a batch.

    A retriable failure backs off (full jitter, honouring ``retry_after``) and sends the
    same batch again, for as long as it takes: the cursor simply waits. Events the sink
    refuses for good are dead-lettered, then the batch is acknowledged. Failures are logged
    once when they start and once on recovery, not on every retry.
    """

    def __init__(
        self,
        sink: Sink,
        queue: EventBoundedQueue[Delivery],
        dead_letters: FileDeadLetterQueue,
        metrics: Metrics,
        clock: Clock,
        backoff: Backoff,
    ) -> None:
        self.sink = sink
        self.queue = queue
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._backoff = backoff
        self._log = get_logger("forwarder.sink", sink=sink.id)
        self.failing_since: float | None = None
        self.last_error: str | None = None
        """``<error_type>: <reason>`` of the failure going on (shown in ``/readyz``)."""
        self.last_error_type: str | None = None
        self.events_sent = 0
        """Events the sink acknowledged since the start (the progress line)."""
        metrics.start_sink(sink.id, queue)

    async def run(self) -> None:
        coalescing = getattr(self.sink, "coalescing", None)
        loop = asyncio.get_running_loop()
        while True:
            group = [await self.queue.get()]
            if coalescing is not None:
                deadline = loop.time() + coalescing.max_wait
                count = len(group[0][0].events)
                while count < coalescing.max_events:
                    item = await self.queue.get_within(deadline - loop.time())
                    if item is None:
                        break
                    group.append(item)
                    count += len(item[0].events)
            try:
                await self._deliver([delivery for delivery, _ in group])
            finally:
                await self.queue.release(sum(size for _, size in group))

    async def _write_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Dead letters are the last copy of those events: retry until written."""
        while True:
            try:
                await self._dead_letters.write(letters)
            except OSError as error:
                self._metrics.sink_errors.labels(self.sink.id, "dead_letter_write").inc()
                self.last_error = f"dead_letter_write: cannot write dead letters: {error}"
                self.last_error_type = "dead_letter_write"
                if self.failing_since is None:
                    self.failing_since = self._clock.now()
                    self._log.error("dead_letter_write_failed", error=str(error))
                await self._clock.sleep(self._backoff.next_delay())
                continue
            if self.last_error_type == "dead_letter_write":
                self._recovered()
            return

    async def _deliver(self, deliveries: list[Delivery]) -> None:
        if len(deliveries) == 1:
            events = deliveries[0].events
            owners: list[Delivery] | None = None
        else:
            events = [event for delivery in deliveries for event in delivery.events]
            owners = [delivery for delivery in deliveries for _ in delivery.events]
        pending = events
        positions: Sequence[int] = range(len(events))  # position in `events` of each pending
        rejected: dict[int, str] = {}
        details: dict[int, str] = {}
        while True:
            try:
                result = await self.sink.send(pending)
            except Exception as error:  # a sink bug must not kill the pipeline: retry
                result = SendResult.retry_later(
                    f"{type(error).__name__}: {error}", error_type=EXCEPTION_ERROR_TYPE
                )
            error_type = result.error_type or DEFAULT_ERROR_TYPE
            for index, reason in result.rejected.items():
                rejected[positions[index]] = reason
                if index in result.details:
                    details[positions[index]] = result.details[index]
            if result.retry is None:
                break
            settled = result.delivered | result.rejected.keys()
            if settled:
                # Only what is still undelivered is sent again: fewer duplicates downstream.
                keep = [i for i in range(len(pending)) if i not in settled]
                positions = [positions[i] for i in keep]
                pending = [pending[i] for i in keep]
                if not pending:
                    break
            self._metrics.sink_errors.labels(self.sink.id, error_type).inc()
            self.last_error = f"{error_type}: {result.retry}"
            # Logged when the failure starts and when it turns into another kind (say a
            # redirect fixed, then a wrong password), not on every retry.
            if self.failing_since is None:
                self.failing_since = self._clock.now()
                self.last_error_type = None
            if error_type != self.last_error_type:
                # A receiver refusing our credentials waits for a person: error, not warning.
                log = self._log.error if error_type in CREDENTIAL_ERROR_TYPES else self._log.warning
                log("sink_failing", error_type=error_type, reason=result.retry, events=len(pending))
            self.last_error_type = error_type
            await self._clock.sleep(self._backoff.next_delay(result.retry_after))
        self._recovered()
        if rejected:
            await self._write_dead_letters(
                [
                    DeadLetter(
                        stage="sink",
                        reason=reason,
                        source=(owners[index] if owners else deliveries[0]).source,
                        sink=self.sink.id,
                        payload=events[index].document,
                        detail=details.get(index),
                    )
                    for index, reason in sorted(rejected.items())
                ]
            )
        fmt = self.sink.format
        now = self._clock.now()
        self._metrics.delivery_lag.observe_many(
            self.sink.id, [now - event.timestamp for event in events]
        )
        self.events_sent += len(events) - len(rejected)
        self._metrics.events_sent.labels(self.sink.id).inc(len(events) - len(rejected))
        self._metrics.bytes_sent.labels(self.sink.id).inc(
            sum(len(event.encoded(fmt)) for i, event in enumerate(events) if i not in rejected)
        )
        for delivery in deliveries:
            await delivery.committer.acknowledge(delivery.ticket)

    def _recovered(self) -> None:
        if self.failing_since is not None:
            failed_for = round(self._clock.now() - self.failing_since, 3)
            self._log.info("sink_recovered", failed_for_seconds=failed_for)
            self.failing_since = None
            self.last_error = self.last_error_type = None
        self._backoff.reset()
