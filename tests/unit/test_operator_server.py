"""The operator listener (/metrics, /healthz, /readyz) against hostile clients on loopback:
too many connections, idle and trickling ones, oversized requests. The listener stays
bounded and keeps answering a well-behaved client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import structlog

from forwarder.observability.metrics import Metrics
from forwarder.observability.server import MAX_REQUEST_BYTES, OperatorServer

# A hang guard, not a timing assertion: every wait below ends long before it.
GUARD = 30.0


def _ready() -> tuple[bool, dict]:
    return True, {"problems": [], "warnings": [], "sources": {}, "sinks": {}}


@pytest.fixture
async def listener(request: pytest.FixtureRequest) -> AsyncIterator[OperatorServer]:
    options = getattr(request, "param", {})
    server = OperatorServer(Metrics(), _ready, "127.0.0.1:0", **options)
    await server.start()
    yield server
    await server.stop()


def _value(server: OperatorServer, name: str) -> float:
    value = server._metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before it closed the connection."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def _until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GUARD
    while loop.time() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def _get(server: OperatorServer, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, await response.text()


async def _connect(server: OperatorServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def _refused(server: OperatorServer) -> bool:
    """Connect and wait: True when the server closes the connection without a word (the
    reset may even arrive before the connect call returns)."""
    try:
        reader, writer = await _connect(server)
    except ConnectionResetError:
        return True
    try:
        return await asyncio.wait_for(_closed_by_server(reader), GUARD) == b""
    finally:
        writer.close()


@pytest.mark.parametrize("listener", [{"max_connections": 4}], indirect=True)
async def test_connections_beyond_the_limit_are_closed_at_once_and_counted(
    listener: OperatorServer,
) -> None:
    held = [await _connect(listener) for _ in range(4)]
    await _until(lambda: listener.connections == 4, "4 connections held")
    assert all(await asyncio.gather(*(_refused(listener) for _ in range(6))))
    assert _value(listener, "forwarder_operator_connections_refused_total") == 6
    assert _value(listener, "forwarder_operator_connections") == 4
    for _, writer in held:
        assert not writer.is_closing()
    # Held connections still get answers.
    reader, writer = held[0]
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status_line = await asyncio.wait_for(reader.readline(), GUARD)
    assert status_line.startswith(b"HTTP/1.1 200")
    for _, writer in held:
        writer.close()
    await _until(lambda: listener.connections == 0, "the held connections to be released")
    assert _value(listener, "forwarder_operator_connections") == 0
    status, body = await _get(listener, "/metrics")
    assert status == 200
    assert "forwarder_operator_connections_refused_total 6.0" in body


@pytest.mark.parametrize("listener", [{"idle_timeout": 0.5}], indirect=True)
async def test_idle_keepalive_and_trickling_connections_are_closed(
    listener: OperatorServer,
) -> None:
    idle = await asyncio.open_connection("127.0.0.1", listener.port)
    keepalive = await asyncio.open_connection("127.0.0.1", listener.port)
    trickle = await asyncio.open_connection("127.0.0.1", listener.port)
    keepalive[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    trickle[1].write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")

    async def slowloris() -> None:
        # One more header line every 50 ms, never the blank line that ends the request.
        for number in range(10_000):
            if trickle[1].is_closing():
                return
            trickle[1].write(f"X-{number}: y\r\n".encode())
            try:
                await trickle[1].drain()
            except ConnectionError:
                return
            await asyncio.sleep(0.05)

    trickling = asyncio.create_task(slowloris())
    answers = await asyncio.wait_for(
        asyncio.gather(*(_closed_by_server(reader) for reader, _ in (idle, keepalive, trickle))),
        GUARD,
    )
    trickling.cancel()
    assert answers[0] == b"" and answers[2] == b""
    assert answers[1].startswith(b"HTTP/1.1 200") and b'{"status": "alive"}' in answers[1]
    await _until(lambda: listener.connections == 0, "every connection released")
    assert (await _get(listener, "/healthz"))[0] == 200


async def test_an_oversized_request_is_cut_without_an_answer(listener: OperatorServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    # 100 header lines of 1 KB: each within aiohttp's line limit, together above the bound.
    headers = b"".join(b"X-%d: %s\r\n" % (n, b"y" * 1000) for n in range(100))
    assert len(headers) > MAX_REQUEST_BYTES
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    assert await asyncio.wait_for(_closed_by_server(reader), GUARD) == b""
    await _until(lambda: listener.connections == 0, "the connection released")
    assert (await _get(listener, "/healthz"))[0] == 200


async def test_stop_closes_held_connections(listener: OperatorServer) -> None:
    streams = [await _connect(listener) for _ in range(3)]
    await _until(lambda: listener.connections == 3, "3 connections held")
    await asyncio.wait_for(listener.stop(), GUARD)
    closed = await asyncio.wait_for(
        asyncio.gather(*(_closed_by_server(reader) for reader, _ in streams)), GUARD
    )
    assert closed == [b""] * 3


@pytest.mark.parametrize("listener", [{"max_connections": 1000}], indirect=True)
async def test_out_of_descriptors_the_listener_pauses_and_recovers(
    listener: OperatorServer,
) -> None:
    """EMFILE on accept (the process out of descriptors for another reason): the listener
    stops accepting for a moment instead of spinning on the error, says so once, and
    serves again when descriptors are back."""
    loop = asyncio.get_running_loop()
    clients = [socket.socket() for _ in range(5)]
    for client in clients:
        client.setblocking(False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd"))
    with structlog.testing.capture_logs() as logs:
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now, hard))
        try:
            for client in clients:
                await asyncio.wait_for(loop.sock_connect(client, ("127.0.0.1", listener.port)), 5)
            await _until(lambda: listener._retry is not None, "the listener to pause")
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        await _until(lambda: listener.connections == 5, "the queued clients accepted")
    paused = [entry for entry in logs if entry["event"] == "operator_accept_paused"]
    assert len(paused) == 1 and "Too many open files" in paused[0]["error"]
    assert (await _get(listener, "/healthz"))[0] == 200
    for client in clients:
        client.close()
