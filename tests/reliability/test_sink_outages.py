"""Every network sink down at once, mid-stream, while the daemon runs: Kafka cut by a TCP
proxy, rsyslog stopped, the HTTP receiver answering 503. The cursors wait, the pollers
pause, memory stays bounded, and when the sinks return nothing is missing anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from background_loop import BackgroundLoop
from e2e_harness import Daemon, Simulators, file_ids, finite_simulators, wait_for
from http_harness import Receiver, start_receiver
from kafka_harness import Broker, TcpProxy, consume, free_port
from syslog_harness import Pki, Rsyslog

pytestmark = pytest.mark.slow

QUEUE = 500
RSS_BOUND_MB = 250


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    sims = finite_simulators(tmp_path / "sim", seed=31, hours=6, rate=12)
    yield sims
    sims.stop()


def test_all_network_sinks_down_then_back(simulators: Simulators, tmp_path: Path) -> None:
    background = BackgroundLoop()
    proxy_port = free_port()
    broker = Broker(advertised_port=proxy_port)
    proxy = TcpProxy(proxy_port, broker.port)
    background.run(proxy.start())
    receiver = Receiver()
    http_runner = background.run(start_receiver(receiver))
    pki = Pki(tmp_path / "pki")
    rsyslog = Rsyslog(tmp_path / "rsyslog", pki, pki.issue("server", "localhost", client=False))
    rsyslog.start()
    e = simulators.endpoints
    state = tmp_path / "state"
    config = tmp_path / "forwarder.yaml"
    config.write_text(
        f"""state_dir: {state}
sources:
  calendly: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{e["calendly_token_file"]}", page_size: 50, poll_interval: 1s,
    initial_lookback: 2d}}
  google_calendar: {{type: google_calendar, base_url: "{e["google_url"]}",
    credentials_file: "{e["google_key_file"]}", delegated_admin: "{e["delegated_admin"]}",
    page_size: 50, poll_interval: 1s, initial_lookback: 2d, end_margin: 1s}}
sinks:
  file: {{type: file, path: "{state / "events.ndjson"}"}}
  kafka: {{type: kafka, bootstrap_servers: ["{broker.bootstrap}"], topic: audit,
    enable_idempotence: false, request_timeout: 3s}}
  syslog: {{type: syslog, host: 127.0.0.1, port: {rsyslog.ports.tcp}, transport: tcp,
    app_name: outage, connect_timeout: 2s}}
  http: {{type: http, url: "{receiver.url}", batch: {{max_events: 100, timeout: 200ms}}}}
pipeline: {{queue_capacity: {QUEUE}, shutdown_grace: 30s, retry_max_backoff: 2s}}
metrics: {{enabled: false}}
"""
    )
    truth = simulators.truth_ids()
    output = state / "events.ndjson"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: len(file_ids(output)) >= len(truth) // 4, 60, "a quarter delivered")
        # Everything down at once.
        background.run(proxy.cut())
        rsyslog.stop()
        receiver.fallback = lambda lines: (503, {"Retry-After": "1"}, b"down for maintenance")
        # Retries run, queues fill, pollers stop: the state must come to rest, with
        # cursors and the file sink frozen (a cursor that kept moving would time out here).
        snapshots: list[tuple[dict[str, bytes], int]] = []

        def at_rest() -> bool:
            snapshot = (
                {p.name: p.read_bytes() for p in (state / "checkpoints").glob("*.json")},
                len(file_ids(output)),
            )
            snapshots.append(snapshot)
            recent = snapshots[-80:]  # 4 s of samples, one every 50 ms
            return len(recent) == 80 and all(item == snapshot for item in recent)

        wait_for(at_rest, 90, "cursors and pollers to stop while the sinks are down")
        written = snapshots[-1][1]
        assert written < len(truth), "the outage came too late to test anything"
        rss = _rss_mb(daemon.process.pid)
        assert rss < RSS_BOUND_MB, f"RSS {rss:.0f} MB during the outage"
        # Everything back.
        receiver.fallback = None
        rsyslog.start()
        background.run(proxy.restore())
        wait_for(lambda: set(file_ids(output)) >= truth, 120, "every event in the file")

        def syslog_ids() -> set[str]:
            return {
                r["local"]["rfc5424-sd"]["forwarder@32473"]["id"]
                for r in rsyslog.records()
                if r.get("app_name") == "outage"
            }

        wait_for(lambda: syslog_ids() >= truth, 60, "every event in rsyslog")

        def http_ids() -> set[str]:
            return {orjson.loads(line)["event"]["id"] for line in receiver.accepted}

        wait_for(lambda: http_ids() >= truth, 60, "every event at the HTTP receiver")
        assert daemon.terminate() == 0
        records = asyncio.run(consume(broker.bootstrap, "audit", len(truth), within=60))
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
        background.run(http_runner.cleanup())
        background.run(proxy.cut())
        background.close()
        rsyslog.stop()
        broker.stop()
    assert {r.key.decode() for r in records} >= truth, "events missing from Kafka"
    # The file sink was never down: no torn or duplicated lines from the others' outage.
    lines = output.read_bytes().splitlines()
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in lines)
    assert len(lines) == len(set(file_ids(output))) == len(truth)
    print(
        orjson.dumps(
            {"events": len(truth), "rss_mb_during_outage": round(rss, 1), "queue": QUEUE}
        ).decode()
    )
