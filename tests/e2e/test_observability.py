"""Metrics, health and logs of a running daemon, checked by promtool and scraped by a
real Prometheus server (Debian package) on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import (
    Daemon,
    Simulators,
    file_ids,
    finite_simulators,
    free_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    sims = finite_simulators(tmp_path / "sim", seed=11, hours=1, rate=6)
    yield sims
    sims.stop()


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _metrics_url(daemon: Daemon) -> str:
    def started() -> list[dict]:
        return [e for e in daemon.log_events() if e.get("event") == "forwarder_started"]

    wait_for(lambda: bool(started()), 30, "the daemon to start")
    return started()[0]["metrics"]


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            series, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in series for k, v in labels.items()) or not wanted:
                return float(value)
    raise AssertionError(f"no sample {name}{{{wanted}}}")


def test_metrics_pass_promtool_and_health_endpoints(simulators, tmp_path) -> None:
    config = write_config(tmp_path / "f.yaml", simulators, tmp_path / "state")
    truth = simulators.truth_ids()
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        output = tmp_path / "state" / "events.ndjson"
        wait_for(lambda: set(file_ids(output)) >= truth, 60, "all events")
        url = _metrics_url(daemon)
        status, body = _get(url)
        assert status == 200
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30
        )
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
        text = body.decode()
        received = _sample(text, "forwarder_source_events_received_total", source="calendly")
        received += _sample(
            text, "forwarder_source_events_received_total", source="google_calendar"
        )
        assert received == len(truth)
        assert _sample(text, "forwarder_sink_events_sent_total", sink="events") == len(truth)
        assert _sample(text, "forwarder_checkpoint_cursor_lag_seconds", source="calendly") < 3600
        assert _sample(text, "forwarder_sink_queue_capacity_events", sink="events") == 1000
        assert "forwarder_sink_delivery_lag_seconds_bucket" in text
        base = url.rsplit("/", 1)[0]
        assert _get(base + "/healthz") == (200, b'{"status": "alive"}')
        status, ready = _get(base + "/readyz")
        readiness = json.loads(ready)
        assert status == 200 and readiness["status"] == "ready", readiness
        assert set(readiness["sources"]) == {"calendly", "google_calendar"}
    finally:
        assert daemon.terminate() == 0


def test_alert_rules_pass_promtool() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(ROOT / "deploy" / "prometheus" / "rules.yaml")],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"SUCCESS" in result.stdout


def test_every_alert_fires_when_it_should_and_only_then() -> None:
    rules = ROOT / "deploy" / "prometheus"
    result = subprocess.run(
        ["promtool", "test", "rules", str(rules / "rules.test.yaml")],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    # Every alert of rules.yaml has a case of its own in the test file.
    alerts = set(re.findall(r"- alert: (\w+)", (rules / "rules.yaml").read_text()))
    tested = set(re.findall(r"alertname: (\w+)\n", (rules / "rules.test.yaml").read_text()))
    assert len(alerts) == 8
    assert alerts == tested


def test_grafana_dashboard_queries_only_exported_metrics(simulators, tmp_path) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "forwarder.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(expressions) >= 8
    from forwarder.observability.metrics import Metrics

    exported = {metric.name for metric in Metrics().registry.collect()}
    exported |= {
        name + suffix for name in exported for suffix in ("_total", "_bucket", "_count", "_sum")
    }
    for expression in expressions:
        for name in re.findall(r"forwarder_[a-z_]+", expression):
            assert name in exported, f"dashboard queries unknown metric {name}"


def test_a_real_prometheus_scrapes_the_daemon(simulators, tmp_path) -> None:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed (make test installs it)")
    config = write_config(tmp_path / "f.yaml", simulators, tmp_path / "state")
    truth = simulators.truth_ids()
    daemon = Daemon(config, tmp_path / "daemon.log")
    prometheus = None
    try:
        metrics = urllib.parse.urlparse(_metrics_url(daemon))
        port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{ROOT / 'deploy' / 'prometheus' / 'rules.yaml'}]\n"
            "scrape_configs:\n"
            "  - job_name: forwarder\n"
            f"    static_configs: [{{targets: ['{metrics.netloc}']}}]\n"
        )
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{port}/api/v1/query?query="

        def query(expression: str) -> list[dict]:
            status, body = _get(api + urllib.parse.quote(expression))
            return json.loads(body)["data"]["result"] if status == 200 else []

        wait_for(lambda: set(file_ids(tmp_path / "state" / "events.ndjson")) >= truth, 60, "events")

        def scraped_all() -> bool:
            result = query('sum(forwarder_sink_events_sent_total{job="forwarder"})')
            return bool(result) and float(result[0]["value"][1]) == len(truth)

        wait_for(scraped_all, 60, "Prometheus to scrape every sent event")
        up = query('up{job="forwarder"}')
        assert up and up[0]["value"][1] == "1"
        received = query("sum by (source) (forwarder_source_events_received_total)")
        assert {r["metric"]["source"] for r in received} == {"calendly", "google_calendar"}
        _, rules = _get(f"http://127.0.0.1:{port}/api/v1/rules")
        groups = json.loads(rules)["data"]["groups"]
        assert sum(len(group["rules"]) for group in groups) >= 5
    finally:
        if prometheus is not None:
            os.kill(prometheus.pid, signal.SIGTERM)
            prometheus.wait(15)
        assert daemon.terminate() == 0


def test_refused_credentials_make_readyz_fail_and_never_leak(simulators, tmp_path) -> None:
    token = tmp_path / "bad-token"
    token.write_text("super-secret-wrong-token")
    config = write_config(tmp_path / "f.yaml", simulators, tmp_path / "state")
    text = config.read_text().replace(simulators.endpoints["calendly_token_file"], str(token))
    config.write_text(text)
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        base = _metrics_url(daemon).rsplit("/", 1)[0]

        def unready() -> bool:
            status, body = _get(base + "/readyz")
            return status == 503 and b"credentials refused" in body

        wait_for(unready, 30, "/readyz to report the refused token")
        _, body = _get(base + "/readyz")
        assert json.loads(body)["sources"]["google_calendar"]["state"] == "ok"
    finally:
        assert daemon.terminate() == 0
    logs = daemon.log.read_text()
    assert "super-secret-wrong-token" not in logs
    failing = [e for e in daemon.log_events() if e.get("event") == "source_failing"]
    assert len(failing) == 1, "a failure streak is logged once, not on every retry"
