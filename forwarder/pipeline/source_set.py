"""The sources a daemon runs, and how that set changes while it runs (reload).

Each source id has at most one instance polling at a time. A source removed by a reload
stops polling at once, then *retires*: what it already handed on is delivered and
committed (the sinks acknowledge it as usual), then it is closed and its metric series
dropped; its cursor stays in the state store. A source whose settings changed retires the
same way and its new instance starts from the committed cursor once the old one is gone,
so two instances never commit the same cursor. Retirement has no deadline: while the
sinks are down nothing could be committed anyway, and at shutdown a retiring source is
drained like any other (within the grace period).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import CheckpointStore
from forwarder.checkpoint.statedir import StateError
from forwarder.clock import Clock
from forwarder.config.model import SourceConfig
from forwarder.config.reload import SourceSpec
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.observability.metrics import Metrics
from forwarder.observability.progress import log_resumed
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.sources.base import Source, SourceError

# What a reload may meet while preparing a source: a bad secret file (ConfigError), state
# that is missing or unreadable (StateError), a checkpoint the source cannot read.
CheckpointLoader = Callable[[str], Awaitable[dict[str, Any] | None]]
SourceBuilder = Callable[[str, SourceConfig], Source]


@dataclass(eq=False, slots=True)
class ActiveSource:
    """A source of the running set: its settings, and once started its runner and task."""

    spec: SourceSpec
    source: Source
    restored: bool = False
    runner: SourceRunner | None = None
    task: asyncio.Task[None] | None = None


class SourceSet:
    """Starts, retires and replaces the daemon's sources; ``runners`` lists every runner
    that exists, retiring ones included (progress, readiness and the final drain read it)."""

    def __init__(
        self,
        build: SourceBuilder,
        load_checkpoint: CheckpointLoader,
        store: CheckpointStore,
        dead_letters: FileDeadLetterQueue,
        metrics: Metrics,
        clock: Clock,
        log: Any,
        state_dir: Path,
    ) -> None:
        self._build = build
        self._load_checkpoint = load_checkpoint
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._log = log
        self._state_dir = state_dir
        self.active: dict[str, ActiveSource] = {}
        """The wanted sources by id: running, or waiting for their old instance to retire."""
        self.runners: list[SourceRunner] = []
        self.start_failures: dict[str, str] = {}
        """Sources a reload could not start after their old instance stopped, and why."""
        self._retiring: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, asyncio.Task[None]] = {}
        self._open: list[Source] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._queues: tuple[EventBoundedQueue[Delivery], ...] | None = None
        self._polling_stopped = asyncio.Event()
        self.seal_formats: tuple[str, ...] | None = None

    @property
    def sources(self) -> list[Source]:
        """Every source instance open now (running, retiring or waiting to start)."""
        return list(self._open)

    # -- preparing ---------------------------------------------------------------------------

    def build(self, source_id: str, spec: SourceSpec) -> ActiveSource:
        """Build a source (reading its secrets: a ConfigError names the key); not started."""
        source = self._build(source_id, spec.config)
        source.seal_formats = self.seal_formats
        self._open.append(source)
        return ActiveSource(spec, source)

    async def restore(self, source_id: str, entry: ActiveSource) -> None:
        """Restore ``entry``'s committed cursor; a StateError when it has none and its
        config requires one (its state lives elsewhere: never a silent re-backfill)."""
        checkpoint = await self._load_checkpoint(source_id)
        if checkpoint is None and entry.spec.config.require_state:
            raise StateError(
                f"source {source_id!r} has no committed state in {self._state_dir} "
                f"and sources.{source_id}.require_state is set: import its cursor "
                "with `forwarder cursors import` (exported from the replica that "
                "ran it), or unset require_state to start from its initial_lookback"
            )
        entry.source.restore(checkpoint)
        entry.restored = True
        log_resumed(self._log, entry.source, source_id, checkpoint is not None)

    def is_retiring(self, source_id: str) -> bool:
        return source_id in self._retiring

    async def discard(self, entries: list[ActiveSource]) -> None:
        """Close sources built for a reload that was refused."""
        for entry in entries:
            await self._close(entry.source)

    # -- running -----------------------------------------------------------------------------

    def start_all(self, queues: tuple[EventBoundedQueue[Delivery], ...]) -> None:
        """Start polling every source added so far (at start, once the sinks run)."""
        self._queues = queues
        for source_id, entry in self.active.items():
            self._start(source_id, entry)

    def _start(self, source_id: str, entry: ActiveSource) -> None:
        assert self._queues is not None, "start_all first"
        committer = OrderedCommitter(source_id, self._store, self._metrics, self._clock)
        runner = SourceRunner(
            entry.source,
            committer,
            self._queues,
            self._dead_letters,
            self._metrics,
            self._clock,
            Backoff(initial=2.0, maximum=300.0),
        )
        entry.runner = runner
        self.runners.append(runner)
        entry.task = asyncio.create_task(
            runner.run(self._polling_stopped), name=f"source:{source_id}"
        )

    def add(self, source_id: str, entry: ActiveSource) -> None:
        """Run ``entry`` (restored, unless its id is still retiring: then it is restored
        and started once the old instance is gone)."""
        self.active[source_id] = entry
        self.start_failures.pop(source_id, None)
        if source_id in self._retiring:
            self._start_after_retirement(source_id, entry)
        elif self._queues is not None:
            self._start(source_id, entry)

    def remove(self, source_id: str) -> None:
        """Stop polling ``source_id`` now and retire it in the background."""
        entry = self.active.pop(source_id)
        waiting = self._waiting.pop(source_id, None)
        if waiting is not None:
            # Never started: only the instance before it (still retiring) ran.
            waiting.cancel()
            self._close_later(entry.source)
            return
        if entry.task is not None:
            entry.task.cancel()  # no new batch from now on; what was handed on drains
        # A running instance has no retiring one: its start waited for that to finish.
        task = asyncio.create_task(self._retire(source_id, entry), name=f"retire:{source_id}")
        self._retiring[source_id] = task
        task.add_done_callback(lambda done: self._retired(source_id, done))

    def replace(self, source_id: str, entry: ActiveSource) -> None:
        """Retire the running ``source_id`` and start ``entry`` in its place afterwards."""
        self.remove(source_id)
        self.add(source_id, entry)

    def _retired(self, source_id: str, task: asyncio.Task[None]) -> None:
        if self._retiring.get(source_id) is task:
            del self._retiring[source_id]

    async def _retire(self, source_id: str, entry: ActiveSource) -> None:
        runner, task = entry.runner, entry.task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        if runner is not None:
            # What it handed on is delivered and committed before the source is gone.
            await runner.committer.wait_idle()
            if not await runner.committer.flush():
                self._log.error(
                    "checkpoint_not_written",
                    source=source_id,
                    error=runner.committer.commit_error,
                    note="the previous checkpoint stays: events after it are read again",
                )
            self.runners.remove(runner)
        try:
            await self._close(entry.source)
        except Exception as error:
            self._log.warning("source_close_failed", source=source_id, error=repr(error))
        if source_id not in self.active:
            self._metrics.forget_source(source_id)
        self._log.info(
            "source_stopped",
            source=source_id,
            events_received=0 if runner is None else runner.events_received,
        )

    def _start_after_retirement(self, source_id: str, entry: ActiveSource) -> None:
        retirement = self._retiring[source_id]

        async def start() -> None:
            await asyncio.wait([retirement])
            if self.active.get(source_id) is not entry:
                return
            try:
                if not entry.restored:
                    await self.restore(source_id, entry)
            except (StateError, SourceError) as error:
                # Its old instance ran here, so this is a damaged store. Out of the set, so
                # that the next reload tries again; in /readyz and the logs until then.
                self._log.error("source_start_failed", source=source_id, error=str(error))
                self.start_failures[source_id] = str(error)
                del self.active[source_id]
                self._metrics.forget_source(source_id)
                await self._close(entry.source)
                return
            finally:
                self._waiting.pop(source_id, None)
            self._start(source_id, entry)

        self._waiting[source_id] = asyncio.create_task(start(), name=f"start:{source_id}")

    # -- stopping ----------------------------------------------------------------------------

    async def stop_polling(self) -> list[SourceRunner]:
        """Stop every poller (at shutdown); the runners to drain, retiring ones included."""
        self._polling_stopped.set()
        for waiting in list(self._waiting.values()):
            waiting.cancel()
        polling = [entry.task for entry in self.active.values() if entry.task is not None]
        retiring = list(self._retiring.values())
        for task in (*polling, *retiring):
            task.cancel()
        await asyncio.gather(*polling, *retiring, *self._waiting.values(), return_exceptions=True)
        return list(self.runners)

    async def aclose(self) -> None:
        """Close every source still open."""
        for source in list(self._open):
            await self._close(source)

    async def _close(self, source: Source) -> None:
        if source in self._open:
            self._open.remove(source)
        await source.aclose()

    def _close_later(self, source: Source) -> None:
        task = asyncio.create_task(self._close(source), name=f"close:{source.id}")
        self._closing.add(task)  # held until done: a task only weakly referenced may vanish
        task.add_done_callback(self._closing.discard)
