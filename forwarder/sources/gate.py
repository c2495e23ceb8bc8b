"""One source's requests in flight, and what a rate limit does to all of them.

A source reading several windows at once sends several requests at once. When the API
says "slow down" (Calendly's 429 or ``X-RateLimit-Remaining`` running out, Google's quota
403), every one of those requests must wait, not only the one that was refused: otherwise
the others keep hammering the API and burn their retry budget on more refusals. The gate:

- holds every new request until the time the API named (``throttle``);
- drops the number of requests allowed in flight to one when throttled, so a single
  request probes whether the limit has reset, and grows it back by one per success up to
  ``max_concurrency`` (additive increase, multiplicative decrease).

With ``max_concurrency`` 1 (sequential reading) the gate only ever holds the next request
until the reset, exactly what the sources did before they read windows concurrently.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from forwarder.clock import Clock


class RequestGate:
    """Admits a source's API requests: at most ``limit`` at once, none while throttled."""

    def __init__(self, clock: Clock, max_concurrency: int = 1) -> None:
        self._clock = clock
        self.max_concurrency = max(1, max_concurrency)
        self.limit = self.max_concurrency
        """Requests allowed in flight now (1 after a rate limit, growing back on success)."""
        self.active = 0
        self.peak_active = 0
        self.throttled = 0
        """How many times a rate-limit signal held the requests (for tests and benchmarks)."""
        self._resume_at = 0.0
        self._waiters: list[asyncio.Future[None]] = []

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot for the ``async with`` body (one HTTP request)."""
        await self._acquire()
        try:
            # Checked after taking the slot: a throttle that arrived while this request
            # waited for a slot applies to it too.
            while (delay := self._resume_at - self._clock.now()) > 0:
                await self._clock.sleep(delay)
            yield
        finally:
            self.active -= 1
            self._wake()

    def throttle(self, seconds: float) -> None:
        """The API refused a request for its rate: hold every request ``seconds``, then
        let one probe at a time through. The caller caps ``seconds`` (``max_retry_after``,
        see :mod:`forwarder.sources.untrusted`); a value that is not a finite number
        holds nothing rather than forever."""
        self.throttled += 1
        if not math.isfinite(seconds):
            seconds = 0.0
        self._resume_at = max(self._resume_at, self._clock.now() + max(0.0, seconds))
        self.limit = 1

    def hold_remaining(self) -> float:
        """Seconds every request is still held by the last throttle."""
        return max(0.0, self._resume_at - self._clock.now())

    def succeeded(self) -> None:
        """A request went through: allow one more in flight (up to the maximum)."""
        if self.limit < self.max_concurrency:
            self.limit += 1
            self._wake()

    async def _acquire(self) -> None:
        while self.active >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)

    def _wake(self) -> None:
        # Everyone re-checks the limit; the few that fit go, the rest wait again.
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
