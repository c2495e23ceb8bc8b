"""The ``/_sim/`` test-helper routes both simulators share.

NOT part of the real APIs: they let tests and the demo inject faults, read the ground
truth and read request counters over HTTP.

* ``POST /_sim/faults`` ``{"kind": ..., "count": 1}`` queues faults (400 if unknown);
* ``GET /_sim/faults`` lists pending and applied faults; ``DELETE /_sim/faults`` clears;
* ``GET /_sim/truth[?until=RFC3339]`` returns ``{"records": [...]}``, every record with a
  time <= ``until`` (default: now), oldest first: Calendly entries as the API shows them;
  for Google ``{"activity", "visible_at", "visible_at_unix"}``;
* ``GET /_sim/stats`` returns request counts per status and route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from forwarder.simulators.faults import FaultPlan
from forwarder.simulators.httputil import json_response, read_json_object
from forwarder.simulators.stats import RequestStats
from forwarder.timeutil import parse_rfc3339

Truth = Callable[[float | None], list[dict[str, Any]]]


def add_sim_routes(
    app: web.Application, *, faults: FaultPlan, stats: RequestStats, truth: Truth
) -> None:
    """Register the ``/_sim/`` routes on ``app``."""

    async def push_fault(request: web.Request) -> web.Response:
        body = await read_json_object(request)
        try:
            faults.push(body.get("kind", ""), body.get("count", 1))
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(faults.as_json())

    async def list_faults(request: web.Request) -> web.Response:
        return json_response(faults.as_json())

    async def clear_faults(request: web.Request) -> web.Response:
        faults.clear()
        return json_response(faults.as_json())

    async def get_truth(request: web.Request) -> web.Response:
        until = None
        if "until" in request.query:
            try:
                until = parse_rfc3339(request.query["until"])
            except ValueError:
                return json_response({"error": "until must be RFC 3339"}, status=400)
        return json_response({"records": truth(until)})

    async def get_stats(request: web.Request) -> web.Response:
        return json_response(stats.as_json())

    app.router.add_post("/_sim/faults", push_fault)
    app.router.add_get("/_sim/faults", list_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_get("/_sim/truth", get_truth)
    app.router.add_get("/_sim/stats", get_stats)
