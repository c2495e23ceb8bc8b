from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.clock import ManualClock
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue


class RecordingStore:
    """Keeps every commit; fails while ``full`` (a full disk)."""

    def __init__(self) -> None:
        self.commits: list[Checkpoint] = []
        self.full = False

    async def commit(self, source_id: str, checkpoint: Checkpoint) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        self.commits.append(checkpoint)


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def committer(store: RecordingStore) -> OrderedCommitter:
    return OrderedCommitter("src", store, Metrics(), ManualClock(0))  # type: ignore[arg-type]


def _cursor(committer: OrderedCommitter) -> Any:
    return None if committer.committed is None else committer.committed.cursor


async def test_commits_only_in_source_order(committer: OrderedCommitter) -> None:
    first = committer.issue(Checkpoint({"n": 1}), 2)
    second = committer.issue(Checkpoint({"n": 2}), 2)
    # Both sinks finish the second batch before the first: nothing may be committed.
    await committer.acknowledge(second)
    await committer.acknowledge(second)
    assert committer.committed is None
    await committer.acknowledge(first)
    assert committer.committed is None, "one sink still owes the first batch"
    await committer.acknowledge(first)
    assert _cursor(committer) == {"n": 2}
    assert committer.pending == 0


async def test_commit_is_durable_when_acknowledge_returns(tmp_path: Path) -> None:
    store = SqliteCheckpointStore(tmp_path)
    committer = OrderedCommitter("src", store, Metrics(), ManualClock(0))
    ticket = committer.issue(Checkpoint({"cursor": "c1"}, {"k": 5.0}), 1)
    await committer.acknowledge(ticket)
    other = SqliteCheckpointStore(tmp_path)  # another connection: what is on disk
    assert await other.load("src") == {"cursor": "c1", "seen": {"k": 5.0}}
    other.close()
    store.close()


async def test_batches_without_checkpoint_keep_the_last_one(committer: OrderedCommitter) -> None:
    a = committer.issue(Checkpoint({"n": 1}), 1)
    b = committer.issue(None, 1)
    await committer.acknowledge(a)
    await committer.acknowledge(b)
    assert _cursor(committer) == {"n": 1}


async def test_abandoned_tickets_never_commit(committer: OrderedCommitter) -> None:
    a = committer.issue(Checkpoint({"n": 1}), 1)
    b = committer.issue(Checkpoint({"n": 2}), 2)
    committer.abandon_from(b)
    await committer.acknowledge(b)
    await committer.acknowledge(b)
    await committer.acknowledge(a)
    assert _cursor(committer) == {"n": 1}
    await asyncio.wait_for(committer.wait_idle(), 1)


async def test_consecutive_completed_tickets_are_merged_into_one_commit(
    committer: OrderedCommitter, store: RecordingStore
) -> None:
    """Three batches acknowledged out of order: the last acknowledgement completes all
    three, which are committed as one checkpoint with every key and the latest expiry."""
    first = committer.issue(Checkpoint({"n": 1}, {"a": 10.0}, 5.0), 1)
    second = committer.issue(Checkpoint({"n": 2}, {"b": 11.0}, None), 1)
    third = committer.issue(Checkpoint({"n": 3}, {"c": 12.0, "a": 13.0}, 7.0), 1)
    await committer.acknowledge(third)
    await committer.acknowledge(second)
    assert store.commits == []
    await committer.acknowledge(first)
    assert store.commits == [Checkpoint({"n": 3}, {"a": 13.0, "b": 11.0, "c": 12.0}, 7.0)]
    assert committer.committed == store.commits[0]


async def test_a_failed_write_keeps_the_merged_checkpoint_and_merges_later_ones(
    committer: OrderedCommitter, store: RecordingStore
) -> None:
    """While the disk is full every batch's keys accumulate in the pending checkpoint;
    the first write that succeeds carries them all (none is dropped), and later commits
    carry only their own."""
    store.full = True
    for n in range(1, 4):
        ticket = committer.issue(Checkpoint({"n": n}, {f"k{n}": float(n)}, float(n - 1)), 1)
        await committer.acknowledge(ticket)
    assert store.commits == [] and committer.commit_error is not None
    assert committer.committed is None
    store.full = False
    ticket = committer.issue(Checkpoint({"n": 4}, {"k4": 4.0}, None), 1)
    await committer.acknowledge(ticket)
    assert store.commits == [Checkpoint({"n": 4}, {f"k{n}": float(n) for n in range(1, 5)}, 2.0)]
    assert committer.commit_error is None
    ticket = committer.issue(Checkpoint({"n": 5}, {"k5": 5.0}, 3.0), 1)
    await committer.acknowledge(ticket)
    assert store.commits[-1] == Checkpoint({"n": 5}, {"k5": 5.0}, 3.0)


async def test_flush_writes_the_merged_checkpoint_left_by_failed_writes(
    committer: OrderedCommitter, store: RecordingStore
) -> None:
    store.full = True
    for n in (1, 2):
        ticket = committer.issue(Checkpoint({"n": n}, {f"k{n}": float(n)}), 1)
        await committer.acknowledge(ticket)
    assert await committer.flush() is False
    store.full = False
    assert await committer.flush() is True
    assert store.commits == [Checkpoint({"n": 2}, {"k1": 1.0, "k2": 2.0})]
    assert await committer.flush() is True and len(store.commits) == 1


async def test_merged_checkpoints_commit_what_one_by_one_commits_would(tmp_path: Path) -> None:
    """The store ends in the same state whether a run of checkpoints is committed one by
    one or merged: a key added then expired by a later batch is gone either way, a key
    added again keeps its latest time."""
    run = [
        Checkpoint({"n": 1}, {"a": 1.0, "b": 2.0}, None),
        Checkpoint({"n": 2}, {"c": 3.0, "a": 4.0}, 1.5),
        Checkpoint({"n": 3}, {"d": 0.5, "e": 5.0}, 2.5),
    ]
    one_by_one, merged = (
        SqliteCheckpointStore(tmp_path / "a"),
        SqliteCheckpointStore(tmp_path / "b"),
    )
    for checkpoint in run:
        await one_by_one.commit("s", checkpoint)
    combined = run[0].followed_by(run[1]).followed_by(run[2])
    await merged.commit("s", combined)
    assert (
        await merged.load("s")
        == await one_by_one.load("s")
        == {
            "n": 3,
            "seen": {"a": 4.0, "c": 3.0, "e": 5.0},
        }
    )
    one_by_one.close()
    merged.close()


async def test_wait_idle_until_all_acknowledged(committer: OrderedCommitter) -> None:
    ticket = committer.issue(Checkpoint({"n": 1}), 1)
    waiter = asyncio.create_task(committer.wait_idle())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await committer.acknowledge(ticket)
    await asyncio.wait_for(waiter, 1)


async def test_queue_blocks_producer_when_full() -> None:
    queue: EventBoundedQueue[str] = EventBoundedQueue(capacity=10)
    await queue.put("a", 6)
    blocked = asyncio.create_task(queue.put("b", 6))
    await asyncio.sleep(0.01)
    assert not blocked.done(), "a put beyond capacity must wait"
    item, size = await queue.get()
    assert (item, size) == ("a", 6)
    await asyncio.sleep(0.01)
    assert not blocked.done(), "capacity is returned only on release (in-flight counts)"
    await queue.release(size)
    await asyncio.wait_for(blocked, 1)
    assert queue.size == 6


async def test_queue_admits_an_oversized_batch_when_empty() -> None:
    queue: EventBoundedQueue[str] = EventBoundedQueue(capacity=10)
    await asyncio.wait_for(queue.put("huge", 50), 1)
    assert await queue.get() == ("huge", 50)
