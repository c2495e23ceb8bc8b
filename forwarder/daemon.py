"""The daemon: builds the pipeline from the config, runs it, and drains it on stop.

Lifecycle: lock the state directory, start the simulators (demo mode), start the sinks,
read the secrets and the checkpoints, start the operator endpoints, then the sink workers
and the pollers. On stop: stop polling, let the sinks drain what is queued within the
grace period (each acknowledgement commits its cursor), close everything. A second stop
request cuts the drain short. SIGHUP (:meth:`Daemon.on_sighup`) never stops anything: it
reopens the output files after a rotation and reloads the source set (:meth:`Daemon.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import CheckpointCorruptError
from forwarder.checkpoint.sqlite import SqliteCheckpointStore, StateDatabaseCorruptError
from forwarder.checkpoint.statedir import (
    StateDirectoryLock,
    StateError,
    check_state_writable,
    prepare_state,
)
from forwarder.clock import Clock, SystemClock
from forwarder.config.insecure import insecure_settings
from forwarder.config.loader import (
    ConfigError,
    collect_secrets,
    load_config,
    read_json_secret_file,
    read_secret,
)
from forwarder.config.model import (
    CalendlySourceConfig,
    Config,
    FileSinkConfig,
    GoogleCalendarSourceConfig,
    HttpSinkConfig,
    KafkaSinkConfig,
    SinkConfig,
    SourceConfig,
    StdoutSinkConfig,
    SyslogSinkConfig,
)
from forwarder.config.reload import SourceSpec, plan_reload, watched_files_digest
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.observability.progress import ProgressReporter, start_progress
from forwarder.observability.redact import Redactor
from forwarder.observability.server import OperatorServer
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.pipeline.source_set import ActiveSource, SourceSet
from forwarder.shard import resolve_shard
from forwarder.sinks.base import Reopenable, Sink
from forwarder.sinks.file import FileSink
from forwarder.sinks.stdout import StdoutSink
from forwarder.sources.base import Source, SourceError
from forwarder.sources.calendly import CalendlySource
from forwarder.sources.google.auth import ServiceAccountKey, ServiceAccountTokenProvider
from forwarder.sources.google.calendar import GoogleCalendarSource
from forwarder.sources.google.project_budget import ProjectBudgets
from forwarder.sources.http import ApiClient

# After a stop that did not drain, how long each sink may take to close: a Kafka producer
# flushes on close, which waits for a broker that may be the very reason of the stop.
UNDRAINED_CLOSE_SECONDS = 2.0
# Source ids named in the `shard_assignment` log line (the count is always given).
SHARD_LOG_SOURCES = 50


def build_sink(
    sink_id: str, config: SinkConfig, metrics: Metrics, redactor: Redactor | None = None
) -> Sink:
    """Build a sink, reading its secrets now (a ConfigError names the key); ``redactor``
    takes secrets out of what its receiver answers."""
    if isinstance(config, FileSinkConfig):
        return FileSink(sink_id, config)
    if isinstance(config, StdoutSinkConfig):
        return StdoutSink(sink_id, config)
    if isinstance(config, KafkaSinkConfig):
        from forwarder.sinks.kafka import KafkaSink

        return KafkaSink(sink_id, config)
    if isinstance(config, SyslogSinkConfig):
        from forwarder.sinks.syslog import SyslogSink

        return SyslogSink(sink_id, config, metrics)
    if isinstance(config, HttpSinkConfig):
        from forwarder.sinks.http import HttpSink

        return HttpSink(sink_id, config, metrics, redactor)
    raise AssertionError(f"no sink for {config!r}")


def event_seal_formats(sinks: Sequence[Sink]) -> tuple[str, ...] | None:
    """The formats the sources encode each event in at once (every sink's format), or
    ``None`` to keep the documents because a sink reads them field by field."""
    if any(sink.reads_documents for sink in sinks):
        return None
    return tuple(dict.fromkeys(sink.format for sink in sinks))


def build_source(
    source_id: str,
    config: SourceConfig,
    metrics: Metrics,
    clock: Clock,
    redactor: Redactor | None = None,
    *,
    project_budgets: ProjectBudgets | None = None,
) -> Source:
    """Build a source, reading its secrets now (a ConfigError names the key). Tokens it
    obtains while running are added to ``redactor``. A Google source joins the budget of
    its key's Cloud project in ``project_budgets`` (None: its own budget only)."""
    key = f"sources.{source_id}"
    metrics.describe_source(source_id, config.tenant or source_id, config.type)
    client = ApiClient(
        source_id,
        metrics,
        clock,
        timeout=config.request_timeout,
        max_attempts=config.max_attempts,
        backoff=Backoff(initial=1.0, maximum=60.0),
        max_response_bytes=config.max_response_bytes,
        redactor=redactor,
    )
    if isinstance(config, CalendlySourceConfig):
        token = read_secret(config.token, config.token_file, f"{key}.token")
        return CalendlySource(source_id, config, token, client, metrics, clock)
    if isinstance(config, GoogleCalendarSourceConfig):
        credentials = read_json_secret_file(config.credentials_file, f"{key}.credentials_file")
        account = ServiceAccountKey.from_json(credentials, f"{key}.credentials_file")
        tokens = ServiceAccountTokenProvider(
            account,
            config.delegated_admin,
            client,
            clock,
            token_url=config.token_url,
            on_secret=(
                None if redactor is None else lambda secret: redactor.add(secret, runtime=True)
            ),
        )
        share = (
            None if project_budgets is None else project_budgets.join(account.project_id, source_id)
        )
        return GoogleCalendarSource(
            source_id, config, tokens, client, metrics, clock, project_share=share
        )
    raise AssertionError(f"no source for {config!r}")


class Daemon:
    """One running forwarder."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        redactor: Redactor | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        # Named in the hints of start-up errors (`forwarder cursors reset --config ...`).
        self.config_path = config_path
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        # Every secret the config carries, and (added while running) every token obtained:
        # replaced in logs, /readyz and dead letters.
        self.redactor = redactor if redactor is not None else Redactor()
        for secret in collect_secrets(config):
            self.redactor.add(secret)
        self.log = get_logger("forwarder.daemon")
        # Which configured sources this replica runs (ConfigError naming shard.index when
        # it cannot tell which replica it is).
        self.shard = resolve_shard(config.shard)
        self.owned_sources = self.shard.owned(config.sources)
        self.store = SqliteCheckpointStore(config.state_dir)
        self.dead_letters = FileDeadLetterQueue(
            config.dead_letter_dir, self.metrics, self.clock, self.redactor
        )
        # Insecure settings an operator allowed or should know about (shown in /readyz).
        self.config_warnings = [
            f"{finding.key}: {finding.message}" for finding in insecure_settings(config)
        ]
        self.sinks: list[Sink] = []
        self.source_set = SourceSet(
            self._build_source,
            self._load_checkpoint,
            self.store,
            self.dead_letters,
            self.metrics,
            self.clock,
            self.log,
            config.state_dir,
        )
        self.workers: list[SinkWorker] = []
        # The config the running source set comes from (the start's, then each applied
        # reload's); every other section stays the start's until a restart.
        self.sources_config = config
        self._reload_wanted = asyncio.Event()
        self._reload_reason = "sighup"
        self._watch_digest: bytes | None = None
        self.operator: OperatorServer | None = None
        self.started = asyncio.Event()
        self._simulators: Any = None
        self._lock = StateDirectoryLock(config.state_dir)
        self.stopped_before_drain: str | None = None
        """Once stopped: why the drain did not complete (``grace_expired``,
        ``second_signal``, ``checkpoint_not_written``), ``None`` when it did."""
        self._reopening: set[asyncio.Task[None]] = set()
        self.project_budgets = ProjectBudgets(self.clock, self.metrics, config.google_quota)

    async def run(self, stop: asyncio.Event, abort: asyncio.Event | None = None) -> bool:
        """Run until ``stop`` is set, then drain, for at most the grace period or until
        ``abort`` is set. True when the drain completed: everything read was acknowledged
        and its cursor committed. Raises ConfigError / StateError on start."""
        # Private (0700) and trusted directories before anything is written into them.
        prepare_state(self.config)
        # What cannot be written fails now, with the path named (exit 3), not later as an
        # OSError from whichever component first writes there.
        check_state_writable(self.config)
        self._lock.acquire()
        try:
            await self._run(stop, abort or asyncio.Event())
        finally:
            self._lock.release()
        return self.stopped_before_drain is None

    @property
    def sources(self) -> list[Source]:
        """Every source open now (running, stopping after a reload, or about to start)."""
        return self.source_set.sources

    @property
    def runners(self) -> list[SourceRunner]:
        """Every source's runner, those stopping after a reload included."""
        return self.source_set.runners

    def _build_source(self, source_id: str, config: SourceConfig) -> Source:
        """Build one source of this daemon (at start and on reload)."""
        return build_source(
            source_id,
            config,
            self.metrics,
            self.clock,
            self.redactor,
            project_budgets=self.project_budgets,
        )

    def on_sighup(self) -> None:
        """SIGHUP: reopen the output files, and reload the source set."""
        self.reopen_files()
        self.request_reload("sighup")

    def request_reload(self, reason: str) -> None:
        """Reload the source set as soon as the daemon runs and any reload in progress is
        done (requests meanwhile are one reload)."""
        self._reload_reason = reason
        self._reload_wanted.set()

    def reopen_files(self) -> None:
        """SIGHUP: every sink that writes a file closes it and opens its path again (after
        a rotation). Dead letters need nothing: that file is opened for each write."""
        sinks = [sink for sink in self.sinks if isinstance(sink, Reopenable)]
        self.log.info("reopen_requested", sinks=[sink.id for sink in sinks])
        for sink in sinks:
            task = asyncio.create_task(sink.reopen(), name=f"reopen:{sink.id}")
            self._reopening.add(task)  # held until done: a task only weakly referenced may vanish
            task.add_done_callback(self._reopening.discard)

    async def _close_sink(self, sink: Sink) -> None:
        if self.stopped_before_drain is None:
            await sink.aclose()
            return
        try:
            await asyncio.wait_for(sink.aclose(), UNDRAINED_CLOSE_SECONDS)
        except TimeoutError:
            self.log.warning(
                "sink_close_abandoned",
                sink=sink.id,
                seconds=UNDRAINED_CLOSE_SECONDS,
                note="what it still held was not acknowledged: it is sent again on the next start",
            )

    async def _run(self, stop: asyncio.Event, abort: asyncio.Event) -> None:
        config = self.config
        for warning in self.config_warnings:
            self.log.warning("insecure_configuration", setting=warning)
        async with contextlib.AsyncExitStack() as cleanup:
            # Closed last, after the final commits of the drain.
            cleanup.push_async_callback(self.store.aclose)
            if config.simulators is not None:
                from forwarder.simulators.embedded import start_embedded_simulators

                try:
                    self._simulators = await start_embedded_simulators(config)
                except OSError as error:
                    if error.filename is None:
                        raise  # a port in use: not the state
                    # Their key, token and anchor files are state (kept across restarts).
                    raise StateError(
                        f"cannot write the demo simulators' file {error.filename}: "
                        f"{error.strerror or error}"
                    ) from None
                cleanup.push_async_callback(self._simulators.stop)

            for sink_id, sink_config in config.sinks.items():
                sink = build_sink(sink_id, sink_config, self.metrics, self.redactor)
                await sink.start()
                cleanup.push_async_callback(self._close_sink, sink)
                self.sinks.append(sink)

            self.source_set.seal_formats = event_seal_formats(self.sinks)
            cleanup.push_async_callback(self.source_set.aclose)
            for source_id in self.owned_sources:
                entry = self.source_set.build(source_id, SourceSpec.of(config.sources[source_id]))
                # Without its state (resharding, a moved state directory) a source with
                # require_state is refused: initial_lookback would re-send or skip events.
                await self.source_set.restore(source_id, entry)
                self.source_set.add(source_id, entry)

            # Once the sources are built (a bad one is the only error line).
            self._log_shard_assignment()
            if config.metrics.enabled:
                self.operator = OperatorServer(
                    self.metrics,
                    self.readiness,
                    config.metrics.listen,
                    max_connections=config.metrics.max_connections,
                    idle_timeout=config.metrics.idle_timeout,
                )
                await self.operator.start()
                cleanup.push_async_callback(self.operator.stop)

            await self._pump(stop, abort)

    def _log_shard_assignment(self) -> None:
        """The shard metrics, and (when sharded) which sources this replica runs."""
        shard, owned = self.shard, self.owned_sources
        self.metrics.shard_info.labels(index=str(shard.index), count=str(shard.count)).set(1)
        self.metrics.shard_sources.set(len(owned))
        if shard.count == 1:
            return  # not sharded: every source runs (forwarder_started lists them)
        self.log.info(
            "shard_assignment",
            index=shard.index,
            count=shard.count,
            sources_owned=len(owned),
            sources_total=len(self.config.sources),
            sources=owned[:SHARD_LOG_SOURCES],
            truncated=len(owned) > SHARD_LOG_SOURCES,
        )

    async def _reloader(self) -> None:
        """Run the reloads requested (SIGHUP, a changed file), one at a time."""
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            try:
                await self.reload(self._reload_reason)
            except Exception as error:
                # A bug must not end reloading for good, nor touch the running set more
                # than it already did: refused, with the traceback for a report.
                self.log.exception("reload_internal_error")
                self._reload_refused(self._reload_reason, [f"internal error: {error!r}"])

    async def _watch(self, interval: float) -> None:
        """``reload.watch_interval``: reload when a file the source set comes from changed
        (a ConfigMap or Secret update in Kubernetes, where nobody sends SIGHUP)."""
        assert self.config_path is not None
        while True:
            await self.clock.sleep(interval)
            digest = await asyncio.to_thread(
                watched_files_digest, self.config_path, self.sources_config
            )
            if digest != self._watch_digest:
                self.request_reload("files_changed")

    async def reload(self, reason: str) -> bool:
        """Re-read the config and apply its source set: start the sources added, drain and
        stop the ones removed (their cursors stay), restart the ones whose settings or
        secret files changed, leave the others alone. All or nothing: a config that does
        not load, or a new source that cannot be built or lacks its required state, is
        refused with every problem logged, and the running set keeps going. True when
        applied."""
        path = self.config_path
        if path is None:
            self.log.warning("reload_unavailable", reason=reason, note="no config file to read")
            return False
        self.log.info("reload_requested", reason=reason, config=str(path))
        before = await asyncio.to_thread(watched_files_digest, path, self.sources_config)
        try:
            config = await asyncio.to_thread(load_config, path)
            wanted = await asyncio.to_thread(self._specs, config)
        except ConfigError as error:
            self._watch_digest = before
            return self._reload_refused(reason, error.lines())
        if await asyncio.to_thread(watched_files_digest, path, self.sources_config) != before:
            self._reload_wanted.set()  # a file changed while it was read: read it again
        running = {source_id: entry.spec for source_id, entry in self.source_set.active.items()}
        plan = plan_reload(running, wanted, self.config, config)
        for secret in collect_secrets(config):
            self.redactor.add(secret)
        added: dict[str, ActiveSource] = {}
        try:
            for source_id in plan.changed:
                self._check_buildable(source_id, config.sources[source_id])
            for source_id in plan.added:
                added[source_id] = entry = self.source_set.build(source_id, wanted[source_id])
                if not self.source_set.is_retiring(source_id):
                    await self.source_set.restore(source_id, entry)
        except (ConfigError, StateError, SourceError) as error:
            await self.source_set.discard(list(added.values()))
            for source_id in plan.added:
                if not self.source_set.is_retiring(source_id):
                    self.metrics.forget_source(source_id)
            self._watch_digest = before
            lines = error.lines() if isinstance(error, ConfigError) else [str(error)]
            return self._reload_refused(reason, lines)
        for source_id in plan.removed:
            self.source_set.remove(source_id)
        for source_id in plan.changed:
            try:
                entry = self.source_set.build(source_id, wanted[source_id])
            except ConfigError as error:
                # Its files changed again since the check above: the running one stays.
                self.log.error("source_reload_failed", source=source_id, error=str(error))
                continue
            self.source_set.replace(source_id, entry)
        for source_id, entry in added.items():
            self.source_set.add(source_id, entry)
        # Each project's new budget applies at once (what went out this minute counts).
        self.project_budgets.configure(config.google_quota)
        self.sources_config = config
        self._watch_digest = await asyncio.to_thread(watched_files_digest, path, config)
        self.metrics.shard_sources.set(len(self.source_set.active))
        self.metrics.config_reloads.labels("applied").inc()
        self.metrics.config_last_reload_successful.set(1)
        self.metrics.config_last_reload_success.set(self.clock.now())
        self.log.info(
            "reload_applied",
            reason=reason,
            added=list(plan.added),
            removed=list(plan.removed),
            changed=list(plan.changed),
            unchanged=len(plan.unchanged),
        )
        if plan.restart_needed:
            self.log.warning(
                "reload_restart_needed",
                sections=list(plan.restart_needed),
                note="only the source set is reloaded: these changes take effect at the "
                "next restart",
            )
        return True

    def _specs(self, config: Config) -> dict[str, SourceSpec]:
        """The sources of ``config`` this replica runs, with their secret files' digests."""
        return {
            source_id: SourceSpec.of(config.sources[source_id])
            for source_id in self.shard.owned(config.sources)
        }

    def _check_buildable(self, source_id: str, config: SourceConfig) -> None:
        """Build ``config``'s source and throw it away (a ConfigError names the key), so
        that a refused reload leaves the running instance and its metrics untouched."""
        build_source(source_id, config, Metrics(), self.clock)

    def _reload_refused(self, reason: str, problems: list[str]) -> bool:
        self.metrics.config_reloads.labels("refused").inc()
        self.metrics.config_last_reload_successful.set(0)
        self.log.error(
            "reload_refused",
            reason=reason,
            problems=problems,
            note="the running sources keep going unchanged; fix the config and reload again",
        )
        return False

    async def _load_checkpoint(self, source_id: str) -> dict[str, Any] | None:
        try:
            return await self.store.load(source_id)
        except StateDatabaseCorruptError as error:
            raise StateError(
                f"{error}; restore it from a backup, or move it away to start every source "
                "from its initial_lookback"
            ) from None
        except CheckpointCorruptError as error:
            raise StateError(
                f"{error}; fix it or reset the cursor with "
                f"`forwarder cursors reset --source {source_id} "
                f"--config {self.config_path or '<path>'}`"
            ) from None

    async def _pump(self, stop: asyncio.Event, abort: asyncio.Event) -> None:
        pipeline = self.config.pipeline
        queues: list[EventBoundedQueue[Delivery]] = []
        for sink in self.sinks:
            queue: EventBoundedQueue[Delivery] = EventBoundedQueue(pipeline.queue_capacity)
            queues.append(queue)
            backoff = Backoff(pipeline.retry_initial_backoff, pipeline.retry_max_backoff)
            worker = SinkWorker(sink, queue, self.dead_letters, self.metrics, self.clock, backoff)
            self.workers.append(worker)

        worker_tasks = [
            asyncio.create_task(worker.run(), name=f"sink:{worker.sink.id}")
            for worker in self.workers
        ]
        self.source_set.start_all(tuple(queues))
        reloading = [asyncio.create_task(self._reloader(), name="reloader")]
        watch_interval = self.config.reload.watch_interval
        if watch_interval > 0 and self.config_path is not None:
            self._watch_digest = await asyncio.to_thread(
                watched_files_digest, self.config_path, self.config
            )
            reloading.append(asyncio.create_task(self._watch(watch_interval), name="watch"))
        self.started.set()
        self.log.info(
            "forwarder_started",
            sources=[source.id for source in self.sources],
            sinks=[sink.id for sink in self.sinks],
            metrics=(
                f"http://{self.operator.host}:{self.operator.port}/metrics"
                if self.operator
                else None
            ),
        )
        if self._simulators is not None:
            self._log_demo_hints()
        interval = self.config.log.progress_interval
        progress = start_progress(
            ProgressReporter(self.runners, self.workers, interval, self.clock, self.log), interval
        )
        await stop.wait()
        if progress is not None:
            progress.cancel()
        self.log.info(
            "forwarder_stopping",
            grace_seconds=pipeline.shutdown_grace,
            note="draining; a second SIGINT or SIGTERM stops at once",
        )
        for task in reloading:
            task.cancel()
        await asyncio.gather(*reloading, return_exceptions=True)
        runners = await self.source_set.stop_polling()
        cause = await self._drain(runners, pipeline.shutdown_grace, abort)
        for runner in runners:
            # Acknowledged batches whose checkpoint write failed: one more try, even when
            # cut short (only what was acknowledged is ever committed).
            if not await runner.committer.flush():
                cause = cause or "checkpoint_not_written"
                self.log.error(
                    "checkpoint_not_written",
                    source=runner.source.id,
                    error=runner.committer.commit_error,
                    note="the previous checkpoint stays: events after it are read again",
                )
        for task in worker_tasks:
            task.cancel()
        await asyncio.gather(*worker_tasks, return_exceptions=True)
        undelivered = sum(runner.committer.pending for runner in runners)
        self.stopped_before_drain = cause
        if cause is None:
            self.log.info("forwarder_stopped", undelivered_batches=0)
        else:
            self.log.warning(
                "forwarder_stopped_before_drain",
                cause=cause,
                undelivered_batches=undelivered,
                note="their cursors were not committed: they are read again on the next start",
            )

    def _log_demo_hints(self) -> None:
        endpoints = self._simulators.endpoints
        self.log.info(
            "demo_running",
            events_files=[
                str(config.path)
                for config in self.config.sinks.values()
                if isinstance(config, FileSinkConfig)
            ],
            metrics=(
                f"http://{self.operator.host}:{self.operator.port}/metrics"
                if self.operator
                else None
            ),
            calendly_simulator=endpoints.calendly_url,
            google_simulator=endpoints.google_url,
            stop=(
                "Ctrl-C or SIGTERM drains, commits the cursors and exits 0 "
                "(4 if the drain could not complete); a second Ctrl-C stops at once"
            ),
        )

    async def _drain(
        self, runners: Sequence[SourceRunner], grace: float, abort: asyncio.Event
    ) -> str | None:
        """Wait until every batch read is acknowledged and committed: ``None`` when it
        is, else why the wait ended (``grace_expired`` or ``second_signal``)."""
        drained = asyncio.ensure_future(
            asyncio.gather(*(runner.committer.wait_idle() for runner in runners))
        )
        aborted = asyncio.ensure_future(abort.wait())
        done, _ = await asyncio.wait(
            (drained, aborted), timeout=grace, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in (drained, aborted):
            waiter.cancel()
        # Collected, so that asyncio does not log the cancelled wait as an error.
        await asyncio.gather(drained, aborted, return_exceptions=True)
        if drained in done:
            return None
        return "second_signal" if aborted in done else "grace_expired"

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when started, no source or sink has been failing for longer than
        ``metrics.unready_after``, every source completed a poll within that time (plus
        its interval), and no source's credentials are refused. With ``metrics.readiness:
        any_source`` a failing source is a warning while another source works (many
        tenants). ``warnings`` lists what does not stop delivery but needs a look
        (insecure settings, capped API values, future-dated records). Every text is
        redacted."""
        now = self.clock.now()
        limit = self.config.metrics.unready_after
        problems: list[str] = []
        # Problems of one source (its API, its credentials), apart from the state's.
        source_problems: list[str] = []
        # What an operator should see that does not stop delivery.
        warnings: list[str] = list(self.config_warnings)
        sources: dict[str, Any] = {}
        for runner in self.runners:
            source_id = runner.source.id
            failing_for = None if runner.failing_since is None else now - runner.failing_since
            source_warnings = list(runner.source.warnings.values())
            sources[source_id] = {
                "state": "ok" if failing_for is None else "failing",
                "last_success": runner.last_success,
                "error": runner.last_error,
                "warnings": source_warnings,
            }
            warnings.extend(f"source {source_id}: {warning}" for warning in source_warnings)
            if runner.committer.commit_error is not None:
                problems.append(
                    f"source {source_id}: checkpoint write failing: {runner.committer.commit_error}"
                )
            if runner.last_error_type == "credentials":
                source_problems.append(
                    f"source {source_id}: credentials refused: {runner.last_error}"
                )
            elif failing_for is not None and failing_for > limit:
                source_problems.append(f"source {source_id} failing for {failing_for:.0f}s")
            elif runner.last_progress is not None and (
                now - runner.last_progress > limit + runner.source.poll_interval
            ):
                source_problems.append(f"source {source_id}: no progress for {limit:.0f}s")
        failed_starts = self.source_set.start_failures
        source_problems.extend(
            f"source {source_id}: cannot start: {error}"
            for source_id, error in failed_starts.items()
        )
        sources_known = len(self.runners) + len(failed_starts)
        if self.config.metrics.readiness == "any_source" and len(source_problems) < sources_known:
            warnings.extend(source_problems)
        else:
            problems.extend(source_problems)
        sinks: dict[str, Any] = {}
        for worker in self.workers:
            sink_id = worker.sink.id
            failing_for = None if worker.failing_since is None else now - worker.failing_since
            sink_warnings = list(getattr(worker.sink, "warnings", {}).values())
            sinks[sink_id] = {
                "state": "ok" if failing_for is None else "failing",
                "queued_events": worker.queue.size,
                "error": worker.last_error,
                "warnings": sink_warnings,
            }
            warnings.extend(f"sink {sink_id}: {warning}" for warning in sink_warnings)
            if failing_for is not None and failing_for > limit:
                problems.append(f"sink {sink_id} failing for {failing_for:.0f}s")
        if not self.started.is_set():
            problems.append("starting")
        # Error texts come from peers, which may echo a credential back.
        detail = self.redactor.redact_value(
            {"problems": problems, "warnings": warnings, "sources": sources, "sinks": sinks}
        )
        return not problems, detail
