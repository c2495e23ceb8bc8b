"""Upgrading from the release that kept one JSON checkpoint per source: the daemon
imports both sources' files into its state database on the first start and delivers
exactly what that release had not delivered (subprocesses, the simulators' ground truth).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from e2e_harness import Daemon, Simulators, file_ids, wait_for, write_config
from legacy_state import legacy_calendly, legacy_google

from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.schema.ids import calendly_event_key

pytestmark = pytest.mark.slow


def test_the_first_start_imports_json_checkpoints_and_delivers_only_the_rest(
    simulators: Simulators, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", simulators, state)
    output = state / "events.ndjson"
    truth = simulators.truth_ids()

    # The release before had delivered the older half of the Calendly log, and polled
    # Google three hours ago (everything up to then delivered).
    entries = simulators.truth("calendly")
    calendly_before = entries[: len(entries) // 2]
    legacy = FileCheckpointStore(state)
    legacy.commit_sync("calendly", legacy_calendly(calendly_before))
    google_state, google_before = legacy_google(
        simulators.truth("google"), time.time() - 3 * 3600, end_margin=1.0
    )
    legacy.commit_sync("google_calendar", google_state)
    before = set(google_before) | {calendly_event_key(entry["uri"]) for entry in calendly_before}
    expected = truth - before
    assert len(before) > 1000 and len(expected) > 1000
    assert len(google_state["seen"]) > 500, "the settle window the new release re-reads"

    first = Daemon(config, tmp_path / "daemon.log")
    wait_for(lambda: set(file_ids(output)) >= expected, 90, "the events not yet delivered")
    assert first.terminate() == 0
    delivered = file_ids(output)
    assert Counter(delivered).most_common(1)[0][1] == 1, "an event was written twice"
    assert set(delivered) == expected, "delivered again what the release before had"
    migrated = [e for e in first.log_events() if e.get("event") == "checkpoint_migrated"]
    assert {e["source"] for e in migrated} == {"calendly", "google_calendar"}
    for source in ("calendly", "google_calendar"):
        assert not (state / "checkpoints" / f"{source}.json").exists()
        assert (state / "checkpoints" / f"{source}.json.migrated").exists()

    shown = subprocess.run(
        [sys.executable, "-m", "forwarder", "cursors", "show", "--config", str(config)],
        capture_output=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    summaries = {s["source"]: s for s in map(orjson.loads, shown.stdout.splitlines())}
    assert summaries["calendly"]["committed"] and summaries["google_calendar"]["committed"]
    assert summaries["google_calendar"]["seen_ids"] > 0

    second = Daemon(config, tmp_path / "daemon2.log")
    second.wait_started()
    time.sleep(5)  # a few polls (1 s apart) over the imported state
    assert second.terminate() == 0
    assert file_ids(output) == delivered, "the restart re-sent or lost events"
    assert not [e for e in second.log_events() if e.get("event") == "checkpoint_migrated"]
