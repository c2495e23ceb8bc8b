"""Calendly organization Activity Log source (``GET /activity_log_entries``).

Cursor: the newest ``occurred_at`` delivered. Each poll asks for entries from the cursor
minus a small overlap, oldest first (``sort=occurred_at:asc``), following
``next_page_token``. Entries inside the overlap are recognised by their ``uri`` (through
the deterministic event id derived from it) and dropped, so an entry at the cursor
boundary, or written a moment late with an earlier timestamp, is neither lost nor doubled.

Catch-up (parallel backfill): when the cursor is more than one ``backfill_window`` behind,
the range up to ``BACKFILL_TAIL_MARGIN`` ago is split into consecutive windows
``[start, start + width - 1 µs]`` (see :mod:`~forwarder.sources.calendly_windows`: no
overlap, no gap, widths sized to about one page each), followed by one open-ended window
(no ``max_occurred_at``, as a sequential poll). The windows are read
``backfill_concurrency`` at a time by :class:`~forwarder.sources.backfill.OrderedWindowFetcher`
and their pages handed on in window order, so the source sees exactly the page sequence a
sequential read would give (cut at other places): cursor, ``seen`` and checkpoints keep
their meaning, and a restart from any checkpoint re-reads only what was not committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from forwarder.clock import Clock
from forwarder.config.model import CalendlySourceConfig
from forwarder.events import Batch, DeadLetter, Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.errors import MalformedRecordError
from forwarder.sources.backfill import BackfillStats, OrderedWindowFetcher
from forwarder.sources.base import (
    CredentialsError,
    MalformedResponseError,
    SourceError,
    TransientSourceError,
)
from forwarder.sources.calendly_windows import TimeWindow, WindowPlan, format_micros, to_micros
from forwarder.sources.gate import RequestGate
from forwarder.sources.http import ApiClient, ApiResponse
from forwarder.timeutil import format_rfc3339, parse_rfc3339

PROVIDER = "calendly"
# Closed backfill windows end at least this long before the host's now: entries that old
# exist by the time a window is read even if the host clock runs a few minutes ahead of
# Calendly's, so no window fetched early can miss entries a later window's cursor passes.
BACKFILL_TAIL_MARGIN = 600.0
# Waiting for the rate-limit reset when the headers do not say how long.
DEFAULT_RESET_SECONDS = 1.0


class CalendlySource:
    """Polls one Calendly organization's Activity Log."""

    provider = PROVIDER

    def __init__(
        self,
        source_id: str,
        config: CalendlySourceConfig,
        token: str,
        client: ApiClient,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.id = source_id
        self.poll_interval = config.poll_interval
        self.seal_formats: tuple[str, ...] | None = None
        self.warnings: dict[str, str] = {}
        self._config = config
        self._url = config.base_url.rstrip("/") + "/activity_log_entries"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self._log = get_logger("forwarder.source.calendly", source=source_id)
        self.cursor = 0.0
        self.seen: dict[str, float] = {}
        self.gate = RequestGate(clock, config.backfill_concurrency)
        self.backfill = BackfillStats()
        metrics.watch_source(source_id, self.gate, self.backfill)
        self.last_plan: WindowPlan | None = None
        """The windows of the last backfill (for tests and benchmarks)."""

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        if checkpoint is None:
            self.cursor = self._clock.now() - self._config.initial_lookback
            self.seen = {}
            return
        try:
            self.cursor = parse_rfc3339(checkpoint["cursor"])
            self.seen = {str(key): float(value) for key, value in checkpoint["seen"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SourceError(
                f"checkpoint of source {self.id} is not a Calendly cursor: {error}"
            ) from None

    def checkpoint(self) -> dict[str, Any]:
        return {"cursor": format_rfc3339(self.cursor, 6), "seen": dict(self.seen)}

    async def poll(self) -> AsyncIterator[Batch]:
        plan = WindowPlan(
            start_us=to_micros(self.cursor - self._config.overlap),
            tail_us=to_micros(self._clock.now() - BACKFILL_TAIL_MARGIN),
            width_us=to_micros(self._config.backfill_window),
            page_size=self._config.page_size,
            pages_per_window=self._config.backfill_buffer_pages,
        )
        if plan.single or self._config.backfill_concurrency <= 1:
            # Caught up (or told to read sequentially): one open-ended read, a request
            # only when the pipeline asks for the next batch.
            window = TimeWindow(plan.start_us, None)
            async with aclosing(self._window_pages(window)) as pages:
                async for page in pages:
                    yield self._batch(page["collection"])
            return
        self.last_plan = plan
        fetcher: OrderedWindowFetcher[TimeWindow, dict[str, Any]] = OrderedWindowFetcher(
            plan,
            lambda window: self._window_pages(window, plan),
            concurrency=self._config.backfill_concurrency,
            buffer_pages=self._config.backfill_buffer_pages,
            stats=self.backfill,
            name=f"{self.id}:backfill",
        )
        # Closing the poll (the pipeline stopped, or an error) cancels every window read.
        async with aclosing(fetcher.pages()) as window_pages:
            async for _, page in window_pages:
                yield self._batch(page["collection"])

    async def _window_pages(
        self, window: TimeWindow, plan: WindowPlan | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every page of one window, oldest entries first, following ``next_page_token``;
        the first page's density sizes the windows ``plan`` has yet to hand out."""
        base = {
            "organization": self._config.organization,
            "sort": "occurred_at:asc",
            "count": str(self._config.page_size),
            "min_occurred_at": format_micros(window.start_us),
        }
        if window.end_us is not None:
            base["max_occurred_at"] = format_micros(window.end_us)
        page_token: str | None = None
        while True:
            params = dict(base)
            if page_token:
                params["page_token"] = page_token
            first = page_token is None
            page = await self._client.retrying(lambda params=params: self._fetch(params))
            page_token = (page.get("pagination") or {}).get("next_page_token")
            if first and plan is not None:
                plan.observe(window, page["collection"], more=bool(page_token))
            yield page
            if not page_token:
                return

    async def _fetch(self, params: dict[str, str]) -> dict[str, Any]:
        async with self.gate.slot():
            response = await self._client.request(
                "GET", self._url, params=params, headers=self._headers
            )
        self._note_rate_limit(response)
        if response.status == 429:
            # Every request of this source waits for the reset, not only this one.
            self.gate.throttle(
                _header_float(response, "X-RateLimit-Reset") or DEFAULT_RESET_SECONDS
            )
        if response.status == 200:
            page = response.json_object()
            if not isinstance(page.get("collection"), list):
                raise MalformedResponseError("response has no 'collection' list")
            pagination = page.get("pagination")
            if pagination is not None and not isinstance(pagination, dict):
                raise MalformedResponseError("response 'pagination' is not an object")
            token = (pagination or {}).get("next_page_token")
            if token is not None and not isinstance(token, str):
                raise MalformedResponseError("'pagination.next_page_token' is not a string")
            self.gate.succeeded()
            remaining = _header_float(response, "X-RateLimit-Remaining")
            if remaining is not None and remaining <= self.gate.active:
                # Spend the wait before the next request instead of collecting 429s: each
                # request still in flight takes one of the `remaining`, so nothing would be
                # left for the next one (sequentially: remaining is 0).
                self.gate.throttle(
                    _header_float(response, "X-RateLimit-Reset") or DEFAULT_RESET_SECONDS
                )
            return page
        raise self._error(response)

    def _error(self, response: ApiResponse) -> SourceError:
        status = response.status
        detail = _error_text(response)
        if status == 429:
            reset = _header_float(response, "X-RateLimit-Reset")
            return TransientSourceError(
                f"rate limited (HTTP 429): {detail}", retry_after=reset, rate_limited=True
            )
        if status >= 500:
            return TransientSourceError(f"HTTP {status}: {detail}")
        if status == 401:
            return CredentialsError(f"token rejected (HTTP 401): {detail}")
        if status == 403:
            return CredentialsError(
                f"permission denied (HTTP 403): {detail}; the Activity Log needs an Enterprise "
                "plan, an owner or admin token and the activity_log:read scope"
            )
        return SourceError(f"request refused (HTTP {status}): {detail}")

    def _batch(self, collection: list[Any]) -> Batch:
        ingested = format_rfc3339(self._clock.now())
        events: list[Event] = []
        dead: list[DeadLetter] = []
        seen = self.seen
        duplicates = unknown = 0
        newest = self.cursor
        seal_formats = self.seal_formats
        for entry in collection:
            try:
                event = normalize_entry(entry, ingested=ingested)
            except MalformedRecordError as error:
                dead.append(DeadLetter("source", error.reason, self.id, entry, detail=error.detail))
                continue
            if event.id in seen:
                duplicates += 1
                continue
            seen[event.id] = event.timestamp
            event.source = self.id
            if seal_formats is not None:
                # Now, while the document is still in cache (see Event.seal).
                event.seal(seal_formats)
            events.append(event)
            unknown += not event.mapped
            if event.timestamp > newest:
                newest = event.timestamp
        if duplicates:
            self._metrics.duplicates_dropped.labels(self.id).inc(duplicates)
        if unknown:
            self._metrics.unknown_events.labels(self.id).inc(unknown)
        self.cursor = newest
        horizon = newest - self._config.overlap
        self.seen = {key: when for key, when in seen.items() if when >= horizon}
        return Batch(self.id, events, self.checkpoint(), dead, cursor_time=self.cursor)

    def _note_rate_limit(self, response: ApiResponse) -> None:
        remaining = _header_float(response, "X-RateLimit-Remaining")
        if remaining is not None:
            self._metrics.rate_limit_remaining.labels(self.id).set(remaining)

    async def aclose(self) -> None:
        await self._client.aclose()


def _header_float(response: ApiResponse, name: str) -> float | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _error_text(response: ApiResponse) -> str:
    """Calendly's ``title: message`` from an error body, else a short excerpt."""
    try:
        body = response.json_object()
    except MalformedResponseError:
        return response.body[:200].decode("utf-8", "replace")
    return f"{body.get('title', '')}: {body.get('message', '')}".strip(": ")
