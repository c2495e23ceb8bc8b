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

What the API says is bounded (:mod:`~forwarder.sources.untrusted`,
:mod:`~forwarder.sources.paging`): the cursor never passes the API's own now (its
``Date`` header, believed up to ``max_clock_offset``), so an entry dated in year 9999
(or a few seconds ahead) is delivered, flagged when later than ``FUTURE_TOLERANCE``,
but cannot make the source skip what comes after it; such an
entry comes back on every poll (``min_occurred_at`` is before it), so its id stays in
``seen`` for as long as the cursor is before it. A malformed entry is dead-lettered once:
a digest of it is kept in ``seen`` with its time (or, without a usable one, the time of
the next entry on its page, which the API sorts after it), and pruned with the ids once
no query can return it again. Pages with more entries than ``count``, pagination that
does not end, oversized bodies and waits beyond ``max_retry_after`` are refused or capped.

Each batch carries a :class:`~forwarder.checkpoint.base.Checkpoint`: the cursor, the keys
the page added to ``seen`` (event ids and dead-letter digests) and the expiry
(``cursor - overlap``); the whole ``seen`` map is never copied into a batch. The source
applies that change to its own cursor and ``seen`` only once the batch is handed on (the
``yield`` returned), so a batch the pipeline could not hand on changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, NamedTuple

from forwarder.checkpoint.base import Checkpoint
from forwarder.clock import Clock
from forwarder.config.model import CalendlySourceConfig
from forwarder.events import Batch, DeadLetter, Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.tenant import label_tenant
from forwarder.sources.backfill import BackfillStats, OrderedWindowFetcher
from forwarder.sources.base import (
    CredentialsError,
    MalformedResponseError,
    OversizedPageError,
    SourceError,
    TransientSourceError,
)
from forwarder.sources.calendly_windows import (
    MICROS,
    TimeWindow,
    WindowPlan,
    format_micros,
    to_micros,
)
from forwarder.sources.gate import RequestGate
from forwarder.sources.http import ApiClient, ApiResponse, error_excerpt
from forwarder.sources.paging import PageGuard
from forwarder.sources.untrusted import (
    FUTURE_TOLERANCE,
    ApiBounds,
    BoundedApiSource,
    dead_letter_key,
    parse_seconds,
)
from forwarder.timeutil import format_rfc3339, parse_rfc3339

PROVIDER = "calendly"
# Closed backfill windows end at least this long before the host's now: entries that old
# exist by the time a window is read even if the host clock runs a few minutes ahead of
# Calendly's, so no window fetched early can miss entries a later window's cursor passes.
BACKFILL_TAIL_MARGIN = 600.0
# Waiting for the rate-limit reset when the headers do not say how long.
DEFAULT_RESET_SECONDS = 1.0


class _Change(NamedTuple):
    """What one batch does to the source's state, applied once it is handed on."""

    cursor: float
    added: dict[str, float]
    expire_before: float


class CalendlySource(BoundedApiSource):
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
        self._config = config
        # Tags every event (ECS labels.tenant); a source is its own tenant by default.
        self._tenant = config.tenant or source_id
        self._url = config.base_url.rstrip("/") + "/activity_log_entries"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self._log = get_logger("forwarder.source.calendly", source=source_id)
        self.cursor = 0.0
        self.seen: dict[str, float] = {}
        self.gate = RequestGate(clock, config.backfill_concurrency)
        self.bounds = ApiBounds(source_id, config, metrics, clock, self._log, self.gate)
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
        """The whole in-memory state, in the shape ``restore`` takes (for tests)."""
        return {"cursor": format_rfc3339(self.cursor, 6), "seen": dict(self.seen)}

    def position(self) -> dict[str, Any]:
        """Where the source reads from, for the start-up and progress log lines (no keys
        and no secrets: the cursor and how many record ids it remembers)."""
        return {"cursor": format_rfc3339(self.cursor), "seen_ids": len(self.seen)}

    async def poll(self) -> AsyncIterator[Batch]:
        self.bounds.poll_started()
        self._repair_future_cursor()
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
                    batch, change = self._batch(page["collection"], window)
                    yield batch
                    # Asked for the next batch: this one was handed on.
                    self._apply(change)
            self.bounds.poll_finished()
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
            async for window, page in window_pages:
                batch, change = self._batch(page["collection"], window)
                yield batch
                self._apply(change)
        self.bounds.poll_finished()

    def _repair_future_cursor(self) -> None:
        """A cursor beyond any clock this source could believe (written by a version that
        let a future-dated entry move it) skips everything: move it back to the earliest
        time the API's now could be. Nothing after the entry that moved it was delivered,
        so this can only repeat entries (at least once), never skip one."""
        now = self._clock.now()
        if self.cursor > now + self.bounds.max_clock_offset + FUTURE_TOLERANCE:
            reset_to = now - self.bounds.max_clock_offset
            self._log.warning(
                "cursor_in_the_future_reset",
                cursor=_format_time(self.cursor),
                reset_to=format_rfc3339(reset_to, 6),
            )
            self.cursor = reset_to

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
        guard = PageGuard(
            self._config.max_pages_per_window,
            f"the window from {base['min_occurred_at']} to {base.get('max_occurred_at', 'now')}",
        )
        page_token: str | None = None
        while True:
            params = dict(base)
            if page_token:
                params["page_token"] = page_token
            first = page_token is None
            page = await self._client.retrying(lambda params=params: self._fetch(params))
            page_token = (page.get("pagination") or {}).get("next_page_token")
            guard.check(page["collection"], page_token)
            if first and plan is not None:
                plan.observe(window, page["collection"], more=bool(page_token))
            yield page
            if not page_token:
                return

    async def probe(self) -> int:
        """``check-config --online``: read one page (one entry) of the last day, as a poll
        would; the entries on it, or the poll's error (CredentialsError...)."""
        since = int((self._clock.now() - 86400.0) * 1_000_000)
        page = await self._fetch(
            {
                "organization": self._config.organization,
                "sort": "occurred_at:asc",
                "count": "1",
                "min_occurred_at": format_micros(since),
            }
        )
        return len(page["collection"])

    async def _fetch(self, params: dict[str, str]) -> dict[str, Any]:
        async with self.gate.slot():
            sent_at = self._clock.now()
            response = await self._client.request(
                "GET", self._url, params=params, headers=self._headers
            )
        self.bounds.observe_date(response.headers, sent_at)
        self._note_rate_limit(response)
        if response.status == 429:
            reset = self._reset_seconds(response)
            # Every request of this source waits for the reset, not only this one.
            self.gate.throttle(reset or DEFAULT_RESET_SECONDS)
            raise TransientSourceError(
                f"rate limited (HTTP 429): {_error_text(response)}",
                retry_after=reset,
                rate_limited=True,
            )
        if response.status == 200:
            page = response.json_object()
            collection = page.get("collection")
            if not isinstance(collection, list):
                raise MalformedResponseError("response has no 'collection' list")
            if len(collection) > self._config.page_size:
                raise OversizedPageError(
                    f"page of {len(collection)} entries, more than the {self._config.page_size} "
                    "asked for (count): refused"
                )
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
                self.gate.throttle(self._reset_seconds(response) or DEFAULT_RESET_SECONDS)
            return page
        raise self._error(response)

    def _reset_seconds(self, response: ApiResponse) -> float | None:
        """``X-RateLimit-Reset`` (seconds until the limit resets), capped."""
        return self.bounds.wait(
            response.headers.get("X-RateLimit-Reset"), None, header="X-RateLimit-Reset"
        )

    def _error(self, response: ApiResponse) -> SourceError:
        status = response.status
        detail = _error_text(response)
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

    def _batch(self, collection: list[Any], window: TimeWindow) -> tuple[Batch, _Change]:
        """The batch of one page, oldest first, and the change it makes to the cursor and
        ``seen``, built without touching either (:meth:`_apply` applies it once the batch
        is handed on)."""
        ingested = format_rfc3339(self._clock.now())
        # Dated after this: flagged as from the future.
        future_after = self.bounds.future_ceiling()
        # An entry dated after the API's now does not move the cursor at all (even one a
        # few seconds ahead, a backend host's skew): it is delivered and kept in `seen`,
        # and the next query does not skip entries stamped before it still to come.
        ceiling = max(self.cursor, self.bounds.api_now())
        events: list[Event] = []
        dead: list[DeadLetter] = []
        seen = self.seen
        # This page's new keys: `seen` itself changes only when the batch is handed on.
        added: dict[str, float] = {}
        duplicates = dead_again = unknown = future_new = future = 0
        latest_future = 0.0
        # Dead letters without a usable time: the API sorts them by occurred_at, so the
        # next entry's time is one they cannot be after.
        undated: list[str] = []
        occurrences: dict[str, int] = {}
        newest = self.cursor
        seal_formats = self.seal_formats
        for entry in collection:
            try:
                event = normalize_entry(entry, ingested=ingested)
            except MalformedRecordError as error:
                key = dead_letter_key(entry)
                occurrence = occurrences.get(key, 0)
                occurrences[key] = occurrence + 1
                key = dead_letter_key(entry, occurrence) if occurrence else key
                if key in seen or key in added:
                    dead_again += 1
                    continue
                dead.append(DeadLetter("source", error.reason, self.id, entry, detail=error.detail))
                when = _entry_time(entry)
                if when is None or not _within(window, when):
                    # No usable time (or one the query could not have matched, so not the
                    # one the API sorts by): bounded by the next entry instead.
                    undated.append(key)
                else:
                    added[key] = when
                continue
            timestamp = event.timestamp
            for key in undated:
                added[key] = timestamp
            undated.clear()
            is_future = timestamp > future_after
            if is_future:
                future += 1
                latest_future = max(latest_future, timestamp)
            if event.id in seen or event.id in added:
                duplicates += 1
                continue
            # A future-dated entry comes back on every poll: its id stays in `seen` until
            # the cursor passes its date (the expiry below keeps it).
            added[event.id] = timestamp
            event.source = self.id
            label_tenant(event, self._tenant)
            if seal_formats is not None:
                # Now, while the document is still in cache (see Event.seal).
                event.seal(seal_formats)
            events.append(event)
            unknown += not event.mapped
            future_new += is_future
            if newest < timestamp <= ceiling:
                newest = timestamp
        if undated:
            # Last on the page: before the window's end, and (unless it is itself from
            # the future) before the API's now.
            bound = future_after
            if window.end_us is not None:
                bound = min(bound, window.end_us / MICROS)
            for key in undated:
                added[key] = max(bound, newest)
        if duplicates:
            self._metrics.duplicates_dropped.labels(self.id).inc(duplicates)
        if unknown:
            self._metrics.unknown_events.labels(self.id).inc(unknown)
        if dead_again:
            self._log.debug("dead_letter_already_written", records=dead_again)
        if future:
            self.bounds.future_records(future_new, latest_future)
        # Next poll's min_occurred_at: nothing older can come back, so it is forgotten
        # (a key of this page already older is not even stored).
        horizon = newest - self._config.overlap
        added = {key: when for key, when in added.items() if when >= horizon}
        checkpoint = Checkpoint({"cursor": format_rfc3339(newest, 6)}, added, horizon)
        batch = Batch(self.id, events, checkpoint, dead, cursor_time=newest)
        return batch, _Change(newest, added, horizon)

    def _apply(self, change: _Change) -> None:
        """The batch of ``change`` was handed on: move the cursor, add its keys to
        ``seen`` and forget the expired ones (what the store does with its checkpoint)."""
        self.cursor = change.cursor
        seen = self.seen
        seen.update(change.added)
        horizon = change.expire_before
        self.seen = {key: when for key, when in seen.items() if when >= horizon}

    def _note_rate_limit(self, response: ApiResponse) -> None:
        remaining = _header_float(response, "X-RateLimit-Remaining")
        if remaining is not None:
            self._metrics.rate_limit_remaining.labels(self.id).set(remaining)

    async def aclose(self) -> None:
        await self._client.aclose()


def _header_float(response: ApiResponse, name: str) -> float | None:
    """A header's finite, non-negative number (garbage, NaN and infinities: ``None``)."""
    value = parse_seconds(response.headers.get(name))
    return value if value is not None and value != float("inf") else None


def _entry_time(entry: Any) -> float | None:
    """A malformed entry's ``occurred_at``, when it has a usable one."""
    if not isinstance(entry, dict):
        return None
    try:
        return parse_rfc3339(entry.get("occurred_at"))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def _within(window: TimeWindow, timestamp: float) -> bool:
    moment = to_micros(timestamp)
    return window.start_us <= moment and (window.end_us is None or moment <= window.end_us)


def _format_time(timestamp: float) -> str:
    try:
        return format_rfc3339(timestamp, 6)
    except (ValueError, OverflowError, OSError):
        return f"{timestamp:.0f}"


def _error_text(response: ApiResponse) -> str:
    """Calendly's ``title: message`` from an error body, else a short excerpt."""
    try:
        body = response.json_object()
    except MalformedResponseError:
        return error_excerpt(bytes(response.body[:400]).decode("utf-8", "replace"))
    return error_excerpt(f"{body.get('title', '')}: {body.get('message', '')}".strip(": "))
