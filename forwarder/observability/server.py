"""HTTP endpoints for operators: ``/metrics`` (Prometheus), ``/healthz``, ``/readyz``.

The listener answers whoever the network lets in, so it is bounded like any untrusted
peer: at most ``max_connections`` connections at once (one more is reset as soon as it is
accepted, and counted), each given ``idle_timeout`` to send a request and read its answer
(an idle keep-alive connection, headers trickled byte by byte, a client that never
reads: all closed), and at most ``MAX_REQUEST_BYTES`` per request. Its file descriptors
are thus bounded, so a flood of connections can never take the descriptors the
checkpoint and dead-letter writes need; and when the process runs out of them anyway,
the listener pauses instead of spinning and logs that once a minute.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Request line, headers (and any body) of one request: a scraper or a probe sends a few
# hundred bytes; this leaves room for long URLs and proxies' headers and no more.
MAX_REQUEST_BYTES = 65_536
# aiohttp's own limits on one request line and one header line (its defaults, set
# explicitly so that an upgrade cannot loosen them).
MAX_LINE_BYTES = 8190
# Connections the kernel queues until they are accepted (kernel memory, no descriptor):
# a burst beyond it has its handshakes dropped and retried by the clients a second later.
LISTEN_BACKLOG = 1024
# Connections accepted at one wake-up (the event loop's other work goes on in between).
ACCEPT_BATCH = 64
# Out of descriptors (or memory) when accepting: wait this long before trying again.
ACCEPT_RETRY_SECONDS = 1.0
# Refused connections and accept failures are logged at most once per this many seconds.
LOG_EVERY_SECONDS = 60.0
# What accept() fails with when the process or the system is out of a resource.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# SO_LINGER on, 0 s: close() resets the connection (no FIN handshake, no TIME_WAIT).
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class _Connection(asyncio.Protocol):
    """One admitted connection, handed to aiohttp's protocol under a deadline
    (``idle_timeout`` from the connection or from its last request) and a byte budget
    (``MAX_REQUEST_BYTES`` per request)."""

    def __init__(self, listener: OperatorServer) -> None:
        self._listener = listener
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._received = 0
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.counted = True
        self._listener.admitted(self, transport)
        self.rearm()
        self._inner = self._listener.protocol()
        self._inner.connection_made(transport)

    def rearm(self) -> None:
        """A request arrived: a new ``idle_timeout`` to answer it and wait for the next."""
        self._received = 0
        if self._deadline is not None:
            self._deadline.cancel()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._listener.idle_timeout, self.expire)

    def expire(self) -> None:
        """Idle (or trickling, or not reading) for ``idle_timeout``: a plain close when
        nothing is left to send (a client reusing the connection then retries), else an
        abort (a client that does not read would hold the close forever)."""
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > MAX_REQUEST_BYTES:
            self.abort()
        elif self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._inner is None else self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._listener.released(self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)
            self._inner = None


class OperatorServer:
    """Serves metrics and health on ``host:port``; ``readiness`` explains itself in JSON.

    It accepts connections itself (rather than through ``loop.create_server``) so that a
    connection beyond ``max_connections`` is closed in the same step as it is accepted:
    the listener never holds more than ``max_connections`` descriptors.
    """

    def __init__(
        self,
        metrics: Metrics,
        readiness: Readiness,
        listen: str,
        *,
        max_connections: int = 64,
        idle_timeout: float = 30.0,
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._metrics = metrics
        self._readiness = readiness
        self._runner: web.AppRunner | None = None
        self._listeners: list[socket.socket] = []
        self._retry: asyncio.TimerHandle | None = None
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        # Accepted, handed to the event loop, not yet in _connections.
        self._adopting = 0
        self._adoptions: set[asyncio.Task[None]] = set()
        self._refused_unlogged = 0
        self._logged_at: dict[str, float] = {}
        self._log = get_logger("forwarder.operator")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._deadline_middleware])
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/healthz", self._health_handler)
        app.router.add_get("/readyz", self._ready_handler)
        return app

    @property
    def connections(self) -> int:
        """Connections open now (``forwarder_operator_connections``)."""
        return len(self._connections)

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app(),
            access_log=None,
            keepalive_timeout=self.idle_timeout,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
        )
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        addresses = await loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        try:
            for family, kind, protocol, _, address in dict.fromkeys(addresses):
                listener = socket.socket(family, kind, protocol)
                self._listeners.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                # Port 0: the first address picks a port, the others share it.
                listener.bind((address[0], self.port, *address[2:]))
                self.port = listener.getsockname()[1]
                listener.listen(LISTEN_BACKLOG)
                listener.setblocking(False)
        except OSError:
            await self.stop()
            raise
        for listener in self._listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for listener in self._listeners:
            loop.remove_reader(listener.fileno())
            listener.close()
        self._listeners.clear()
        for task in list(self._adoptions):
            task.cancel()
        for connection in list(self._connections.values()):
            connection.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _accept(self, listener: socket.socket) -> None:
        """Accept what is queued (one batch): admit up to ``max_connections``, reset the
        rest at once."""
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            try:
                client, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._pause_accepting(error)
                return
            if len(self._connections) + self._adopting >= self.max_connections:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
                client.close()
                self._metrics.operator_connections_refused.inc()
                self._refused_unlogged += 1
                self._log_refusals()
                continue
            client.setblocking(False)
            self._adopting += 1
            task = loop.create_task(self._adopt(client))
            self._adoptions.add(task)
            task.add_done_callback(self._adoptions.discard)

    async def _adopt(self, client: socket.socket) -> None:
        connection = _Connection(self)
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: connection, sock=client)
        except (OSError, asyncio.CancelledError) as error:
            if not connection.counted:  # never reached connection_made
                self._adopting -= 1
                client.close()
            if isinstance(error, asyncio.CancelledError):
                raise
            self._log_once("operator_accept_failed", error=str(error))

    def _pause_accepting(self, error: OSError) -> None:
        """The process (or the system) is out of descriptors or memory: stop accepting
        for a moment instead of spinning on the error; the queued clients wait."""
        if error.errno not in _RESOURCE_ERRORS:
            self._log_once("operator_accept_failed", error=str(error))
            return
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.fileno())
        self._retry = loop.call_later(ACCEPT_RETRY_SECONDS, self._resume_accepting)
        self._log_once(
            "operator_accept_paused",
            error=str(error),
            note=f"the metrics listener retries in {ACCEPT_RETRY_SECONDS:.0f}s",
        )

    def _resume_accepting(self) -> None:
        self._retry = None
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.add_reader(listener.fileno(), self._accept, listener)

    def protocol(self) -> asyncio.Protocol:
        """aiohttp's protocol for one admitted connection."""
        assert self._runner is not None and self._runner.server is not None
        return self._runner.server()

    def admitted(self, connection: _Connection, transport: asyncio.BaseTransport) -> None:
        self._adopting -= 1
        self._connections[transport] = connection
        self._metrics.operator_connections.set(len(self._connections))

    def released(self, transport: asyncio.BaseTransport | None) -> None:
        self._connections.pop(transport, None)  # type: ignore[arg-type]
        self._metrics.operator_connections.set(len(self._connections))

    def _log_refusals(self) -> None:
        if self._log_once(
            "operator_connections_refused",
            refused=self._refused_unlogged,
            max_connections=self.max_connections,
            note="metrics.max_connections connections are open; more are reset at once",
        ):
            self._refused_unlogged = 0

    def _log_once(self, event: str, **fields: Any) -> bool:
        """Log ``event`` unless it was logged less than LOG_EVERY_SECONDS ago."""
        now = asyncio.get_running_loop().time()
        last = self._logged_at.get(event)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            return False
        self._logged_at[event] = now
        self._log.warning(event, **fields)
        return True

    @web.middleware
    async def _deadline_middleware(self, request: web.Request, handler: Handler) -> Any:
        connection = self._connections.get(request.transport)  # type: ignore[arg-type]
        if connection is not None:
            connection.rearm()
        return await handler(request)

    async def _metrics_handler(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _health_handler(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _ready_handler(self, _request: web.Request) -> web.Response:
        ready, detail = self._readiness()
        return web.json_response(
            {"status": "ready" if ready else "not_ready", **detail}, status=200 if ready else 503
        )
