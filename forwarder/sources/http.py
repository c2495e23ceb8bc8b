"""The HTTP client the sources share: one aiohttp session, status metrics, retries."""

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
from forwarder.sources.base import MalformedResponseError, TransientSourceError

Result = TypeVar("Result")
USER_AGENT = f"forwarder/{__version__} (+siem-forwarder)"


@dataclass(slots=True)
class ApiResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

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
    ) -> None:
        self.source_id = source_id
        self._metrics = metrics
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
                body = await response.read()
                status = response.status
                response_headers = response.headers
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as error:
            self._metrics.api_responses.labels(self.source_id, "network_error").inc()
            reason = str(error) or type(error).__name__
            raise TransientSourceError(f"{method} {_path(url)} failed: {reason}") from None
        self._metrics.api_responses.labels(self.source_id, str(status)).inc()
        return ApiResponse(status, response_headers, body)

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
                self._metrics.source_errors.labels(self.source_id, error.error_type).inc()
                if number == self._max_attempts:
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


def _lenient_json(body: bytes) -> Any:
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
