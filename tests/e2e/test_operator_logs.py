"""The daemon's log as an operator reads it: one JSON object per line whatever a library
prints (aiokafka with its broker gone), never a secret, refused credentials at ``error``,
where each source resumed from at start, and a periodic ``progress`` line."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from e2e_harness import Daemon, Simulators, finite_simulators, free_port, wait_for
from kafka_harness import Broker

from forwarder.timeutil import format_rfc3339

pytestmark = pytest.mark.slow

KAFKA_PASSWORD = "kafka-pass-7Hq2xZ"
WRONG_TOKEN = "wrong-calendly-token-9Ks1"


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    sims = finite_simulators(tmp_path / "sim", seed=13, hours=2, rate=6)
    yield sims
    sims.stop()


def _json_lines(log: Path) -> list[dict[str, Any]]:
    """Every stderr line, each required to be one JSON object."""
    records = []
    for number, line in enumerate(log.read_bytes().splitlines(), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line[:300]!r}") from None
        assert isinstance(record, dict), f"line {number} is not an object: {line[:300]!r}"
        assert {"event", "level", "timestamp"} <= record.keys(), record
        records.append(record)
    return records


def _readiness(daemon: Daemon) -> dict[str, Any]:
    started = next(e for e in daemon.log_events() if e["event"] == "forwarder_started")
    url = started["metrics"].rsplit("/", 1)[0] + "/readyz"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:  # 503 while something fails: still JSON
        return dict(json.loads(error.read()))


@pytest.fixture
def live_simulators(tmp_path: Path) -> Iterator[Simulators]:
    """A Calendly event every second from now on: a sink keeps having something to send."""
    now = time.time()
    sims = Simulators(
        tmp_path / "live-sim",
        "--seed", "17",
        "--start", format_rfc3339(now - 600),
        "--end", format_rfc3339(now + 3600),
        "--calendly-rate", "60", "--google-rate", "1",
    )  # fmt: skip
    yield sims
    sims.stop()


def test_kafka_down_or_lost_mid_run_logs_only_json(
    live_simulators: Simulators, tmp_path: Path
) -> None:
    e = live_simulators.endpoints
    broker = Broker()
    config = tmp_path / "forwarder.yaml"
    # `dead` never had a broker (a port nothing listens on, SASL credentials that must not
    # show); `lost` delivers until its broker is stopped mid-run.
    config.write_text(
        f"""state_dir: {tmp_path / "state"}
sources:
  calendly: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{e["calendly_token_file"]}", page_size: 20, poll_interval: 1s,
    initial_lookback: 1d}}
sinks:
  dead: {{type: kafka, bootstrap_servers: ["127.0.0.1:{free_port()}"], topic: audit,
    security_protocol: SASL_PLAINTEXT,
    sasl: {{mechanism: PLAIN, username: forwarder, password: "{KAFKA_PASSWORD}"}},
    request_timeout: 2s}}
  lost: {{type: kafka, bootstrap_servers: ["{broker.bootstrap}"], topic: audit,
    enable_idempotence: false, request_timeout: 2s}}
metrics: {{listen: "127.0.0.1:{free_port()}"}}
pipeline: {{queue_capacity: 2000, shutdown_grace: 1s, retry_max_backoff: 1s}}
log: {{progress_interval: 0}}
"""
    )
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        wait_for(
            lambda: any(e.get("event") == "sink_failing" for e in daemon.log_events()),
            30,
            "the dead sink to fail",
        )
        # `lost` delivers while `dead` holds the cursors back, so its queue drains.
        wait_for(
            lambda: _readiness(daemon)["sinks"]["lost"]["queued_events"] == 0,
            30,
            "the live sink to deliver",
        )
        broker.stop()
        wait_for(
            lambda: sum(e.get("event") == "sink_failing" for e in daemon.log_events()) >= 2,
            60,
            "the lost broker to be noticed",
        )
        # Long enough for aiokafka to retry its connections many times over.
        wait_for(
            lambda: (
                sum(str(e.get("logger", "")).startswith("aiokafka") for e in daemon.log_events())
                >= 2
            ),
            30,
            "aiokafka's own lines",
        )
    finally:
        broker.stop()
        daemon.terminate()
    records = _json_lines(daemon.log)
    text = daemon.log.read_text()
    assert KAFKA_PASSWORD not in text
    failing = {e["sink"] for e in records if e["event"] == "sink_failing"}
    assert failing == {"dead", "lost"}
    library = [e for e in records if str(e.get("logger", "")).startswith("aiokafka")]
    assert library and all(e["level"] in {"warning", "error", "critical"} for e in library)
    # aiokafka retries a dead broker every ~100 ms; a repeated message is shown once a
    # minute, so a run of seconds shows each kind once.
    messages = [(e["logger"], re.sub(r"\d+", "N", e["event"])) for e in library]
    assert len(messages) == len(set(messages)), messages


def _credentials_config(tmp_path: Path, simulators: Simulators) -> Path:
    e = simulators.endpoints
    wrong_token = tmp_path / "wrong-token"
    wrong_token.write_text(WRONG_TOKEN)
    state = tmp_path / "state"
    calendly = (
        f'type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",'
        " page_size: 50, poll_interval: 1s, initial_lookback: 1d"
    )
    google = (
        f'type: google_calendar, base_url: "{e["google_url"]}",'
        f' credentials_file: "{e["google_key_file"]}", page_size: 50, poll_interval: 1s,'
        " initial_lookback: 1d, end_margin: 1s"
    )
    config = tmp_path / "forwarder.yaml"
    config.write_text(
        f"""state_dir: {state}
sources:
  cal: {{{calendly}, token_file: "{e["calendly_token_file"]}"}}
  gws: {{{google}, delegated_admin: "{e["delegated_admin"]}"}}
  cal_refused: {{{calendly}, token_file: "{wrong_token}"}}
  gws_refused: {{{google}, delegated_admin: "nobody@elsewhere.example"}}
sinks:
  events: {{type: file, path: "{state / "events.ndjson"}"}}
metrics: {{listen: "127.0.0.1:{free_port()}"}}
pipeline: {{shutdown_grace: 10s}}
log: {{level: info, progress_interval: 1s}}
"""
    )
    return config


def _by_event(records: list[dict[str, Any]], event: str) -> dict[str, dict[str, Any]]:
    return {e["source"]: e for e in records if e["event"] == event}


def test_refused_credentials_resume_lines_and_progress(
    simulators: Simulators, tmp_path: Path
) -> None:
    config = _credentials_config(tmp_path, simulators)
    first = Daemon(config, tmp_path / "first.log")
    try:
        first.wait_started()

        def progressed() -> bool:
            lines = [e for e in first.log_events() if e.get("event") == "progress"]
            return bool(lines) and lines[-1]["sinks"]["events"]["events_total"] > 0

        wait_for(progressed, 60, "a progress line with delivered events")
        wait_for(
            lambda: len(_by_event(first.log_events(), "source_failing")) == 2,
            30,
            "both refused sources to fail",
        )
    finally:
        assert first.terminate() == 0
    records = _json_lines(first.log)
    text = first.log.read_text()
    assert WRONG_TOKEN not in text and "PRIVATE KEY" not in text

    # Nothing recovers refused credentials without a person: error, not warning.
    failing = _by_event(records, "source_failing")
    assert set(failing) == {"cal_refused", "gws_refused"}
    for line in failing.values():
        assert line["level"] == "error" and line["error_type"] == "credentials", line

    # Where each source starts from: no cursor yet, so its initial_lookback.
    resumed = _by_event(records, "source_resumed")
    assert set(resumed) == {"cal", "gws", "cal_refused", "gws_refused"}
    assert {line["resumed_from"] for line in resumed.values()} == {"initial_lookback"}
    assert resumed["cal"]["level"] == "info" and resumed["cal"]["cursor"].endswith("Z")
    assert resumed["gws"]["head"] and resumed["gws"]["final_before"]

    # The progress line: events per source and sink, positions, queue use.
    progress = [e for e in records if e["event"] == "progress"]
    last = progress[-1]
    assert last["level"] == "info" and last["interval_seconds"] == 1
    sources, sink = last["sources"], last["sinks"]["events"]
    assert set(sources) == {"cal", "gws", "cal_refused", "gws_refused"}
    assert sources["cal"]["events_total"] > 0 and sources["cal"]["cursor"]
    assert sources["gws"]["head"] and sources["gws"]["final_before"]
    assert sources["cal_refused"] == {
        **sources["cal_refused"],
        "events_total": 0,
        "state": "failing",
    }
    assert sink["queue_capacity"] == 10000 and 0 <= sink["queued_events"] <= 10000
    # `events` counts since the line before: over every line, the total.
    for source_id in ("cal", "gws"):
        assert (
            sum(line["sources"][source_id]["events"] for line in progress)
            == (sources[source_id]["events_total"])
        )
    assert sum(line["sinks"]["events"]["events"] for line in progress) == sink["events_total"]
    delivered = len((tmp_path / "state" / "events.ndjson").read_bytes().splitlines())
    assert sink["events_total"] <= delivered

    # Started again: the sources that committed resume from their cursor.
    second = Daemon(config, tmp_path / "second.log")
    try:
        second.wait_started()
    finally:
        assert second.terminate() == 0
    again = _by_event(_json_lines(second.log), "source_resumed")
    assert again["cal"]["resumed_from"] == "checkpoint"
    assert again["gws"]["resumed_from"] == "checkpoint"
    assert again["cal_refused"]["resumed_from"] == "initial_lookback"
    assert again["cal"]["cursor"] >= resumed["cal"]["cursor"]
    assert again["gws"]["final_before"] >= resumed["gws"]["final_before"]
    assert again["cal"]["seen_ids"] > 0
