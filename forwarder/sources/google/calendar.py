"""Google Workspace Calendar audit events (Reports API ``activities.list``,
``userKey=all``, ``applicationName=calendar``).

Google reports Calendar events late (tens of minutes, up to a couple of hours) and lists
them newest first, so a cursor at "the newest event seen" would lose every late event.
The source instead reads the *head* (``[head, now - end_margin)``) on every poll and
re-reads each older slice of the log at the growing ages of ``rescan_schedule`` (2 min,
10 min, 40 min, 3 h by default; see :mod:`~forwarder.sources.google.schedule`): a late
activity is caught by the first re-scan of its slice after it appears, and each activity
is read at most ``1 + len(rescan_schedule)`` times.

Re-read activities are recognized by their key (:mod:`~forwarder.sources.google.keys`)
and skipped before anything is normalized (``forwarder_source_rereads_total``). The keys
of the activities delivered are kept (:class:`~forwarder.sources.seen.SeenKeys`) until
no read can return them again (before ``final_before``, the last step's position).
Keys of releases before re-scan schedules (one id per event) still de-duplicate: an
activity whose key is unknown is normalized and each of its events checked by id, both
today's and the positional id those releases computed
(:func:`~forwarder.schema.ids.legacy_google_event_key`), until they expire one settle
window after the upgrade.

Each batch carries a :class:`~forwarder.checkpoint.base.Checkpoint`: the small cursor
(head, per-step positions), the keys it added and the expiry. The source applies a
batch's change only once the ``yield`` of that batch returns (the Source protocol), so a
batch that was not handed on changes nothing.

Catch-up (parallel backfill): head windows that end more than ``settle_window`` before
the poll started are read ``backfill_concurrency`` at a time by
:class:`~forwarder.sources.backfill.OrderedWindowFetcher` and handed on in window order;
the windows inside the settle window are read one after the other. Head windows start
where the previous one ends, so they are all known in advance; a read that finds its
planned end in the API's future (its clock moved back) stops the head for this poll,
and the next poll plans again.

Requests: every ``activities.list`` request (each attempt, head, re-scan or backfill)
takes from the source's :class:`~forwarder.sources.budget.RequestBudget`
(``max_requests_per_minute``; token requests are not counted). The head goes first; a
re-scan waits for the next poll while the budget has no room for it and the head's next
read, and is read then whatever the budget (after that poll's head, waiting for room):
late events are caught later, never lost. A source given a
:class:`~forwarder.sources.google.project_budget.ProjectShare` also takes from its key's
Cloud project's budget, fair-shared with the project's other sources (Google's quota is
per project): a request goes out once both have room, and a re-scan steps aside while
either is tight.

What the API says is bounded (:mod:`~forwarder.sources.untrusted`,
:mod:`~forwarder.sources.paging`): windows are cut on the API's clock, but its ``Date``
header is believed only up to ``max_clock_offset``, and one poll plans at most
``MAX_WINDOWS_PER_POLL`` windows (the next poll goes on from there). The head and the
re-scan positions only ever move to window ends, which never pass the API's now; an
activity dated after it is delivered and flagged, and its key stays for as long as a
window can return it. A malformed activity is dead-lettered once: a digest of it is
kept with its ``id.time`` (or, without a usable one, the end of the window that returned
it) and expires with the other keys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from forwarder.checkpoint.base import Checkpoint, SeenKey
from forwarder.clock import Clock
from forwarder.config.model import GoogleCalendarSourceConfig
from forwarder.events import Batch, DeadLetter, Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.google_calendar import activity_time, normalize_activity
from forwarder.schema.ids import legacy_google_event_key
from forwarder.schema.sharing import InternalDomains
from forwarder.schema.tenant import label_tenant
from forwarder.sources.backfill import BackfillStats, OrderedWindowFetcher
from forwarder.sources.base import (
    CredentialsError,
    MalformedResponseError,
    OversizedPageError,
    SourceError,
    TransientSourceError,
)
from forwarder.sources.budget import RequestBudget
from forwarder.sources.gate import RequestGate
from forwarder.sources.google.auth import ServiceAccountTokenProvider
from forwarder.sources.google.keys import activity_identity
from forwarder.sources.google.project_budget import ProjectShare
from forwarder.sources.google.schedule import (
    MIN_WINDOW_SECONDS,
    SLICE_FRACTION,
    ScheduleState,
    floor_ms,
    step_label,
)
from forwarder.sources.http import ApiClient, ApiResponse, error_excerpt
from forwarder.sources.paging import PageGuard
from forwarder.sources.seen import SeenKeys
from forwarder.sources.untrusted import ApiBounds, BoundedApiSource, dead_letter_key
from forwarder.timeutil import format_rfc3339

PROVIDER = "google_calendar"
ACTIVITIES_PATH = "/admin/reports/v1/activity/users/all/applications/calendar"
QUOTA_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# Google's guidance for quota errors starts backing off at 5 s.
QUOTA_RETRY_SECONDS = 5.0
# Windows one poll plans and reads at most; the next poll goes on from there. At the
# default max_window (1 h) that is 41 days of log per poll (16 h at the shortest, 60 s),
# so real catch-ups barely notice, while a clock gone wrong can no longer make one poll
# plan millions of windows.
MAX_WINDOWS_PER_POLL = 1000
# What each request is for (the `purpose` label of forwarder_source_requests_total).
HEAD = "head"
RESCAN = "rescan"
BACKFILL = "backfill"
PURPOSES = (HEAD, RESCAN, BACKFILL)
# Keys are forgotten this much before final_before: a window sent as a millisecond
# string starting at final_before lists the activities of that whole millisecond.
EXPIRY_MARGIN = 0.001


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """``startTime`` (inclusive) .. ``endTime`` (exclusive), Unix seconds, and what the
    read is for (``step``: the index of the re-scan step)."""

    start: float
    end: float
    purpose: str = HEAD
    step: int | None = None


@dataclass(frozen=True, slots=True)
class WindowPage:
    """One page of a window, with when the window's first request went out (API clock)."""

    scanned_at: float
    body: dict[str, Any]


@dataclass(slots=True)
class ReadStats:
    """What the source read, across polls (tests and benchmarks read them)."""

    activities_read: int = 0
    """Activities on the pages read (well-formed or not, new or not)."""
    rereads: int = 0
    """Activities skipped by their key, without being normalized."""
    normalized: int = 0
    """Activities normalized (new ones, and ones only known by legacy event ids)."""
    events_handed_on: int = 0
    rescans_deferred: int = 0
    """Times a due re-scan step waited for the next poll because the budget was tight."""


@dataclass(slots=True)
class _Change:
    """What one batch changes in the source, applied once the batch is handed on."""

    schedule: ScheduleState
    added: dict[SeenKey, float]
    events: int
    late: int
    step: int | None
    newest: float


def _legacy_id(event: Event) -> str:
    """The id releases before event names were part of ids gave ``event`` (its position
    in ``events[]``): their checkpoints hold it in ``seen``."""
    google = event.document["google_workspace"]
    ident = google["id"]
    return legacy_google_event_key(ident["time"], ident["unique_qualifier"], google["event_index"])


class _ClockMovedBack(SourceError):
    """A planned head window now ends in the API's future: re-planned at the next poll."""


class GoogleCalendarSource(BoundedApiSource):
    """Polls Calendar audit events: the head on every poll, older slices on a schedule."""

    provider = PROVIDER

    def __init__(
        self,
        source_id: str,
        config: GoogleCalendarSourceConfig,
        tokens: ServiceAccountTokenProvider,
        client: ApiClient,
        metrics: Metrics,
        clock: Clock,
        project_share: ProjectShare | None = None,
    ) -> None:
        self.id = source_id
        self.poll_interval = config.poll_interval
        self.seal_formats: tuple[str, ...] | None = None
        self._config = config
        # Tags every event (ECS labels.tenant); a source is its own tenant by default.
        self._tenant = config.tenant or source_id
        # Parsed once: whether a grantee/guest is external (None: the flag is left out).
        self._internal_domains = (
            InternalDomains(config.internal_domains) if config.internal_domains else None
        )
        self._url = config.base_url.rstrip("/") + ACTIVITIES_PATH
        self._tokens = tokens
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self.steps = tuple(float(step) for step in config.rescan_schedule)
        self._step_labels = tuple(step_label(step) for step in self.steps)
        self.schedule = ScheduleState.starting_at(self.steps, 0.0)
        self._restored = False
        self.seen = SeenKeys()
        self._log = get_logger("forwarder.source.google_calendar", source=source_id)
        self.gate = RequestGate(clock, config.backfill_concurrency)
        # The API's clock, from the responses' Date header (capped): windows are cut on
        # the API's clock, or a fast host would ask for a future endTime (refused) and a
        # slow one would settle events too early.
        self.bounds = ApiBounds(source_id, config, metrics, clock, self._log, self.gate)
        self._request_counters = {
            purpose: metrics.source_requests.labels(source_id, purpose) for purpose in PURPOSES
        }
        self.budget = RequestBudget(
            clock,
            config.max_requests_per_minute,
            on_request=lambda purpose: self._request_counters[purpose].inc(),
        )
        # The budget of the key's Cloud project, shared with the project's other sources
        # (None: only this source's own budget).
        self.project_share = project_share
        self._deferred: frozenset[int] = frozenset()
        """Re-scan steps the budget made wait at the last poll: read at this one whatever."""
        self._head_requests = 1
        """Requests the head took at the last poll: the room a re-scan leaves for it."""
        self.reads = ReadStats()
        self.newest_event_time = 0.0
        # Every series at 0 from the start (an alert on increase() sees the first one).
        metrics.source_capped_values.labels(source_id, "token_lifetime")
        metrics.rereads.labels(source_id)
        metrics.duplicates_dropped.labels(source_id)
        metrics.late_events.labels(source_id)
        for label in self._step_labels:
            metrics.late_events_by_step.labels(source_id, label)
        metrics.newest_event_timestamp.labels(source_id)
        self.backfill = BackfillStats()
        metrics.watch_source(source_id, self.gate, self.backfill)
        metrics.watch_schedule(source_id, self)
        self._check_budget()

    def _check_budget(self) -> None:
        """Warn when the budget cannot even pay for the schedule of a quiet domain."""
        interval = max(self.poll_interval, 1.0)
        needed = 60.0 / interval + sum(
            60.0 / max(interval, step * SLICE_FRACTION) for step in self.steps
        )
        if needed > self.budget.per_minute:
            self._log.warning(
                "request_budget_below_schedule",
                max_requests_per_minute=self.budget.per_minute,
                needed_per_minute=round(needed, 1),
                hint="re-scans will be read late; raise the budget or poll_interval",
            )

    def _api_now(self) -> float:
        return self.bounds.api_now()

    # -- state ----------------------------------------------------------------------------

    @property
    def head(self) -> float:
        """The end of the last head window handed on: everything before was read once."""
        return self.schedule.head

    @property
    def final_before(self) -> float:
        """Everything dated before this is final (the committed cursor, for metrics)."""
        return self.schedule.final_before

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        self._restored = True
        self._deferred = frozenset()
        if checkpoint is None:
            start = self._clock.now() - self._config.initial_lookback
            self.schedule = ScheduleState.starting_at(self.steps, start)
            self.seen = SeenKeys()
            return
        try:
            schedule = ScheduleState.from_cursor(
                self.steps, checkpoint, legacy_margin=self._config.max_clock_offset
            )
            seen = SeenKeys(
                (key if isinstance(key, bytes) else str(key), float(when))
                for key, when in checkpoint["seen"].items()
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SourceError(
                f"checkpoint of source {self.id} is not a Google Calendar cursor: {error}"
            ) from None
        seen.expire_before(schedule.final_before - EXPIRY_MARGIN)
        self.schedule, self.seen = schedule, seen

    def checkpoint(self) -> dict[str, Any]:
        """The whole in-memory state, in the shape ``restore`` takes (for tests)."""
        return {**self.schedule.cursor(), "seen": dict(self.seen.items())}

    def position(self) -> dict[str, Any]:
        """Where the source reads from, for the start-up and progress log lines: the head
        (newest data read once), final_before (everything older is final: the committed
        cursor's settle position) and how many record keys it remembers."""
        return {
            "head": format_rfc3339(self.schedule.head),
            "final_before": format_rfc3339(self.schedule.final_before),
            "seen_ids": len(self.seen),
        }

    # -- what the metrics read at each scrape -----------------------------------------------

    def request_budget_per_minute(self) -> float:
        return float(self.budget.per_minute)

    def request_budget_used_ratio(self) -> float:
        return self.budget.used_ratio()

    def head_lag_seconds(self) -> float:
        if not self._restored:
            return 0.0
        return max(0.0, self._api_now() - self.schedule.head)

    # -- polling ----------------------------------------------------------------------------

    async def poll(self) -> AsyncIterator[Batch]:
        self.bounds.poll_started()
        api_now = self._api_now()
        windows = self._head_windows(floor_ms(api_now - self._config.end_margin))
        sent_before = self.budget.requests[HEAD] + self.budget.requests[BACKFILL]
        async with aclosing(self._head_pages(windows)) as pages:
            async for window, page in pages:
                batch, change = self._page_batch(window, page)
                yield batch
                self._apply(change)
        sent = self.budget.requests[HEAD] + self.budget.requests[BACKFILL] - sent_before
        self._head_requests = max(1, sent)
        if len(windows) >= MAX_WINDOWS_PER_POLL:
            self._log.info("window_budget_spent", windows=MAX_WINDOWS_PER_POLL)
            return
        async with aclosing(self._rescan_pages(MAX_WINDOWS_PER_POLL - len(windows))) as pages:
            async for window, page in pages:
                batch, change = self._page_batch(window, page)
                yield batch
                self._apply(change)
        self.bounds.poll_finished()

    def _head_windows(self, horizon: float) -> list[ReportWindow]:
        """The head's windows up to ``horizon``, each starting where the previous one ends
        (at most ``MAX_WINDOWS_PER_POLL``); those ending before the settle window are
        backfill."""
        settled_until = self._api_now() - self._config.settle_window
        windows: list[ReportWindow] = []
        start = self.schedule.head
        while horizon - start >= MIN_WINDOW_SECONDS and len(windows) < MAX_WINDOWS_PER_POLL:
            end = min(horizon, floor_ms(start + self._config.max_window))
            windows.append(ReportWindow(start, end, BACKFILL if end <= settled_until else HEAD))
            start = end
        return windows

    async def _head_pages(
        self, windows: list[ReportWindow]
    ) -> AsyncIterator[tuple[ReportWindow, WindowPage]]:
        """The pages of the head's windows, in order: the backfill ones read concurrently
        when there are several, the others one after the other."""
        backfill = [window for window in windows if window.purpose == BACKFILL]
        concurrent = len(backfill) > 1 and self._config.backfill_concurrency > 1
        try:
            if concurrent:
                async with aclosing(self._backfill(backfill)) as pages:
                    async for item in pages:
                        yield item
                if self.schedule.head != backfill[-1].end:
                    return  # the prefetch was dropped: the next poll plans again
            for window in windows[len(backfill) if concurrent else 0 :]:
                if window.start != self.schedule.head:
                    self.backfill.replanned += 1
                    return
                async with aclosing(self._window_pages(window)) as pages:
                    async for page in pages:
                        yield window, page
        except _ClockMovedBack as moved:
            self.backfill.replanned += 1
            self._log.info("head_replanned", reason=str(moved))

    async def _backfill(
        self, windows: list[ReportWindow]
    ) -> AsyncIterator[tuple[ReportWindow, WindowPage]]:
        """Read backfill windows concurrently; hand their pages on in window order."""
        fetcher: OrderedWindowFetcher[ReportWindow, WindowPage] = OrderedWindowFetcher(
            windows,
            self._window_pages,
            concurrency=self._config.backfill_concurrency,
            buffer_pages=self._config.backfill_buffer_pages,
            stats=self.backfill,
            name=f"{self.id}:backfill",
        )
        current: ReportWindow | None = None
        async with aclosing(fetcher.pages()) as pages:
            async for window, page in pages:
                if window is not current:
                    if window.start != self.schedule.head:
                        self.backfill.replanned += 1
                        return
                    current = window
                yield window, page

    async def _rescan_pages(
        self, windows_left: int
    ) -> AsyncIterator[tuple[ReportWindow, WindowPage]]:
        """The pages of the re-scans due now, shortest step first. A step waits for the
        next poll while the budget has no room for it and the head's next read, unless it
        already waited at the last poll."""
        deferred: set[int] = set()
        for index in range(len(self.steps)):
            forced = index in self._deferred
            while windows_left > 0:
                planned = self.schedule.rescan_window(
                    index, self._api_now(), self._config.max_window
                )
                if planned is None:
                    break
                if not forced and not self._has_room(1 + self._head_requests):
                    deferred.add(index)
                    self.reads.rescans_deferred += 1
                    break
                windows_left -= 1
                window = ReportWindow(planned[0], planned[1], RESCAN, index)
                async with aclosing(self._window_pages(window)) as pages:
                    async for page in pages:
                        yield window, page
        self._deferred = frozenset(deferred)
        if deferred:
            self._log.debug(
                "rescans_deferred", steps=[self._step_labels[index] for index in sorted(deferred)]
            )

    async def _window_pages(self, window: ReportWindow) -> AsyncIterator[WindowPage]:
        """Every page of one window (newest first, following ``nextPageToken``)."""
        scanned_at = self._api_now()
        if window.end > scanned_at:
            raise _ClockMovedBack(
                f"the window ending {format_rfc3339(window.end)} is after the API's now"
            )
        base_params = {
            "startTime": format_rfc3339(window.start),
            "endTime": format_rfc3339(window.end),
            "maxResults": str(self._config.page_size),
        }
        if self._config.customer_id:
            base_params["customerId"] = self._config.customer_id
        guard = PageGuard(
            self._config.max_pages_per_window,
            f"the window from {base_params['startTime']} to {base_params['endTime']}",
        )
        page_token: str | None = None
        while True:
            params = dict(base_params)
            if page_token:
                params["pageToken"] = page_token
            page = await self._client.retrying(
                lambda params=params: self._fetch(params, window.purpose)
            )
            page_token = page.get("nextPageToken") or None
            guard.check(page.get("items") or [], page_token)
            yield WindowPage(scanned_at, page)
            if page_token is None:
                return

    def _page_batch(self, window: ReportWindow, page: WindowPage) -> tuple[Batch, _Change]:
        """The batch of one page, in order, and what it changes once handed on (the
        window's last page moves the schedule)."""
        events, dead, change = self._accept(page.body.get("items") or [], window)
        if not page.body.get("nextPageToken"):
            change.schedule = change.schedule.after_read(
                window.start, window.end, page.scanned_at, head_read=window.purpose != RESCAN
            )
        final_before = change.schedule.final_before
        checkpoint = Checkpoint(
            change.schedule.cursor(), change.added, final_before - EXPIRY_MARGIN
        )
        return Batch(self.id, events, checkpoint, dead, final_before), change

    def _apply(self, change: _Change) -> None:
        """Take a handed-on batch's change: its schedule, its keys, the expiry."""
        self.schedule = change.schedule
        add = self.seen.add
        for key, when in change.added.items():
            add(key, when)
        self.seen.expire_before(change.schedule.final_before - EXPIRY_MARGIN)
        self.reads.events_handed_on += change.events
        if change.late:
            self._metrics.late_events.labels(self.id).inc(change.late)
            if change.step is not None:
                label = self._step_labels[change.step]
                self._metrics.late_events_by_step.labels(self.id, label).inc(change.late)
        if change.newest > self.newest_event_time:
            self.newest_event_time = change.newest
            self._metrics.newest_event_timestamp.labels(self.id).set(change.newest)

    def _accept(
        self, items: list[Any], window: ReportWindow
    ) -> tuple[list[Event], list[DeadLetter], _Change]:
        ingested = format_rfc3339(self._clock.now())
        ceiling = self.bounds.future_ceiling()
        events: list[Event] = []
        dead: list[DeadLetter] = []
        seen = self.seen
        others = seen.others
        added: dict[SeenKey, float] = {}
        rereads = duplicates = dead_again = unknown = future = future_new = normalized_count = 0
        latest_future = newest = 0.0
        occurrences: dict[str, int] = {}
        seal_formats = self.seal_formats
        # Pages come newest first; sinks get them oldest first (events of one activity
        # keep their index order).
        for activity in reversed(items):
            identity = activity_identity(activity)
            key: bytes | None = None
            if identity is not None:
                key, when = identity
                if key in added or seen.known(key, when):
                    # Read before: skipped without building anything. A future-dated one
                    # still keeps the warning up while the API returns it.
                    rereads += 1
                    if when > ceiling:
                        future += 1
                        latest_future = max(latest_future, when)
                    continue
            normalized_count += 1
            try:
                normalized = normalize_activity(
                    activity, ingested=ingested, internal_domains=self._internal_domains
                )
            except MalformedRecordError as error:
                dl_key = dead_letter_key(activity)
                occurrence = occurrences.get(dl_key, 0)
                occurrences[dl_key] = occurrence + 1
                dl_key = dead_letter_key(activity, occurrence) if occurrence else dl_key
                if dl_key in others or dl_key in added:
                    dead_again += 1
                    continue
                # Remembered for as long as a window can return it: its id.time, or the
                # end of this window (the API returned it, so it is before that).
                added[dl_key] = _activity_time(activity, window)
                dead.append(
                    DeadLetter("source", error.reason, self.id, activity, detail=error.detail)
                )
                continue
            for event in normalized:
                is_future = event.timestamp > ceiling
                if is_future:
                    future += 1
                    latest_future = max(latest_future, event.timestamp)
                if (
                    event.id in others
                    or event.id in added
                    or (others and _legacy_id(event) in others)
                ):
                    # Delivered by a release that kept one id per event (until they
                    # expire: by then ``others`` only holds the rare dead-letter keys, so
                    # the old id is seldom computed), or an activity key unknown for
                    # another reason.
                    duplicates += 1
                    continue
                if key is None:
                    added[event.id] = event.timestamp
                event.source = self.id
                label_tenant(event, self._tenant)
                if seal_formats is not None:
                    # Now, while the document is still in cache (see Event.seal).
                    event.seal(seal_formats)
                future_new += is_future
                unknown += not event.mapped
                if not is_future and event.timestamp > newest:
                    newest = event.timestamp
                events.append(event)
            if identity is not None:
                # A future-dated activity keeps its key until window starts pass its
                # date: it never moves the head (window ends do, below the API's now).
                added[identity[0]] = identity[1]
        stats = self.reads
        stats.activities_read += len(items)
        stats.rereads += rereads
        stats.normalized += normalized_count
        if rereads:
            self._metrics.rereads.labels(self.id).inc(rereads)
        if rereads or duplicates:
            self._metrics.duplicates_dropped.labels(self.id).inc(rereads + duplicates)
        if unknown:
            self._metrics.unknown_events.labels(self.id).inc(unknown)
        if dead_again:
            self._log.debug("dead_letter_already_written", records=dead_again)
        if future:
            self.bounds.future_records(future_new, latest_future)
        late = len(events) if window.purpose == RESCAN else 0
        change = _Change(self.schedule, added, len(events), late, window.step, newest)
        return events, dead, change

    async def probe(self) -> int:
        """``check-config --online``: obtain an access token and read one page (one
        activity) of the last hour, as a poll would; the activities on it, or the poll's
        error (CredentialsError...)."""
        end = self._clock.now() - self._config.end_margin
        page = await self._fetch(
            {
                "startTime": format_rfc3339(end - 3600.0),
                "endTime": format_rfc3339(end),
                "maxResults": "1",
                **({"customerId": self._config.customer_id} if self._config.customer_id else {}),
            }
        )
        return len(page.get("items") or [])

    async def _fetch(self, params: dict[str, str], purpose: str = HEAD) -> dict[str, Any]:
        token = await self._tokens.token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        async with self.gate.slot():
            # Taken last, right before the request goes out: the budget records when it
            # was sent (a request held by a rate limit is not counted while it waits).
            await self._acquire(purpose)
            sent_at = self._clock.now()
            response = await self._client.request("GET", self._url, params=params, headers=headers)
        self._note_server_time(response, sent_at)
        if response.status == 401:
            # Expired or revoked: fetch a new token once, then give up with a clear error.
            self._tokens.invalidate()
            headers["Authorization"] = f"Bearer {await self._tokens.token()}"
            async with self.gate.slot():
                await self._acquire(purpose)
                response = await self._client.request(
                    "GET", self._url, params=params, headers=headers
                )
        if response.status == 200:
            page = response.json_object()
            items = page.get("items", [])
            if not isinstance(items, list):
                raise MalformedResponseError("response 'items' is not a list")
            if "kind" not in page:
                # Google leaves out `items` on an empty page, never `kind`: without it the
                # body cannot be told apart from a damaged one, and skipping is not an option.
                raise MalformedResponseError("response has no 'kind'")
            if len(items) > self._config.page_size:
                raise OversizedPageError(
                    f"page of {len(items)} activities, more than the {self._config.page_size} "
                    "asked for (maxResults): refused"
                )
            token_value = page.get("nextPageToken")
            if token_value is not None and not isinstance(token_value, str):
                raise MalformedResponseError("'nextPageToken' is not a string")
            self.gate.succeeded()
            return page
        error = self._error(response)
        if isinstance(error, TransientSourceError) and error.rate_limited:
            # Quota errors hold every request of this source, not only this one.
            self.gate.throttle(error.retry_after or QUOTA_RETRY_SECONDS)
        raise error

    async def _acquire(self, purpose: str) -> None:
        """Wait for the source's own budget and, when it shares one, its project's: the
        request is recorded in both as it goes out."""
        if self.project_share is None:
            await self.budget.acquire(purpose)
        else:
            await self.project_share.acquire(self.budget, purpose)

    def _has_room(self, requests: int) -> bool:
        """Whether ``requests`` could go out now without waiting for either budget."""
        return self.budget.has_room(requests) and (
            self.project_share is None or self.project_share.has_room(requests)
        )

    def _note_server_time(self, response: ApiResponse, sent_at: float) -> None:
        self.bounds.observe_date(response.headers, sent_at)
        # The assertion's iat/exp must be right on Google's clock (believed, capped).
        self._tokens.clock_offset = self.bounds.offset

    def _error(self, response: ApiResponse) -> SourceError:
        status = response.status
        message, reasons = _google_error(response)
        if status == 403 and reasons & QUOTA_REASONS:
            return TransientSourceError(
                f"quota exceeded (HTTP 403 {message})", QUOTA_RETRY_SECONDS, rate_limited=True
            )
        if status == 429 or status >= 500:
            # Seconds or an HTTP date, capped at max_retry_after; garbage is ignored.
            delay = self.bounds.wait(
                response.headers.get("Retry-After"),
                None,
                header="Retry-After",
                http_date=True,
                server_date=response.headers.get("Date"),
            )
            # 429, and a 503 that names a wait, ask every client to slow down.
            return TransientSourceError(
                f"HTTP {status}: {message}",
                delay,
                rate_limited=status == 429 or (status == 503 and delay is not None),
            )
        if status in (401, 403):
            return CredentialsError(
                f"access refused (HTTP {status}: {message}); the delegated admin needs the "
                "Reports privilege and the client the admin.reports.audit.readonly scope"
            )
        return SourceError(f"request refused (HTTP {status}: {message})")

    async def aclose(self) -> None:
        if self.project_share is not None:
            self.project_share.leave()
        await self._client.aclose()


def _activity_time(activity: Any, window: ReportWindow) -> float:
    """A malformed activity's ``id.time`` when it has one the window could have matched,
    else the window's end (the API matched it, so its real time is before that)."""
    try:
        when = activity_time(activity)
    except (MalformedRecordError, TypeError, ValueError, OverflowError):
        return window.end
    return when if window.start <= when < window.end else window.end


def _google_error(response: ApiResponse) -> tuple[str, set[str]]:
    """Message and ``errors[].reason`` values of Google's error envelope."""
    try:
        error = response.json_object().get("error")
    except MalformedResponseError:
        return error_excerpt(bytes(response.body[:400]).decode("utf-8", "replace")), set()
    if not isinstance(error, dict):
        return error_excerpt(str(error)), set()
    reasons = {
        item.get("reason")
        for item in error.get("errors") or []
        if isinstance(item, dict) and isinstance(item.get("reason"), str)
    }
    return error_excerpt(str(error.get("message", ""))), reasons
