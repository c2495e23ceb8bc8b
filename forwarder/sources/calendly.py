"""Calendly organization Activity Log source (``GET /activity_log_entries``).

Cursor: the newest ``occurred_at`` delivered. Each poll asks for entries from the cursor
minus a small overlap, oldest first (``sort=occurred_at:asc``), following
``next_page_token``. Entries inside the overlap are recognised by their ``uri`` (through
the deterministic event id derived from it) and dropped, so an entry at the cursor
boundary, or written a moment late with an earlier timestamp, is neither lost nor doubled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from forwarder.clock import Clock
from forwarder.config.model import CalendlySourceConfig
from forwarder.events import Batch, DeadLetter, Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.errors import MalformedRecordError
from forwarder.sources.base import (
    CredentialsError,
    MalformedResponseError,
    SourceError,
    TransientSourceError,
)
from forwarder.sources.http import ApiClient, ApiResponse
from forwarder.timeutil import format_rfc3339, parse_rfc3339

PROVIDER = "calendly"


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
        self._config = config
        self._url = config.base_url.rstrip("/") + "/activity_log_entries"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self._log = get_logger("forwarder.source.calendly", source=source_id)
        self.cursor = 0.0
        self.seen: dict[str, float] = {}

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
        page_token: str | None = None
        start = format_rfc3339(self.cursor - self._config.overlap, 6)
        while True:
            params = {
                "organization": self._config.organization,
                "sort": "occurred_at:asc",
                "count": str(self._config.page_size),
                "min_occurred_at": start,
            }
            if page_token:
                params["page_token"] = page_token
            page = await self._client.retrying(lambda params=params: self._fetch(params))
            yield self._batch(page["collection"])
            page_token = (page.get("pagination") or {}).get("next_page_token")
            if not page_token:
                return

    async def _fetch(self, params: dict[str, str]) -> dict[str, Any]:
        response = await self._client.request(
            "GET", self._url, params=params, headers=self._headers
        )
        self._note_rate_limit(response)
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
            remaining = _header_float(response, "X-RateLimit-Remaining")
            if remaining is not None and remaining <= 0:
                # Spend the wait before the next request instead of collecting a 429.
                await self._clock.sleep(_header_float(response, "X-RateLimit-Reset") or 1.0)
            return page
        raise self._error(response)

    def _error(self, response: ApiResponse) -> SourceError:
        status = response.status
        detail = _error_text(response)
        if status == 429:
            reset = _header_float(response, "X-RateLimit-Reset")
            return TransientSourceError(f"rate limited (HTTP 429): {detail}", retry_after=reset)
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
