"""A queue bounded by the number of events it holds, not the number of batches."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class EventBoundedQueue(Generic[Item]):
    """FIFO of batches whose total size (in events) stays within ``capacity``.

    ``put`` waits while the queue is full, which is how a slow sink pushes back on the
    pollers. A batch larger than the capacity is still admitted when the queue is empty,
    so an oversized page cannot deadlock the pipeline. Capacity is returned by
    :meth:`release` once the consumer is done with an item, so in-flight items count too.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: deque[tuple[Item, int]] = deque()
        self._changed = asyncio.Condition()

    async def put(self, item: Item, size: int) -> None:
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.size == 0 or self.size + size <= self.capacity
            )
            self._items.append((item, size))
            self.size += size
            self._changed.notify_all()

    async def get(self) -> tuple[Item, int]:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            return self._items.popleft()

    async def get_within(self, seconds: float) -> tuple[Item, int] | None:
        """Like :meth:`get`, but ``None`` when nothing arrives within ``seconds``."""
        async with self._changed:
            try:
                # Only the wait is timed: an item is taken, or not, while holding the lock.
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._items)), seconds)
            except TimeoutError:
                return None
            return self._items.popleft()

    async def release(self, size: int) -> None:
        async with self._changed:
            self.size -= size
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._items)
