"""Isolation (issue 18): 20 Calendly tenants in one ``forwarder run``, one of them failing
(a refused token, a 503 storm, an API slower than its request timeout). The 19 others
deliver their whole history exactly once, the failure is visible (``source_failing`` and
``/readyz`` name the tenant), and the daemon drains and exits 0 on SIGTERM. Throughput
and freshness against an all-healthy run are measured by ``bench/isolation.py``."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_harness import get
from e2e_harness import Daemon, Simulators, file_documents, wait_for
from isolation_harness import FAILING, MODES, TENANTS, BrokenApi, write_tenants_config

from forwarder.schema.ids import calendly_event_key
from forwarder.timeutil import format_rfc3339

pytestmark = pytest.mark.slow


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    """Six hours of Calendly history. The simulator's rate limit is per token and the 20
    tenants share its one token (real tenants each have their own): lifted, so that what
    is tested is the daemon, not the simulator's limiter holding every tenant."""
    now = time.time()
    sims = Simulators(
        tmp_path / "sim",
        "--seed", "7",
        "--start", format_rfc3339(now - 6 * 3600), "--end", format_rfc3339(now - 60),
        "--calendly-rate", "4", "--google-rate", "0.1",
        "--calendly-rate-limit", "1000000",
    )  # fmt: skip
    yield sims
    sims.stop()


def _readyz(port: int) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(get(f"http://127.0.0.1:{port}/readyz")[1])
    return body


def _delivered(path: Path) -> list[tuple[str, str]]:
    return [(d["labels"]["tenant"], d["event"]["id"]) for d in file_documents(path)]


@pytest.mark.parametrize("mode", MODES)
def test_one_failing_tenant_does_not_stop_the_others(
    simulators: Simulators, tmp_path: Path, mode: str
) -> None:
    truth = {calendly_event_key(entry["uri"]) for entry in simulators.truth("calendly")}
    assert truth
    healthy = [tenant for tenant in TENANTS if tenant != FAILING]
    expected = {(tenant, event_id) for tenant in healthy for event_id in truth}
    broken = None if mode == "unauthorized" else BrokenApi(mode)
    state = tmp_path / "state"
    config, port = write_tenants_config(
        tmp_path / "config.yaml", simulators, state, FAILING, broken and broken.url
    )
    output = state / "events.ndjson"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        wait_for(lambda: len(_delivered(output)) >= len(expected), 60, f"{len(expected)} events")

        def failure_logged() -> bool:
            return any(
                e.get("event") == "source_failing" and e.get("source") == FAILING
                for e in daemon.log_events()
            )

        wait_for(failure_logged, 40, f"source_failing for {FAILING}")
        # Past metrics.unready_after (1s): a transient failure makes /readyz false too.
        wait_for(lambda: _readyz(port)["status"] == "not_ready", 20, "/readyz not_ready")
        ready = _readyz(port)
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        if broken is not None:
            broken.stop()
    delivered = _delivered(output)
    counts = Counter(delivered)
    assert set(counts) == expected  # every healthy tenant's events, nothing of the failing one
    assert max(counts.values()) == 1  # exactly once
    assert ready["sources"][FAILING]["state"] == "failing"
    assert all(ready["sources"][tenant]["state"] == "ok" for tenant in healthy)
    assert any(FAILING in problem for problem in ready["problems"]), ready
    failing = [e for e in daemon.log_events() if e.get("event") == "source_failing"]
    assert {e["source"] for e in failing} == {FAILING}


def test_with_readiness_any_source_one_refused_tenant_leaves_the_replica_ready(
    simulators: Simulators, tmp_path: Path
) -> None:
    """``metrics.readiness: any_source``: one tenant's revoked token is a warning in
    ``/readyz`` (the replica stays in service, a rollout goes on); every tenant refused
    (here: all given the wrong token by a reload) takes it out of service."""
    state = tmp_path / "state"
    config, port = write_tenants_config(tmp_path / "config.yaml", simulators, state, FAILING, None)
    text = config.read_text().replace(
        "  unready_after: 1s\n", "  unready_after: 1s\n  readiness: any_source\n"
    )
    config.write_text(text)
    refused = f"source {FAILING}: credentials refused"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        wait_for(
            lambda: any(w.startswith(refused) for w in _readyz(port)["warnings"]),
            40,
            "the refusal listed as a warning",
        )
        one_refused = _readyz(port)
        good_token = str(simulators.endpoints["calendly_token_file"])
        config.write_text(text.replace(good_token, str(tmp_path / "wrong-token")))
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: _readyz(port)["status"] == "not_ready", 60, "/readyz not_ready")
        wait_for(lambda: len(_readyz(port)["problems"]) == len(TENANTS), 60, "every refusal")
        all_refused = _readyz(port)
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    assert one_refused["status"] == "ready" and one_refused["problems"] == []
    assert one_refused["sources"][FAILING]["state"] == "failing"
    assert all(
        problem.split(":")[0].startswith("source t") and "credentials refused" in problem
        for problem in all_refused["problems"]
    )
