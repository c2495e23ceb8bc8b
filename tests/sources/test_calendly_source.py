"""The Calendly source against the Calendly simulator."""

from __future__ import annotations

from collections import Counter

import pytest
from source_harness import HOUR, T0, calendly_truth_ids, drain, event_ids
from state_harness import committed

from forwarder.schema.ids import calendly_event_key
from forwarder.sources.base import CredentialsError, MalformedResponseError


async def test_reads_every_entry_once_oldest_first(calendly, clock) -> None:
    simulator, make_source = await calendly({"tie_fraction": 0.3}, page_size=7)
    source = make_source()
    source.restore(None)
    batches = await drain(source)
    truth = calendly_truth_ids(simulator)
    assert len(truth) > 400
    assert event_ids(batches) == truth
    times = [event.timestamp for batch in batches for event in batch.events]
    assert times == sorted(times)
    assert len(batches) == -(-len(truth) // 7)
    last = simulator.truth()[-1]["occurred_at"]
    assert batches[-1].checkpoint.cursor == {"cursor": last}
    # Each batch commits the keys it delivered, never the whole `seen` map.
    for batch in batches:
        assert set(batch.checkpoint.seen_added) <= {event.id for event in batch.events}


async def test_restart_from_any_checkpoint_loses_and_repeats_nothing(calendly, clock) -> None:
    simulator, make_source = await calendly({"tie_fraction": 0.5}, page_size=9)
    first = make_source()
    first.restore(None)
    batches = await drain(first)
    truth = calendly_truth_ids(simulator)
    for cut in (1, 5, len(batches) // 2, len(batches) - 2):
        delivered = event_ids(batches[:cut])
        restarted = make_source()
        restarted.restore(committed(batches[:cut]))
        rest = event_ids(await drain(restarted))
        assert delivered + rest == truth, f"restart after batch {cut}"


async def test_a_batch_changes_the_source_only_once_it_is_handed_on(calendly, clock) -> None:
    """The source rule: building a batch changes nothing; asking for the next batch is
    what applies it. A consumer that stops (a dead-letter write failed, shutdown) closes
    the poll, and the next poll returns the same batch again."""
    simulator, make_source = await calendly(page_size=20)
    source = make_source()
    source.restore(None)
    before = source.checkpoint()
    poll = source.poll()
    first = await anext(poll)
    assert first.events and first.checkpoint.seen_added
    assert source.checkpoint() == before, "changed before the batch was handed on"
    await poll.aclose()
    assert source.checkpoint() == before, "the batch left behind changed the source"
    again = await drain(source)
    assert event_ids(again[:1]) == event_ids([first])
    assert event_ids(again) == calendly_truth_ids(simulator)
    assert source.checkpoint() == committed(again)


async def test_entries_at_the_cursor_timestamp_are_not_lost(calendly, clock) -> None:
    simulator, make_source = await calendly({"end": T0 - HOUR}, page_size=50)
    source = make_source()
    source.restore(None)
    first = event_ids(await drain(source))
    # Two more entries share the exact timestamp of the last delivered one, plus a later one.
    last_time = simulator.truth()[-1]["occurred_at"]
    from forwarder.timeutil import parse_rfc3339

    boundary = parse_rfc3339(last_time)
    added = [
        simulator.add_entry(boundary),
        simulator.add_entry(boundary),
        simulator.add_entry(boundary + 1),
    ]
    second = event_ids(await drain(source))
    assert second == [
        calendly_event_key(entry["uri"])
        for entry in sorted(added, key=lambda e: (e["occurred_at"], e["uri"]))
    ]
    assert not set(first) & set(second)


async def test_new_entries_on_a_live_log_arrive_in_later_polls(calendly, clock) -> None:
    simulator, make_source = await calendly({"end": None})
    source = make_source()
    source.restore(None)
    seen = event_ids(await drain(source))
    for _ in range(6):
        clock.advance(600)
        seen += event_ids(await drain(source))
    counts = Counter(seen)
    assert max(counts.values()) == 1
    assert seen == calendly_truth_ids(simulator)


async def test_rate_limit_waits_for_the_reset_and_loses_nothing(calendly, clock, metrics) -> None:
    simulator, make_source = await calendly({"rate_limit_per_minute": 10}, page_size=10)
    source = make_source()
    source.restore(None)
    started = clock.now()
    ids = event_ids(await drain(source))
    assert ids == calendly_truth_ids(simulator)
    # ~60 pages at 10 requests per minute: the source had to wait out several windows.
    assert clock.now() - started >= 4 * 60
    assert (
        metrics.registry.get_sample_value(
            "forwarder_source_rate_limit_remaining", {"source": "cal"}
        )
        is not None
    )


@pytest.mark.parametrize(
    "fault", ["truncated_json", "missing_field", "wrong_type", "http_500", "http_429", "reset"]
)
async def test_transient_page_faults_are_retried(calendly, clock, metrics, fault) -> None:
    simulator, make_source = await calendly(page_size=25)
    source = make_source()
    source.restore(None)
    simulator.faults.push(fault, count=2)
    ids = event_ids(await drain(source))
    assert ids == calendly_truth_ids(simulator)
    errors = sum(
        sample.value
        for metric in metrics.registry.collect()
        if metric.name == "forwarder_source_errors"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    assert not simulator.faults.pending, "every injected fault was served"
    # aiohttp itself retries a request once when a pooled connection was reset.
    assert errors == 2 or (fault == "reset" and errors >= 1)


@pytest.mark.parametrize("fault", ["truncated_json", "missing_field", "wrong_type"])
async def test_persistent_malformed_page_fails_the_poll_without_moving_the_cursor(
    calendly, clock, fault
) -> None:
    simulator, make_source = await calendly(page_size=25, max_attempts=3)
    source = make_source()
    source.restore(None)
    batches = []
    poll = source.poll()
    batches.append(await anext(poll))
    simulator.faults.push(fault, count=3)
    with pytest.raises(MalformedResponseError):
        await anext(poll)
    # Asking for the next batch applied the first one's change, and nothing else.
    assert source.checkpoint() == committed(batches), "the cursor moved past unread data"
    # Next cycle resumes from the cursor and nothing is lost or repeated.
    ids = event_ids(batches) + event_ids(await drain(source))
    assert ids == calendly_truth_ids(simulator)


async def test_bad_record_is_dead_lettered_and_the_rest_flows(calendly, clock) -> None:
    simulator, make_source = await calendly(page_size=20)
    source = make_source()
    source.restore(None)
    simulator.faults.push("bad_record")
    batches = await drain(source)
    dead = [letter for batch in batches for letter in batch.dead_letters]
    assert len(dead) == 1
    assert dead[0].stage == "source" and dead[0].reason in {
        "missing_field",
        "invalid_type",
        "invalid_timestamp",
    }
    truth = calendly_truth_ids(simulator)
    assert len(event_ids(batches)) == len(truth) - 1
    assert set(event_ids(batches)) < set(truth)


async def test_wrong_token_is_a_credentials_error(calendly, clock, tmp_path) -> None:
    bad = tmp_path / "bad-token"
    bad.write_text("nope")
    _, make_source = await calendly(token_file=bad)
    source = make_source()
    source.restore(None)
    with pytest.raises(CredentialsError) as caught:
        await drain(source)
    assert "401" in str(caught.value)
    assert "nope" not in str(caught.value)
