"""A hostile peer for the source tests: a proxy on 127.0.0.1 in front of a simulator.

Every request is forwarded to the simulator (the ground truth); a test queues
*tampers* that replace the answers to the next matching requests with whatever a
misbehaving or hostile API would send: absurd headers, a gzip bomb, a body that never
ends, a page with too many records, a token response with a CR/LF in it. Once the queue
is empty the proxy is transparent again, so a test can check that the source recovers
and that nothing was lost.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import io
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

# Hop-by-hop and length headers are the proxy's own business.
_SKIPPED = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass(slots=True)
class Upstream:
    """What the simulator answered."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


Tamper = Callable[[web.Request, Upstream], Awaitable[web.StreamResponse]]


class HostileProxy:
    """Forwards to ``upstream``; answers matching requests with queued tampers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self.requests: Counter[str] = Counter()
        """Requests received, by path."""
        self.tampered = 0
        self._queue: deque[tuple[str, Tamper]] = deque()
        self._session: aiohttp.ClientSession | None = None

    def push(self, path_part: str, tamper: Tamper, count: int = 1) -> None:
        """Answer the next ``count`` requests whose path contains ``path_part`` with
        ``tamper`` (FIFO: the head of the queue must match before later entries apply)."""
        self._queue.extend([(path_part, tamper)] * count)

    def clear(self) -> None:
        self._queue.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[HostileProxy]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        # The upstream's body as sent (no transparent decompression on this side).
        self._session = aiohttp.ClientSession(auto_decompress=False)
        try:
            yield self
        finally:
            await self._session.close()
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIPPED}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read() if request.can_read_body else None,
            allow_redirects=False,
        ) as response:
            upstream = Upstream(
                response.status,
                {k: v for k, v in response.headers.items() if k.lower() not in _SKIPPED},
                await response.read(),
            )
        if self._queue and self._queue[0][0] in request.path:
            _, tamper = self._queue.popleft()
            self.tampered += 1
            return await tamper(request, upstream)
        return web.Response(status=upstream.status, headers=upstream.headers, body=upstream.body)


# -- tampers --------------------------------------------------------------------------------


def rewrite_json(change: Callable[[Any], Any], **headers: str) -> Tamper:
    """The upstream's answer with its JSON body changed (``change`` returns the new body)."""

    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        body = orjson.dumps(change(upstream.json()))
        return web.Response(
            status=upstream.status, headers={**upstream.headers, **headers}, body=body
        )

    return tamper


def with_headers(**headers: str) -> Tamper:
    """The upstream's answer with some headers replaced (e.g. a ``Date`` in year 9999)."""

    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        merged = {**upstream.headers, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return web.Response(status=upstream.status, headers=merged, body=upstream.body)

    return tamper


def status(code: int, body: Any, **headers: str) -> Tamper:
    """An answer of its own (the upstream's is dropped)."""

    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        return web.Response(status=code, headers=named, body=orjson.dumps(body))

    return tamper


@functools.cache
def gzip_bomb(expanded_bytes: int) -> bytes:
    """A gzip body of ``expanded_bytes`` spaces (about 1000:1, so 1 GB in ~1 MB)."""
    buffer = io.BytesIO()
    chunk = b" " * (1 << 20)
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as out:
        for _ in range(-(-expanded_bytes // len(chunk))):
            out.write(chunk)
    return buffer.getvalue()


@functools.cache
def deflate_bomb(expanded_bytes: int) -> bytes:
    """The same as an HTTP ``deflate`` body (zlib format)."""
    compressor = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(-(-expanded_bytes // len(chunk)))]
    return b"".join(parts) + compressor.flush()


def compressed(body: bytes, encoding: str = "gzip") -> Tamper:
    """A 200 whose body is ``body`` sent with ``Content-Encoding`` (a bomb, typically)."""

    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        headers = {**upstream.headers, "Content-Encoding": encoding}
        headers["Content-Type"] = "application/json"
        return web.Response(status=200, headers=headers, body=body)

    return tamper


def endless(chunk: bytes = b"[" * 65536, pause: float = 0.0) -> Tamper:
    """A 200 whose body never ends (``pause`` seconds of real time between chunks); it
    stops when the client hangs up."""

    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            while True:
                await response.write(chunk)
                await asyncio.sleep(pause)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return tamper


def announced(length: int) -> Tamper:
    """A 200 announcing a ``Content-Length`` of ``length`` (and sending a few bytes)."""

    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Content-Length": str(length)}
        )
        await response.prepare(request)
        try:
            await response.write(b'{"collection": [')
            await asyncio.sleep(0.1)
        except (ConnectionError, RuntimeError):
            pass
        return response

    return tamper
