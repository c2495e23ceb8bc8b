"""Getting syslog messages to the receiver: UDP datagrams, or a TCP / TLS stream framed
by octet counting (RFC 6587 section 3.4.1, RFC 5425) or by LF (RFC 6587 section 3.4.2).

What a successful :meth:`send` guarantees:

- UDP: each message was handed to the kernel as one datagram. Nothing more: a datagram
  can be lost on the way or dropped by a busy receiver, and nobody is told.
- TCP / TLS: every byte was written to the socket and ``drain()`` returned, so the
  messages are in this host's kernel send buffer (for TLS: encrypted) and the connection
  was open. Not that the receiver read them, let alone stored them: if the receiver
  crashes or closes the connection, what was in flight is lost. rsyslog's RELP would be
  needed for an application-level acknowledgement (not implemented).

Two checks narrow the gap. A new connection is only trusted after its first batch: the
transport waits a short *settle* time (twice the connect + handshake time, at least
:data:`SETTLE_MIN`) for the receiver to hang up, because TLS receivers reject a client
certificate or its name after the handshake, on the first data (TLS 1.3 finishes the
client side of the handshake before the server has checked the client). And a watcher
reads the (otherwise silent) connection all the time, so a receiver that closed it between
two batches is noticed before the next batch is written, and right after a write: the
batch is then reported as failed and sent again on a new connection (a duplicate rather
than a loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Sequence
from typing import Protocol

SETTLE_MIN = 0.1
CLOSE_TIMEOUT = 1.0


class TransportError(Exception):
    """Sending failed. ``sent`` messages at the head of the batch were handed over before
    the failure (UDP only; a stream never claims a partial batch)."""

    def __init__(self, reason: str, sent: int = 0) -> None:
        super().__init__(reason)
        self.sent = sent


class Transport(Protocol):
    async def open(self) -> None:
        """Connect now if not connected; raises TransportError."""
        ...

    async def send(self, messages: Sequence[bytes]) -> None:
        """Send every message, in order, (re)connecting first if needed; raises
        TransportError."""
        ...

    async def close(self) -> None: ...


def octet_counted(messages: Sequence[bytes]) -> bytes:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG`` per message."""
    return b"".join([b"%d %b" % (len(message), message) for message in messages])


def lf_terminated(messages: Sequence[bytes]) -> bytes:
    """RFC 6587 non-transparent framing: each message followed by LF. The messages must
    not contain LF (the sink escapes it)."""
    return b"\n".join(messages) + b"\n"


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class UdpTransport:
    """One datagram per message to ``host:port`` (resolved once per socket).

    Fire and forget: a message counts as sent once the kernel took it. The socket is not
    connected, so an ICMP "port unreachable" from an absent receiver is not reported back
    (it would only ever concern an earlier datagram).
    """

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | tuple[str, int, int, int] | None = None

    async def open(self) -> None:
        if self._socket is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM)
            family, kind, protocol, _, address = infos[0]
            udp = socket.socket(family, kind, protocol)
        except OSError as error:
            raise TransportError(f"cannot resolve udp {self._host}: {_describe(error)}") from None
        udp.setblocking(False)
        self._socket, self._address = udp, address

    async def send(self, messages: Sequence[bytes]) -> None:
        await self.open()
        udp, address = self._socket, self._address
        assert udp is not None and address is not None
        loop = asyncio.get_running_loop()
        for index, message in enumerate(messages):
            try:
                await loop.sock_sendto(udp, message, address)
            except OSError as error:
                await self.close()
                raise TransportError(f"udp send failed: {_describe(error)}", index) from None

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = self._address = None


class StreamTransport:
    """A TCP or TLS connection, kept open across batches; closed on the first error and
    opened again by the next send (the sink worker provides the backoff).

    Each batch is framed into one buffer, written, and drained within ``write_timeout``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        framing: str = "octet_counting",
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 10.0,
        write_timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._frame = lf_terminated if framing == "lf" else octet_counted
        self._ssl = ssl_context
        self._server_hostname = server_hostname or host
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._scheme = "tls" if ssl_context is not None else "tcp"
        self._writer: asyncio.StreamWriter | None = None
        self._watcher: asyncio.Task[str] | None = None
        self._settle = SETTLE_MIN
        self._trusted = False

    @property
    def _where(self) -> str:
        return f"{self._scheme}://{self._host}:{self._port}"

    async def open(self) -> None:
        if self._writer is not None and self._watcher is not None and not self._watcher.done():
            return
        await self.close()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._server_hostname if self._ssl else None,
                    ssl_handshake_timeout=self._connect_timeout if self._ssl else None,
                ),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise TransportError(f"cannot connect to {self._where}: {_describe(error)}") from None
        elapsed = loop.time() - started
        self._settle = min(self._connect_timeout, max(SETTLE_MIN, 2 * elapsed))
        self._writer = writer
        self._watcher = asyncio.create_task(_watch(reader))
        self._trusted = False

    async def send(self, messages: Sequence[bytes]) -> None:
        await self.open()
        writer, watcher = self._writer, self._watcher
        assert writer is not None and watcher is not None
        try:
            writer.write(self._frame(messages))
            await asyncio.wait_for(writer.drain(), self._write_timeout)
        except (OSError, TimeoutError) as error:
            await self._abort()
            raise TransportError(f"write to {self._where} failed: {_describe(error)}") from None
        if not self._trusted:
            # Wait for a receiver that refuses us to say so (see the module docstring).
            await asyncio.wait({watcher}, timeout=self._settle)
            self._trusted = not watcher.done()
        if watcher.done():
            reason = watcher.result()
            await self._abort()
            raise TransportError(f"{self._where}: {reason}")

    async def _abort(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        await self.close()

    async def close(self) -> None:
        writer, watcher = self._writer, self._watcher
        self._writer = self._watcher = None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if writer is not None:
            writer.close()
            # A TLS close waits for the peer's close_notify: never for long.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)


async def _watch(reader: asyncio.StreamReader) -> str:
    """Reads until the receiver closes the connection (a syslog receiver never sends
    anything), then says how it closed."""
    try:
        while await reader.read(65536):
            pass
    except Exception as error:  # whatever ends the connection is reported, not raised
        return f"receiver closed the connection ({_describe(error)})"
    return "receiver closed the connection"
