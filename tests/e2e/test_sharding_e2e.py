"""Three ``forwarder run`` processes sharing one config (``shard.count: 3``), each its index
from its hostname (a StatefulSet pod's ``<name>-<ordinal>``) and its own state_dir: every
source runs in exactly one of them, and each delivers exactly its sources' events."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_harness import Daemon, Simulators, file_ids, free_port, wait_for

from forwarder.schema.ids import google_activity_event_keys
from forwarder.shard import owner

# Several sources on the same simulated organization / customer: each delivers all of it.
CALENDLY_IDS = ("calendly_a", "calendly_b", "calendly_c")
GOOGLE_IDS = ("google_a", "google_b", "google_c")
COUNT = 3


def _config(path: Path, simulators: Simulators, state: Path) -> Path:
    endpoints = simulators.endpoints
    sources = "".join(
        f"""
  {source_id}:
    type: calendly
    base_url: {endpoints["calendly_url"]}
    organization: {endpoints["organization"]}
    token_file: {endpoints["calendly_token_file"]}
    poll_interval: 1s
    initial_lookback: 2d"""
        for source_id in CALENDLY_IDS
    ) + "".join(
        f"""
  {source_id}:
    type: google_calendar
    base_url: {endpoints["google_url"]}
    credentials_file: {endpoints["google_key_file"]}
    delegated_admin: {endpoints["delegated_admin"]}
    poll_interval: 1s
    initial_lookback: 2d
    end_margin: 1s"""
        for source_id in GOOGLE_IDS
    )
    path.write_text(
        f"""
state_dir: {state}
sources:{sources}
sinks:
  events: {{type: file, path: {state}/events.ndjson}}
metrics:
  listen: 127.0.0.1:{free_port()}
pipeline:
  shutdown_grace: 20s
shard:
  count: {COUNT}
"""
    )
    return path


def test_three_replicas_split_the_sources(
    simulators: Simulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendly_events = len(simulators.truth("calendly"))
    google_events = sum(
        len(google_activity_event_keys(record["activity"])) for record in simulators.truth("google")
    )
    assert calendly_events > 100 and google_events > 100
    daemons: list[Daemon] = []
    try:
        for index in range(COUNT):
            state = tmp_path / f"replica-{index}"
            config = _config(tmp_path / f"config-{index}.yaml", simulators, state)
            # The child inherits it: the shard index comes from the pod-like hostname.
            monkeypatch.setenv("HOSTNAME", f"forwarder-{index}")
            daemons.append(Daemon(config, tmp_path / f"daemon-{index}.log"))
        for daemon in daemons:
            daemon.wait_started()

        assignments = {}
        for index, daemon in enumerate(daemons):
            events = [e for e in daemon.log_events() if e.get("event") == "shard_assignment"]
            assert len(events) == 1, events
            assert (events[0]["index"], events[0]["count"]) == (index, COUNT)
            assignments[index] = events[0]["sources"]
            started = next(e for e in daemon.log_events() if e.get("event") == "forwarder_started")
            assert started["sources"] == assignments[index]
        every = sorted(CALENDLY_IDS + GOOGLE_IDS)
        # Each source in exactly one replica.
        assert sorted(s for owned in assignments.values() for s in owned) == every
        assert all(assignments.values())
        for index, owned in assignments.items():
            assert owned == [s for s in (*CALENDLY_IDS, *GOOGLE_IDS) if owner(s, COUNT) == index]

        # Each replica delivers all of its own sources' events, and nothing more.
        expected = {
            index: sum(
                calendly_events if s.startswith("calendly") else google_events for s in owned
            )
            for index, owned in assignments.items()
        }
        outputs = {index: tmp_path / f"replica-{index}" / "events.ndjson" for index in range(COUNT)}
        for index in range(COUNT):
            wait_for(
                lambda index=index: len(file_ids(outputs[index])) >= expected[index],
                90,
                f"replica {index}: {expected[index]} events",
            )
        for daemon in daemons:
            assert daemon.terminate() == 0
        for index in range(COUNT):
            assert len(file_ids(outputs[index])) == expected[index]
    finally:
        for daemon in daemons:
            if daemon.process.poll() is None:
                daemon.kill()
