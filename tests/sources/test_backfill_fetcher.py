"""The ordered concurrent window fetcher and the request gate, without HTTP."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from forwarder.clock import ManualClock
from forwarder.sources.backfill import OrderedWindowFetcher
from forwarder.sources.gate import RequestGate


class FakeLog:
    """Windows of ``pages[i]`` pages; each page takes a random few milliseconds."""

    def __init__(self, pages: list[int], seed: int = 1, fail_at: tuple[int, int] | None = None):
        self.pages = pages
        self.rng = random.Random(seed)
        self.fail_at = fail_at
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.closed: list[int] = []

    async def fetch(self, window: int) -> AsyncIterator[tuple[int, int]]:
        try:
            for page in range(self.pages[window]):
                self.requests += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    await asyncio.sleep(self.rng.uniform(0.0, 0.004))
                finally:
                    self.in_flight -= 1
                if (window, page) == self.fail_at:
                    raise RuntimeError(f"window {window} page {page} failed")
                yield window, page
        finally:
            self.closed.append(window)

    def expected(self) -> list[tuple[int, int]]:
        return [(w, p) for w, count in enumerate(self.pages) for p in range(count)]


async def _collect(fetcher: OrderedWindowFetcher[int, tuple[int, int]]) -> list[tuple[int, int]]:
    async with aclosing(fetcher.pages()) as pages:
        return [page async for _, page in pages]


@pytest.mark.parametrize("concurrency", [1, 3, 8])
async def test_pages_come_out_in_window_order(concurrency: int) -> None:
    log = FakeLog([3, 1, 5, 1, 1, 4, 2, 1, 1, 3, 6, 1])
    fetcher = OrderedWindowFetcher(
        range(len(log.pages)), log.fetch, concurrency=concurrency, buffer_pages=2
    )
    assert await _collect(fetcher) == log.expected()
    stats = fetcher.stats
    assert stats.windows_started == len(log.pages)
    assert stats.peak_windows_in_flight == concurrency
    assert stats.peak_buffered_pages <= fetcher.max_buffered == 2 * concurrency
    assert stats.buffered_pages == 0
    if concurrency > 1:
        assert log.peak_in_flight > 1, "windows were really read at the same time"


async def test_buffer_bound_stops_requests_when_the_consumer_stops() -> None:
    log = FakeLog([10] * 20)
    fetcher = OrderedWindowFetcher(range(20), log.fetch, concurrency=3, buffer_pages=2)
    async with aclosing(fetcher.pages()) as pages:
        first = await anext(pages)
        await asyncio.sleep(0.1)  # the consumer stalls: workers fill their buffers, then stop
        stalled_at = log.requests
        await asyncio.sleep(0.1)
        assert log.requests == stalled_at, "requests went on while nobody consumed"
        assert stalled_at <= 1 + fetcher.max_buffered
        assert fetcher.stats.buffered_pages <= fetcher.max_buffered
        rest = [page async for _, page in pages]
    assert [first[1], *rest] == log.expected()
    assert fetcher.stats.peak_buffered_pages <= fetcher.max_buffered == 6


async def test_an_error_surfaces_in_window_order_after_the_pages_before_it() -> None:
    log = FakeLog([2, 2, 3, 2, 2], fail_at=(2, 1))
    fetcher = OrderedWindowFetcher(range(5), log.fetch, concurrency=4, buffer_pages=3)
    delivered: list[tuple[int, int]] = []
    with pytest.raises(RuntimeError, match="window 2 page 1"):
        async with aclosing(fetcher.pages()) as pages:
            async for _, page in pages:
                delivered.append(page)
    assert delivered == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    # Every worker ended and closed its window's iterator.
    assert sorted(set(log.closed)) == sorted(set(range(fetcher.stats.windows_started)))


async def test_closing_early_cancels_every_worker() -> None:
    log = FakeLog([50] * 10)
    fetcher = OrderedWindowFetcher(
        range(10), log.fetch, concurrency=4, buffer_pages=2, name="closing-test"
    )
    pages = fetcher.pages()
    await anext(pages)
    await pages.aclose()
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("closing-test")]
    assert fetcher.stats.buffered_pages == 0
    requests = log.requests
    await asyncio.sleep(0.05)
    assert log.requests == requests


async def test_gate_holds_every_request_after_a_throttle_then_probes_one_at_a_time() -> None:
    clock = ManualClock(1000.0)
    gate = RequestGate(clock, max_concurrency=4)
    async with gate.slot():
        assert gate.active == 1
    gate.throttle(30.0)
    assert gate.limit == 1
    admitted: list[float] = []

    async def request() -> None:
        async with gate.slot():
            admitted.append(clock.now())
            await asyncio.sleep(0)
        gate.succeeded()

    await asyncio.gather(*(request() for _ in range(4)))
    # Nobody went before the hold ended; the first one through probed alone.
    assert min(admitted) >= 1030.0
    assert gate.peak_active <= 4
    assert gate.limit == 4, "each success let one more request in flight"
    assert gate.throttled == 1
