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
from pathlib import Path

import aiohttp

from forwarder import __version__
from forwarder.config.loader import ConfigError, read_secret
from forwarder.config.model import HttpSinkConfig, TlsConfig
from forwarder.events import Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.observability.redact import Redactor
from forwarder.sinks.base import Coalescing, SendResult
from forwarder.sinks.http.concurrency import AdaptiveConcurrency
from forwarder.sinks.http.encoding import BodyEncoder
from forwarder.sinks.http.responses import (
    BAD_SUCCESS_BODY,
    ERROR_BODY_READ,
    MAX_ERROR_BODY,
    REDIRECT,
    RESPONSE_TOO_LARGE,
    Outcome,
    bulk_outcome,
    excerpt,
    failure,
    hec_outcome,
    origin,
    plain_outcome,
    read_body,
    retry_after_seconds,
)
from forwarder.sinks.tls import client_context

# 408 and 429 (and every 5xx): the receiver may take the request later.
RETRIABLE_STATUSES = frozenset({408, 429})
# Credentials or endpoint problems: an operator fixes them; dead-lettering every event
# meanwhile would empty the pipeline into a file. Retried (the cursor waits), logged.
MISCONFIGURED_STATUSES = frozenset({401, 403, 404, 407})
OVERLOAD_STATUSES = frozenset({429, 503})
# Characters of a raw Retry-After value quoted in a log line or a /readyz warning.
RAW_VALUE_EXCERPT = 64


class HttpSink:
    """POSTs NDJSON, JSON arrays, Splunk HEC events or Elasticsearch bulk requests.

    Retries connection errors, timeouts, 408, 429 and 5xx (honouring ``Retry-After`` up to
    ``max_retry_after``); other 4xx refuse the request's events for good (dead-lettered
    with the response body), except 401/403/404/407, which mean the sink is misconfigured
    and are retried until an operator fixes them. Redirects are never followed: a 3xx is a
    retried failure. A 2xx counts only with the body the encoding's receiver gives on
    success (see :mod:`forwarder.sinks.http.responses`); bodies are read whole up to
    ``max_response_bytes``. Each request carries an ``Idempotency-Key`` header: a digest of
    its events' ids.
    """

    def __init__(
        self,
        sink_id: str,
        config: HttpSinkConfig,
        metrics: Metrics,
        redactor: Redactor | None = None,
    ) -> None:
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
        credentials = {
            **self._file_headers(sink_id, config),
            **self._auth_headers(sink_id, config),
        }
        self._headers = {
            "User-Agent": f"forwarder/{__version__}",
            "Content-Type": self._encoder.content_type,
            **config.headers,
            **credentials,
        }
        # A receiver (or a login page in front of it) may echo a credential back: it is
        # taken out of every answer before an excerpt is cut from it (the daemon's
        # redactor knows every secret of the config; on its own, the sink's credentials).
        self._redactor = redactor if redactor is not None else Redactor()
        for value in credentials.values():
            # "Scheme credential" (Authorization): the credential alone too, not the
            # scheme's name, a word that must stay readable everywhere.
            self._redactor.add(value)
            self._redactor.add(value.rpartition(" ")[2])
        if config.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._ssl = (
            client_context(config.tls or TlsConfig(), f"sinks.{sink_id}.tls")
            if config.url.startswith("https://")
            else None
        )
        self._session: aiohttp.ClientSession | None = None
        metrics.sink_capped_values.labels(sink_id, "retry_after")  # at 0 from the start
        self._log = get_logger("forwarder.sink.http", sink=sink_id)
        self.warnings: dict[str, str] = {}
        """Conditions shown in ``/readyz`` while they hold (a capped ``Retry-After``)."""
        self._logged_retry_after: str | None = None

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

    @staticmethod
    def _file_headers(sink_id: str, config: HttpSinkConfig) -> dict[str, str]:
        """``header_files``: each value read now, trailing newline stripped."""
        headers: dict[str, str] = {}
        for name, path in config.header_files.items():
            headers[name] = _read_header_file(Path(path), f"sinks.{sink_id}.header_files.{name}")
        return headers

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
                error_type=outcome.error_type,
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
                # Never follow a redirect: a 302/303 would turn the POST into a GET that
                # answers 200 (nothing stored), a 307/308 would post the events and the
                # credential headers to whatever host the Location names.
                async with self._ensure_session().post(
                    self._config.url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    overloaded = status in OVERLOAD_STATUSES
                    outcome = await self._answer(response, events, indexes)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                self._metrics.http_responses.labels(self.id, "network_error").inc()
                reason = str(error) or type(error).__name__
                return failure(f"POST failed: {reason}", "network_error")
            self._metrics.http_responses.labels(self.id, str(status)).inc()
            if outcome.retry is None:
                self.warnings.pop("retry_after", None)
            return outcome
        finally:
            latency = time.monotonic() - started
            self._metrics.request_duration.labels(self.id).observe(latency)
            await self.limiter.release(latency, overloaded)

    async def _answer(
        self, response: aiohttp.ClientResponse, events: Sequence[Event], indexes: list[int]
    ) -> Outcome:
        status = response.status
        if 300 <= status < 400:
            target = origin(response.headers.get("Location"), self._config.url)
            return failure(
                f"HTTP {status} redirect to {target} refused: a sink never follows redirects"
                " (set the sink's url to the final address)",
                REDIRECT,
            )
        success = 200 <= status < 300
        limit = self._config.max_response_bytes if success else ERROR_BODY_READ
        body, whole = await read_body(response, limit)
        body = self._redactor.redact_known(body)
        if not success:
            retry_after = self._retry_after(response.headers.get("Retry-After"))
            return self._failed(status, body, retry_after, indexes)
        if not whole:
            return failure(
                f"HTTP {status} answer larger than max_response_bytes ({limit} bytes):"
                " cannot tell what was stored",
                RESPONSE_TOO_LARGE,
            )
        encoding = self._config.encoding
        if encoding == "elasticsearch_bulk":
            outcome = bulk_outcome(body, indexes, [events[i].id for i in indexes])
        elif encoding == "splunk_hec":
            outcome = hec_outcome(body, indexes)
        else:
            outcome = plain_outcome(body, response.headers.get("Content-Type", ""), indexes)
        if outcome.error_type == BAD_SUCCESS_BODY:
            outcome.retry = f"HTTP {status} but {outcome.retry}"
        return outcome

    def _failed(
        self, status: int, body: bytes, retry_after: float | None, indexes: list[int]
    ) -> Outcome:
        text = excerpt(body, MAX_ERROR_BODY)
        error_type = f"http_{status}"
        if status in RETRIABLE_STATUSES or not 400 <= status < 500:
            return failure(f"HTTP {status}: {text}", error_type, retry_after)
        if status in MISCONFIGURED_STATUSES:
            return failure(
                f"HTTP {status} (check the sink's url and credentials): {text}", error_type
            )
        return Outcome(
            rejected=dict.fromkeys(indexes, error_type), details=dict.fromkeys(indexes, text)
        )

    def _retry_after(self, raw: str | None) -> float | None:
        """``Retry-After`` in seconds, at most ``max_retry_after``: a receiver asking for
        years would hold the cursor that long. A capped value is counted, shown in
        ``/readyz`` and logged (once per distinct value)."""
        seconds = retry_after_seconds(raw)
        cap = self._config.max_retry_after
        if seconds is None or seconds <= cap:
            return seconds
        quoted = excerpt((raw or "").encode(), RAW_VALUE_EXCERPT)
        self._metrics.sink_capped_values.labels(self.id, "retry_after").inc()
        self.warnings["retry_after"] = (
            f"receiver asked to wait {quoted!r}; waiting at most {cap:g}s (max_retry_after)"
        )
        if quoted != self._logged_retry_after:
            self._logged_retry_after = quoted
            self._log.warning("retry_after_capped", raw=quoted, max_retry_after=cap)
        return cap

    async def probe(self) -> tuple[int, str]:
        """``check-config --online``: one request carrying no event (an empty body, ``[]``
        for json_array), with the sink's headers and credentials, never following a
        redirect; the status and an excerpt of the (redacted) answer. Network errors
        raise (aiohttp.ClientError, OSError, TimeoutError)."""
        body = self._encoder.body([])
        if self._config.compression == "gzip":
            body = gzip.compress(body, 6)
        async with self._ensure_session().post(
            self._config.url, data=body, headers=self._headers, allow_redirects=False
        ) as response:
            answer, _ = await read_body(response, ERROR_BODY_READ)
            return response.status, excerpt(self._redactor.redact_known(answer), MAX_ERROR_BODY)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _read_header_file(path: Path, key: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(key, f"{path} is not UTF-8 text") from None
    if not value:
        raise ConfigError(key, f"{path} is empty")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        # A header value is one line: a CR or LF would end it (and aiohttp refuses it).
        raise ConfigError(key, f"{path} holds a control character (more than one line?)")
    return value


def _digest(ids: object) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for event_id in ids:  # type: ignore[attr-defined]
        hasher.update(event_id.encode())
        hasher.update(b"\n")
    return hasher.hexdigest()
