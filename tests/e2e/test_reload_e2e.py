"""Reloading the source set of a running ``forwarder run`` while events flow (issue 18).

The simulators produce live events for the first 35 seconds of the test. Meanwhile SIGHUP
reloads add a tenant, remove one, change two (a Calendly and a Google source), refuse a
broken file, and bring the removed tenant back. When the log has ended, every tenant's
events are compared with the simulators' ground truth: each delivered exactly once, the
removed-and-returned tenant included (its cursor stayed), and the tenant nobody touched
never restarted. A second test reloads without a signal: the watch sees a Kubernetes-style
volume update that adds a tenant and a Secret update that mends a refused token.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alert_harness import SCRAPE_LABELS, Samples, annotation, get, promtool_test, samples, series
from e2e_harness import Daemon, Simulators, file_documents, free_port, wait_for

from forwarder.schema.ids import calendly_event_key, google_activity_event_keys
from forwarder.timeutil import format_rfc3339

LIVE_SECONDS = 35


class LiveSimulators(Simulators):
    """An hour of history, then new events until ``end`` (Unix time), then nothing more."""

    def __init__(self, directory: Path, live_seconds: float) -> None:
        now = time.time()
        self.end = now + live_seconds
        super().__init__(
            directory,
            "--seed", "18",
            "--start", format_rfc3339(now - 3600),
            "--end", format_rfc3339(self.end),
            "--calendly-rate", "60", "--google-rate", "60",
            "--google-min-lag", "0", "--google-max-lag", "0", "--google-late-fraction", "0",
        )  # fmt: skip


@pytest.fixture
def live_simulators(tmp_path: Path) -> Iterator[LiveSimulators]:
    sims = LiveSimulators(tmp_path / "sim", LIVE_SECONDS)
    yield sims
    sims.stop()


def _calendly(endpoints: dict[str, Any], token: str, **settings: object) -> str:
    extra = "".join(f"    {key}: {value}\n" for key, value in settings.items())
    return (
        f"    type: calendly\n    base_url: {endpoints['calendly_url']}\n"
        f"    organization: {endpoints['organization']}\n    token_file: {token}\n"
        f"    poll_interval: 1s\n    initial_lookback: 2d\n{extra}"
    )


def _google(endpoints: dict[str, Any], **settings: object) -> str:
    extra = "".join(f"    {key}: {value}\n" for key, value in settings.items())
    return (
        f"    type: google_calendar\n    base_url: {endpoints['google_url']}\n"
        f"    credentials_file: {endpoints['google_key_file']}\n"
        f"    delegated_admin: {endpoints['delegated_admin']}\n"
        f"    poll_interval: 1s\n    initial_lookback: 2d\n    end_margin: 1s\n{extra}"
    )


def _tenant_file(directory: Path, name: str, source_id: str, body: str) -> None:
    # Written aside and renamed: the daemon never reads half a file.
    staging = directory.parent / f".{name}.tmp"
    staging.write_text(f"sources:\n  {source_id}:\n{body}")
    staging.replace(directory / name)


def _config(
    path: Path, state: Path, tenants: Path, inline: str, port: int, extra: str = ""
) -> Path:
    path.write_text(
        f"""
state_dir: {state}
sources_dir: {tenants}
sources:
  keep:
{inline}sinks:
  events: {{type: file, path: {state}/events.ndjson}}
metrics:
  listen: 127.0.0.1:{port}
pipeline:
  shutdown_grace: 30s
{extra}"""
    )
    return path


def _delivered(output: Path) -> Counter[tuple[str, str]]:
    return Counter(
        (document["labels"]["tenant"], document["event"]["id"])
        for document in file_documents(output)
    )


def _of(delivered: Counter[tuple[str, str]], tenant: str) -> set[str]:
    return {key for tenant_, key in delivered if tenant_ == tenant}


def _wait_delivered(output: Path, expected: dict[str, set[str]]) -> None:
    """Until every tenant's expected events are in the output."""

    def complete() -> bool:
        delivered = _delivered(output)
        return all(_of(delivered, tenant) >= keys for tenant, keys in expected.items())

    wait_for(complete, 90, "every tenant's events")


def _truth_after_the_end(simulators: LiveSimulators) -> tuple[set[str], set[str]]:
    """The Calendly and Google event ids of the whole log, once it has ended."""
    wait_for(lambda: time.time() > simulators.end + 3, LIVE_SECONDS + 10, "the end of the log")
    calendly = {calendly_event_key(entry["uri"]) for entry in simulators.truth("calendly")}
    google = {
        key
        for record in simulators.truth("google")
        for key in google_activity_event_keys(record["activity"])
    }
    return calendly, google


def _events(daemon: Daemon, name: str, **match: object) -> list[dict[str, Any]]:
    return [
        event
        for event in daemon.log_events()
        if event.get("event") == name and all(event.get(k) == v for k, v in match.items())
    ]


def _hangup_and_wait(daemon: Daemon, outcome: str) -> dict[str, Any]:
    seen = len(_events(daemon, outcome))
    os.kill(daemon.process.pid, signal.SIGHUP)
    wait_for(lambda: len(_events(daemon, outcome)) > seen, 30, outcome)
    return _events(daemon, outcome)[-1]


def _scrape(port: int) -> Samples:
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return samples(body.decode())


def _sources_in(scraped: Samples) -> set[str]:
    return {dict(labels)["source"] for labels in scraped["forwarder_source_info"]}


RELOAD_ALERT = "ForwarderConfigReloadFailed"


def _reload_alert_test(value: float, fires: bool) -> dict[str, Any]:
    """The scraped ``forwarder_config_last_reload_successful``, kept for 20 minutes."""
    expected = [
        {
            "exp_labels": {"severity": "warning", **SCRAPE_LABELS},
            "exp_annotations": {
                "summary": annotation(RELOAD_ALERT, "summary", instance="f:9108"),
                "description": annotation(RELOAD_ALERT, "description"),
            },
        }
    ]
    return {
        "name": f"a reload {'refused' if fires else 'applied'}, as scraped",
        "interval": "1m",
        "input_series": [
            {"series": series("forwarder_config_last_reload_successful"), "values": f"{value:g}x20"}
        ],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": RELOAD_ALERT},
            {
                "eval_time": "12m",
                "alertname": RELOAD_ALERT,
                "exp_alerts": expected if fires else [],
            },
        ],
    }


def test_sighup_adds_removes_and_changes_sources_while_events_flow(
    live_simulators: LiveSimulators, tmp_path: Path
) -> None:
    endpoints = live_simulators.endpoints
    token = endpoints["calendly_token_file"]
    state, tenants = tmp_path / "state", tmp_path / "sources.d"
    tenants.mkdir()
    _tenant_file(tenants, "b.yaml", "b", _calendly(endpoints, token))
    _tenant_file(tenants, "c.yaml", "c", _calendly(endpoints, token, page_size=50))
    _tenant_file(tenants, "g.yaml", "g", _google(endpoints, page_size=50))
    port = free_port()
    config = _config(tmp_path / "config.yaml", state, tenants, _calendly(endpoints, token), port)
    output = state / "events.ndjson"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        wait_for(
            lambda: {"b", "c", "g", "keep"} <= {tenant for tenant, _ in _delivered(output)},
            60,
            "events from every tenant",
        )

        # 1. Remove b, change c (page size) and g (poll interval), add d.
        (tenants / "b.yaml").unlink()
        _tenant_file(tenants, "c.yaml", "c", _calendly(endpoints, token, page_size=20))
        _tenant_file(
            tenants,
            "g.yaml",
            "g",
            _google(endpoints, page_size=50).replace("1s\n    initial", "2s\n    initial"),
        )
        _tenant_file(tenants, "d.yaml", "d", _calendly(endpoints, token))
        applied = _hangup_and_wait(daemon, "reload_applied")
        assert (applied["added"], applied["removed"], sorted(applied["changed"])) == (
            ["d"],
            ["b"],
            ["c", "g"],
        )
        assert applied["unchanged"] == 1
        wait_for(lambda: len(_events(daemon, "source_stopped")) == 3, 30, "b, c, g stopped")
        wait_for(lambda: len(_events(daemon, "source_resumed", source="g")) == 2, 30, "g again")
        assert {event["source"] for event in _events(daemon, "source_stopped")} == {"b", "c", "g"}
        for source_id in ("c", "g"):
            restarted = _events(daemon, "source_resumed", source=source_id)[-1]
            assert restarted["resumed_from"] == "checkpoint"
        assert _sources_in(_scrape(port)) == {"keep", "c", "d", "g"}
        b_so_far = {key for tenant, key in _delivered(output) if tenant == "b"}

        # 2. A broken file is refused, naming it; nothing restarts.
        resumed_before = len(_events(daemon, "source_resumed"))
        (tenants / "e.yaml").write_text(
            "sources:\n  e:\n" + _calendly(endpoints, token).replace("token_file", "tokn_file")
        )
        refused = _hangup_and_wait(daemon, "reload_refused")
        assert any("e.yaml" in line and "tokn_file" in line for line in refused["problems"])
        refused_scrape = _scrape(port)
        assert refused_scrape["forwarder_config_last_reload_successful"] == {(): 0}
        assert refused_scrape["forwarder_config_reloads_total"][(("result", "refused"),)] == 1
        assert _sources_in(refused_scrape) == {"keep", "c", "d", "g"}
        assert len(_events(daemon, "source_resumed")) == resumed_before
        assert len(_events(daemon, "source_stopped")) == 3

        # 3. The broken file goes, b comes back: from the cursor it left behind.
        (tenants / "e.yaml").unlink()
        _tenant_file(tenants, "b.yaml", "b", _calendly(endpoints, token))
        applied = _hangup_and_wait(daemon, "reload_applied")
        assert applied["added"] == ["b"]
        assert _events(daemon, "source_resumed", source="b")[-1]["resumed_from"] == "checkpoint"
        mended_scrape = _scrape(port)
        assert mended_scrape["forwarder_config_last_reload_successful"] == {(): 1}
        assert time.time() < live_simulators.end

        # Every tenant's events, exactly once, once the log has ended.
        calendly, google = _truth_after_the_end(live_simulators)
        expected = {tenant: calendly for tenant in ("keep", "b", "c", "d")} | {"g": google}
        _wait_delivered(output, expected)
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    delivered = _delivered(output)
    duplicates = {pair: count for pair, count in delivered.items() if count > 1}
    assert duplicates == {}
    for tenant, keys in expected.items():
        assert _of(delivered, tenant) == keys, tenant
    assert b_so_far < calendly  # b had not finished when removed: the rest came after
    assert len(_events(daemon, "source_resumed", source="keep")) == 1
    assert not _events(daemon, "source_stopped", source="keep")
    # The alert written for a refused reload fires on what the daemon exported then, and
    # not once the reload was mended.
    tests = [
        _reload_alert_test(refused_scrape["forwarder_config_last_reload_successful"][()], True),
        _reload_alert_test(mended_scrape["forwarder_config_last_reload_successful"][()], False),
    ]
    result = promtool_test(tmp_path, tests)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_watch_reloads_a_kubernetes_volume_update_without_a_signal(
    live_simulators: LiveSimulators, tmp_path: Path
) -> None:
    endpoints = live_simulators.endpoints
    state = tmp_path / "state"
    # A ConfigMap/Secret volume: keys are symlinks through `..data` into a timestamped
    # directory, and an update swaps `..data` in one rename.
    volume = tmp_path / "tenants"
    volume.mkdir()
    wrong = tmp_path / "secret-token"
    wrong.write_text("not-the-token\n")

    def publish(version: str, files: dict[str, str]) -> None:
        directory = volume / f"..{version}"
        directory.mkdir()
        for name, text in files.items():
            (directory / name).write_text(text)
            link = volume / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        staging = volume / "..data_tmp"
        staging.symlink_to(directory.name)
        staging.replace(volume / "..data")

    token = endpoints["calendly_token_file"]
    publish("v1", {"acme.yaml": f"sources:\n  acme:\n{_calendly(endpoints, token)}"})
    port = free_port()
    config = _config(
        tmp_path / "config.yaml",
        state,
        volume,
        _calendly(endpoints, str(wrong)),
        port,
        extra="reload:\n  watch_interval: 1s\n",
    )
    output = state / "events.ndjson"
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        wait_for(lambda: _events(daemon, "source_failing", source="keep"), 30, "keep refused")
        publish(
            "v2",
            {
                "acme.yaml": f"sources:\n  acme:\n{_calendly(endpoints, token)}",
                "initech.yaml": f"sources:\n  initech:\n{_calendly(endpoints, token)}",
            },
        )
        wait_for(lambda: _events(daemon, "reload_applied"), 30, "the watch's reload")
        applied = _events(daemon, "reload_applied")[-1]
        assert (applied["reason"], applied["added"], applied["changed"]) == (
            "files_changed",
            ["initech"],
            [],
        )
        # The Secret is mended: the refused source restarts with the new token.
        wrong.write_text(Path(token).read_text())
        wait_for(lambda: len(_events(daemon, "reload_applied")) == 2, 30, "the token reload")
        assert _events(daemon, "reload_applied")[-1]["changed"] == ["keep"]
        calendly, _ = _truth_after_the_end(live_simulators)
        _wait_delivered(output, dict.fromkeys(("keep", "acme", "initech"), calendly))
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    delivered = _delivered(output)
    assert max(delivered.values()) == 1
    assert len(_events(daemon, "reload_applied")) == 2  # one per change, none while idle
