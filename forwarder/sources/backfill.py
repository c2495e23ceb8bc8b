"""Reading a log's time windows concurrently while handing their pages on in order.

A source far behind (first start with a long ``initial_lookback``, or after downtime)
splits the range it must read into time windows. :class:`OrderedWindowFetcher` reads up
to ``concurrency`` windows at once, each page after page as the API paginates it, and
yields the pages strictly in window order, and within a window in the order the API
returned them: exactly the sequence a sequential reader would produce. The source turns
each page into a batch *as it is yielded*, so its cursor (and the checkpoint in every
batch) only ever covers the windows before the current one plus the pages of the current
one: completed, contiguous progress. Windows fetched ahead live only in this object's
buffers, never in a checkpoint.

Memory is bounded: at most ``concurrency`` windows are in flight (the one being handed on
and the next ones), and a window's worker takes one of its ``buffer_pages`` slots
*before* it sends a request, giving it back only when the consumer takes the page. So at
most ``concurrency * buffer_pages`` pages are held (fetched or being fetched, not yet
yielded) at any moment, and when the consumer stops pulling (the pipeline's backpressure
between two batches) the workers stop sending requests once their slots are full.

An error in a window (after the source's own request retries) is raised to the consumer
when it reaches that window, after every page before the error has been yielded: the
source's position is then the one after the last page it handed on, as the Source
protocol requires. Closing the iterator (``aclose``, or leaving an ``aclosing`` block)
cancels every worker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

Window = TypeVar("Window")
Page = TypeVar("Page")


@dataclass(slots=True)
class BackfillStats:
    """Counters a source keeps across polls (tests and benchmarks read them)."""

    windows_started: int = 0
    windows_in_flight: int = 0
    """Windows being read or holding pages not yet yielded, now."""
    pages_fetched: int = 0
    buffered_pages: int = 0
    """Pages fetched or being fetched and not yet yielded, now."""
    peak_buffered_pages: int = 0
    """The most ``buffered_pages`` ever reached: never above the fetcher's ``max_buffered``."""
    peak_windows_in_flight: int = 0
    replanned: int = 0
    """Times the source dropped its prefetched windows because their planned start no
    longer matched its position (it then reads on sequentially)."""


class _WindowRead(Generic[Window, Page]):
    """One window being read: its pages not yet taken, and how its worker ended."""

    __slots__ = ("changed", "error", "finished", "pages", "slots", "task", "window")

    def __init__(self, window: Window, buffer_pages: int) -> None:
        self.window = window
        self.pages: deque[Page] = deque()
        self.slots = asyncio.Semaphore(buffer_pages)
        self.changed = asyncio.Event()
        self.finished = False
        self.error: Exception | None = None
        self.task: asyncio.Task[None] | None = None


class OrderedWindowFetcher(Generic[Window, Page]):
    """Reads ``windows`` concurrently with ``fetch`` and yields ``(window, page)`` in order.

    ``fetch(window)`` is an async iterator over the window's pages (it sends the requests,
    with whatever retries the source applies); every window must yield at least one page
    (an empty page for an empty window) so the consumer sees each window start and end.
    """

    def __init__(
        self,
        windows: Iterable[Window],
        fetch: Callable[[Window], AsyncIterator[Page]],
        *,
        concurrency: int,
        buffer_pages: int,
        stats: BackfillStats | None = None,
        name: str = "backfill",
    ) -> None:
        if concurrency < 1 or buffer_pages < 1:
            raise ValueError("concurrency and buffer_pages must be at least 1")
        self._windows: Iterator[Window] = iter(windows)
        self._fetch = fetch
        self._concurrency = concurrency
        self._buffer_pages = buffer_pages
        self.stats = stats or BackfillStats()
        self._name = name
        self._reads: deque[_WindowRead[Window, Page]] = deque()

    @property
    def max_buffered(self) -> int:
        """The bound on pages held at once."""
        return self._concurrency * self._buffer_pages

    async def pages(self) -> AsyncIterator[tuple[Window, Page]]:
        """Every page of every window, in window order; use under ``aclosing``."""
        try:
            self._start_windows()
            while self._reads:
                head = self._reads[0]
                while True:
                    if head.pages:
                        page = head.pages.popleft()
                        head.slots.release()
                        self.stats.buffered_pages -= 1
                        yield head.window, page
                    elif head.error is not None:
                        raise head.error
                    elif head.finished:
                        break
                    else:
                        head.changed.clear()
                        await head.changed.wait()
                self._reads.popleft()
                self.stats.windows_in_flight -= 1
                self._start_windows()
        finally:
            await self._cancel()

    def _start_windows(self) -> None:
        while len(self._reads) < self._concurrency:
            window = next(self._windows, _END)
            if window is _END:
                return
            read: _WindowRead[Window, Page] = _WindowRead(window, self._buffer_pages)  # type: ignore[arg-type]
            read.task = asyncio.create_task(
                self._read(read), name=f"{self._name}:window{self.stats.windows_started}"
            )
            self._reads.append(read)
            self.stats.windows_started += 1
            self.stats.windows_in_flight += 1
            self.stats.peak_windows_in_flight = max(
                self.stats.peak_windows_in_flight, len(self._reads)
            )

    async def _read(self, read: _WindowRead[Window, Page]) -> None:
        pages = self._fetch(read.window)
        try:
            while True:
                # Reserve the buffer slot first: a full buffer means no further request.
                await read.slots.acquire()
                self._hold_page()
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    read.slots.release()
                    self.stats.buffered_pages -= 1
                    return
                except BaseException:
                    read.slots.release()
                    self.stats.buffered_pages -= 1
                    raise
                self.stats.pages_fetched += 1
                read.pages.append(page)
                read.changed.set()
        except Exception as error:  # handed to the consumer, in window order
            read.error = error
        finally:
            read.finished = True
            read.changed.set()
            aclose = getattr(pages, "aclose", None)
            if aclose is not None:
                await aclose()

    def _hold_page(self) -> None:
        self.stats.buffered_pages += 1
        self.stats.peak_buffered_pages = max(
            self.stats.peak_buffered_pages, self.stats.buffered_pages
        )

    async def _cancel(self) -> None:
        reads, self._reads = list(self._reads), deque()
        tasks = [read.task for read in reads if read.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Pages fetched but never handed on are dropped with the windows.
        self.stats.buffered_pages -= sum(len(read.pages) for read in reads)
        self.stats.windows_in_flight -= len(reads)


_END = object()
