"""Request counters per route and status (served on ``/_sim/stats``, a test helper)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from forwarder.simulators.httputil import ResetResponse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SIM_PREFIX = "/_sim/"


class RequestStats:
    """How many API requests each route answered with each status (``reset`` for drops),
    and how many were being served at once (tests of concurrent clients read the peak)."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0

    def record(self, route: str, status: int | str) -> None:
        self._counts[(route, str(status))] += 1

    def count(self, route: str | None = None, status: int | str | None = None) -> int:
        """Requests matching ``route`` and ``status`` (``None`` matches any)."""
        return sum(
            n
            for (r, s), n in self._counts.items()
            if (route is None or r == route) and (status is None or s == str(status))
        )

    def as_json(self) -> dict[str, Any]:
        by_status: Counter[str] = Counter()
        by_route: dict[str, dict[str, int]] = {}
        for (route, status), n in sorted(self._counts.items()):
            by_status[status] += n
            by_route.setdefault(route, {})[status] = n
        return {
            "total": sum(by_status.values()),
            "by_status": dict(by_status),
            "by_route": by_route,
            "peak_in_flight": self.peak_in_flight,
        }

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """An aiohttp middleware counting every request outside ``/_sim/``."""

        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(SIM_PREFIX):
                return await handler(request)
            route = request.match_info.route.name or request.path
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                self.record(route, exc.status)
                raise
            finally:
                self.in_flight -= 1
            self.record(route, "reset" if isinstance(response, ResetResponse) else response.status)
            return response

        return count_requests
