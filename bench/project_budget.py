"""One Google Cloud project shared by many tenants (issue 18): 1 noisy tenant hours
behind + N quiet ones, every domain delegating to one service account, so one quota.

    .venv/bin/python bench/project_budget.py [--quiet 10] [--budget 60] [--minutes 30]

The REAL Google sources (``forwarder.daemon.build_source``, each with a share of the
project's :class:`~forwarder.sources.google.project_budget.ProjectBudgets`) poll their
simulated customers (one ``GoogleReportsSimulator`` each, in-process, sharing one
service account and one per-minute quota limiter set to the project's budget) on a
simulated clock that moves only when every task waits (``tests/sources/project_harness``),
so 30 minutes take seconds. Runs, on the same quiet tenants:

- ``quiet only``: the quiet tenants alone (their freshness without a noisy neighbour);
- ``noisy + quiet``: with the noisy tenant catching up ``--noisy-hours`` of a busy
  domain;
- ``no project budget``: the same, each source on its own ``max_requests_per_minute``
  only (the release before): what the shared quota then does.

Per run: requests per minute per source (the noisy one; the quiet ones' mean and
range), the quiet sources' worst head lag (sampled every 5 s after their first poll),
when the noisy one caught up (its first poll done), the project budget's utilisation
(requests over budget x minutes) and busiest minute, quota refusals by the simulated
Google, events delivered (checked exactly once against the simulators' truth).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sources"))

from project_harness import ProjectFleet, VirtualClock  # noqa: E402
from report import text_table  # noqa: E402
from source_harness import google_truth  # noqa: E402

from forwarder.observability.logging import configure_logging  # noqa: E402

T0 = 1_800_000_000.0
HOUR = 3600.0


async def run(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run; its figures."""
    clock = VirtualClock(T0)
    fleet = ProjectFleet(clock, args.budget)
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        options = {"page_size": args.page_size, "poll_interval": args.poll}
        if mode != "quiet only":
            await fleet.add(
                stack,
                directory,
                "noisy",
                history=args.noisy_hours * HOUR,
                rate_per_minute=args.noisy_rate,
                seed=1000,
                backfill_concurrency=4,
                **options,
            )
        for n in range(args.quiet):
            await fleet.add(
                stack,
                directory,
                f"quiet{n}",
                history=600.0,
                rate_per_minute=args.quiet_rate,
                seed=n,
                **options,
            )
        if mode == "no project budget":
            for tenant in fleet.tenants:
                assert tenant.source.project_share is not None
                tenant.source.project_share.leave()
                tenant.source.project_share = None
        await fleet.run(args.minutes * 60.0)
        figures = _figures(mode, fleet, args)
    figures["real_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def _figures(mode: str, fleet: ProjectFleet, args: argparse.Namespace) -> dict[str, Any]:
    minutes = args.minutes
    quiet = [t for t in fleet.tenants if t.name != "noisy"]
    noisy = next((t for t in fleet.tenants if t.name == "noisy"), None)

    def per_minute(tenant: Any) -> float:
        return sum(tenant.source.budget.requests.values()) / minutes

    quiet_rates = [per_minute(t) for t in quiet]
    missed = duplicated = unexpected = 0
    for tenant in fleet.tenants:
        # Due: everything before the head; a window read in part may have handed on more.
        missed += sum((fleet.truth(tenant) - tenant.delivered).values())
        duplicated += sum(count - 1 for count in tenant.delivered.values() if count > 1)
        everything = google_truth(tenant.simulator, fleet.clock.now())
        unexpected += len(tenant.delivered.keys() - everything.keys())
    requests = len(fleet.quota.times)
    # While the noisy one catches up the budget should be nearly all used (less the
    # reserve the busy leave to the quiet).
    catch_up = None
    if noisy is not None and noisy.first_poll_done is not None and noisy.first_poll_done > T0:
        during = sum(1 for when in fleet.quota.times if when < noisy.first_poll_done)
        catch_up = round(during / (args.budget * (noisy.first_poll_done - T0) / 60), 3)
    return {
        "mode": mode,
        "quiet_sources": len(quiet),
        "budget_per_minute": args.budget,
        "noisy_requests_per_minute": round(per_minute(noisy), 1) if noisy else None,
        "quiet_requests_per_minute_mean": round(statistics.mean(quiet_rates), 2),
        "quiet_requests_per_minute_range": [round(min(quiet_rates), 2), round(max(quiet_rates), 2)],
        "quiet_worst_head_lag_s": round(max(t.worst_head_lag for t in quiet), 1),
        "noisy_caught_up_after_min": (
            round((noisy.first_poll_done - T0) / 60, 1)
            if noisy and noisy.first_poll_done is not None
            else None
        ),
        "noisy_events": sum(noisy.delivered.values()) if noisy else 0,
        "utilisation": round(requests / (args.budget * minutes), 3),
        "utilisation_during_catch_up": catch_up,
        "busiest_minute": fleet.quota.busiest_minute(),
        "quota_refusals": fleet.quota.refused,
        "failed_polls": sum(t.failures for t in fleet.tenants),
        "missed": missed,
        "duplicated": duplicated,
        "unexpected": unexpected,
    }


def _noisy_rate(r: dict[str, Any]) -> str:
    rate = r["noisy_requests_per_minute"]
    return "-" if rate is None else f"{rate:.1f}"


def _quiet_rate(r: dict[str, Any]) -> str:
    low, high = r["quiet_requests_per_minute_range"]
    return f"{r['quiet_requests_per_minute_mean']:.2f} ({low:.2f}-{high:.2f})"


def _caught_up(r: dict[str, Any]) -> str:
    after = r["noisy_caught_up_after_min"]
    return "-" if after is None else f"{after:.1f} min"


def _utilisation(r: dict[str, Any]) -> str:
    during = r["utilisation_during_catch_up"]
    text = f"{100 * r['utilisation']:.1f} %"
    return text if during is None else f"{text} ({100 * during:.1f} %)"


COLUMNS = (
    ("run", lambda r: r["mode"]),
    ("noisy req/min", _noisy_rate),
    ("quiet req/min (mean, range)", _quiet_rate),
    ("quiet worst head lag", lambda r: f"{r['quiet_worst_head_lag_s']:.0f} s"),
    ("noisy caught up", _caught_up),
    ("utilisation (catch-up)", _utilisation),
    ("busiest minute", lambda r: str(r["busiest_minute"])),
    ("quota 403s", lambda r: str(r["quota_refusals"])),
    ("failed polls", lambda r: str(r["failed_polls"])),
    ("missed/dup", lambda r: f"{r['missed']}/{r['duplicated']}"),
)


def table(rows: list[dict[str, Any]]) -> str:
    return text_table(COLUMNS, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add = parser.add_argument
    add("--quiet", type=int, default=10, help="quiet tenants")
    add("--budget", type=int, default=60, help="the project's requests per minute")
    add("--minutes", type=float, default=30.0, help="simulated minutes per run")
    add("--noisy-hours", type=float, default=12.0, help="backlog of the noisy tenant")
    add("--noisy-rate", type=float, default=60.0, help="noisy tenant's activities/min")
    add("--quiet-rate", type=float, default=3.0, help="each quiet tenant's activities/min")
    add("--page-size", type=int, default=100)
    add("--poll", type=float, default=60.0, help="poll_interval, seconds")
    add("--json", type=Path, default=None)
    args = parser.parse_args()
    configure_logging("error")
    rows = []
    for mode in ("quiet only", "noisy + quiet", "no project budget"):
        rows.append(asyncio.run(run(mode, args)))
        print(json.dumps(rows[-1]), flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    # Exactly once whatever the run; with the project budget, never a quota error.
    return (
        0
        if all(r["missed"] == r["duplicated"] == 0 for r in rows[:2])
        and all(r["quota_refusals"] == 0 for r in rows[:2])
        else 1
    )


if __name__ == "__main__":
    raise SystemExit(main())
