"""Metrics that tell the truth while something is wrong: a real daemon whose only sink is
down (an HTTP receiver on a closed port) and one of whose sources receives nothing.

The queue gauge must be current at scrape time (it froze at the last batch taken), the
series of a source or sink that saw nothing must exist at 0 (an alert on their increase
cannot fire on a missing series), and the two alerts written for those situations
(ForwarderQueueFilling, ForwarderNoEvents) must fire on the series the daemon exports,
replayed through ``promtool test rules``."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_harness import annotation, get, promtool_test, series
from alert_harness import samples as samples_of
from e2e_harness import Daemon, Simulators, finite_simulators, free_port, wait_for

pytestmark = pytest.mark.slow
CAPACITY = 300
PAGE = 50


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    # 2 hours at 6 a minute: 720 Calendly events, more than the queue holds.
    sims = finite_simulators(tmp_path / "sim", seed=5, hours=2, rate=6)
    yield sims
    sims.stop()


def _config(tmp_path: Path, simulators: Simulators) -> Path:
    e = simulators.endpoints
    state = tmp_path / "state"
    path = tmp_path / "forwarder.yaml"
    # `busy` reads two hours of history; `quiet` starts a second ago, after the simulators'
    # history ended: it polls successfully and receives nothing.
    path.write_text(
        f"""state_dir: {state}
sources:
  busy: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{e["calendly_token_file"]}", page_size: {PAGE}, poll_interval: 1s,
    initial_lookback: 1d}}
  quiet: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{e["calendly_token_file"]}", page_size: {PAGE}, poll_interval: 1s,
    initial_lookback: 1s}}
sinks:
  siem: {{type: http, url: "http://127.0.0.1:{free_port()}/ingest", request_timeout: 2s}}
metrics: {{listen: "127.0.0.1:{free_port()}"}}
pipeline: {{queue_capacity: {CAPACITY}, shutdown_grace: 1s, retry_max_backoff: 1s}}
"""
    )
    return path


def test_a_down_sink_and_a_silent_source_are_visible_and_alerted(
    simulators: Simulators, tmp_path: Path
) -> None:
    daemon = Daemon(_config(tmp_path, simulators), tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        started = next(e for e in daemon.log_events() if e["event"] == "forwarder_started")
        base = started["metrics"].rsplit("/", 1)[0]

        def readiness() -> dict:
            return json.loads(get(base + "/readyz")[1])

        # The pollers fill the queue of the dead sink up to its capacity, then wait.
        wait_for(
            lambda: readiness()["sinks"]["siem"]["queued_events"] == CAPACITY,
            60,
            "the queue of the down sink to fill",
        )
        status, body = get(base + "/metrics")
        queued = readiness()["sinks"]["siem"]["queued_events"]
    finally:
        daemon.terminate()
    assert status == 200
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    samples = samples_of(body.decode())

    # The gauge is what the queue holds now, the batch being retried included: the same
    # number /readyz reports (it stayed at the first batch taken, 50, before).
    siem = (("sink", "siem"),)
    assert samples["forwarder_sink_queue_events"][siem] == queued == CAPACITY
    assert samples["forwarder_sink_queue_capacity_events"][siem] == CAPACITY

    # Series of what happened zero times exist, at 0.
    quiet = (("source", "quiet"),)
    assert samples["forwarder_source_events_received_total"][quiet] == 0
    assert samples["forwarder_source_duplicates_dropped_total"][quiet] == 0
    assert samples["forwarder_checkpoint_pending_batches"][quiet] == 0
    assert samples["forwarder_source_poll_duration_seconds_count"][quiet] > 0
    assert samples["forwarder_sink_events_sent_total"][siem] == 0
    assert samples["forwarder_sink_sent_bytes_total"][siem] == 0
    assert samples["forwarder_sink_delivery_lag_seconds_count"][siem] == 0
    busy = (("source", "busy"),)
    assert samples["forwarder_source_events_received_total"][busy] >= CAPACITY

    # Replayed through the alert rules as Prometheus would see them if the daemon stayed
    # in this state: each alert fires, with the labels the daemon exports.
    queue_series = [
        {"series": series(name, labels), "values": f"{value:g}x30"}
        for name in ("forwarder_sink_queue_events", "forwarder_sink_queue_capacity_events")
        for labels, value in samples[name].items()
    ]
    received = samples["forwarder_source_events_received_total"][quiet]
    tests = [
        {
            "name": "the scraped queue of a down sink",
            "interval": "1m",
            "input_series": queue_series,
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "ForwarderQueueFilling"},
                {
                    "eval_time": "15m",
                    "alertname": "ForwarderQueueFilling",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "job": "forwarder",
                                "instance": "f:9108",
                                "sink": "siem",
                            },
                            "exp_annotations": {
                                "summary": "queue of sink siem above 80 %",
                                "description": annotation("ForwarderQueueFilling", "description"),
                            },
                        }
                    ],
                },
            ],
        },
        {
            "name": "the scraped counter of a source that received nothing",
            "interval": "1m",
            "input_series": [
                {
                    "series": series("forwarder_source_events_received_total", quiet),
                    "values": f"{received:g}x200",
                }
            ],
            "alert_rule_test": [
                {"eval_time": "100m", "alertname": "ForwarderNoEvents"},
                {
                    "eval_time": "160m",
                    "alertname": "ForwarderNoEvents",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "job": "forwarder",
                                "source": "quiet",
                            },
                            "exp_annotations": {
                                "summary": "no events from source quiet for 2 hours",
                                "description": annotation("ForwarderNoEvents", "description"),
                            },
                        }
                    ],
                },
            ],
        },
    ]
    result = promtool_test(tmp_path, tests)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_a_source_refused_from_its_first_poll_ages_into_the_failing_alerts(
    simulators: Simulators, tmp_path: Path
) -> None:
    """A wrong token from the start: the source never completes a poll nor commits, and
    the two alerts for that (ForwarderSourceFailing, ForwarderCheckpointStale) must fire
    on what the daemon exports (their series did not exist before a first success)."""
    e = simulators.endpoints
    wrong_token = tmp_path / "wrong-token"
    wrong_token.write_text("not-the-token-calendly-issued\n")
    wrong_token.chmod(0o600)
    config = tmp_path / "forwarder.yaml"
    config.write_text(
        f"""state_dir: {tmp_path / "state"}
sources:
  refused: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{wrong_token}", poll_interval: 1s}}
sinks:
  out: {{type: file, path: "{tmp_path / "events.ndjson"}"}}
metrics: {{listen: "127.0.0.1:{free_port()}"}}
"""
    )
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        started = next(e for e in daemon.log_events() if e["event"] == "forwarder_started")
        base = started["metrics"].rsplit("/", 1)[0]
        wait_for(
            lambda: any(e.get("event") == "source_failing" for e in daemon.log_events()),
            30,
            "the refused token",
        )
        status, body = get(base + "/metrics")
        scraped_at = time.time()
    finally:
        daemon.terminate()
    assert status == 200
    samples = samples_of(body.decode())
    refused = (("source", "refused"),)
    assert (
        samples["forwarder_source_failed_polls_total"][(("error_type", "credentials"), *refused)]
        >= 1
    )
    # Replayed with promtool's clock starting at the scrape: each timestamp as its age then.
    input_series = [
        {
            "series": series(name, refused),
            "values": f"{samples[name][refused] - scraped_at:.0f}x40",
        }
        for name in (
            "forwarder_source_last_successful_poll_timestamp_seconds",
            "forwarder_checkpoint_last_commit_timestamp_seconds",
        )
    ]

    def fired(alert: str, severity: str) -> dict:
        return {
            "eval_time": "36m",
            "alertname": alert,
            "exp_alerts": [
                {
                    "exp_labels": {
                        "severity": severity,
                        "job": "forwarder",
                        "instance": "f:9108",
                        "source": "refused",
                    },
                    "exp_annotations": {
                        "summary": annotation(alert, "summary", source="refused"),
                        "description": annotation(alert, "description"),
                    },
                }
            ],
        }

    tests = [
        {
            "name": "the scraped series of a source refused since the start",
            "interval": "1m",
            "input_series": input_series,
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "ForwarderSourceFailing"},
                {"eval_time": "10m", "alertname": "ForwarderCheckpointStale"},
                fired("ForwarderSourceFailing", "critical"),
                fired("ForwarderCheckpointStale", "critical"),
            ],
        }
    ]
    result = promtool_test(tmp_path, tests)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
