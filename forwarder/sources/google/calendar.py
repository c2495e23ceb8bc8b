"""Google Workspace Calendar audit events (Reports API ``activities.list``,
``userKey=all``, ``applicationName=calendar``).

Google reports Calendar events late (tens of minutes, up to a couple of hours) and lists
them newest first, so a cursor at "the newest event seen" would lose every late event.
The checkpoint instead holds:

- ``watermark``: the end of the last window read completely;
- ``final_before``: events older than this were visible for longer than the settle
  window when they were last scanned, so no late arrival is expected before it;
- ``seen``: ids (with event times) of the events delivered at or after
  ``min(watermark, final_before)``.

Each window starts at ``min(watermark, final_before)``, so the trailing settle window is
re-scanned on every poll, and the ``seen`` ids make each event count exactly once. Page
batches inside a window add to ``seen`` without moving the watermark; the last page of
the window moves it.

Catch-up (parallel backfill): a window that ends more than ``settle_window`` before the
poll started is *settled*: once it is read, ``final_before`` reaches its end, so the next
window starts exactly where it ended. The starts of all settled windows are therefore
known in advance, and they are read ``backfill_concurrency`` at a time by
:class:`~forwarder.sources.backfill.OrderedWindowFetcher`, each newest first with its own
page tokens, and handed on in window order through the same page logic as a sequential
read (``scanned_at`` is when the window's first request went out, the conservative
choice). Before a prefetched window is used its planned start is checked against
``window_start``; should they ever differ (the API's clock moved), the prefetch is dropped
and reading goes on sequentially. The windows inside the settle window, whose starts
depend on when the previous one was scanned, are always read one after the other.

What the API says is bounded (:mod:`~forwarder.sources.untrusted`,
:mod:`~forwarder.sources.paging`): windows are cut on the API's clock, but its ``Date``
header is believed only up to ``max_clock_offset`` (a ``Date`` in year 9999 once made a
poll plan 70 million windows), and one poll plans at most ``MAX_WINDOWS_PER_POLL``
windows (the next poll goes on from there). The watermark and ``final_before`` only
ever move to window ends, which never pass the API's now; an activity dated after it is
delivered and flagged, and its ids stay in ``seen`` for as long as a window can return
it. A malformed activity is dead-lettered once: a digest of it is kept in ``seen`` with
its ``id.time`` (or, without a usable one, the end of the window that returned it) and
pruned with the event ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from forwarder.clock import Clock
from forwarder.config.model import GoogleCalendarSourceConfig
from forwarder.events import Batch, DeadLetter, Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.google_calendar import activity_time, normalize_activity
from forwarder.sources.backfill import BackfillStats, OrderedWindowFetcher
from forwarder.sources.base import (
    CredentialsError,
    MalformedResponseError,
    OversizedPageError,
    SourceError,
    TransientSourceError,
)
from forwarder.sources.gate import RequestGate
from forwarder.sources.google.auth import ServiceAccountTokenProvider
from forwarder.sources.http import ApiClient, ApiResponse, error_excerpt
from forwarder.sources.paging import PageGuard
from forwarder.sources.untrusted import ApiBounds, BoundedApiSource, dead_letter_key
from forwarder.timeutil import format_rfc3339

PROVIDER = "google_calendar"
ACTIVITIES_PATH = "/admin/reports/v1/activity/users/all/applications/calendar"
QUOTA_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# Google's guidance for quota errors starts backing off at 5 s.
QUOTA_RETRY_SECONDS = 5.0
# Windows shorter than this are not worth a request (and the API needs start < end).
MIN_WINDOW_SECONDS = 1.0
# Windows one poll plans and reads at most; the next poll goes on from there. At the
# default max_window (1 h) that is 41 days of log per poll (16 h at the shortest, 60 s),
# so real catch-ups barely notice, while a clock gone wrong can no longer make one poll
# plan millions of windows.
MAX_WINDOWS_PER_POLL = 1000


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """``startTime`` (inclusive) .. ``endTime`` (exclusive), Unix seconds."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class WindowPage:
    """One page of a window, with when the window's first request went out (API clock)."""

    scanned_at: float
    body: dict[str, Any]


class GoogleCalendarSource(BoundedApiSource):
    """Polls Calendar audit events with a re-scanned trailing window."""

    provider = PROVIDER

    def __init__(
        self,
        source_id: str,
        config: GoogleCalendarSourceConfig,
        tokens: ServiceAccountTokenProvider,
        client: ApiClient,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.id = source_id
        self.poll_interval = config.poll_interval
        self.seal_formats: tuple[str, ...] | None = None
        self._config = config
        self._url = config.base_url.rstrip("/") + ACTIVITIES_PATH
        self._tokens = tokens
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self.watermark = 0.0
        self.final_before = 0.0
        self.seen: dict[str, float] = {}
        self._log = get_logger("forwarder.source.google_calendar", source=source_id)
        self.gate = RequestGate(clock, config.backfill_concurrency)
        # The API's clock, from the responses' Date header (capped): windows are cut on
        # the API's clock, or a fast host would ask for a future endTime (refused) and a
        # slow one would settle events too early.
        self.bounds = ApiBounds(source_id, config, metrics, clock, self._log, self.gate)
        metrics.source_capped_values.labels(source_id, "token_lifetime")  # at 0 from the start
        self.backfill = BackfillStats()
        metrics.watch_source(source_id, self.gate, self.backfill)

    def _api_now(self) -> float:
        return self.bounds.api_now()

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        if checkpoint is None:
            self.watermark = self._clock.now() - self._config.initial_lookback
            self.final_before = self.watermark
            self.seen = {}
            return
        try:
            self.watermark = float(checkpoint["watermark"])
            self.final_before = float(checkpoint["final_before"])
            self.seen = {str(key): float(value) for key, value in checkpoint["seen"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SourceError(
                f"checkpoint of source {self.id} is not a Google Calendar cursor: {error}"
            ) from None

    def checkpoint(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark,
            "watermark_time": format_rfc3339(self.watermark),
            "final_before": self.final_before,
            "seen": dict(self.seen),
        }

    @property
    def window_start(self) -> float:
        """Where the next window starts; also the event time before which everything
        is delivered (the cursor's position, for metrics)."""
        return min(self.watermark, self.final_before)

    async def poll(self) -> AsyncIterator[Batch]:
        self.bounds.poll_started()
        horizon = self._api_now() - self._config.end_margin
        settled = self._settled_windows(horizon)
        budget = MAX_WINDOWS_PER_POLL
        if len(settled) > 1:
            budget -= len(settled)
            async for batch in self._backfill(settled):
                yield batch
        while horizon - self.watermark >= MIN_WINDOW_SECONDS:
            if budget <= 0:
                self._log.info("window_budget_spent", windows=MAX_WINDOWS_PER_POLL)
                return
            budget -= 1
            window = ReportWindow(
                self.window_start, min(horizon, self.watermark + self._config.max_window)
            )
            async with aclosing(self._window_pages(window)) as pages:
                async for page in pages:
                    yield self._page_batch(window, page)
        self.bounds.poll_finished()

    def _settled_windows(self, horizon: float) -> list[ReportWindow]:
        """The windows a sequential read would take next that end before the settle
        window, with their starts: each starts where the previous one ends (at most
        ``MAX_WINDOWS_PER_POLL``)."""
        if self._config.backfill_concurrency <= 1:
            return []
        settled_until = self._api_now() - self._config.settle_window
        windows: list[ReportWindow] = []
        start, watermark = self.window_start, self.watermark
        while horizon - watermark >= MIN_WINDOW_SECONDS and len(windows) < MAX_WINDOWS_PER_POLL:
            end = min(horizon, watermark + self._config.max_window)
            if end > settled_until:
                break
            windows.append(ReportWindow(start, end))
            start = watermark = end
        return windows

    async def _backfill(self, windows: list[ReportWindow]) -> AsyncIterator[Batch]:
        """Read settled windows concurrently; hand their pages on in window order."""
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
                    if window.start != self.window_start:
                        # Planned on a clock that has moved since (the API's Date header
                        # changed the offset): drop the prefetch, read on sequentially.
                        self.backfill.replanned += 1
                        return
                    current = window
                yield self._page_batch(window, page)

    async def _window_pages(self, window: ReportWindow) -> AsyncIterator[WindowPage]:
        """Every page of one window (newest first, following ``nextPageToken``)."""
        scanned_at = self._api_now()
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
            page = await self._client.retrying(lambda params=params: self._fetch(params))
            page_token = page.get("nextPageToken") or None
            guard.check(page.get("items") or [], page_token)
            yield WindowPage(scanned_at, page)
            if page_token is None:
                return

    def _page_batch(self, window: ReportWindow, page: WindowPage) -> Batch:
        """The batch of one page, in order; the window's last page moves the watermark."""
        events, dead = self._accept(page.body.get("items") or [], window)
        if not page.body.get("nextPageToken"):
            # The whole window is read: move the watermark and prune the seen ids.
            self.watermark = window.end
            self.final_before = max(
                self.final_before,
                min(window.end, page.scanned_at - self._config.settle_window),
            )
            keep_from = self.window_start
            self.seen = {key: when for key, when in self.seen.items() if when >= keep_from}
        return Batch(self.id, events, self.checkpoint(), dead, self.window_start)

    def _accept(
        self, items: list[Any], window: ReportWindow
    ) -> tuple[list[Event], list[DeadLetter]]:
        ingested = format_rfc3339(self._clock.now())
        ceiling = self.bounds.future_ceiling()
        events: list[Event] = []
        dead: list[DeadLetter] = []
        seen = self.seen
        duplicates = dead_again = late = unknown = future = future_new = 0
        latest_future = 0.0
        occurrences: dict[str, int] = {}
        watermark = self.watermark
        seal_formats = self.seal_formats
        # Pages come newest first; sinks get them oldest first (events of one activity
        # keep their index order).
        for activity in reversed(items):
            try:
                normalized = normalize_activity(activity, ingested=ingested)
            except MalformedRecordError as error:
                key = dead_letter_key(activity)
                occurrence = occurrences.get(key, 0)
                occurrences[key] = occurrence + 1
                key = dead_letter_key(activity, occurrence) if occurrence else key
                if key in seen:
                    dead_again += 1
                    continue
                # Remembered for as long as a window can return it: its id.time, or the
                # end of this window (the API returned it, so it is before that).
                seen[key] = _activity_time(activity, window)
                dead.append(
                    DeadLetter("source", error.reason, self.id, activity, detail=error.detail)
                )
                continue
            for event in normalized:
                is_future = event.timestamp > ceiling
                if is_future:
                    future += 1
                    latest_future = max(latest_future, event.timestamp)
                if event.id in seen:
                    duplicates += 1
                    continue
                # A future-dated event keeps its id in `seen` until window starts pass its
                # date: it never moves the watermark (window ends do, below the API's now).
                seen[event.id] = event.timestamp
                event.source = self.id
                if seal_formats is not None:
                    # Now, while the document is still in cache (see Event.seal).
                    event.seal(seal_formats)
                if event.timestamp < watermark:
                    late += 1
                future_new += is_future
                unknown += not event.mapped
                events.append(event)
        if duplicates:
            self._metrics.duplicates_dropped.labels(self.id).inc(duplicates)
        if late:
            self._metrics.late_events.labels(self.id).inc(late)
        if unknown:
            self._metrics.unknown_events.labels(self.id).inc(unknown)
        if dead_again:
            self._log.debug("dead_letter_already_written", records=dead_again)
        if future:
            self.bounds.future_records(future_new, latest_future)
        return events, dead

    async def _fetch(self, params: dict[str, str]) -> dict[str, Any]:
        token = await self._tokens.token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        async with self.gate.slot():
            sent_at = self._clock.now()
            response = await self._client.request("GET", self._url, params=params, headers=headers)
        self._note_server_time(response, sent_at)
        if response.status == 401:
            # Expired or revoked: fetch a new token once, then give up with a clear error.
            self._tokens.invalidate()
            headers["Authorization"] = f"Bearer {await self._tokens.token()}"
            async with self.gate.slot():
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
