"""Adaptive concurrency: how many requests a sink keeps in flight.

Additive increase, multiplicative decrease, as in TCP congestion control: the limit grows
by one when it was reached and latency stayed near its moving average, and shrinks by 10 %
on a 429/503 or a latency spike. A fixed limit is the same object with ``adaptive`` off.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

# A request slower than this multiple of the average latency is a spike.
SPIKE_FACTOR = 2.0
# Latency within this multiple of the average counts as steady.
STEADY_FACTOR = 1.25
EWMA_WEIGHT = 0.2
DECREASE_FACTOR = 0.9


class AdaptiveConcurrency:
    """A semaphore whose size moves with the receiver's behaviour."""

    def __init__(
        self, maximum: int, adaptive: bool, on_change: Callable[[int, int], None] | None = None
    ) -> None:
        self.maximum = maximum
        self.adaptive = adaptive
        self.limit = 1 if adaptive else maximum
        self.in_flight = 0
        self.average_latency: float | None = None
        self._saturated = False
        self._changed = asyncio.Condition()
        self._on_change = on_change or (lambda limit, in_flight: None)
        self._on_change(self.limit, self.in_flight)

    async def acquire(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            if self.in_flight >= self.limit:
                self._saturated = True
            self._on_change(self.limit, self.in_flight)

    async def release(self, latency: float, overloaded: bool) -> None:
        async with self._changed:
            self.in_flight -= 1
            if self.adaptive:
                self._adapt(latency, overloaded)
            self._changed.notify_all()
            self._on_change(self.limit, self.in_flight)

    def _adapt(self, latency: float, overloaded: bool) -> None:
        average = self.average_latency
        spike = average is not None and latency > SPIKE_FACTOR * average
        if overloaded or spike:
            self.limit = max(1, math.floor(self.limit * DECREASE_FACTOR))
            self._saturated = False
        elif self._saturated and (average is None or latency <= STEADY_FACTOR * average):
            self.limit = min(self.maximum, self.limit + 1)
            self._saturated = False
        if not overloaded:
            self.average_latency = (
                latency if average is None else average + EWMA_WEIGHT * (latency - average)
            )
