"""``forwarder run`` with one inline source and two tenants' sources from a mounted-like
``sources_dir``: every event delivered carries its source's tenant, and
``forwarder_source_info`` names each source's tenant for PromQL joins."""

from __future__ import annotations

import urllib.request
from collections import Counter
from pathlib import Path

import orjson
from e2e_harness import Daemon, Simulators, file_ids, free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families

from forwarder.schema.ids import google_activity_event_keys


def test_tenants_from_sources_dir(simulators: Simulators, tmp_path: Path) -> None:
    endpoints = simulators.endpoints
    calendly_events = len(simulators.truth("calendly"))
    google_events = sum(
        len(google_activity_event_keys(record["activity"])) for record in simulators.truth("google")
    )
    state = tmp_path / "state"
    tenants = tmp_path / "sources.d"
    tenants.mkdir()
    (tenants / "acme.yaml").write_text(
        f"""sources:
  acme-google:
    type: google_calendar
    tenant: acme
    base_url: {endpoints["google_url"]}
    credentials_file: {endpoints["google_key_file"]}
    delegated_admin: {endpoints["delegated_admin"]}
    poll_interval: 1s
    initial_lookback: 2d
    end_margin: 1s
"""
    )
    (tenants / "globex.yaml").write_text(
        f"""sources:
  globex:
    type: calendly
    base_url: {endpoints["calendly_url"]}
    organization: {endpoints["organization"]}
    token_file: {endpoints["calendly_token_file"]}
    poll_interval: 1s
    initial_lookback: 2d
"""
    )
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
state_dir: {state}
sources_dir: {tenants}
sources:
  initech:
    type: calendly
    tenant: initech
    base_url: {endpoints["calendly_url"]}
    organization: {endpoints["organization"]}
    token_file: {endpoints["calendly_token_file"]}
    poll_interval: 1s
    initial_lookback: 2d
sinks:
  events: {{type: file, path: {state}/events.ndjson}}
metrics:
  listen: 127.0.0.1:{port}
"""
    )
    output = state / "events.ndjson"
    expected = 2 * calendly_events + google_events
    daemon = Daemon(config, tmp_path / "daemon.log")
    try:
        daemon.wait_started()
        wait_for(lambda: len(file_ids(output)) >= expected, 90, f"{expected} events")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        assert daemon.terminate() == 0
    finally:
        if daemon.process.poll() is None:
            daemon.kill()
    documents = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert len(documents) == expected
    by_tenant = Counter(
        (document["labels"]["tenant"], document["event"]["provider"]) for document in documents
    )
    providers = {document["event"]["provider"] for document in documents}
    calendly = next(p for p in providers if "calendly" in p)
    google = next(p for p in providers if p != calendly)
    assert by_tenant == {
        ("initech", calendly): calendly_events,
        ("globex", calendly): calendly_events,
        ("acme", google): google_events,
    }
    info = {
        (sample.labels["source"], sample.labels["tenant"], sample.labels["provider"])
        for family in text_string_to_metric_families(text)
        if family.name == "forwarder_source_info"
        for sample in family.samples
        if sample.value == 1
    }
    assert info == {
        ("initech", "initech", "calendly"),
        ("globex", "globex", "calendly"),
        ("acme-google", "acme", "google_calendar"),
    }
