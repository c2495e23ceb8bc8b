"""Small aiohttp helpers shared by the simulators: orjson responses and connection resets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import orjson
from aiohttp import web

JSON_CONTENT_TYPE = "application/json"


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialized with orjson."""
    return raw_json_response(orjson.dumps(payload), status, headers)


def raw_json_response(
    body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A response whose body is ``body`` as is, labelled JSON (even when it is not valid)."""
    response = web.Response(body=body, status=status, headers=dict(headers or {}))
    response.content_type = JSON_CONTENT_TYPE
    return response


def date_from(
    clock: Any, offset: Callable[[], float] | None = None
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook stamping ``Date`` from the simulator's clock, as
    the real API's own clock would (sources estimate clock skew from it); ``offset()``
    seconds are added to the header only (a server clock gone wrong, data still right)."""

    async def stamp(_request: web.Request, response: web.StreamResponse) -> None:
        moment = datetime.fromtimestamp(clock.now() + (offset() if offset else 0.0), UTC)
        response.headers["Date"] = format_datetime(moment, usegmt=True)

    return stamp


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def latency(seconds: float) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware delaying every API request (not ``/_sim/``) by ``seconds`` of real
    time before it is handled, like the network and backend time of a real API. Rate
    limits count the request when it is handled, as before."""

    @web.middleware
    async def delay(request: web.Request, handler: Handler) -> web.StreamResponse:
        if seconds > 0 and not request.path.startswith("/_sim/"):
            await asyncio.sleep(seconds)
        return await handler(request)

    return delay


class ResetResponse(web.Response):
    """Stands for a dropped connection: nothing of it reaches the client."""


def reset_connection(request: web.Request) -> web.Response:
    """Drop the TCP connection without answering (the client sees a disconnect).

    The returned response is never written; it only satisfies aiohttp's handler contract
    and tells the request counters what happened.
    """
    if request.transport is not None:
        request.transport.abort()
    return ResetResponse(status=499)


# Longer than any client timeout a test sets, short enough not to slow the suite.
SLOW_RESPONSE_SECONDS = 3.0


async def transport_fault(request: web.Request, kind: str) -> web.StreamResponse:
    """``slow``: answer only after SLOW_RESPONSE_SECONDS (the client should time out);
    ``reset_mid_body``: send the headers and part of a body, then drop the connection;
    ``html_200``: a 200 whose body is an HTML error page (a proxy or captive portal)."""
    if kind == "slow":
        await asyncio.sleep(SLOW_RESPONSE_SECONDS)
        return web.Response(status=503, text="too late")
    if kind == "reset_mid_body":
        response = web.StreamResponse(status=200, headers={"Content-Length": "100000"})
        response.content_type = JSON_CONTENT_TYPE
        await response.prepare(request)
        await response.write(b'{"collection": [{"uri": "https://api.calendly.com/activity_lo')
        if request.transport is not None:
            request.transport.abort()
        return response
    return web.Response(
        status=200,
        text="<html><body>Service temporarily unavailable</body></html>",
        content_type="text/html",
    )


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 HTTPException."""
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
