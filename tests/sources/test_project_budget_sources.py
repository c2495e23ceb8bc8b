"""Six Google sources on one Cloud project (six simulated customers delegating to one
service account, sharing its per-minute quota), one of them hours behind: the project's
budget keeps the quota unspent and shared fairly. In-process, on simulated time."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from project_harness import PROJECT, ProjectFleet, VirtualClock
from source_harness import HOUR, T0, sample

PER_MINUTE = 30
POLL = 60.0
END_MARGIN = 5.0
QUIET = 5


async def _fleet(stack: AsyncExitStack, tmp_path: Path, *, noisy: bool) -> ProjectFleet:
    fleet = ProjectFleet(VirtualClock(T0), PER_MINUTE)
    if noisy:
        # Four hours of a busy domain to catch up: 7200 activities, 72 pages and more,
        # two windows read at a time.
        await fleet.add(
            stack,
            tmp_path,
            "noisy",
            history=4 * HOUR,
            rate_per_minute=30.0,
            seed=100,
            backfill_concurrency=2,
        )
    for n in range(QUIET):
        await fleet.add(stack, tmp_path, f"quiet{n}", history=600.0, rate_per_minute=3.0, seed=n)
    return fleet


async def test_a_noisy_tenant_catches_up_without_starving_the_others_or_the_quota(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    fleet = await _fleet(stack, tmp_path, noisy=True)
    await fleet.run(16 * 60)
    noisy, *quiet = fleet.tenants

    # Google never had to refuse a request, and no minute saw more than the budget.
    assert fleet.quota.refused == 0
    assert len(fleet.quota.times) > 200
    assert fleet.quota.busiest_minute() <= PER_MINUTE
    project = fleet.budgets.project(PROJECT)
    assert project is not None and project.sent_total == len(fleet.quota.times)

    # The quiet ones stay fresh: every event delivered once, the newest data read
    # within their poll interval (plus the end margin and a few seconds).
    for tenant in quiet:
        assert tenant.failures == 0, tenant.name
        assert tenant.polls >= 11, tenant.name
        assert tenant.delivered == fleet.truth(tenant), tenant.name
        assert sum(tenant.delivered.values()) >= 30, tenant.name
        assert tenant.worst_head_lag <= POLL + END_MARGIN + 5.0, (
            tenant.name,
            tenant.worst_head_lag,
        )
    # The noisy one caught up within the budget left over, everything exactly once.
    assert noisy.failures == 0
    assert fleet.clock.now() - noisy.source.head <= POLL + END_MARGIN + 5.0
    assert noisy.delivered == fleet.truth(noisy)
    assert max(noisy.delivered.values()) == 1
    assert sum(noisy.delivered.values()) >= 7000
    # It was the one held back by the project, and the quiet ones were not.
    waits = "forwarder_google_project_budget_waits_total"
    assert sample(fleet.metrics, waits, project=PROJECT, source="noisy") > 0
    assert noisy.source.project_share is not None
    assert noisy.source.project_share.sent > max(
        t.source.project_share.sent for t in quiet if t.source.project_share
    )
    assert sample(fleet.metrics, "forwarder_google_project_sources", project=PROJECT) == 6


async def test_without_the_project_budget_the_quota_is_exceeded(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    """The same fleet with each source on its own budget only (the release before): the
    simulated Google refuses requests (the test above could fail)."""
    fleet = await _fleet(stack, tmp_path, noisy=True)
    for tenant in fleet.tenants:
        assert tenant.source.project_share is not None
        tenant.source.project_share.leave()
        tenant.source.project_share = None
    await fleet.run(4 * 60)
    assert fleet.quota.refused > 0
