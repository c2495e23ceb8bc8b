"""Small aiohttp helpers shared by the simulators: orjson responses and connection resets."""

from __future__ import annotations

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


def date_from(clock: Any) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook stamping ``Date`` from the simulator's clock, as
    the real API's own clock would (sources estimate clock skew from it)."""

    async def stamp(_request: web.Request, response: web.StreamResponse) -> None:
        moment = datetime.fromtimestamp(clock.now(), UTC)
        response.headers["Date"] = format_datetime(moment, usegmt=True)

    return stamp


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
