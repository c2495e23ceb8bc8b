"""Fixtures for the simulator contract tests: a manual clock and running simulators.

Every simulator runs on 127.0.0.1, port 0, driven by a :class:`ManualClock`, and is
talked to through a real aiohttp client, like the forwarder's sources do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
from sim_harness import T0, CalendlyHarness, GoogleHarness, StartCalendly, StartGoogle

from forwarder.clock import ManualClock
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.simulators.server import run_app


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(scope="session")
def service_account() -> ServiceAccount:
    """One RSA key for the whole session: generating one per test would be slow."""
    return ServiceAccount.generate()


@pytest.fixture(scope="session")
def other_account() -> ServiceAccount:
    """A second key, to forge assertions the simulator must reject."""
    return ServiceAccount.generate()


@pytest.fixture
async def start_calendly(
    clock: ManualClock, session: aiohttp.ClientSession
) -> AsyncIterator[StartCalendly]:
    """Start a Calendly simulator (30 min of history at 10/min unless overridden)."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> CalendlyHarness:
            settings: dict[str, Any] = {"start": T0 - 1800, "rate_per_minute": 10.0}
            settings.update(overrides)
            sim = CalendlySimulator(CalendlyConfig(**settings), clock)
            url = await stack.enter_async_context(run_app(sim.app()))
            return CalendlyHarness(sim, url, session)

        yield start


@pytest.fixture
async def start_google(
    clock: ManualClock, session: aiohttp.ClientSession, service_account: ServiceAccount, tmp_path
) -> AsyncIterator[StartGoogle]:
    """Start a Google simulator (30 min of history at 10/min, no lag, unless overridden)."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> GoogleHarness:
            settings: dict[str, Any] = {"start": T0 - 1800, "rate_per_minute": 10.0}
            settings.update(overrides)
            sim = GoogleReportsSimulator(GoogleConfig(**settings), clock, service_account)
            url = await stack.enter_async_context(run_app(sim.app()))
            token_uri = url + "/token"
            sim.write_service_account_key(tmp_path / f"key-{id(sim)}.json", token_uri)
            return GoogleHarness(sim, url, token_uri, session, clock)

        yield start
