"""Metrics, health and logs of a running daemon, checked by promtool and scraped by a
real Prometheus server (Debian package) on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_harness import get
from e2e_harness import (
    Daemon,
    Simulators,
    file_ids,
    finite_simulators,
    free_port,
    wait_for,
    write_config,
)

from forwarder.config.model import MetricsConfig

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    sims = finite_simulators(tmp_path / "sim", seed=11, hours=1, rate=6)
    yield sims
    sims.stop()


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
        status, body = get(url)
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
        # The untrusted-peer alerts fire on increase(): their series exist at 0 from the
        # start, so the first capped value or future-dated record is an increase.
        for source in ("calendly", "google_calendar"):
            assert _sample(text, "forwarder_source_future_events_total", source=source) == 0
            for kind in ("retry_after", "clock_offset"):
                capped = _sample(
                    text, "forwarder_source_capped_values_total", source=source, kind=kind
                )
                assert capped == 0
        lifetime = _sample(
            text,
            "forwarder_source_capped_values_total",
            source="google_calendar",
            kind="token_lifetime",
        )
        assert lifetime == 0
        assert _sample(text, "forwarder_operator_connections_refused_total") == 0
        base = url.rsplit("/", 1)[0]
        assert get(base + "/healthz") == (200, b'{"status": "alive"}')
        status, ready = get(base + "/readyz")
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
    assert len(alerts) == 15
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
            status, body = get(api + urllib.parse.quote(expression))
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
        _, rules = get(f"http://127.0.0.1:{port}/api/v1/rules")
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
            status, body = get(base + "/readyz")
            return status == 503 and b"credentials refused" in body

        wait_for(unready, 30, "/readyz to report the refused token")
        _, body = get(base + "/readyz")
        assert json.loads(body)["sources"]["google_calendar"]["state"] == "ok"
    finally:
        assert daemon.terminate() == 0
    logs = daemon.log.read_text()
    assert "super-secret-wrong-token" not in logs
    failing = [e for e in daemon.log_events() if e.get("event") == "source_failing"]
    assert len(failing) == 1, "a failure streak is logged once, not on every retry"


# The daemon's descriptor limit in the flood test: a common default (`ulimit -n`), under
# the 1,100 connections, as when the flood exhausted them.
DAEMON_NOFILE = 1024
FLOOD = 1_100


def _limit_descriptors() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (DAEMON_NOFILE, hard))


def _open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _committed_at(database: Path, source: str = "calendly") -> float:
    """When the source's cursor was last committed, read from the daemon's state database
    (a reader of its own, alongside the daemon's writes); 0 before the first commit."""
    if not database.exists():
        return 0.0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT committed_at FROM cursors WHERE source = ?", (source,)
            ).fetchone()
    except sqlite3.OperationalError:  # the schema not created yet
        return 0.0
    return 0.0 if row is None else float(row[0])


def test_a_connection_flood_leaves_checkpoints_and_metrics_working(tmp_path: Path) -> None:
    """1,100 idle connections to the metrics port (the issue's flood) against a daemon
    whose descriptor limit is 1,024: at most metrics.max_connections are held, the rest
    are reset as soon as they are accepted; descriptors stay bounded, checkpoints keep
    committing, stderr stays quiet, and /metrics answers once the idle ones are dropped."""
    state = tmp_path / "state"
    metrics_port, calendly_port, google_port = free_port(), free_port(), free_port()
    config = tmp_path / "flood.yaml"
    config.write_text(
        f"""
state_dir: {state}
simulators:
  calendly_port: {calendly_port}
  google_port: {google_port}
  history: 10m
  calendly_rate_per_minute: 600
sources:
  calendly:
    type: calendly
    base_url: http://127.0.0.1:{calendly_port}
    organization: https://api.calendly.com/organizations/DEMOORG000000001
    token_file: {state}/simulators/calendly-token
    poll_interval: 1s
sinks:
  events:
    type: file
    path: {state}/events.ndjson
metrics:
  listen: 127.0.0.1:{metrics_port}
  idle_timeout: 15s
"""
    )
    log = tmp_path / "daemon.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=_limit_descriptors,
        )
    checkpoint = state / "state.sqlite3"
    clients: list[socket.socket] = []
    try:
        wait_for(lambda: _committed_at(checkpoint) > 0, 60, "a first checkpoint")
        baseline = _open_descriptors(process.pid)
        log_size = log.stat().st_size
        # The client needs more descriptors than the daemon has; only the client's limit.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < FLOOD + 256:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, FLOOD + 256), hard))
        selector = selectors.DefaultSelector()
        refused_at_connect = 0
        for _ in range(FLOOD):
            # One after the other: each handshake completes (a burst beyond the listen
            # backlog leaves half-open connections the daemon never sees).
            try:
                client = socket.create_connection(("127.0.0.1", metrics_port), timeout=10)
            except ConnectionResetError:  # reset by the daemon before connect() returned
                refused_at_connect += 1
                continue
            client.setblocking(False)
            clients.append(client)
            selector.register(client, selectors.EVENT_READ)
        # Every refused connection is closed by the daemon; the admitted ones stay open
        # (idle) until idle_timeout. Watch the daemon's descriptors meanwhile.
        held = MetricsConfig().max_connections  # the default, 64
        closed: set[socket.socket] = set()
        most = baseline

        def all_but_the_held_closed() -> bool:
            nonlocal most
            most = max(most, _open_descriptors(process.pid))
            for key, _ in selector.select(timeout=0.05):
                try:
                    if key.fileobj.recv(1) == b"":  # type: ignore[union-attr]
                        closed.add(key.fileobj)  # type: ignore[arg-type]
                except (ConnectionError, BlockingIOError, OSError):
                    closed.add(key.fileobj)  # type: ignore[arg-type]
                selector.unregister(key.fileobj)
            return refused_at_connect + len(closed) >= FLOOD - held

        wait_for(all_but_the_held_closed, 60, f"{FLOOD - held} connections to be refused")
        assert refused_at_connect + len(closed) == FLOOD - held
        # While the held connections idle, the pipeline commits on.
        during = _committed_at(checkpoint)
        wait_for(lambda: _committed_at(checkpoint) > during, 30, "a checkpoint during the flood")
        most = max(most, _open_descriptors(process.pid))
        # Then the idle ones are dropped by the daemon (idle_timeout).
        wait_for(lambda: all_but_the_held_closed() and len(clients) == len(closed), 60, "idle drop")
        status, body = get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        text = body.decode()
        refused = _sample(text, "forwarder_operator_connections_refused_total")
        # Exported at 0 from the start: only a count above 0 is a failed write.
        write_errors = [
            line for line in text.splitlines()
            if line.startswith("forwarder_checkpoint_write_errors_total{")
            and not line.endswith(" 0.0")
        ]  # fmt: skip
        print(
            f"flood: {FLOOD} connections, {refused:.0f} refused, {held} held; "
            f"daemon descriptors: {baseline} before, at most {most} during; "
            f"stderr +{log.stat().st_size - log_size} bytes"
        )
        assert refused == FLOOD - held
        assert _sample(text, "forwarder_operator_connections") == 1  # this scrape
        # Bounded: the held connections, plus a few for the daemon's own work (a checkpoint
        # being written, a new connection to the API).
        assert most <= baseline + held + 10, (baseline, most)
        assert not write_errors, write_errors
        assert _committed_at(checkpoint) > during
        assert log.stat().st_size - log_size < 16_384, "stderr flooded"
        assert process.poll() is None
    finally:
        for client in clients:
            client.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
