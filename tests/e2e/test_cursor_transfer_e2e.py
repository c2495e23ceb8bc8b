"""Moving sources to another replica (resharding): a daemon on state A is stopped
(SIGTERM: drained), its cursors exported and imported into state B, and a daemon on B
(``require_state``: it refuses to start before the import) delivers the rest. Over both
runs every event of the simulators' ground truth is delivered exactly once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from e2e_harness import Daemon, Simulators, file_ids, wait_for, write_config

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", *args], capture_output=True, timeout=60
    )


def test_export_import_moves_every_source_with_nothing_lost_or_repeated(
    simulators: Simulators, tmp_path: Path
) -> None:
    truth = simulators.truth_ids()
    state_a, state_b = tmp_path / "a", tmp_path / "b"
    config_a = write_config(tmp_path / "a.yaml", simulators, state_a, page_size=10)
    # Small pages on A: it is stopped part way; large ones on B: the rest, quickly.
    config_b = write_config(tmp_path / "b.yaml", simulators, state_b, page_size=500)
    config_b.write_text(
        config_b.read_text().replace(
            "initial_lookback: 2d\n", "initial_lookback: 2d\n    require_state: true\n"
        )
    )

    # The new replica refuses to start sources whose state it does not hold yet.
    refused = _cli("run", "--config", str(config_b))
    assert refused.returncode == 3, refused.stderr
    assert b"forwarder cursors import" in refused.stderr
    assert file_ids(state_b / "events.ndjson") == []

    first = Daemon(config_a, tmp_path / "a.log")
    wait_for(lambda: len(file_ids(state_a / "events.ndjson")) >= 50, 60, "first deliveries")
    assert first.terminate() == 0, "the stop did not drain"
    delivered_a = file_ids(state_a / "events.ndjson")
    assert len(delivered_a) < len(truth), "run A delivered everything: nothing left to move"

    exported = tmp_path / "cursors.ndjson"
    export = _cli("cursors", "export", "--config", str(config_a), "--output", str(exported))
    assert export.returncode == 0, export.stderr
    assert len(exported.read_bytes().splitlines()) == 2
    imported = _cli("cursors", "import", "--config", str(config_b), "--input", str(exported))
    assert imported.returncode == 0, imported.stderr
    shown_a = _cli("cursors", "show", "--config", str(config_a)).stdout
    shown_b = _cli("cursors", "show", "--config", str(config_b)).stdout
    assert shown_a == shown_b and shown_a.count(b"\n") == 2

    second = Daemon(config_b, tmp_path / "b.log")
    remaining = truth - set(delivered_a)
    wait_for(
        lambda: set(file_ids(state_b / "events.ndjson")) >= remaining, 90, "the remaining events"
    )
    # A few more polls over the imported state: nothing of run A comes again.
    second.wait_started()
    assert second.terminate() == 0
    delivered_b = file_ids(state_b / "events.ndjson")

    both = Counter(delivered_a + delivered_b)
    assert set(both) == truth, "an event was lost"
    assert both.most_common(1)[0][1] == 1, "an event was delivered twice"
