"""The HTTP sink: one ``send`` splits its events into requests bounded by events and
bytes, posts them concurrently under the adaptive limit, and reports per event what was
delivered, what to retry and what the receiver refused for good."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import aiohttp
import orjson

from forwarder import __version__
from forwarder.config.loader import read_secret
from forwarder.config.model import HttpSinkConfig, TlsConfig
from forwarder.events import Event
from forwarder.observability.metrics import Metrics
from forwarder.sinks.base import Coalescing, SendResult
from forwarder.sinks.http.concurrency import AdaptiveConcurrency
from forwarder.sinks.http.encoding import BodyEncoder
from forwarder.sinks.tls import client_context

RETRIABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Credentials or endpoint problems: an operator fixes them; dead-lettering every event
# meanwhile would empty the pipeline into a file. Retried (the cursor waits), logged.
MISCONFIGURED_STATUSES = frozenset({401, 403, 404, 407})
OVERLOAD_STATUSES = frozenset({429, 503})
MAX_ERROR_BODY = 2048


@dataclass(slots=True)
class Outcome:
    """What one request did with its events (indexes into the ``send`` list)."""

    delivered: set[int] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)
    details: dict[int, str] = field(default_factory=dict)
    retry: str | None = None
    retry_after: float | None = None

    def merge(self, other: Outcome) -> None:
        self.delivered |= other.delivered
        self.rejected.update(other.rejected)
        self.details.update(other.details)
        if other.retry is not None and self.retry is None:
            self.retry = other.retry
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)


class HttpSink:
    """POSTs NDJSON, JSON arrays, Splunk HEC events or Elasticsearch bulk requests.

    Retries connection errors, timeouts, 408, 429 and 5xx (honouring ``Retry-After``);
    other 4xx refuse the request's events for good (dead-lettered with the response
    body), except 401/403/404/407, which mean the sink is misconfigured and are retried
    until an operator fixes them. Bulk responses are read per item. Each request carries
    an ``Idempotency-Key`` header: a digest of its events' ids.
    """

    def __init__(self, sink_id: str, config: HttpSinkConfig, metrics: Metrics) -> None:
        self.id = sink_id
        self.format = config.format
        self.reads_documents = False
        self._config = config
        self._metrics = metrics
        self._encoder = BodyEncoder(config)
        self.coalescing = Coalescing(
            max_events=config.batch.max_events * config.concurrency.max,
            max_wait=config.batch.timeout,
        )
        self.limiter = AdaptiveConcurrency(
            config.concurrency.max, config.concurrency.adaptive, self._observe_concurrency
        )
        self._headers = {
            "User-Agent": f"forwarder/{__version__}",
            "Content-Type": self._encoder.content_type,
            **config.headers,
            **self._auth_headers(sink_id, config),
        }
        if config.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._ssl = (
            client_context(config.tls or TlsConfig(), f"sinks.{sink_id}.tls")
            if config.url.startswith("https://")
            else None
        )
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def _auth_headers(sink_id: str, config: HttpSinkConfig) -> dict[str, str]:
        auth = config.auth
        if auth is None:
            return {}
        key = f"sinks.{sink_id}.auth"
        if auth.strategy == "basic":
            password = read_secret(auth.password, auth.password_file, f"{key}.password")
            credentials = base64.b64encode(f"{auth.username}:{password}".encode()).decode()
            return {"Authorization": f"Basic {credentials}"}
        token = read_secret(auth.token, auth.token_file, f"{key}.token")
        scheme = "Splunk" if auth.strategy == "splunk" else "Bearer"
        return {"Authorization": f"{scheme} {token}"}

    def _observe_concurrency(self, limit: int, in_flight: int) -> None:
        self._metrics.concurrency_limit.labels(self.id).set(limit)
        self._metrics.in_flight_requests.labels(self.id).set(in_flight)

    async def start(self) -> None:
        self._ensure_session()

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.request_timeout),
                connector=aiohttp.TCPConnector(
                    limit=self._config.concurrency.max, ssl=self._ssl or True
                ),
            )
        return self._session

    async def send(self, events: Sequence[Event]) -> SendResult:
        chunks = [self._encoder.chunk(event) for event in events]
        requests = self._split(chunks)
        outcome = Outcome()
        tasks = []
        for indexes in requests:
            await self.limiter.acquire()
            tasks.append(asyncio.create_task(self._post(events, chunks, indexes)))
        for result in await asyncio.gather(*tasks):
            outcome.merge(result)
        if outcome.retry is not None:
            return SendResult(
                retry=outcome.retry,
                retry_after=outcome.retry_after,
                rejected=outcome.rejected,
                details=outcome.details,
                delivered=frozenset(outcome.delivered),
            )
        return SendResult(rejected=outcome.rejected, details=outcome.details)

    def _split(self, chunks: Sequence[bytes]) -> list[list[int]]:
        """Consecutive index runs within the per-request event and byte limits."""
        batch = self._config.batch
        requests: list[list[int]] = []
        current: list[int] = []
        size = 0
        for index, chunk in enumerate(chunks):
            if current and (
                len(current) >= batch.max_events or size + len(chunk) > batch.max_bytes
            ):
                requests.append(current)
                current, size = [], 0
            current.append(index)
            size += len(chunk)
        if current:
            requests.append(current)
        return requests

    async def _post(
        self, events: Sequence[Event], chunks: Sequence[bytes], indexes: list[int]
    ) -> Outcome:
        """One request, holding one concurrency slot (acquired by the caller)."""
        started = time.monotonic()
        overloaded = False
        try:
            body = self._encoder.body([chunks[i] for i in indexes])
            if self._config.compression == "gzip":
                body = await asyncio.to_thread(gzip.compress, body, 6)
            headers = dict(self._headers)
            headers["Idempotency-Key"] = _digest(events[i].id for i in indexes)
            try:
                async with self._ensure_session().post(
                    self._config.url, data=body, headers=headers
                ) as response:
                    status = response.status
                    text = await response.content.read(MAX_ERROR_BODY * 16)
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                self._metrics.http_responses.labels(self.id, "network_error").inc()
                reason = str(error) or type(error).__name__
                return Outcome(retry=f"POST failed: {reason}")
            self._metrics.http_responses.labels(self.id, str(status)).inc()
            overloaded = status in OVERLOAD_STATUSES
            return self._outcome(status, text, retry_after, indexes)
        finally:
            latency = time.monotonic() - started
            self._metrics.request_duration.labels(self.id).observe(latency)
            await self.limiter.release(latency, overloaded)

    def _outcome(
        self, status: int, body: bytes, retry_after: float | None, indexes: list[int]
    ) -> Outcome:
        excerpt = body[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()
        if 200 <= status < 300:
            if self._config.encoding == "elasticsearch_bulk":
                return _bulk_outcome(body, indexes)
            return Outcome(delivered=set(indexes))
        if status in RETRIABLE_STATUSES:
            return Outcome(retry=f"HTTP {status}: {excerpt}", retry_after=retry_after)
        if status in MISCONFIGURED_STATUSES:
            return Outcome(retry=f"HTTP {status} (check the sink's url and credentials): {excerpt}")
        reason = f"http_{status}"
        return Outcome(
            rejected=dict.fromkeys(indexes, reason), details=dict.fromkeys(indexes, excerpt)
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _bulk_outcome(body: bytes, indexes: list[int]) -> Outcome:
    """Per-item results of an Elasticsearch ``_bulk`` response, in request order."""
    try:
        response = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Outcome(retry="bulk response is not JSON")
    if not response.get("errors"):
        return Outcome(delivered=set(indexes))
    items = response.get("items")
    if not isinstance(items, list) or len(items) != len(indexes):
        return Outcome(retry="bulk response items do not match the request")
    outcome = Outcome()
    for index, item in zip(indexes, items, strict=True):
        result = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = result.get("status", 500)
        if 200 <= status < 300 or status == 409:  # 409: created by an earlier attempt
            outcome.delivered.add(index)
        elif status == 429 or status >= 500:
            outcome.retry = outcome.retry or f"bulk item HTTP {status}"
        else:
            error = result.get("error") or {}
            outcome.rejected[index] = f"bulk_item_{status}"
            outcome.details[index] = (
                f"{error.get('type', '')}: {error.get('reason', '')}"
                if isinstance(error, dict)
                else str(error)
            )[:MAX_ERROR_BODY]
    return outcome


def _digest(ids: object) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for event_id in ids:  # type: ignore[attr-defined]
        hasher.update(event_id.encode())
        hasher.update(b"\n")
    return hasher.hexdigest()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
