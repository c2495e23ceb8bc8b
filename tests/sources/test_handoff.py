"""Source state advances only once a batch is handed on (loss path 2), and a malformed
record is dead-lettered once however often the API returns it (loss path 8).

The real sources run behind the real SourceRunner, committer, dead-letter queue and a
recording sink; the simulators are the ground truth.
"""

from __future__ import annotations

from typing import Any

import pytest
from runner_harness import SourcePipeline
from source_harness import HOUR, T0, calendly_truth, google_truth

from forwarder.sources.untrusted import DEAD_LETTER_KEY_PREFIX

MODES = {
    # One open-ended read, page after page.
    "sequential": {"backfill_concurrency": 1},
    # Windows read four at a time (OrderedWindowFetcher), pages handed on in order.
    "backfill": {"backfill_concurrency": 4},
}


async def start_calendly(calendly: Any, mode: str) -> tuple[Any, Any]:
    simulator, make_source = await calendly(
        {"start": T0 - 3 * HOUR, "end": T0},
        page_size=20,
        initial_lookback=4 * HOUR,
        backfill_window=900,
        **MODES[mode],
    )
    return simulator, make_source


async def start_google(google: Any, mode: str) -> tuple[Any, Any]:
    simulator, make_source = await google(
        {"start": T0 - 7 * HOUR}, page_size=50, initial_lookback=8 * HOUR, **MODES[mode]
    )
    return simulator, make_source


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_failed_dead_letter_write_loses_nothing(
    calendly, google, clock, metrics, tmp_path, provider, mode
) -> None:
    """A malformed record the API keeps returning, on a page of good ones, while the
    dead-letter path is unwritable: the poll fails (error type dead_letter_write) and is
    retried from the last batch handed on; once the path is writable every good event is
    delivered exactly once and the malformed record dead-lettered exactly once."""
    if provider == "calendly":
        simulator, make_source = await start_calendly(calendly, mode)
        broken = simulator.add_entry(T0 - 2 * HOUR, drop_fields=("namespace",))
        source_id = "cal"
    else:
        simulator, make_source = await start_google(google, mode)
        # In a settled window: read by the parallel backfill in that mode.
        broken = simulator.add_activity(T0 - 6 * HOUR, drop_fields=("events",))
        source_id = "gcal"
    source = make_source()
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        pipeline.block_dead_letters()
        for attempt in (1, 2):
            assert not await pipeline.poll()
            assert pipeline.runner.last_error_type == "dead_letter_write"
            failed = pipeline.sample(
                "forwarder_source_failed_polls_total",
                source=source_id,
                error_type="dead_letter_write",
            )
            assert failed == attempt
        assert pipeline.runner.last_error.startswith("dead_letter_write: ")
        assert sum(pipeline.delivered.values()) > 0, "the pages before it were handed on"
        pipeline.unblock_dead_letters()
        assert await pipeline.poll()
        if provider == "calendly":
            truth = calendly_truth(simulator)
        else:
            truth = google_truth(simulator, T0 - 5)
        assert len(truth) > 500
        assert pipeline.delivered == truth
        letters = pipeline.dead_letters()
        assert [letter["payload"] for letter in letters] == [broken]
        assert letters[0]["reason"] == "missing_field"
        assert pipeline.runner.last_error is None


@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_failed_dead_letter_write_of_a_spoiled_page_loses_nothing(
    calendly, google, clock, metrics, tmp_path, provider
) -> None:
    """The simulator's one-shot ``bad_record`` fault: the page comes back intact on the
    retry, so its middle record is delivered too (never counted as already seen)."""
    if provider == "calendly":
        simulator, make_source = await start_calendly(calendly, "sequential")
    else:
        simulator, make_source = await start_google(google, "sequential")
    source = make_source()
    source.restore(None)
    simulator.faults.push("bad_record")
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        pipeline.block_dead_letters()
        assert not await pipeline.poll()
        assert not simulator.faults.pending
        pipeline.unblock_dead_letters()
        assert await pipeline.poll()
        truth = (
            calendly_truth(simulator) if provider == "calendly" else google_truth(simulator, T0 - 5)
        )
        assert pipeline.delivered == truth
        assert pipeline.dead_letters() == []


@pytest.mark.parametrize("undated", [False, True], ids=["dated", "undated"])
async def test_calendly_malformed_head_of_the_log_is_dead_lettered_once(
    calendly, clock, metrics, tmp_path, undated
) -> None:
    """The newest entry is malformed: every poll (cursor minus overlap) returns it again,
    and a restart from the checkpoint does too. One dead letter, and the memory of it goes
    once the cursor has moved past where any query could return it."""
    simulator, make_source = await calendly({"end": T0 - 60}, page_size=20)
    dropped = ("namespace", "occurred_at") if undated else ("namespace",)
    broken = simulator.add_entry(T0 - 30, drop_fields=dropped)
    source = make_source()
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        for _ in range(4):
            assert await pipeline.poll()
            clock.advance(2)
        assert [letter["payload"] for letter in pipeline.dead_letters()] == [broken]
        restarted = make_source()
        restarted.restore(await pipeline.store.load("cal"))
        assert any(key.startswith(DEAD_LETTER_KEY_PREFIX) for key in restarted.seen)
        async with SourcePipeline(restarted, tmp_path, metrics, clock) as again:
            assert await again.poll()
            assert len(again.dead_letters()) == 1
            assert sum(again.delivered.values()) == 0
            # Later entries move the cursor past the record: its key is pruned.
            for offset in (300, 400, 500):
                simulator.add_entry(T0 + offset)
            clock.advance(600)
            assert await again.poll()
            assert sum(again.delivered.values()) == 3
            assert not any(key.startswith(DEAD_LETTER_KEY_PREFIX) for key in restarted.seen)
            assert await again.poll()
            assert len(again.dead_letters()) == 1
        assert pipeline.delivered == calendly_truth(simulator) - again.delivered


async def test_google_malformed_activity_in_the_settle_window_is_dead_lettered_once(
    google, clock, metrics, tmp_path
) -> None:
    """The head and every re-scan step (up to 3 h) read a malformed activity again, and a
    restart reads it again: dead-lettered once; its memory goes when the settle window has
    passed it."""
    simulator, make_source = await google({"start": T0 - 2 * HOUR}, page_size=50)
    broken = simulator.add_activity(T0 - 600, drop_fields=("events",))
    source = make_source()
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        for _ in range(5):
            assert await pipeline.poll()
            clock.advance(60)
        assert [letter["payload"] for letter in pipeline.dead_letters()] == [broken]
        restarted = make_source()
        restarted.restore(await pipeline.store.load("gcal"))
        async with SourcePipeline(restarted, tmp_path, metrics, clock) as again:
            assert await again.poll()
            assert len(again.dead_letters()) == 1
            clock.advance(4 * HOUR)
            assert await again.poll()
            assert await again.poll()
            assert not any(_dead_letter_key(key) for key in restarted.seen)
            assert len(again.dead_letters()) == 1
            delivered = pipeline.delivered + again.delivered
        assert delivered == google_truth(simulator, clock.now() - 5)


def _dead_letter_key(key: str | bytes) -> bool:
    return isinstance(key, str) and key.startswith(DEAD_LETTER_KEY_PREFIX)
