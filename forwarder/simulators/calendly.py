"""A simulator of Calendly's Activity Log API (``GET /activity_log_entries``).

It follows the documented contract: Bearer token, the ``organization`` parameter,
``count``/``sort``/time/filter parameters, keyset ``page_token`` bound to the query, the
``{collection, pagination, total_count, exceeds_max_total_count, last_event_time}`` body,
``{title, message, details}`` errors and ``X-RateLimit-*`` headers on every response.
Data come from a seeded :class:`~forwarder.simulators.timeline.Timeline`; entries later
than the injected clock's now are never served. ``/_sim/`` routes are test helpers.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from forwarder.clock import Clock
from forwarder.simulators.calendly_data import (
    API_BASE,
    CalendlyUser,
    build_entry,
    build_users,
)
from forwarder.simulators.calendly_query import (
    CalendlyQuery,
    InvalidArguments,
    composite_key,
    parse_query,
    sort_value,
)
from forwarder.simulators.faults import TRANSPORT_FAULTS, FaultKind, FaultPlan, spoil_body
from forwarder.simulators.httputil import (
    bearer_token,
    date_from,
    json_response,
    latency,
    raw_json_response,
    reset_connection,
    transport_fault,
)
from forwarder.simulators.pagetoken import PageTokenCodec, PageTokenError
from forwarder.simulators.ratelimit import FixedWindowLimiter, RateDecision
from forwarder.simulators.sim_routes import add_sim_routes
from forwarder.simulators.stats import RequestStats
from forwarder.simulators.timeline import Timeline, format_micros, to_micros

DEFAULT_ORGANIZATION_URI = f"{API_BASE}/organizations/SIMORGANIZATION0"
LIST_ROUTE = "/activity_log_entries"
# Ordered result sets kept for paging (one per query being paged through at once).
ORDERED_CACHE_SIZE = 64


@dataclass
class CalendlyConfig:
    """Settings of one simulated Calendly organization and its Activity Log."""

    start: float
    """Unix time the dataset starts at (the first entry comes one gap later)."""
    seed: int = 0
    rate_per_minute: float = 6.0
    end: float | None = None
    """``None``: the log keeps growing with the clock ("live")."""
    token: str = "sim-calendly-token"
    organization_uri: str = DEFAULT_ORGANIZATION_URI
    rate_limit_per_minute: int = 500
    tie_fraction: float = 0.05
    """Share of zero gaps, i.e. entries sharing the previous entry's ``occurred_at``."""
    system_actor_fraction: float = 0.08
    max_total_count: int = 10_000
    """``total_count`` stops here and ``exceeds_max_total_count`` turns true."""
    domain: str = "example.com"
    latency_seconds: float = 0.0
    """Real time every API request waits before it is handled (network + backend)."""
    date_offset: float = 0.0
    """Seconds added to the ``Date`` header only: a server whose clock is wrong while its
    data are right (0: the real contract)."""


@dataclass(slots=True)
class _Row:
    time_us: int
    entry: dict[str, Any]
    _blob: str | None = field(default=None, repr=False)
    visible_us: int | None = None
    """Served once the clock reaches this (``None``: ``time_us``); an entry dated in the
    future is in the log from here on."""

    @property
    def served_from_us(self) -> int:
        return self.time_us if self.visible_us is None else self.visible_us

    @property
    def blob(self) -> str:
        """Lower-case JSON of the entry, what ``search_term`` searches (built on demand)."""
        if self._blob is None:
            self._blob = orjson.dumps(self.entry).decode().lower()
        return self._blob


# (sort key, raw sort values, row) of one selected row.
_Ordered = tuple[tuple[Any, ...], list[Any], _Row]


def _rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_seconds),
    }


def _error(
    status: int, title: str, message: str, headers: dict[str, str], **extra: Any
) -> web.Response:
    return json_response({"title": title, "message": message, **extra}, status, headers)


def _break_entry(entry: dict[str, Any]) -> dict[str, Any]:
    broken = dict(entry)
    broken.pop("occurred_at", None)
    broken.pop("uri", None)
    return broken


class CalendlySimulator:
    """The Calendly Activity Log of one organization, served by :meth:`app`."""

    def __init__(self, config: CalendlyConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.faults = FaultPlan(set(FaultKind) - {FaultKind.RATE_LIMIT_403})
        self.stats = RequestStats()
        self._seed = f"{config.seed}:calendly"
        self._timeline = Timeline(
            seed=self._seed,
            start_us=to_micros(config.start),
            rate_per_minute=config.rate_per_minute,
            end_us=None if config.end is None else to_micros(config.end),
            tie_fraction=config.tie_fraction,
        )
        self._users: tuple[CalendlyUser, ...] = build_users(self._seed, config.domain)
        self._rows: list[_Row] = []
        self._row_times: list[int] = []
        self._injected: list[_Row] = []
        self._limiter = FixedWindowLimiter(config.rate_limit_per_minute, clock)
        self._ordered_cache: OrderedDict[
            tuple[str, int, int, tuple[int, ...]], tuple[list[tuple[Any, ...]], list[_Ordered]]
        ] = OrderedDict()
        secret = hashlib.sha256(f"{self._seed}:page-token".encode()).digest()
        self._page_tokens = PageTokenCodec(secret)

    # -- data ---------------------------------------------------------------------------

    @property
    def users(self) -> tuple[CalendlyUser, ...]:
        """The organization's members (actors of the entries)."""
        return self._users

    def _generate_until(self, until_us: int) -> None:
        self._timeline.extend_to(until_us)
        for index in range(len(self._rows), self._timeline.generated):
            time_us = self._timeline.time_of(index)
            entry = build_entry(
                random.Random(f"{self._seed}:entry:{index}"),
                occurred_at=format_micros(time_us, 6),
                organization_uri=self.config.organization_uri,
                users=self._users,
                system_actor_fraction=self.config.system_actor_fraction,
            )
            self._rows.append(_Row(time_us, entry))
            self._row_times.append(time_us)

    def _rows_until(self, until_us: int) -> list[_Row]:
        self._generate_until(until_us)
        rows = self._rows[: bisect_right(self._row_times, until_us)]
        return rows + [row for row in self._injected if row.time_us <= until_us]

    def _served_injected(self, now_us: int) -> tuple[int, ...]:
        return tuple(i for i, row in enumerate(self._injected) if row.served_from_us <= now_us)

    def add_entry(
        self,
        time: float,
        namespace: str = "API",
        action: str = "Token_Created",
        *,
        actor: dict[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        served_from: float | None = None,
        drop_fields: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Inject an entry at ``time`` (served once the clock reaches it); return a copy.

        ``served_from``: served from this clock time on instead, e.g. now for an entry
        dated in the future (Calendly returns what it holds, whatever its date).
        ``drop_fields``: fields left out of the entry every time it is served, i.e. a
        record the API keeps returning malformed (``uri`` is kept: entries are paged by it).
        """
        time_us = to_micros(time)
        entry = build_entry(
            random.Random(f"{self._seed}:injected:{len(self._injected)}"),
            occurred_at=format_micros(time_us, 6),
            organization_uri=self.config.organization_uri,
            users=self._users,
            system_actor_fraction=self.config.system_actor_fraction,
            namespace=namespace,
            action=action,
        )
        if actor is not None:
            entry["actor"] = actor
        if details is not None:
            entry["details"] = details
        for name in drop_fields:
            if name != "uri":
                entry.pop(name, None)
        visible_us = None if served_from is None else to_micros(served_from)
        self._injected.append(_Row(time_us, entry, visible_us=visible_us))
        return orjson.loads(orjson.dumps(entry))

    def truth(self, until: float | None = None) -> list[dict[str, Any]]:
        """Every entry with ``occurred_at <= until`` (default: now), oldest first."""
        until_us = to_micros(self.clock.now() if until is None else until)
        rows = sorted(self._rows_until(until_us), key=lambda r: (r.time_us, r.entry["uri"]))
        return orjson.loads(orjson.dumps([row.entry for row in rows]))

    # -- HTTP ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application: the API route and the ``/_sim/`` helpers."""
        application = web.Application(
            middlewares=[self.stats.middleware(), latency(self.config.latency_seconds)]
        )
        application.router.add_get(LIST_ROUTE, self._list_entries, name="activity_log_entries")
        add_sim_routes(application, faults=self.faults, stats=self.stats, truth=self.truth)
        application.on_response_prepare.append(
            date_from(self.clock, lambda: self.config.date_offset)
        )
        return application

    async def _list_entries(self, request: web.Request) -> web.StreamResponse:
        token = bearer_token(request)
        # Every request counts against its token's window, and every answer says so.
        decision = self._limiter.hit(token or "anonymous")
        headers = _rate_headers(decision)
        fault = self.faults.take_status_fault()
        if fault is not None:
            self.faults.record(fault)
            if fault in TRANSPORT_FAULTS:
                return await transport_fault(request, fault)
            return self._status_fault(request, fault, decision)
        if not decision.allowed:
            return self._too_many(headers)
        if self.faults.take_page_token_fault(has_page_token="page_token" in request.query):
            self.faults.record(FaultKind.PAGE_TOKEN_REJECTED)
            return self._invalid([{"parameter": "page_token", "message": "is invalid"}], headers)
        if token is None:
            return _error(401, "Unauthenticated", "The access token is missing.", headers)
        if token != self.config.token:
            return _error(401, "Unauthenticated", "The access token is invalid.", headers)
        try:
            query = parse_query(request.query)
        except InvalidArguments as exc:
            return self._invalid(exc.details, headers)
        if query.organization != self.config.organization_uri:
            return _error(
                403,
                "Permission Denied",
                "You do not have permission to access this resource.",
                headers,
            )
        try:
            payload = self._page(request, query)
        except (PageTokenError, InvalidArguments):
            details = [{"parameter": "page_token", "message": "is invalid"}]
            return self._invalid(details, headers)
        if self.faults.take_loop_fault(has_page_token=query.page_token is not None):
            self.faults.record(FaultKind.PAGE_TOKEN_LOOP)
            payload["pagination"]["next_page_token"] = query.page_token
            payload["pagination"]["next_page"] = self._page_url(request, query.page_token)
        return self._success(payload, headers)

    def _invalid(self, details: list[dict[str, str]], headers: dict[str, str]) -> web.Response:
        return _error(
            400,
            "Invalid Argument",
            "The supplied parameters are invalid.",
            headers,
            details=details,
        )

    def _too_many(self, headers: dict[str, str]) -> web.Response:
        return _error(
            429,
            "Too Many Requests",
            "You have exceeded the rate limit. Please try again later.",
            {**headers, "X-RateLimit-Remaining": "0"},
        )

    def _status_fault(
        self, request: web.Request, fault: FaultKind, decision: RateDecision
    ) -> web.StreamResponse:
        headers = _rate_headers(decision)
        if fault is FaultKind.RESET:
            return reset_connection(request)
        if fault is FaultKind.HTTP_429:
            return self._too_many(headers)
        if fault is FaultKind.HTTP_503:
            return _error(
                503, "Service Unavailable", "The service is temporarily unavailable.", headers
            )
        return _error(
            500,
            "Internal Server Error",
            "The server encountered an unexpected condition that prevented it from "
            "fulfilling the request.",
            headers,
        )

    def _success(self, payload: dict[str, Any], headers: dict[str, str]) -> web.Response:
        fault = self.faults.take_body_fault(has_records=bool(payload["collection"]))
        if fault is None:
            return json_response(payload, 200, headers)
        body, detail = spoil_body(fault, payload, list_key="collection", break_record=_break_entry)
        self.faults.record(fault, **detail)
        return raw_json_response(body, 200, headers)

    def _matches(self, row: _Row, query: CalendlyQuery) -> bool:
        entry = row.entry
        if query.min_us is not None and row.time_us < query.min_us:
            return False
        if query.max_us is not None and row.time_us > query.max_us:
            return False
        if query.namespaces is not None and entry["namespace"] not in query.namespaces:
            return False
        if query.actions is not None and entry["action"] not in query.actions:
            return False
        if query.actors is not None and (entry.get("actor") or {}).get("uri") not in query.actors:
            return False
        return query.search is None or query.search.matches(row.blob)

    def _cursor(self, query: CalendlyQuery, query_hash: str) -> tuple[str, tuple[Any, ...]] | None:
        if query.page_token is None:
            return None
        payload = self._page_tokens.decode(query.page_token, query_hash)
        direction, values = payload.get("d"), payload.get("k")
        expected = [int if spec.field == "occurred_at" else str for spec in query.sort] + [str]
        if (
            direction not in ("n", "p")
            or not isinstance(values, list)
            or len(values) != len(expected)
            or any(type(v) is not t for v, t in zip(values, expected, strict=True))
        ):
            raise PageTokenError("page token does not fit this query")
        return direction, composite_key(values, query.sort)

    def _ordered(
        self, query: CalendlyQuery, query_hash: str, now_us: int
    ) -> tuple[list[tuple[Any, ...]], list[_Ordered]]:
        """The rows the query selects at ``now_us``, in its order, with their sort keys.

        Only rows inside the query's time bounds are looked at (the generated rows are in
        time order), and the result is cached while the selection cannot change (same
        query, same range of generated rows, same injected rows visible): paging through
        a 100k-entry history then costs a bisection per page, not a sort of the whole log.
        """
        self._generate_until(now_us)
        low = 0 if query.min_us is None else bisect_left(self._row_times, query.min_us)
        upper = now_us if query.max_us is None else min(now_us, query.max_us)
        high = bisect_right(self._row_times, upper)
        injected = self._served_injected(now_us)
        cache_key = (query_hash, low, high, injected)
        cached = self._ordered_cache.get(cache_key)
        if cached is not None:
            self._ordered_cache.move_to_end(cache_key)
            return cached
        candidates = self._rows[low:high] + [self._injected[i] for i in injected]
        ordered: list[_Ordered] = []
        for row in candidates:
            if self._matches(row, query):
                values = [sort_value(row.entry, row.time_us, spec.field) for spec in query.sort]
                values.append(row.entry["uri"])
                ordered.append((composite_key(values, query.sort), values, row))
        ordered.sort(key=lambda item: item[0])
        result = ([item[0] for item in ordered], ordered)
        self._ordered_cache[cache_key] = result
        while len(self._ordered_cache) > ORDERED_CACHE_SIZE:
            self._ordered_cache.popitem(last=False)
        return result

    def _page(self, request: web.Request, query: CalendlyQuery) -> dict[str, Any]:
        query_hash = PageTokenCodec.query_hash(query.identity)
        cursor = self._cursor(query, query_hash)
        now_us = to_micros(self.clock.now())
        keys, ordered = self._ordered(query, query_hash, now_us)

        if cursor is None:
            start = 0
        elif cursor[0] == "n":
            start = bisect_right(keys, cursor[1])
        else:
            start = max(0, bisect_left(keys, cursor[1]) - query.count)
        stop = min(len(ordered), start + query.count)
        if cursor is not None and cursor[0] == "p":
            stop = min(stop, bisect_left(keys, cursor[1]))
        page = ordered[start:stop]

        next_token = previous_token = None
        if page and stop < len(ordered):
            next_token = self._page_tokens.encode(query_hash, {"d": "n", "k": page[-1][1]})
        if page and start > 0:
            previous_token = self._page_tokens.encode(query_hash, {"d": "p", "k": page[0][1]})
        collection = [row.entry for _, _, row in page]
        total = len(ordered)
        return {
            "collection": collection,
            "pagination": {
                "count": query.count,
                "next_page": self._page_url(request, next_token),
                "previous_page": self._page_url(request, previous_token),
                "next_page_token": next_token,
                "previous_page_token": previous_token,
            },
            "total_count": min(total, self.config.max_total_count),
            "exceeds_max_total_count": total > self.config.max_total_count,
            "last_event_time": (
                format_micros(max(row.time_us for _, _, row in page), 6) if page else None
            ),
        }

    @staticmethod
    def _page_url(request: web.Request, token: str | None) -> str | None:
        if token is None:
            return None
        return str(request.url.update_query(page_token=token))
