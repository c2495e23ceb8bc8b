"""Prometheus metrics of one daemon, on a registry of its own (no global state).

Names follow Prometheus conventions: one ``forwarder_`` prefix, base units, ``_total`` on
counters, labels bounded to source ids, sink ids, stages and short reason codes.
"""

from __future__ import annotations

import contextlib
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from forwarder import __version__

# Requests to the SaaS APIs can take up to a minute when rate-limited.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From event time to delivery: seconds when live, hours when Google reports late.
DELIVERY_LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 86400)


class _CursorLag(Collector):
    """``forwarder_checkpoint_cursor_lag_seconds``: now minus each committed cursor,
    computed when scraped (a gauge set at commit time would freeze while stuck)."""

    def __init__(self, cursor_times: dict[str, float]) -> None:
        self._cursor_times = cursor_times

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "forwarder_checkpoint_cursor_lag_seconds",
            "How far the committed cursor is behind now (event time).",
            labels=["source"],
        )
        now = time.time()
        for source, cursor_time in sorted(self._cursor_times.items()):
            family.add_metric([source], max(0.0, now - cursor_time))
        yield family


class BatchHistogram(Collector):
    """A histogram with one label, fed a batch of values at a time.

    ``prometheus_client``'s ``Histogram.observe`` takes a lock and walks the buckets in
    Python for every value; the delivery lag is observed for every event, so this keeps
    plain per-bucket counts (one ``bisect`` per value) and builds the exposition (the same
    ``_bucket`` / ``_count`` / ``_sum`` series) when scraped.
    """

    def __init__(self, name: str, documentation: str, label: str, buckets: Iterable[float]):
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = tuple(sorted(float(bound) for bound in buckets))
        self._les = [floatToGoString(bound) for bound in self._bounds] + ["+Inf"]
        # label value -> [counts per bucket (the last is +Inf), sum]
        self._series: dict[str, tuple[list[int], list[float]]] = {}

    def observe_many(self, label_value: str, values: Iterable[float]) -> None:
        """Count every value of ``values`` in the ``label_value`` series."""
        series = self._series.get(label_value)
        if series is None:
            series = self._series[label_value] = ([0] * len(self._les), [0.0])
        counts, total = series
        bounds = self._bounds
        added = 0.0
        for value in values:
            # le is inclusive: the first bound >= value is the value's bucket.
            counts[bisect_left(bounds, value)] += 1
            added += value
        total[0] += added

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        for label_value, (counts, total) in sorted(self._series.items()):
            cumulative = accumulate(counts)
            family.add_metric(
                [label_value], list(zip(self._les, cumulative, strict=True)), total[0]
            )
        yield family


class RequestGateState(Protocol):
    """What the metrics read of a source's request gate (``sources.gate.RequestGate``)."""

    active: int
    limit: int
    throttled: int

    def hold_remaining(self) -> float:
        """Seconds every request of the source is still held by a rate limit."""
        ...


class BackfillState(Protocol):
    """What the metrics read of a source's backfill counters (``sources.backfill``)."""

    windows_started: int
    windows_in_flight: int
    pages_fetched: int
    buffered_pages: int


_GateReading = Callable[[RequestGateState, BackfillState], float]

# (family, name, help, reading) of each per-source concurrency metric.
_SOURCE_CONCURRENCY: tuple[tuple[type[Metric], str, str, _GateReading], ...] = (
    (
        GaugeMetricFamily,
        "forwarder_source_requests_in_flight",
        "API requests a source has in flight.",
        lambda gate, backfill: gate.active,
    ),
    (
        GaugeMetricFamily,
        "forwarder_source_request_concurrency_limit",
        "API requests a source may have in flight now (1 after a rate limit, growing back "
        "to backfill_concurrency).",
        lambda gate, backfill: gate.limit,
    ),
    (
        CounterMetricFamily,
        "forwarder_source_rate_limit_holds",
        "Times a rate-limit signal held every request of a source until the API's reset.",
        lambda gate, backfill: gate.throttled,
    ),
    (
        GaugeMetricFamily,
        "forwarder_source_rate_limit_hold_seconds",
        "Seconds every request of a source is still held by the API's rate limit (capped "
        "at max_retry_after).",
        lambda gate, backfill: gate.hold_remaining(),
    ),
    (
        GaugeMetricFamily,
        "forwarder_source_backfill_windows_in_flight",
        "Catch-up time windows a source is reading concurrently.",
        lambda gate, backfill: backfill.windows_in_flight,
    ),
    (
        GaugeMetricFamily,
        "forwarder_source_backfill_buffered_pages",
        "Catch-up API pages fetched (or being fetched) ahead of the pipeline.",
        lambda gate, backfill: backfill.buffered_pages,
    ),
    (
        CounterMetricFamily,
        "forwarder_source_backfill_windows",
        "Catch-up time windows a source started reading.",
        lambda gate, backfill: backfill.windows_started,
    ),
    (
        CounterMetricFamily,
        "forwarder_source_backfill_pages",
        "API pages a source fetched while catching up with concurrent windows.",
        lambda gate, backfill: backfill.pages_fetched,
    ),
)


class _SourceConcurrency(Collector):
    """A source's requests in flight, rate-limit holds and catch-up buffers, read from the
    source's own counters when scraped: the request path updates plain integers only."""

    def __init__(self, watched: dict[str, tuple[RequestGateState, BackfillState]]) -> None:
        self._watched = watched

    def collect(self) -> Iterator[Metric]:
        watched = sorted(self._watched.items())
        for family_type, name, documentation, reading in _SOURCE_CONCURRENCY:
            family = family_type(name, documentation, labels=["source"])  # type: ignore[call-arg]
            for source, (gate, backfill) in watched:
                family.add_metric([source], reading(gate, backfill))  # type: ignore[attr-defined]
            yield family


class SourceScheduleState(Protocol):
    """What the metrics read of a source's request budget and head (read at each scrape)."""

    def request_budget_per_minute(self) -> float:
        """The configured budget of API requests per minute."""
        ...

    def request_budget_used_ratio(self) -> float:
        """API requests sent in the last minute over the budget."""
        ...

    def head_lag_seconds(self) -> float:
        """Now minus the end of the head's last completed read."""
        ...


# (name, help, reading) of each per-source schedule gauge.
_SOURCE_SCHEDULE: tuple[tuple[str, str, Callable[[SourceScheduleState], float]], ...] = (
    (
        "forwarder_source_request_budget_per_minute",
        "API requests a source may send per minute (max_requests_per_minute).",
        lambda state: state.request_budget_per_minute(),
    ),
    (
        "forwarder_source_request_budget_used_ratio",
        "API requests a source sent in the last minute over its budget (1: the budget is "
        "spent and requests wait).",
        lambda state: state.request_budget_used_ratio(),
    ),
    (
        "forwarder_source_head_lag_seconds",
        "Now minus the end of the source's last completed read of the newest data (its "
        "freshness; the cursor shows the settle position instead).",
        lambda state: state.head_lag_seconds(),
    ),
)


class _SourceSchedule(Collector):
    """A source's request budget and head lag, computed when scraped."""

    def __init__(self, watched: dict[str, SourceScheduleState]) -> None:
        self._watched = watched

    def collect(self) -> Iterator[Metric]:
        watched = sorted(self._watched.items())
        for name, documentation, reading in _SOURCE_SCHEDULE:
            family = GaugeMetricFamily(name, documentation, labels=["source"])
            for source, state in watched:
                family.add_metric([source], reading(state))
            yield family


class GoogleProjectReading(Protocol):
    """One Google Cloud project's shared request budget, read at a scrape."""

    project: str
    per_minute: int
    used_ratio: float
    sources: int
    waits: dict[str, int]


class GoogleProjectsState(Protocol):
    """The per-project budgets (forwarder.sources.google.project_budget.ProjectBudgets)."""

    def readings(self) -> Iterable[GoogleProjectReading]:
        """Each project that has sources now."""
        ...


class _GoogleProjects(Collector):
    """Each Google Cloud project's shared request budget, computed when scraped; a project
    whose last source left is no longer exported (no frozen series)."""

    def __init__(self) -> None:
        self.state: GoogleProjectsState | None = None

    def collect(self) -> Iterator[Metric]:
        readings = list(self.state.readings()) if self.state is not None else []
        per_minute = GaugeMetricFamily(
            "forwarder_google_project_request_budget_per_minute",
            "API requests per minute the Google sources of a Cloud project may send together "
            "(google_quota).",
            labels=["project"],
        )
        used = GaugeMetricFamily(
            "forwarder_google_project_request_budget_used_ratio",
            "API requests the Google sources of a Cloud project sent in the last minute over "
            "the project's budget (1: spent, requests wait).",
            labels=["project"],
        )
        sources = GaugeMetricFamily(
            "forwarder_google_project_sources",
            "Google sources sharing a Cloud project's request budget now.",
            labels=["project"],
        )
        waits = CounterMetricFamily(
            "forwarder_google_project_budget_waits",
            "API requests of a source that waited for its Cloud project's request budget.",
            labels=["project", "source"],
        )
        for reading in readings:
            per_minute.add_metric([reading.project], reading.per_minute)
            used.add_metric([reading.project], reading.used_ratio)
            sources.add_metric([reading.project], reading.sources)
            for source, count in sorted(reading.waits.items()):
                waits.add_metric([reading.project, source], count)
        yield per_minute
        yield used
        yield sources
        yield waits


class QueueState(Protocol):
    """What the metrics read of a sink's queue (``pipeline.queue.EventBoundedQueue``)."""

    capacity: int
    size: int


class _SinkQueues(Collector):
    """``forwarder_sink_queue_events`` and ``forwarder_sink_queue_capacity_events``, read
    from each sink's queue when scraped: a gauge set when a worker takes a batch froze
    while the sink was down (the worker waits on its batch while the pollers fill the
    queue), so the queue-filling alert could not fire when it mattered."""

    def __init__(self, queues: dict[str, QueueState]) -> None:
        self._queues = queues

    def collect(self) -> Iterator[Metric]:
        queues = sorted(self._queues.items())
        events = GaugeMetricFamily(
            "forwarder_sink_queue_events",
            "Events in a sink's queue, the batch being sent included (what /readyz reports "
            "as queued_events).",
            labels=["sink"],
        )
        capacity = GaugeMetricFamily(
            "forwarder_sink_queue_capacity_events",
            "Capacity of a sink's queue in events.",
            labels=["sink"],
        )
        for sink, queue in queues:
            events.add_metric([sink], queue.size)
            capacity.add_metric([sink], queue.capacity)
        yield events
        yield capacity


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Info("forwarder_build", "Build information.", registry=r)
        self.build_info.info({"version": __version__})
        # Sharding across replicas (forwarder.shard): which share of the sources this is.
        self.shard_info = Gauge(
            "forwarder_shard_info",
            "This replica's shard: index and count (always 1).",
            ["index", "count"],
            registry=r,
        )
        self.shard_sources = Gauge(
            "forwarder_shard_sources",
            "Configured sources this replica's shard owns and runs.",
            registry=r,
        )
        # Reloads of the source set (SIGHUP, reload.watch_interval). The start's own load
        # counts as a successful one, as Prometheus's own metrics do.
        self.config_reloads = Counter(
            "forwarder_config_reloads",
            "Reloads of the source set by result: applied, or refused (the running set "
            "kept going).",
            ["result"],
            registry=r,
        )
        for result in ("applied", "refused"):
            self.config_reloads.labels(result)
        self.config_last_reload_successful = Gauge(
            "forwarder_config_last_reload_successful",
            "1 when the last reload of the source set was applied (or none was tried), 0 "
            "when it was refused.",
            registry=r,
        )
        self.config_last_reload_successful.set(1)
        self.config_last_reload_success = Gauge(
            "forwarder_config_last_reload_success_timestamp_seconds",
            "When the source set in force was loaded (start or last applied reload).",
            registry=r,
        )
        self.config_last_reload_success.set_to_current_time()
        # Which tenant and provider each source is: an info-style series (always 1) to
        # join on, `* on(source) group_left(tenant) forwarder_source_info`, rather than a
        # tenant label on every per-source series (which would break existing joins).
        self.source_info = Gauge(
            "forwarder_source_info",
            "A configured source of this replica: its tenant and provider (always 1).",
            ["source", "tenant", "provider"],
            registry=r,
        )
        # Sources
        self.events_received = Counter(
            "forwarder_source_events_received",
            "Normalized events produced by a source (after de-duplication).",
            ["source"],
            registry=r,
        )
        self.duplicates_dropped = Counter(
            "forwarder_source_duplicates_dropped",
            "Records seen again in an overlap or re-scan window and dropped as duplicates.",
            ["source"],
            registry=r,
        )
        self.unknown_events = Counter(
            "forwarder_source_unknown_events",
            "Events not in the catalog (new name or namespace), forwarded with a generic mapping.",
            ["source"],
            registry=r,
        )
        self.late_events = Counter(
            "forwarder_source_late_events",
            "Events first seen in a re-scan of the trailing window (reported late by the API).",
            ["source"],
            registry=r,
        )
        self.source_errors = Counter(
            "forwarder_source_errors",
            "Failed API requests (each attempt) by error type.",
            ["source", "error_type"],
            registry=r,
        )
        self.failed_polls = Counter(
            "forwarder_source_failed_polls",
            "Polling cycles that ended in an error (after the request retries), by error type.",
            ["source", "error_type"],
            registry=r,
        )
        self.api_responses = Counter(
            "forwarder_source_api_responses",
            "HTTP responses from the source APIs by status code.",
            ["source", "status"],
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            "forwarder_source_rate_limit_remaining",
            "Requests left in the API's current rate-limit window, as last reported.",
            ["source"],
            registry=r,
        )
        self.future_events = Counter(
            "forwarder_source_future_events",
            "Records dated after the API's own clock (plus a tolerance): delivered, flagged, "
            "and never allowed to move a cursor.",
            ["source"],
            registry=r,
        )
        self.source_capped_values = Counter(
            "forwarder_source_capped_values",
            "Values from an API beyond what the daemon believes (retry_after, clock_offset, "
            "token_lifetime), used capped.",
            ["source", "kind"],
            registry=r,
        )
        self.clock_offset = Gauge(
            "forwarder_source_clock_offset_seconds",
            "The API's clock minus ours, as measured from its Date header (before capping).",
            ["source"],
            registry=r,
        )
        self.source_requests = Counter(
            "forwarder_source_requests",
            "API list requests a source sent (each attempt), by purpose: head (the newest "
            "data), rescan (an older slice read again for late events), backfill (catch-up "
            "windows read concurrently). Token requests are not counted.",
            ["source", "purpose"],
            registry=r,
        )
        self.rereads = Counter(
            "forwarder_source_rereads",
            "Records read again by a re-scan and skipped as known before being normalized.",
            ["source"],
            registry=r,
        )
        self.late_events_by_step = Counter(
            "forwarder_source_late_events_by_step",
            "Late events first seen by the re-scan at each step of the schedule (step: its "
            "age in seconds).",
            ["source", "step"],
            registry=r,
        )
        self.newest_event_timestamp = Gauge(
            "forwarder_source_newest_event_timestamp_seconds",
            "Event time of the newest event a source handed on (0: none yet).",
            ["source"],
            registry=r,
        )
        self._scheduled_sources: dict[str, SourceScheduleState] = {}
        r.register(_SourceSchedule(self._scheduled_sources))
        self._google_projects = _GoogleProjects()
        r.register(self._google_projects)
        self.poll_duration = Histogram(
            "forwarder_source_poll_duration_seconds",
            "Duration of one complete polling cycle.",
            ["source"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self._watched_sources: dict[str, tuple[RequestGateState, BackfillState]] = {}
        r.register(_SourceConcurrency(self._watched_sources))
        self.last_poll = Gauge(
            "forwarder_source_last_successful_poll_timestamp_seconds",
            "When the source last made progress: a polling cycle completed without error "
            "or a page handed on (the daemon's start until then).",
            ["source"],
            registry=r,
        )
        # Checkpoints
        self.last_commit = Gauge(
            "forwarder_checkpoint_last_commit_timestamp_seconds",
            "When the source's cursor was last committed (the daemon's start until then).",
            ["source"],
            registry=r,
        )
        self.cursor_timestamp = Gauge(
            "forwarder_checkpoint_cursor_timestamp_seconds",
            "Event time of the committed cursor: everything before it is delivered.",
            ["source"],
            registry=r,
        )
        self._cursor_times: dict[str, float] = {}
        r.register(_CursorLag(self._cursor_times))
        self.checkpoint_errors = Counter(
            "forwarder_checkpoint_write_errors",
            "Checkpoint writes that failed (retried on the next acknowledgement).",
            ["source"],
            registry=r,
        )
        self.pending_batches = Gauge(
            "forwarder_checkpoint_pending_batches",
            "Batches read but not yet acknowledged by every sink.",
            ["source"],
            registry=r,
        )
        # Sinks
        self.events_sent = Counter(
            "forwarder_sink_events_sent",
            "Events acknowledged by a sink.",
            ["sink"],
            registry=r,
        )
        self.bytes_sent = Counter(
            "forwarder_sink_sent_bytes",
            "Encoded bytes acknowledged by a sink.",
            ["sink"],
            registry=r,
        )
        self.delivery_lag = BatchHistogram(
            "forwarder_sink_delivery_lag_seconds",
            "From an event's time to its acknowledgement by a sink.",
            "sink",
            DELIVERY_LAG_BUCKETS,
        )
        r.register(self.delivery_lag)
        self.sink_errors = Counter(
            "forwarder_sink_errors",
            "Failed sends that will be retried, by error type.",
            ["sink", "error_type"],
            registry=r,
        )
        self.sink_capped_values = Counter(
            "forwarder_sink_capped_values",
            "Values from a receiver beyond what the daemon believes (retry_after), used capped.",
            ["sink", "kind"],
            registry=r,
        )
        self.truncated_events = Counter(
            "forwarder_sink_truncated_events",
            "Events cut to fit a syslog size limit (max_udp_bytes or max_message_bytes).",
            ["sink"],
            registry=r,
        )
        self.concurrency_limit = Gauge(
            "forwarder_sink_concurrency_limit",
            "Requests a sink may have in flight (adaptive concurrency's current limit).",
            ["sink"],
            registry=r,
        )
        self.in_flight_requests = Gauge(
            "forwarder_sink_in_flight_requests",
            "Requests a sink has in flight.",
            ["sink"],
            registry=r,
        )
        self.request_duration = Histogram(
            "forwarder_sink_request_duration_seconds",
            "Duration of one request to a sink's receiver.",
            ["sink"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.http_responses = Counter(
            "forwarder_sink_http_responses",
            "HTTP responses from a sink's receiver by status code.",
            ["sink", "status"],
            registry=r,
        )
        self._sink_queues: dict[str, QueueState] = {}
        r.register(_SinkQueues(self._sink_queues))
        # Operator endpoints
        self.operator_connections = Gauge(
            "forwarder_operator_connections",
            "Connections open to the metrics and health listener.",
            registry=r,
        )
        self.operator_connections_refused = Counter(
            "forwarder_operator_connections_refused",
            "Connections to the metrics and health listener closed at once: max_connections "
            "reached.",
            registry=r,
        )
        # Dead letters
        self.dead_letters = Counter(
            "forwarder_dead_letter_events",
            "Records or events written to the dead-letter path, by stage and reason code.",
            ["stage", "reason"],
            registry=r,
        )

    def start_source(self, source: str) -> None:
        """Export ``source``'s counters at 0 from the start: an alert on their increase
        (no events for 2 hours) cannot fire on a series that does not exist yet."""
        for counter in (
            self.events_received,
            self.duplicates_dropped,
            self.unknown_events,
            self.checkpoint_errors,
        ):
            counter.labels(source)
        self.pending_batches.labels(source).set(0)
        self.poll_duration.labels(source)

    def describe_source(self, source: str, tenant: str, provider: str) -> None:
        """Export ``forwarder_source_info{source, tenant, provider} 1`` (replacing what
        an earlier instance of the source said: a reload may change its tenant)."""
        self.source_info.remove_by_labels({"source": source})
        self.source_info.labels(source, tenant, provider).set(1)

    def forget_source(self, source: str) -> None:
        """Drop every series of a source a reload removed: a frozen series would read as
        a source that stopped (ForwarderSourceFailing, ForwarderCheckpointStale)."""
        for metric in vars(self).values():
            if isinstance(metric, MetricWrapperBase):
                with contextlib.suppress(ValueError):  # a metric not labelled by source
                    metric.remove_by_labels({"source": source})
        for watched in (self._watched_sources, self._scheduled_sources, self._cursor_times):
            watched.pop(source, None)

    def start_sink(self, sink: str, queue: QueueState) -> None:
        """Export ``sink``'s counters at 0 from the start (a sink down since the start is
        one that sent nothing), and its queue as it is at each scrape."""
        self.events_sent.labels(sink)
        self.bytes_sent.labels(sink)
        self.delivery_lag.observe_many(sink, ())
        self._sink_queues[sink] = queue

    def watch_source(self, source: str, gate: RequestGateState, backfill: BackfillState) -> None:
        """Export ``source``'s request gate and backfill counters (read at each scrape)."""
        self._watched_sources[source] = (gate, backfill)

    def watch_schedule(self, source: str, state: SourceScheduleState) -> None:
        """Export ``source``'s request budget and head lag (read at each scrape)."""
        self._scheduled_sources[source] = state

    def watch_google_projects(self, state: GoogleProjectsState) -> None:
        """Export the Google Cloud projects' shared request budgets (read at each scrape)."""
        self._google_projects.state = state

    def set_cursor_time(self, source: str, cursor_time: float) -> None:
        self._cursor_times[source] = cursor_time
        self.cursor_timestamp.labels(source).set(cursor_time)
