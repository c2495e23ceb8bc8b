from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.clock import ManualClock
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue


@pytest.fixture
def committer(tmp_path: Path) -> OrderedCommitter:
    return OrderedCommitter("src", FileCheckpointStore(tmp_path), Metrics(), ManualClock(0))


async def test_commits_only_in_source_order(committer: OrderedCommitter) -> None:
    first = committer.issue({"n": 1}, 2)
    second = committer.issue({"n": 2}, 2)
    # Both sinks finish the second batch before the first: nothing may be committed.
    await committer.acknowledge(second)
    await committer.acknowledge(second)
    assert committer.committed is None
    await committer.acknowledge(first)
    assert committer.committed is None, "one sink still owes the first batch"
    await committer.acknowledge(first)
    assert committer.committed == {"n": 2}
    assert committer.pending == 0


async def test_commit_is_durable_when_acknowledge_returns(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    committer = OrderedCommitter("src", store, Metrics(), ManualClock(0))
    ticket = committer.issue({"cursor": "c1"}, 1)
    await committer.acknowledge(ticket)
    assert await FileCheckpointStore(tmp_path).load("src") == {"cursor": "c1"}


async def test_batches_without_checkpoint_keep_the_last_one(committer: OrderedCommitter) -> None:
    a = committer.issue({"n": 1}, 1)
    b = committer.issue(None, 1)
    await committer.acknowledge(a)
    await committer.acknowledge(b)
    assert committer.committed == {"n": 1}


async def test_abandoned_tickets_never_commit(committer: OrderedCommitter) -> None:
    a = committer.issue({"n": 1}, 1)
    b = committer.issue({"n": 2}, 2)
    committer.abandon_from(b)
    await committer.acknowledge(b)
    await committer.acknowledge(b)
    await committer.acknowledge(a)
    assert committer.committed == {"n": 1}
    await asyncio.wait_for(committer.wait_idle(), 1)


async def test_wait_idle_until_all_acknowledged(committer: OrderedCommitter) -> None:
    ticket = committer.issue({"n": 1}, 1)
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
