"""Simulated time for many concurrent tasks, and a Cloud project's quota that records what
it was asked (a uniquely named module: the project-budget tests and
``bench/project_budget.py`` import it).

:class:`VirtualClock` differs from ``ManualClock`` (whose ``sleep`` moves the time at
once, fine for one task): a ``sleep`` here waits until the driver, :meth:`run_until`,
moves the time past its deadline, which it does only once every task is blocked (the
event loop has nothing to run and the tasks stopped asking the time). Several sources
polling together then see the same minutes, as they would on a real clock, in
milliseconds of real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from bisect import bisect_left
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from source_harness import google_truth

from forwarder.clock import Clock
from forwarder.config.model import GoogleCalendarSourceConfig, GoogleQuotaConfig
from forwarder.daemon import build_source
from forwarder.observability.metrics import Metrics
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.simulators.ratelimit import FixedWindowLimiter, RateDecision
from forwarder.simulators.server import run_app
from forwarder.sources.base import SourceError
from forwarder.sources.google.calendar import GoogleCalendarSource
from forwarder.sources.google.project_budget import ProjectBudgets

WINDOW = 60.0
PROJECT = "mssp-siem-prod"


class VirtualClock:
    """Discrete-event time: sleepers wake in deadline order as :meth:`run_until` moves
    the time; nothing moves it while a task can still run."""

    def __init__(self, start: float) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._calls = 0

    def now(self) -> float:
        self._calls += 1
        return self._now

    async def sleep(self, seconds: float) -> None:
        self._calls += 1
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future  # cancelled with its task: the entry is skipped when reached

    async def run_until(self, deadline: float) -> None:
        """Move the time, one wake-up at a time, up to ``deadline``."""
        while True:
            await self._settle()
            sleepers = self._sleepers
            while sleepers and sleepers[0][2].done():
                heapq.heappop(sleepers)
            if not sleepers or sleepers[0][0] > deadline:
                self._now = max(self._now, deadline)
                await self._settle()
                return
            self._now = max(self._now, sleepers[0][0])
            while sleepers and sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(sleepers)
                if not future.done():
                    future.set_result(None)

    async def _settle(self) -> None:
        """Return once every task is blocked: several passes of the loop (loopback I/O is
        seen at the next pass) and a short real pause without anyone asking the time."""
        loop = asyncio.get_running_loop()
        while True:
            calls = self._calls
            for _ in range(8):
                await asyncio.sleep(0)
            await asyncio.sleep(0.0005)
            for _ in range(4):
                await asyncio.sleep(0)
            if calls == self._calls and not loop._ready:  # type: ignore[attr-defined]
                return


class RecordingQuota(FixedWindowLimiter):
    """A Cloud project's per-minute quota (the simulator's limiter, shared by several
    simulated customers) that keeps the time of every request and of every refusal."""

    def __init__(self, limit: int, clock: Clock) -> None:
        super().__init__(limit, clock)
        self.times: list[float] = []
        self.refused = 0

    def hit(self, key: str) -> RateDecision:
        decision = super().hit(key)
        self.times.append(self._clock.now())
        self.refused += not decision.allowed
        return decision

    def busiest_minute(self) -> int:
        """The most requests in any 60 seconds."""
        return busiest_minute(self.times)


def busiest_minute(times: list[float]) -> int:
    """The most of ``times`` in any 60 seconds."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + WINDOW) - index for index, start in enumerate(ordered)),
        default=0,
    )


@dataclass
class Tenant:
    """One simulated customer and the forwarder's source for it."""

    name: str
    simulator: GoogleReportsSimulator
    source: GoogleCalendarSource
    poll_interval: float
    delivered: Counter[str] = field(default_factory=Counter)
    worst_head_lag: float = 0.0
    """The largest head lag seen since its first poll completed."""
    polls: int = 0
    failures: int = 0
    first_poll_done: float | None = None
    """When its first poll completed (for a source behind: when it had caught up)."""
    lags: list[tuple[float, float]] = field(default_factory=list)
    """(time, head lag) at each sample after its first poll completed."""


class ProjectFleet:
    """Google customers whose domains all delegate to one service account (one Cloud
    project, one quota), each read by its own source in-process, on one
    :class:`VirtualClock`."""

    def __init__(self, clock: VirtualClock, per_minute: int, quota_limit: int | None = None):
        self.clock = clock
        self.metrics = Metrics()
        self.account = ServiceAccount.generate(PROJECT)
        # The simulated Google allows what the project allows (by default the budget).
        self.quota = RecordingQuota(quota_limit or per_minute, clock)
        self.budgets = ProjectBudgets(
            clock, self.metrics, GoogleQuotaConfig(max_requests_per_minute=per_minute)
        )
        self.tenants: list[Tenant] = []

    async def add(
        self,
        stack: AsyncExitStack,
        directory: Path,
        name: str,
        *,
        history: float,
        rate_per_minute: float,
        seed: int,
        **source: Any,
    ) -> Tenant:
        """A customer with ``history`` seconds of activities before now (no reporting
        lag), and its source (``source``: overrides of its config)."""
        now = self.clock.now()
        simulator = GoogleReportsSimulator(
            GoogleConfig(
                start=now - history,
                seed=seed,
                rate_per_minute=rate_per_minute,
                domain=f"{name}.example.com",
                delegated_admin=f"admin@{name}.example.com",
                customer_id=f"C{seed:08d}",
                project_id=PROJECT,
            ),
            self.clock,
            self.account,
            self.quota,
        )
        url = await stack.enter_async_context(run_app(simulator.app()))
        key_file = simulator.write_service_account_key(directory / f"{name}.json", url + "/token")
        options: dict[str, Any] = {
            "type": "google_calendar",
            "base_url": url,
            "credentials_file": key_file,
            "delegated_admin": simulator.config.delegated_admin,
            "page_size": 100,
            "poll_interval": 60.0,
            "end_margin": 5.0,
            "initial_lookback": history,
        }
        options.update(source)
        config = GoogleCalendarSourceConfig(**options)
        built = build_source(name, config, self.metrics, self.clock, project_budgets=self.budgets)
        stack.push_async_callback(built.aclose)
        assert isinstance(built, GoogleCalendarSource)
        built.restore(None)
        tenant = Tenant(name, simulator, built, config.poll_interval)
        self.tenants.append(tenant)
        return tenant

    async def run(self, seconds: float, sample_every: float = 5.0) -> None:
        """Poll every source as the daemon would (a poll, then its interval) for
        ``seconds`` of simulated time; the head lags are sampled every ``sample_every``."""
        tasks = [asyncio.ensure_future(self._poll_forever(tenant)) for tenant in self.tenants]
        sampler = asyncio.ensure_future(self._sample(sample_every))
        try:
            await self.clock.run_until(self.clock.now() + seconds)
        finally:
            for task in [*tasks, sampler]:
                task.cancel()
            await asyncio.gather(*tasks, sampler, return_exceptions=True)

    async def _poll_forever(self, tenant: Tenant) -> None:
        while True:
            try:
                async for batch in tenant.source.poll():
                    tenant.delivered.update(event.id for event in batch.events)
                tenant.polls += 1
                if tenant.first_poll_done is None:
                    tenant.first_poll_done = self.clock.now()
            except SourceError:
                tenant.failures += 1
            await self.clock.sleep(tenant.poll_interval)

    async def _sample(self, every: float) -> None:
        while True:
            await self.clock.sleep(every)
            for tenant in self.tenants:
                if tenant.polls:
                    lag = tenant.source.head_lag_seconds()
                    tenant.worst_head_lag = max(tenant.worst_head_lag, lag)
                    tenant.lags.append((self.clock.now(), lag))

    def truth(self, tenant: Tenant) -> Counter[str]:
        """The events of ``tenant``'s activities before its head (all visible at once)."""
        return google_truth(tenant.simulator, tenant.source.head - 0.001)
