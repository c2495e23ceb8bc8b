"""The HTTP client the sources share: one aiohttp session, status metrics, retries.

Response bodies are read incrementally and never beyond ``max_response_bytes`` of
*decompressed* data: aiohttp (3.14) inflates a gzip/deflate/br/zstd body in bounded
steps as it is read, so a 1 MB gzip bomb that would expand to gigabytes, or a body that
never ends, costs at most the cap (plus one read step) before it is refused with
:class:`ResponseTooLargeError`, retried like any transient error, then reported. A body
that trickles in forever ends at the request timeout instead. The Python objects that
parsing the body would create must fit in ``max_response_bytes`` too (estimated while it
arrives, see :func:`parsed_size_estimate`): a body of tiny JSON values parses to 24 times
its size, so a cap on bytes alone would not bound memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from forwarder import __version__
from forwarder.backoff import Backoff
from forwarder.clock import Clock
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.observability.redact import Redactor
from forwarder.sources.base import (
    MalformedResponseError,
    ResponseTooLargeError,
    TransientSourceError,
)

Result = TypeVar("Result")
USER_AGENT = f"forwarder/{__version__} (+siem-forwarder)"
# The config's default (UntrustedApiLimits.max_response_bytes), for clients built without one.
DEFAULT_MAX_RESPONSE_BYTES = 33_554_432
# A parsed JSON value costs Python up to ~72 bytes (an object with its slot in the
# container: 64 + 8), so a body of 3-byte values ("{}," or "[],") parses to 24x its size:
# a 32 MiB page of "{}" would take 770 MB. max_response_bytes therefore bounds both the
# body and its parsed size, estimated from the number of values. Real pages parse to
# 3.3x (Calendly) and 4.7x (Google) their size and estimate at 4.5x and 5.5x: with the
# default cap a page may be up to ~5.8 MiB (1,000 Google activities, the largest page the
# API serves, are about 1 MB in the simulator's realistic data).
PARSED_VALUE_BYTES = 72
# Values that follow no comma: the first of each container (a key and its value in an
# object), along a nesting that orjson stops at 1,024 levels.
NESTED_VALUES = 2 * 1024 + 1
NESTED_BYTES = PARSED_VALUE_BYTES * NESTED_VALUES
# Longest excerpt of a peer's error text kept in an error message (and so in logs and
# /readyz): enough for any real API's error message, not for a body echoed back whole.
MAX_ERROR_TEXT = 300


@dataclass(slots=True)
class ApiResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes | bytearray

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; anything else is a malformed response (retried)."""
        try:
            document = orjson.loads(self.body)
        except orjson.JSONDecodeError as error:
            document = _lenient_json(self.body)
            if document is None:
                raise MalformedResponseError(
                    f"HTTP {self.status} body is not valid JSON ({len(self.body)} bytes): {error}"
                ) from None
        if not isinstance(document, dict):
            raise MalformedResponseError(f"HTTP {self.status} body is not a JSON object")
        return document


class ApiClient:
    """Sends requests for one source and retries transient failures a few times.

    Every response is counted by status code. Network errors, timeouts and bodies cut off
    mid-way become :class:`TransientSourceError`. After ``max_attempts`` the error goes
    up to the pipeline, which logs it once and backs off for longer.
    """

    def __init__(
        self,
        source_id: str,
        metrics: Metrics,
        clock: Clock,
        *,
        timeout: float,
        max_attempts: int,
        backoff: Backoff,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        redactor: Redactor | None = None,
    ) -> None:
        self.source_id = source_id
        # An error answer may echo the credential it refused: known secrets are taken out
        # of it before any excerpt is cut (a secret cut in two would no longer match).
        self._redactor = redactor
        self.metrics = metrics
        self._metrics = metrics
        self.max_response_bytes = max_response_bytes
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._session: aiohttp.ClientSession | None = None
        self._log = get_logger("forwarder.source.http", source=source_id)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        session = self._ensure_session()
        try:
            async with session.request(
                method, url, params=params, headers=headers, data=data, allow_redirects=False
            ) as response:
                status = response.status
                response_headers = response.headers
                body = await self._read_body(response, method, url)
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as error:
            self._metrics.api_responses.labels(self.source_id, "network_error").inc()
            reason = str(error) or type(error).__name__
            raise TransientSourceError(f"{method} {_path(url)} failed: {reason}") from None
        self._metrics.api_responses.labels(self.source_id, str(status)).inc()
        if status >= 300 and self._redactor is not None:
            body = bytearray(self._redactor.redact_known(bytes(body)))
        return ApiResponse(status, response_headers, body)

    async def _read_body(
        self, response: aiohttp.ClientResponse, method: str, url: str
    ) -> bytearray:
        """The whole body, decompressed, read chunk by chunk up to the cap."""
        limit = self.max_response_bytes
        declared = response.content_length
        if (
            declared is not None
            and declared > limit
            and not response.headers.get("Content-Encoding")
        ):
            self._too_large(response.status)
            raise ResponseTooLargeError(
                f"{method} {_path(url)}: the API announced a body of {declared} bytes, "
                f"more than max_response_bytes ({limit})"
            )
        body = bytearray()
        # Values counted so far, and up to where (see parsed_size_estimate): a body built to
        # expand is refused long before its bytes reach the cap. A body too short to
        # expand past the cap whatever it holds (most polls) is never scanned at all.
        values = counted = 0
        # readany(), not read(n): a large n would raise the stream's buffer limit to n.
        while chunk := await response.content.readany():
            if len(body) + len(chunk) > limit:
                self._too_large(response.status)
                raise ResponseTooLargeError(
                    f"{method} {_path(url)}: the body exceeds max_response_bytes ({limit} "
                    "bytes, decompressed); refused"
                )
            body += chunk
            if len(body) * (1 + 2 * PARSED_VALUE_BYTES) + NESTED_BYTES <= limit:
                continue
            values += _values(body, counted)
            counted = len(body)
            if len(body) + PARSED_VALUE_BYTES * values + NESTED_BYTES > limit:
                self._too_large(response.status)
                raise ResponseTooLargeError(
                    f"{method} {_path(url)}: the body would take more than "
                    f"max_response_bytes ({limit} bytes) once parsed ({len(body)} "
                    "bytes of it hold that many JSON values); refused"
                )
        return body

    def _too_large(self, status: int) -> None:
        self._metrics.api_responses.labels(self.source_id, str(status)).inc()

    async def retrying(self, attempt: Callable[[], Awaitable[Result]]) -> Result:
        """Run ``attempt`` until it succeeds, retrying :class:`TransientSourceError`
        up to ``max_attempts`` times with backoff (at least any ``retry_after``).

        Each call has its own backoff state: a source reading several windows at once
        runs several of these concurrently."""
        backoff = replace(self._backoff, attempt=0)
        for number in range(1, self._max_attempts + 1):
            try:
                return await attempt()
            except TransientSourceError as error:
                if error.exhausted:
                    # Already retried by an inner `retrying` (a token refresh inside an
                    # API request): retrying it again would multiply the requests.
                    raise
                self._metrics.source_errors.labels(self.source_id, error.error_type).inc()
                if number == self._max_attempts:
                    error.exhausted = True
                    raise
                delay = backoff.next_delay(error.retry_after)
                if isinstance(error, MalformedResponseError):
                    # Rare and worth a look (API change, proxy truncating bodies): not debug.
                    self._log.warning("malformed_response", attempt=number, error=str(error))
                self._log.debug(
                    "request_retry", attempt=number, delay=round(delay, 3), error=str(error)
                )
                await self._clock.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def parsed_size_estimate(body: bytes | bytearray) -> int:
    """An upper estimate of the memory ``orjson.loads(body)`` takes: the body's bytes (the
    strings' contents) plus :data:`PARSED_VALUE_BYTES` per JSON value (see
    :func:`_values`; commas inside strings only make it larger)."""
    return len(body) + PARSED_VALUE_BYTES * _values(body) + NESTED_BYTES


def _values(data: bytes | bytearray, start: int = 0) -> int:
    """JSON values in ``data[start:]``, at most, beyond :data:`NESTED_VALUES`: every value
    but the first of each container follows a comma, and a comma in an object precedes a
    key and its value, so two per comma. One C-speed scan (0.5 ms per MB)."""
    return 2 * data.count(b",", start)


def error_excerpt(text: str) -> str:
    """A peer's error text, cut to :data:`MAX_ERROR_TEXT` characters."""
    if len(text) <= MAX_ERROR_TEXT:
        return text
    return text[:MAX_ERROR_TEXT] + f"... ({len(text)} characters)"


def _lenient_json(body: bytes | bytearray) -> Any:
    """Parse a body whose only fault is invalid UTF-8 (one bad record must not block the
    whole log forever): bad bytes become U+FFFD. ``None`` if it still is not JSON."""
    try:
        body.decode("utf-8")
        return None  # valid UTF-8: the JSON itself is broken
    except UnicodeDecodeError:
        pass
    try:
        return orjson.loads(body.decode("utf-8", "replace"))
    except orjson.JSONDecodeError:
        return None


def _path(url: str) -> str:
    """The URL without its query string (which may carry tokens or e-mail addresses)."""
    return url.split("?", 1)[0]
