"""The daemon as a user runs it: subprocesses, real HTTP, real files, real signals."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from e2e_harness import (
    Daemon,
    Simulators,
    file_ids,
    free_port,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_both_sources_delivered_then_restart_resumes_without_loss_or_repeat(
    simulators: Simulators, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path / "forwarder.yaml", simulators, state)
    output = state / "events.ndjson"
    truth = simulators.truth_ids()
    assert len(truth) > 2000

    first = Daemon(config, tmp_path / "daemon.log")
    wait_for(lambda: set(file_ids(output)) >= truth, 90, "every simulator event in the file")
    assert first.terminate() == 0
    delivered = file_ids(output)
    assert Counter(delivered).most_common(1)[0][1] == 1, "an event was written twice"
    assert set(delivered) == truth
    providers = {event["event"]["provider"] for event in _documents(output)}
    assert providers == {"calendly", "google_calendar"}

    second = Daemon(config, tmp_path / "daemon2.log")
    wait_for(lambda: _completed_polls(second) >= 4, 60, "two polls per source after restart")
    assert second.terminate() == 0
    assert file_ids(output) == delivered, "the restart re-sent or lost events"
    stopped = [e for e in second.log_events() if e["event"] == "forwarder_stopped"]
    assert stopped and stopped[0]["undelivered_batches"] == 0


def test_kill_9_loses_nothing_and_repeats_at_most_one_batch_per_source(
    simulators: Simulators, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    page = 10
    config = write_config(tmp_path / "forwarder.yaml", simulators, state, page_size=page)
    output = state / "events.ndjson"
    truth = simulators.truth_ids()
    rng = random.Random(2)
    for attempt in range(3):
        daemon = Daemon(config, tmp_path / f"daemon{attempt}.log")
        target = len(truth) * (attempt + 1) // 5 + rng.randrange(page * 5)
        wait_for(lambda target=target: len(file_ids(output)) >= target, 90, f"{target} events")
        daemon.kill()
    final = Daemon(config, tmp_path / "final.log")
    wait_for(lambda: set(file_ids(output)) >= truth, 120, "every simulator event in the file")
    assert final.terminate() == 0
    delivered = file_ids(output)
    assert set(delivered) == truth, "events lost"
    repeats = sum(count - 1 for count in Counter(delivered).values())
    print(f"kill -9 x3: {len(truth)} events, {repeats} repeated")
    # Each kill can repeat the batch each source had in flight, nothing more.
    assert repeats <= 3 * 2 * page, f"{repeats} repeated events"


def test_demo_config_runs_both_sources_and_restarts_without_repeats(tmp_path: Path) -> None:
    demo = (ROOT / "config" / "demo.yaml").read_text()
    calendly_port, google_port, metrics_port = free_port(), free_port(), free_port()
    demo = (
        demo.replace(".forwarder-demo", str(tmp_path / "demo"))
        .replace("18081", str(calendly_port))
        .replace("18082", str(google_port))
        .replace("9108", str(metrics_port))
        .replace("poll_interval: 10s", "poll_interval: 1s")
    )
    config = tmp_path / "demo.yaml"
    config.write_text(demo)
    output = tmp_path / "demo" / "events.ndjson"

    first = Daemon(config, tmp_path / "demo1.log")
    wait_for(lambda: len(file_ids(output)) > 500, 60, "demo events")
    wait_for(lambda: _completed_polls(first) >= 4, 60, "polls")
    assert first.terminate() == 0
    documents = _documents(output)
    assert {d["event"]["provider"] for d in documents} == {"calendly", "google_calendar"}
    second = Daemon(config, tmp_path / "demo2.log")
    wait_for(lambda: _completed_polls(second) >= 4, 60, "polls after restart")
    assert second.terminate() == 0
    counts = Counter(file_ids(output))
    assert counts.most_common(1)[0][1] == 1, "the demo repeated an event after a restart"
    shutil.rmtree(tmp_path / "demo", ignore_errors=True)


def _documents(path: Path) -> list[dict]:
    import orjson

    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _completed_polls(daemon: Daemon) -> int:
    """Polling cycles finished, read from the daemon's metrics endpoint."""
    import urllib.request

    started = [e for e in daemon.log_events() if e.get("event") == "forwarder_started"]
    if not started:
        return 0
    try:
        with urllib.request.urlopen(started[0]["metrics"], timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("forwarder_source_poll_duration_seconds_count")
        )
    )
