"""Helpers for the simulator contract tests: HTTP harnesses and JWT assertions.

(A module with a unique name rather than ``conftest`` so test modules can import it
without clashing with other ``conftest.py`` files of the test tree.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from forwarder.clock import ManualClock
from forwarder.simulators.calendly import CalendlySimulator
from forwarder.simulators.google import GoogleReportsSimulator
from forwarder.simulators.google_auth import JWT_BEARER_GRANT, REPORTS_SCOPE, ServiceAccount

T0 = 1_800_000_000.0
"""The manual clock's start (2027-01-15T08:00:00Z)."""
ADMIN = "admin@example.com"
ACTIVITIES_PATH = "/admin/reports/v1/activity/users/all/applications/calendar"


def sign_assertion(
    account: ServiceAccount,
    *,
    token_uri: str,
    now: float,
    sub: str | None = ADMIN,
    scope: str | None = REPORTS_SCOPE,
    kid: str | None = None,
    **overrides: Any,
) -> str:
    """A JWT-bearer assertion signed by ``account`` (any claim overridable)."""
    claims: dict[str, Any] = {
        "iss": account.client_email,
        "aud": token_uri,
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    if scope is not None:
        claims["scope"] = scope
    if sub is not None:
        claims["sub"] = sub
    claims.update(overrides)
    return jwt.encode(
        claims,
        account.private_key_pem,
        algorithm="RS256",
        headers={"kid": kid or account.private_key_id},
    )


@dataclass
class CalendlyHarness:
    """A running Calendly simulator and a client for it."""

    sim: CalendlySimulator
    url: str
    session: aiohttp.ClientSession

    @property
    def endpoint(self) -> str:
        return self.url + "/activity_log_entries"

    def params(self, **extra: Any) -> dict[str, str]:
        params = {"organization": self.sim.config.organization_uri}
        params.update({key: str(value) for key, value in extra.items()})
        return params

    async def get(
        self, params: dict[str, str] | None = None, token: str | None = "default", url: str = ""
    ) -> tuple[int, Any, Mapping[str, str]]:
        headers = {}
        if token is not None:
            headers["Authorization"] = "Bearer " + (
                self.sim.config.token if token == "default" else token
            )
        target = url or self.endpoint
        async with self.session.get(
            target, params=None if url else (params or self.params()), headers=headers
        ) as response:
            body = await response.read()
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = body
            return response.status, payload, response.headers

    async def collect(self, params: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
        """Follow ``next_page`` from the first page; return every entry and the page count."""
        status, page, _ = await self.get(params)
        assert status == 200, page
        entries = list(page["collection"])
        pages = 1
        while page["pagination"]["next_page"]:
            status, page, _ = await self.get(url=page["pagination"]["next_page"])
            assert status == 200, page
            entries.extend(page["collection"])
            pages += 1
        return entries, pages


@dataclass
class GoogleHarness:
    """A running Google Reports simulator, its key and a client for it."""

    sim: GoogleReportsSimulator
    url: str
    token_uri: str
    session: aiohttp.ClientSession
    clock: ManualClock
    _access_token: str | None = None
    _expires_at: float = 0.0

    async def token_request(self, assertion: str, grant_type: str = JWT_BEARER_GRANT):
        async with self.session.post(
            self.token_uri, data={"grant_type": grant_type, "assertion": assertion}
        ) as response:
            return response.status, await response.json()

    async def access_token(self) -> str:
        """A valid access token, fetched again (like a real client) once near expiry."""
        if self._access_token is None or self.clock.now() >= self._expires_at - 60:
            assertion = sign_assertion(
                self.sim.account, token_uri=self.token_uri, now=self.clock.now()
            )
            status, body = await self.token_request(assertion)
            assert status == 200, body
            self._access_token = body["access_token"]
            self._expires_at = self.clock.now() + body["expires_in"]
        return self._access_token

    async def list(
        self,
        params: dict[str, Any] | None = None,
        *,
        token: str | None = "default",
        path: str = ACTIVITIES_PATH,
    ) -> tuple[int, Any, Mapping[str, str]]:
        headers = {}
        if token is not None:
            headers["Authorization"] = "Bearer " + (
                await self.access_token() if token == "default" else token
            )
        query = {key: str(value) for key, value in (params or {}).items()}
        async with self.session.get(self.url + path, params=query, headers=headers) as response:
            body = await response.read()
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                payload = body
            return response.status, payload, response.headers

    async def collect(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """Follow ``nextPageToken``; return every activity and the number of pages."""
        items: list[dict[str, Any]] = []
        pages = 0
        token = None
        while True:
            query = dict(params, **({"pageToken": token} if token else {}))
            status, page, _ = await self.list(query)
            assert status == 200, page
            items.extend(page.get("items", []))
            pages += 1
            token = page.get("nextPageToken")
            if not token:
                return items, pages


StartCalendly = Callable[..., Awaitable[CalendlyHarness]]
StartGoogle = Callable[..., Awaitable[GoogleHarness]]
