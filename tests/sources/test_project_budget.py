"""The request budget of a Google Cloud project shared by its sources
(forwarder.sources.google.project_budget): never more than the budget in any minute, a
source below its share served at once whatever a busy one does, the least-used first,
sources leaving and joining while others wait; the project id of a key; the config."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from project_harness import VirtualClock, busiest_minute
from source_harness import T0, sample

from forwarder.config.loader import ConfigError, parse_config
from forwarder.config.model import GoogleQuotaConfig
from forwarder.observability.metrics import Metrics
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.sources.budget import RequestBudget
from forwarder.sources.google.auth import ServiceAccountKey, key_project_id
from forwarder.sources.google.project_budget import (
    ProjectBudgets,
    ProjectShare,
    ShareClosedError,
)

PROJECT = "mssp-siem-prod"


@dataclass
class Requester:
    """A source's requests: each asked at a time, granted when both budgets allow."""

    name: str
    share: ProjectShare
    own: RequestBudget
    granted: list[float] = field(default_factory=list)
    waited: list[float] = field(default_factory=list)

    async def at(self, clock: VirtualClock, times: list[float]) -> None:
        for when in times:
            await clock.sleep(when - clock.now())
            asked = clock.now()
            await self.share.acquire(self.own, "head")
            self.granted.append(clock.now())
            self.waited.append(clock.now() - asked)

    async def flood(self, clock: VirtualClock, count: int) -> None:
        """``count`` requests one after the other, as fast as the budgets allow."""
        for _ in range(count):
            await self.share.acquire(self.own, "backfill")
            self.granted.append(clock.now())


def _budgets(
    clock: VirtualClock, per_minute: int, metrics: Metrics | None = None
) -> ProjectBudgets:
    return ProjectBudgets(clock, metrics, GoogleQuotaConfig(max_requests_per_minute=per_minute))


def _requester(
    budgets: ProjectBudgets, clock: VirtualClock, name: str, own: int = 2400
) -> Requester:
    return Requester(name, budgets.join(PROJECT, name), RequestBudget(clock, own))


async def _run(clock: VirtualClock, until: float, *jobs: object) -> list[asyncio.Task[None]]:
    tasks = [asyncio.ensure_future(job) for job in jobs]  # type: ignore[call-overload]
    await clock.run_until(until)
    for task in tasks:
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    return tasks


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_never_more_than_the_budget_in_any_minute() -> None:
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 20)
    busy = [_requester(budgets, clock, f"busy{n}") for n in range(4)]
    tasks = await _run(clock, T0 + 600, *(r.flood(clock, 10_000) for r in busy))
    await _cancel(tasks)
    everything = [when for r in busy for when in r.granted]
    assert busiest_minute(everything) == 20
    # Four busy sources: the reserve (2) stays free for a quiet one, the rest is used.
    assert len(everything) >= 18 * 9
    # The first one asked alone and took what it could; from the next minute on, as the
    # window frees, the least-used goes first: equal parts.
    for minute in range(1, 10):
        start = T0 + 60 * minute
        counts = [sum(start <= t < start + 60 for t in r.granted) for r in busy]
        assert max(counts) - min(counts) <= 1, (minute, counts)


async def test_a_source_below_its_share_is_never_held_back_by_a_busy_one() -> None:
    """The busy one starts alone, catching up as fast as it may; the quiet ones ask once a
    minute each, at other moments: every one of their requests goes out at once."""
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 30)
    busy = _requester(budgets, clock, "busy")
    quiet = [_requester(budgets, clock, f"quiet{n}") for n in range(3)]
    jobs = [busy.flood(clock, 100_000)]
    jobs += [
        q.at(clock, [T0 + 7 + 11 * n + 60 * minute for minute in range(10)])
        for n, q in enumerate(quiet)
    ]
    tasks = await _run(clock, T0 + 660, *jobs)
    await _cancel(tasks)
    for q in quiet:
        assert len(q.waited) == 10
        assert max(q.waited) == 0.0, q.name
    assert busiest_minute(busy.granted + [t for q in quiet for t in q.granted]) <= 30
    # The busy one still gets the rest: 30 a minute less the reserve (3) and the quiet
    # ones' 3.
    assert len(busy.granted) >= 24 * 10


async def test_a_lone_busy_source_leaves_the_reserve_to_a_member_yet_to_ask() -> None:
    """With the lead's first rule, a busy source that is the only one asking counted as
    the only source and was "below its share" up to the whole budget: a quiet member
    asking next waited a minute. The share counts at least two sources once two are
    members."""
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 10)
    busy = _requester(budgets, clock, "busy")
    quiet = _requester(budgets, clock, "quiet")
    tasks = await _run(clock, T0 + 45, busy.flood(clock, 1000), quiet.at(clock, [T0 + 30]))
    await _cancel(tasks)
    assert quiet.waited == [0.0]
    assert len(busy.granted) == 9  # the reserve (1) kept


async def test_a_lone_source_may_use_the_whole_budget() -> None:
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 10)
    alone = _requester(budgets, clock, "alone")
    tasks = await _run(clock, T0 + 150, alone.flood(clock, 1000))
    await _cancel(tasks)
    assert len(alone.granted) == 30
    assert busiest_minute(alone.granted) == 10


async def test_the_least_used_waiting_source_goes_first_and_ties_by_arrival() -> None:
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 6)
    heavy = _requester(budgets, clock, "heavy")
    light = _requester(budgets, clock, "light")
    late = _requester(budgets, clock, "late")
    # heavy takes 5, one a second, light 1: the window is full until T0 + 61.
    tasks = await _run(
        clock, T0 + 7, heavy.at(clock, [T0 + n for n in range(1, 6)]), light.at(clock, [T0 + 6])
    )
    assert len(heavy.granted) == 5 and len(light.granted) == 1
    # Now all three ask again, heavy first, before anything frees. One request frees a
    # second from T0 + 61: late (used 0) takes it, then light (used 1). At T0 + 63
    # heavy has used 2, its share (6 / 3): it may not take the reserve's last one; at
    # T0 + 64 two are free.
    tasks += await _run(
        clock,
        T0 + 70,
        heavy.at(clock, [T0 + 10]),
        light.at(clock, [T0 + 11]),
        late.at(clock, [T0 + 12]),
    )
    await _cancel(tasks)
    assert late.granted == [T0 + 61]
    assert light.granted[1] == T0 + 62
    assert heavy.granted[5] == T0 + 64

    # Ties: two sources with nothing used, waiting: the first to ask goes first.
    clock2 = VirtualClock(T0)
    budgets2 = _budgets(clock2, 3)
    filler = _requester(budgets2, clock2, "filler")
    first = _requester(budgets2, clock2, "first")
    second = _requester(budgets2, clock2, "second")
    tasks2 = await _run(clock2, T0 + 1, filler.flood(clock2, 2))
    tasks2 += await _run(clock2, T0 + 5, second.at(clock2, [T0 + 3]), first.at(clock2, [T0 + 2]))
    # One left for the quiet ones (below their share, 1): the first to ask took it.
    assert first.granted == [T0 + 2] and second.granted == []
    tasks2 += await _run(clock2, T0 + 61)
    await _cancel(tasks2)
    assert second.granted == [T0 + 60]


async def test_a_source_that_leaves_while_waiting_wedges_nobody() -> None:
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 4)
    filler = _requester(budgets, clock, "filler")
    leaving = _requester(budgets, clock, "leaving")
    staying = _requester(budgets, clock, "staying")
    tasks = await _run(clock, T0 + 1, filler.flood(clock, 3))
    # leaving asked first and used nothing: it is next in line, then it leaves.
    waiting = asyncio.ensure_future(leaving.at(clock, [T0 + 5, T0 + 6]))
    tasks += await _run(clock, T0 + 10, staying.at(clock, [T0 + 7, T0 + 8]))
    assert leaving.granted == [T0 + 5]  # the last free one
    leaving.share.leave()
    leaving.share.leave()  # idempotent
    with pytest.raises(ShareClosedError):
        await waiting
    # staying was behind it: it goes at the first expiry.
    tasks += await _run(clock, T0 + 70)
    assert staying.granted[:1] == [T0 + 60]
    # A source joining (a reload) while another waits: both served, budget kept.
    joined = _requester(budgets, clock, "leaving")
    tasks += await _run(
        clock, T0 + 200, joined.at(clock, [T0 + 71, T0 + 72]), filler.flood(clock, 20)
    )
    await _cancel(tasks)
    assert len(joined.granted) == 2
    everything = filler.granted + leaving.granted + staying.granted + joined.granted
    assert busiest_minute(everything) <= 4


async def test_the_source_cap_still_holds_and_does_not_block_the_line() -> None:
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 100)
    capped = _requester(budgets, clock, "capped", own=3)
    other = _requester(budgets, clock, "other")
    tasks = await _run(
        clock, T0 + 119, capped.flood(clock, 1000), other.at(clock, [T0 + 1, T0 + 2, T0 + 3])
    )
    await _cancel(tasks)
    assert len(capped.granted) == 6  # 3 a minute, for two minutes
    assert other.waited == [0.0, 0.0, 0.0]
    assert capped.own.requests["backfill"] == capped.share.sent == 6


async def test_metrics_per_project_waits_and_a_project_whose_sources_left() -> None:
    clock = VirtualClock(T0)
    metrics = Metrics()
    budgets = ProjectBudgets(
        clock,
        metrics,
        GoogleQuotaConfig(max_requests_per_minute=10, projects={"big": 50}),
    )
    a = Requester("a", budgets.join(PROJECT, "a"), RequestBudget(clock, 2400))
    b = Requester("b", budgets.join(PROJECT, "b"), RequestBudget(clock, 2400))
    c = budgets.join("big", "c")
    assert sample(metrics, "forwarder_google_project_sources", project=PROJECT) == 2
    assert sample(metrics, "forwarder_google_project_sources", project="big") == 1
    assert (
        sample(metrics, "forwarder_google_project_request_budget_per_minute", project="big") == 50
    )
    waits = "forwarder_google_project_budget_waits_total"
    labels = {"project": PROJECT, "source": "a"}
    assert metrics.registry.get_sample_value(waits, labels) == 0.0
    tasks = await _run(clock, T0 + 30, a.flood(clock, 12), b.at(clock, [T0 + 1]))
    ratio = sample(metrics, "forwarder_google_project_request_budget_used_ratio", project=PROJECT)
    assert ratio == 1.0
    assert sample(metrics, waits, project=PROJECT, source="a") == 1  # the 10th onwards
    assert sample(metrics, waits, project=PROJECT, source="b") == 0
    # Leaving: a project whose last source left is no longer exported at all.
    await _cancel(tasks)
    a.share.leave()
    assert metrics.registry.get_sample_value(waits, labels) is None
    b.share.leave()
    assert (
        metrics.registry.get_sample_value("forwarder_google_project_sources", {"project": PROJECT})
        is None
    )
    assert sample(metrics, "forwarder_google_project_sources", project="big") == 1
    c.leave()
    assert "forwarder_google_project" not in metrics_text(metrics).replace("# ", "")


def metrics_text(metrics: Metrics) -> str:
    from prometheus_client import generate_latest

    return "\n".join(
        line
        for line in generate_latest(metrics.registry).decode().splitlines()
        if not line.startswith("#")
    )


async def test_a_new_budget_applies_at_once_and_the_window_is_kept_across_a_rejoin() -> None:
    clock = VirtualClock(T0)
    budgets = _budgets(clock, 5)
    first = _requester(budgets, clock, "s")
    tasks = await _run(clock, T0 + 10, first.flood(clock, 5))
    assert len(first.granted) == 5
    # A reload: the source leaves, comes back; the requests of the last minute count.
    first.share.leave()
    again = _requester(budgets, clock, "s")
    tasks += await _run(clock, T0 + 20, again.flood(clock, 5))
    assert again.granted == []
    budgets.configure(GoogleQuotaConfig(max_requests_per_minute=8))
    tasks += await _run(clock, T0 + 30)
    await _cancel(tasks)
    assert len(again.granted) == 3


def test_the_project_of_a_key(tmp_path: Path) -> None:
    assert key_project_id("p-1", "x@other.iam.gserviceaccount.com") == "p-1"
    assert key_project_id(None, "siem@mssp-prod.iam.gserviceaccount.com") == "mssp-prod"
    assert key_project_id("", "siem@mssp-prod.iam.gserviceaccount.com") == "mssp-prod"
    # Not a service-account address: one budget per account.
    assert key_project_id(None, "robot@example.com") == "robot@example.com"
    assert key_project_id(None, "x@.iam.gserviceaccount.com") == "x@.iam.gserviceaccount.com"

    account = ServiceAccount.generate("tenant-project")
    path = account.write_key_file(tmp_path / "key.json", "https://oauth2.example/token")
    key = ServiceAccountKey.from_json(path.read_bytes(), "k")
    assert key.project_id == "tenant-project"
    assert "PRIVATE" not in key.project_id
    import orjson

    info = orjson.loads(path.read_bytes())
    del info["project_id"]
    key = ServiceAccountKey.from_json(orjson.dumps(info), "k")
    assert key.project_id == "tenant-project"  # from client_email


CONFIG = """
state_dir: {state}
sources:
  cal: {{type: calendly, organization: https://api.calendly.com/organizations/X,
    token_file: {token}}}
sinks:
  out: {{type: file, path: {state}/out.ndjson}}
"""


def _config(tmp_path: Path, quota: str) -> str:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    return CONFIG.format(state=tmp_path / "state", token=token) + quota


def test_the_config_and_its_errors_name_the_key(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, ""), {})
    assert config.google_quota.max_requests_per_minute == 200
    assert config.google_quota.per_minute("any") == 200
    config = parse_config(
        _config(
            tmp_path,
            "google_quota: {max_requests_per_minute: 150, projects: {mssp-siem-prod: 240}}\n",
        ),
        {},
    )
    assert config.google_quota.per_minute("mssp-siem-prod") == 240
    assert config.google_quota.per_minute("other") == 150
    for quota, key in (
        ("google_quota: {max_requests_per_minute: 0}", "google_quota.max_requests_per_minute"),
        ("google_quota: {projects: {p1: 0}}", "google_quota.projects.p1"),
        ("google_quota: {projects: {p1: many}}", "google_quota.projects.p1"),
        ("google_quota: {max_requests: 10}", "google_quota.max_requests"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_config(_config(tmp_path, quota + "\n"), {})
        assert str(caught.value).startswith(key), str(caught.value)
