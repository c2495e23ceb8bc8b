"""The shared budget of a Google Cloud project, seen from a real daemon's /metrics: two
Google sources whose key belongs to one project, both catching up hours of history on a
small project budget. The project's series are exported, the budget stays within what
it allows, and ForwarderGoogleProjectBudgetSpent fires on what was scraped (replayed
through ``promtool test rules``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_harness import annotation, get, promtool_test, series
from alert_harness import samples as samples_of
from e2e_harness import Daemon, Simulators, finite_simulators, free_port, wait_for

pytestmark = pytest.mark.slow
ALERT = "ForwarderGoogleProjectBudgetSpent"
BUDGET = 10


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    # 6 hours at 6 a minute: 2160 Google activities, 216 pages of 10 for each source.
    sims = finite_simulators(tmp_path / "sim", seed=11, hours=6, rate=6)
    yield sims
    sims.stop()


def _config(tmp_path: Path, simulators: Simulators, project: str) -> Path:
    e = simulators.endpoints
    google = (
        f'type: google_calendar, base_url: "{e["google_url"]}", '
        f'credentials_file: "{e["google_key_file"]}", delegated_admin: "{e["delegated_admin"]}", '
        "page_size: 10, poll_interval: 1s, initial_lookback: 1d, end_margin: 1s"
    )
    path = tmp_path / "forwarder.yaml"
    path.write_text(
        f"""state_dir: {tmp_path / "state"}
sources:
  tenant_a: {{{google}}}
  tenant_b: {{{google}}}
sinks:
  out: {{type: file, path: "{tmp_path / "events.ndjson"}"}}
metrics: {{listen: "127.0.0.1:{free_port()}"}}
google_quota:
  max_requests_per_minute: 200
  projects: {{{project}: {BUDGET}}}
"""
    )
    return path


def test_a_spent_project_budget_is_exported_and_alerted(
    simulators: Simulators, tmp_path: Path
) -> None:
    project = json.loads(Path(simulators.endpoints["google_key_file"]).read_text())["project_id"]
    daemon = Daemon(_config(tmp_path, simulators, project), tmp_path / "daemon.log")
    body = b""
    try:
        daemon.wait_started()
        started = next(e for e in daemon.log_events() if e["event"] == "forwarder_started")
        url = started["metrics"]
        key = (("project", project),)

        def spent() -> bool:
            nonlocal body
            status, body = get(url)
            samples = samples_of(body.decode())
            ratio = samples.get("forwarder_google_project_request_budget_used_ratio", {})
            waits = samples.get("forwarder_google_project_budget_waits_total", {})
            return status == 200 and ratio.get(key, 0) >= 0.9 and sum(waits.values()) >= 1

        wait_for(spent, 60, "the project's budget to be spent")
    finally:
        assert daemon.terminate() == 0
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    samples = samples_of(body.decode())
    assert samples["forwarder_google_project_request_budget_per_minute"] == {key: BUDGET}
    assert samples["forwarder_google_project_sources"] == {key: 2}
    ratio = samples["forwarder_google_project_request_budget_used_ratio"][key]
    assert 0.9 <= ratio <= 1.0
    waits = samples["forwarder_google_project_budget_waits_total"]
    assert set(waits) == {(key[0], ("source", s)) for s in ("tenant_a", "tenant_b")}
    # The two sources' requests together: what the project allows in the minute or so
    # the test ran (each source alone could send 120 a minute).
    requests = samples["forwarder_source_requests_total"]
    sent = sum(requests.values())
    assert 0.9 * BUDGET <= sent <= 2 * BUDGET, requests

    # Replayed as Prometheus would store it if the daemon stayed in this state.
    scraped = series("forwarder_google_project_request_budget_used_ratio", key)
    tests = [
        {
            "name": "the scraped budget of a Google Cloud project, spent",
            "interval": "1m",
            "input_series": [{"series": scraped, "values": f"{ratio:g}x60"}],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": ALERT},
                {
                    "eval_time": "40m",
                    "alertname": ALERT,
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "job": "forwarder",
                                "instance": "f:9108",
                                "project": project,
                            },
                            "exp_annotations": {
                                "summary": annotation(ALERT, "summary", project=project),
                                "description": annotation(ALERT, "description"),
                            },
                        }
                    ],
                },
            ],
        }
    ]
    result = promtool_test(tmp_path, tests)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
