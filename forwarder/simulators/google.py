"""A simulator of the Google Admin SDK Reports API for Calendar audit activities.

Routes that mirror the real services:

* ``POST /token``: the OAuth 2.0 JWT-bearer grant of a service account with domain-wide
  delegation (see :mod:`forwarder.simulators.google_auth`);
* ``GET /admin/reports/v1/activity/users/{userKey}/applications/{applicationName}``:
  ``activities.list``, newest first, ``startTime`` inclusive and ``endTime`` exclusive,
  opaque ``pageToken`` bound to the query, Google error envelopes, a per-minute quota
  answered with 403 ``rateLimitExceeded``.

Activities become visible ``lag`` seconds after their ``id.time`` (Calendar audit data
shows up late, sometimes hours late): an activity is served only once the injected
clock reaches its ``visible_at``. ``/_sim/`` routes are test helpers, not part of the API.

The log is a compact index sorted by activity key (:mod:`~forwarder.simulators.google_log`):
a page costs its own records, whatever the window's length, and activity bodies are built
from the seed when served, so hours of a busy domain (100 activities/s) fit in memory.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from forwarder.clock import Clock
from forwarder.simulators.faults import TRANSPORT_FAULTS, FaultKind, FaultPlan, spoil_body
from forwarder.simulators.google_auth import (
    GOOGLE_TOKEN_AUDIENCE,
    ServiceAccount,
    TokenError,
    TokenService,
)
from forwarder.simulators.google_data import (
    GoogleUser,
    LagModel,
    build_activity,
    build_google_users,
)
from forwarder.simulators.google_errors import (
    GoogleApiError,
    backend_error,
    invalid_credentials,
    invalid_parameter,
    login_required,
    quota_exceeded,
    too_many_requests,
)
from forwarder.simulators.google_log import ActivityLog, Key, ListingStats, LogRecord
from forwarder.simulators.google_query import ActivityQuery, parse_activity_query
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
from forwarder.simulators.ratelimit import FixedWindowLimiter
from forwarder.simulators.sim_routes import add_sim_routes
from forwarder.simulators.stats import RequestStats
from forwarder.simulators.timeline import Arrivals, format_micros, to_micros

ACTIVITIES_ROUTE = "/admin/reports/v1/activity/users/{userKey}/applications/{applicationName}"
TOKEN_ROUTE = "/token"
ACTIVITIES_KIND = "admin#reports#activities"
# Google's APIs suggest waiting a few seconds before retrying an overloaded backend.
RETRY_AFTER_SECONDS = "5"


@dataclass
class GoogleConfig:
    """Settings of one simulated Workspace customer and its Calendar audit log."""

    start: float
    """Unix time the dataset starts at (the first activity comes one gap later)."""
    seed: int = 0
    rate_per_minute: float = 6.0
    end: float | None = None
    """``None``: the log keeps growing with the clock ("live")."""
    delegated_admin: str = "admin@example.com"
    customer_id: str = "C03az79cb"
    domain: str = "example.com"
    token_lifetime: int = 3599
    quota_per_minute: int = 2400
    min_lag: float = 0.0
    max_lag: float = 0.0
    late_fraction: float = 0.0
    late_lag: float = 5400.0
    late_min_lag: float | None = None
    """Set: late activities lag uniformly in ``[late_min_lag, late_lag]``, not exactly
    ``late_lag``."""
    tie_fraction: float = 0.05
    project_id: str = "forwarder-sim"
    latency_seconds: float = 0.0
    """Real time every API request (token endpoint too) waits before it is handled."""
    date_offset: float = 0.0
    """Seconds added to the ``Date`` header only: a server whose clock is wrong while its
    data are right (0: the real contract)."""


def _break_activity(activity: dict[str, Any]) -> dict[str, Any]:
    broken = dict(activity)
    broken.pop("id", None)
    return broken


def _typed_parameter(name: str, value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"name": name, "boolValue": value}
    if isinstance(value, int):
        return {"name": name, "intValue": str(value)}
    return {"name": name, "value": value}


def _copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


class GoogleReportsSimulator:
    """The Reports API (Calendar application) of one customer, served by :meth:`app`."""

    def __init__(
        self,
        config: GoogleConfig,
        clock: Clock,
        account: ServiceAccount | None = None,
        quota: FixedWindowLimiter | None = None,
    ) -> None:
        """``account`` and ``quota`` may be shared by several simulated customers, as
        Google's quota is per Cloud project: the customers whose domains delegate to one
        service account spend one per-minute limit (None: this customer's own, of
        ``quota_per_minute``)."""
        self.config = config
        self.clock = clock
        self.account = account or ServiceAccount.generate(config.project_id)
        self.tokens = TokenService(
            self.account, config.delegated_admin, clock, config.token_lifetime
        )
        self.token_uri: str | None = None
        """The ``aud`` assertions must carry; set by :meth:`write_service_account_key`."""
        self.faults = FaultPlan(set(FaultKind))
        self.stats = RequestStats()
        self._seed = f"{config.seed}:google"
        self._lag = LagModel(
            config.min_lag,
            config.max_lag,
            config.late_fraction,
            config.late_lag,
            config.late_min_lag,
        )
        self._users: tuple[GoogleUser, ...] = build_google_users(self._seed, config.domain)
        self.listing = ListingStats()
        """Records looked at, served and built by listings (tests, benchmarks)."""
        self._log = ActivityLog(
            Arrivals(
                seed=self._seed,
                start_us=to_micros(config.start),
                rate_per_minute=config.rate_per_minute,
                end_us=None if config.end is None else to_micros(config.end),
                tie_fraction=config.tie_fraction,
            ),
            self._identity,
            self.listing,
        )
        self._injected_count = 0
        self._quota = quota or FixedWindowLimiter(config.quota_per_minute, clock)
        secret = hashlib.sha256(f"{self._seed}:page-token".encode()).digest()
        self._page_tokens = PageTokenCodec(secret)

    # -- credentials --------------------------------------------------------------------

    def write_service_account_key(self, path: Path, token_uri: str) -> Path:
        """Write the service-account key file; assertions may then use ``aud=token_uri``
        (or Google's own token audience, as always)."""
        self.token_uri = token_uri
        return self.account.write_key_file(path, token_uri)

    # -- data ---------------------------------------------------------------------------

    @property
    def users(self) -> tuple[GoogleUser, ...]:
        """The customer's users (actors of the activities)."""
        return self._users

    def _identity(self, index: int) -> tuple[int, float]:
        """Generated activity ``index``'s ``uniqueQualifier`` (the first draw of its own
        generator, as :func:`build_activity` makes it) and reporting lag."""
        qualifier = random.Random(f"{self._seed}:activity:{index}").getrandbits(64) - 2**63
        return qualifier, self._lag.lag(random.Random(f"{self._seed}:lag:{index}"))

    def _activity(self, record: LogRecord) -> dict[str, Any]:
        """The body of ``record``: a copy of an injected one, or built from the seed (a
        pure function of the seed, the activity's number and its time)."""
        if record.activity is not None:
            return _copy(record.activity)
        self.listing.bodies_built += 1
        return build_activity(
            random.Random(f"{self._seed}:activity:{record.index}"),
            time_ms=record.time_us // 1000,
            time_text=format_micros(record.time_us, 3),
            customer_id=self.config.customer_id,
            domain=self.config.domain,
            users=self._users,
        )

    def add_activity(
        self,
        time: float,
        visible_after_seconds: float = 0.0,
        event_name: str = "create_event",
        *,
        event_type: str | None = None,
        extra_event_names: tuple[str, ...] = (),
        actor_email: str | None = None,
        ip_address: str | None = None,
        parameters: dict[str, str | int | bool] | None = None,
        drop_fields: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Inject an activity at ``time``, visible ``visible_after_seconds`` later.

        ``event_name`` may be one the catalog does not know (``event_type`` then defaults
        to ``event_change``); ``parameters`` override or add parameters of the first event,
        typed from the Python type (bool, int, str). ``drop_fields``: top-level fields left
        out every time it is served, i.e. an activity the API keeps returning malformed
        (``id`` is kept: activities are paged by it). Returns a copy of the activity.
        """
        time_us = to_micros(time) // 1000 * 1000
        activity = build_activity(
            random.Random(f"{self._seed}:injected:{self._injected_count}"),
            time_ms=time_us // 1000,
            time_text=format_micros(time_us, 3),
            customer_id=self.config.customer_id,
            domain=self.config.domain,
            users=self._users,
            event_name=event_name,
            event_type=event_type,
            extra_event_names=extra_event_names,
            actor_email=actor_email,
            ip_address=ip_address,
        )
        for name, value in (parameters or {}).items():
            event_parameters = activity["events"][0]["parameters"]
            event_parameters[:] = [p for p in event_parameters if p["name"] != name]
            event_parameters.append(_typed_parameter(name, value))
        for name in drop_fields:
            if name != "id":
                activity.pop(name, None)
        self._injected_count += 1
        self._log.add(
            LogRecord(
                time_us=time_us,
                unique_qualifier=int(activity["id"]["uniqueQualifier"]),
                visible_at=time_us / 1e6 + visible_after_seconds,
                index=-1,
                activity=activity,
            )
        )
        return _copy(activity)

    def truth(
        self, until: float | None = None, *, visible_only: bool = False
    ) -> list[dict[str, Any]]:
        """Every activity with ``id.time <= until`` (default: now), oldest first.

        Each record is ``{"activity", "visible_at" (RFC 3339), "visible_at_unix"}``;
        ``visible_only`` keeps those already visible at the clock's now.
        """
        return list(self.truth_records(until, visible_only=visible_only))

    def truth_records(
        self, until: float | None = None, *, visible_only: bool = False
    ) -> Iterator[dict[str, Any]]:
        """:meth:`truth` one record at a time, each body built as it is reached (a busy
        log's truth does not fit in one list)."""
        now = self.clock.now()
        until_us = to_micros(now if until is None else until)
        self._log.sync(now, until_us)
        for record in self._log.oldest_first(until_us + 1):
            if visible_only and record.visible_at > now:
                continue
            yield {
                "activity": self._activity(record),
                "visible_at": format_micros(to_micros(record.visible_at), 3),
                "visible_at_unix": record.visible_at,
            }

    # -- HTTP ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application: token endpoint, ``activities.list`` and ``/_sim/``."""
        application = web.Application(
            middlewares=[self.stats.middleware(), latency(self.config.latency_seconds)]
        )
        application.router.add_post(TOKEN_ROUTE, self._token, name="token")
        application.router.add_get(ACTIVITIES_ROUTE, self._list_activities, name="activities")
        add_sim_routes(application, faults=self.faults, stats=self.stats, truth=self.truth)
        application.on_response_prepare.append(
            date_from(self.clock, lambda: self.config.date_offset)
        )
        return application

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        # Google's own audience whatever URL was called (stock clients sign it), or ours.
        own = self.token_uri or str(request.url.with_query(None))
        try:
            body = self.tokens.exchange(form, (GOOGLE_TOKEN_AUDIENCE, own))
        except TokenError as exc:
            return json_response(exc.body(), 400)
        return json_response(body, headers={"Cache-Control": "no-store"})

    async def _list_activities(self, request: web.Request) -> web.StreamResponse:
        fault = self.faults.take_status_fault()
        if fault is not None:
            self.faults.record(fault)
            if fault in TRANSPORT_FAULTS:
                return await transport_fault(request, fault)
            return self._status_fault(request, fault)
        if self.faults.take_page_token_fault(has_page_token="pageToken" in request.query):
            self.faults.record(FaultKind.PAGE_TOKEN_REJECTED)
            return invalid_parameter("pageToken", "Invalid pageToken").response()
        token = bearer_token(request)
        try:
            if token is None:
                raise login_required()
            if not self.tokens.is_valid(token):
                raise invalid_credentials()
            if not self._quota.hit(self.account.project_id).allowed:
                raise quota_exceeded()
            now_us = to_micros(self.clock.now())
            query = parse_activity_query(
                request.match_info["userKey"],
                request.match_info["applicationName"],
                request.query,
                now_us,
            )
            payload = self._page(query)
        except GoogleApiError as exc:
            return exc.response()
        if self.faults.take_loop_fault(has_page_token=query.page_token is not None):
            self.faults.record(FaultKind.PAGE_TOKEN_LOOP)
            payload["nextPageToken"] = query.page_token
        return self._success(payload)

    def _status_fault(self, request: web.Request, fault: FaultKind) -> web.StreamResponse:
        if fault is FaultKind.RESET:
            return reset_connection(request)
        if fault is FaultKind.RATE_LIMIT_403:
            return quota_exceeded().response()
        if fault is FaultKind.HTTP_429:
            return too_many_requests().response({"Retry-After": RETRY_AFTER_SECONDS})
        if fault is FaultKind.HTTP_503:
            return backend_error(503).response({"Retry-After": RETRY_AFTER_SECONDS})
        return backend_error(500).response()

    def _success(self, payload: dict[str, Any]) -> web.Response:
        fault = self.faults.take_body_fault(has_records=bool(payload.get("items")))
        if fault is None:
            return json_response(payload)
        if fault is not FaultKind.TRUNCATED_JSON:
            payload.setdefault("items", [])
        body, detail = spoil_body(
            fault,
            payload,
            list_key="items",
            break_record=_break_activity,
            # An empty page has no ``items`` either: dropping ``kind`` too keeps the
            # fault detectable by a client that checks the documented shape.
            drop_with_list=("kind",),
        )
        self.faults.record(fault, **detail)
        return raw_json_response(body)

    @staticmethod
    def _filtered(query: ActivityQuery) -> bool:
        return bool(query.user_key != "all" or query.event_name or query.actor_ip or query.filters)

    @staticmethod
    def _matches(activity: dict[str, Any], query: ActivityQuery) -> bool:
        if query.user_key != "all":
            actor = activity.get("actor", {})
            if query.user_key not in (actor.get("email"), actor.get("profileId")):
                return False
        if query.event_name is not None and all(
            event.get("name") != query.event_name for event in activity.get("events", [])
        ):
            return False
        if query.actor_ip is not None and activity.get("ipAddress") != query.actor_ip:
            return False
        return all(item.matches(activity) for item in query.filters)

    def _cursor(self, query: ActivityQuery, query_hash: str) -> Key | None:
        if query.page_token is None:
            return None
        try:
            payload = self._page_tokens.decode(query.page_token, query_hash)
        except PageTokenError:
            raise invalid_parameter("pageToken", "Invalid pageToken") from None
        key = payload.get("k")
        if not (isinstance(key, list) and len(key) == 2 and all(type(v) is int for v in key)):
            raise invalid_parameter("pageToken", "Invalid pageToken")
        return (key[0], key[1])

    def _page(self, query: ActivityQuery) -> dict[str, Any]:
        query_hash = PageTokenCodec.query_hash(query.identity)
        cursor = self._cursor(query, query_hash)
        now = self.clock.now()
        self._log.sync(now, query.end_us - 1)
        records = self._log.newest_first(query.start_us, query.end_us, cursor, now)
        # One more than the page: whether it exists says if a next page follows.
        wanted = query.max_results + 1
        found: list[tuple[LogRecord, dict[str, Any] | None]]
        if self._filtered(query):
            # Filters read the body: a filtered page costs what it scans (the real API
            # counts filtered queries against a quota of their own).
            found = []
            for record in records:
                activity = self._activity(record)
                if self._matches(activity, query):
                    found.append((record, activity))
                    if len(found) == wanted:
                        break
        else:
            found = [(record, None) for record in islice(records, wanted)]
        page = found[: query.max_results]
        items = [self._activity(r) if a is None else a for r, a in page]
        self.listing.pages += 1
        self.listing.items_served += len(items)
        payload: dict[str, Any] = {"kind": ACTIVITIES_KIND, "etag": self._etag(items)}
        if items:
            payload["items"] = items
        if len(found) > len(page):
            last = page[-1][0]
            payload["nextPageToken"] = self._page_tokens.encode(
                query_hash, {"k": [last.time_us, last.unique_qualifier]}
            )
        return payload

    @staticmethod
    def _etag(items: list[dict[str, Any]]) -> str:
        digest = hashlib.sha1(orjson.dumps(items), usedforsecurity=False).digest()
        return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'
