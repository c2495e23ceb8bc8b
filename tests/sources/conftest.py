"""Fixtures: the real sources against the simulators on 127.0.0.1, sharing a ManualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from hostile import HostileProxy
from source_harness import HOUR, T0

from forwarder.clock import ManualClock
from forwarder.config.model import CalendlySourceConfig, GoogleCalendarSourceConfig
from forwarder.daemon import build_source
from forwarder.observability.metrics import Metrics
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.simulators.server import run_app


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture(scope="session")
def service_account() -> ServiceAccount:
    return ServiceAccount.generate()


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exit_stack:
        yield exit_stack


@pytest.fixture
def calendly(
    clock: ManualClock, metrics: Metrics, stack: AsyncExitStack, tmp_path: Path
) -> Callable[..., Any]:
    """``await calendly(sim_overrides, source_overrides) -> (simulator, make_source)``;
    ``make_source(**more_overrides)``, e.g. ``base_url`` of a proxy at ``simulator.url``."""

    async def start(sim: dict[str, Any] | None = None, **source: Any):  # type: ignore[no-untyped-def]
        settings: dict[str, Any] = {"start": T0 - 2 * HOUR, "end": T0, "rate_per_minute": 5.0}
        settings.update(sim or {})
        simulator = CalendlySimulator(CalendlyConfig(**settings), clock)
        url = await stack.enter_async_context(run_app(simulator.app()))
        simulator.url = url  # type: ignore[attr-defined]  # for a proxy in front of it
        token_file = tmp_path / "calendly-token"
        token_file.write_text(simulator.config.token + "\n")
        options: dict[str, Any] = {
            "type": "calendly",
            "base_url": url,
            "organization": simulator.config.organization_uri,
            "token_file": token_file,
            "page_size": 20,
            "initial_lookback": 3 * HOUR,
        }
        options.update(source)

        def make_source(**overrides):  # type: ignore[no-untyped-def]
            config = CalendlySourceConfig(**{**options, **overrides})
            built = build_source("cal", config, metrics, clock)
            stack.push_async_callback(built.aclose)
            return built

        return simulator, make_source

    return start


@pytest.fixture
def google(
    clock: ManualClock,
    metrics: Metrics,
    stack: AsyncExitStack,
    tmp_path: Path,
    service_account: ServiceAccount,
) -> Callable[..., Any]:
    """``await google(sim_overrides, source_overrides) -> (simulator, make_source)``;
    ``make_source(**more_overrides)``, e.g. ``base_url`` of a proxy at ``simulator.url``."""

    async def start(  # type: ignore[no-untyped-def]
        sim: dict[str, Any] | None = None, sim_clock: Any = None, **source: Any
    ):
        settings: dict[str, Any] = {"start": T0 - 2 * HOUR, "end": None, "rate_per_minute": 5.0}
        settings.update(sim or {})
        simulator = GoogleReportsSimulator(
            GoogleConfig(**settings), sim_clock or clock, service_account
        )
        url = await stack.enter_async_context(run_app(simulator.app()))
        simulator.url = url  # type: ignore[attr-defined]  # for a proxy in front of it
        key_file = tmp_path / "google-key.json"
        simulator.write_service_account_key(key_file, url + "/token")
        options: dict[str, Any] = {
            "type": "google_calendar",
            "base_url": url,
            "credentials_file": key_file,
            "delegated_admin": simulator.config.delegated_admin,
            "page_size": 50,
            "initial_lookback": 3 * HOUR,
        }
        options.update(source)

        def make_source(**overrides):  # type: ignore[no-untyped-def]
            config = GoogleCalendarSourceConfig(**{**options, **overrides})
            built = build_source("gcal", config, metrics, clock)
            stack.push_async_callback(built.aclose)
            return built

        return simulator, make_source

    return start


@pytest.fixture
def hostile(stack: AsyncExitStack) -> Callable[..., Any]:
    """``await hostile(upstream_url) -> HostileProxy`` running on 127.0.0.1."""

    async def start(upstream: str) -> HostileProxy:
        return await stack.enter_async_context(HostileProxy(upstream).running())

    return start
