"""A checkpoint written by the release before the SQLite store (one JSON file per source,
the whole state) is imported on the first start, and the source goes on from it: every
event that release had not delivered is delivered once, nothing it delivered comes
again (the simulators are the ground truth). What the files hold: ``legacy_state``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from legacy_state import google_ids, legacy_calendly, legacy_google
from runner_harness import SourcePipeline
from source_harness import HOUR, T0, calendly_truth, google_truth

from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.schema.ids import calendly_event_key
from forwarder.timeutil import parse_rfc3339

SETTLE = 3 * HOUR
END_MARGIN = 5.0


def _write_legacy(tmp_path: Path, source_id: str, state: dict[str, Any]) -> Path:
    """Written where and as the release before wrote it (``SourcePipeline`` keeps its
    state in ``tmp_path / "state"``)."""
    FileCheckpointStore(tmp_path / "state").commit_sync(source_id, state)
    return tmp_path / "state" / "checkpoints" / f"{source_id}.json"


async def test_calendly_resumes_from_a_checkpoint_of_the_release_before(
    calendly, clock, metrics, tmp_path
) -> None:
    """Cut inside a run of entries sharing one timestamp, with a malformed entry the
    release before had dead-lettered just before the cut: the entries after the cut
    (those at the cut's timestamp too) are delivered once, the dead letter not again."""
    simulator, make_source = await calendly(
        {"start": T0 - 3 * HOUR, "end": T0 - 60, "tie_fraction": 0.5}, page_size=20
    )
    entries = simulator.truth()
    cut = next(
        index
        for index in range(len(entries) // 2, len(entries) - 1)
        if entries[index - 1]["occurred_at"] == entries[index]["occurred_at"]
    )
    broken = simulator.add_entry(
        parse_rfc3339(entries[cut - 1]["occurred_at"]) - 1, drop_fields=("namespace",)
    )
    entries = simulator.truth()
    cut += 1  # the malformed entry sorts before the cut
    delivered_before = entries[:cut]
    assert broken in delivered_before
    legacy = _write_legacy(tmp_path, "cal", legacy_calendly(delivered_before))
    before = Counter(
        calendly_event_key(entry["uri"]) for entry in delivered_before if "namespace" in entry
    )

    source = make_source()
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        source.restore(await pipeline.store.load("cal"))
        assert not legacy.exists() and legacy.with_name("cal.json.migrated").exists()
        assert await pipeline.poll()
        after = pipeline.delivered
        assert pipeline.dead_letters() == [], "dead-lettered a second time"
    assert before + after == calendly_truth(simulator), "an event lost or delivered twice"
    assert not before & after
    assert sum(after.values()) > 100
    # The next start reads the database: nothing is delivered again.
    restarted = make_source()
    async with SourcePipeline(restarted, tmp_path, metrics, clock) as again:
        restarted.restore(await again.store.load("cal"))
        assert await again.poll()
        assert sum(again.delivered.values()) == 0


async def test_google_resumes_from_a_checkpoint_of_the_release_before(
    google, clock, metrics, tmp_path
) -> None:
    """The release before last polled at T0; 10 % of the activities are reported 90 min
    late, so some in its settle window were not visible yet. From its checkpoint, through
    restarts, over more than a settle window: every event is delivered exactly once
    across both releases, late ones included, and none it had delivered comes again."""
    simulator, make_source = await google(
        {"start": T0 - 6 * HOUR, "end": None, "late_fraction": 0.1, "late_lag": 5400, "seed": 3},
        page_size=50,
        # Generous: this test is about the state, not the request budget.
        max_requests_per_minute=2400,
    )
    state, before = legacy_google(simulator.truth(T0), T0)
    pending_late = [
        record
        for record in simulator.truth(T0 - END_MARGIN)
        if record["visible_at_unix"] > T0
        and parse_rfc3339(record["activity"]["id"]["time"]) >= T0 - SETTLE
    ]
    assert pending_late, "no late activity was pending when the release before stopped"
    assert len(state["seen"]) > 500
    legacy = _write_legacy(tmp_path, "gcal", state)

    after: Counter[str] = Counter()
    restarts = 0
    clock.advance(60)
    deadline = T0 + SETTLE + 1200
    while clock.now() < deadline:
        source = make_source()
        async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
            source.restore(await pipeline.store.load("gcal"))
            assert not legacy.exists()
            for _ in range(12):
                assert await pipeline.poll(), pipeline.runner.last_error
                clock.advance(300)
                if clock.now() >= deadline:
                    break
            after += pipeline.delivered
        restarts += 1
    assert restarts >= 3
    last_poll = clock.now() - 300

    assert not before & after, "an event the release before delivered came again"
    delivered = before + after
    assert max(delivered.values()) == 1, "an event delivered twice"
    assert set(delivered) <= set(google_truth(simulator, last_poll))
    # Everything old enough that any lag (90 min at most) has passed the last step.
    due = google_truth(simulator, last_poll - SETTLE - 600)
    assert due - delivered == Counter(), "events lost"
    late_ids = {key for record in pending_late for key in google_ids(record["activity"])}
    assert late_ids <= set(after), "a late event pending at the migration was lost"
