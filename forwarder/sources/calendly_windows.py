"""The time windows a Calendly backfill reads, sized as it goes.

``min_occurred_at`` and ``max_occurred_at`` are both inclusive and ``occurred_at`` has
microseconds, so windows ``[start, start + width - 1 µs]`` laid end to end neither overlap
nor leave a gap, whatever their widths. Bounds are integer microseconds, formatted
without floats, so they are exact.

Widths adapt to the log's density: a window's pages are read one after the other (each
needs the previous page's token), so a window holding more pages than its read-ahead
buffer serialises the backfill, and a window holding a few entries wastes a request (and
requests are what Calendly's rate limit counts). The first windows have the configured
width; each window's first page then tells how dense the log is there, and the windows
planned after it aim at a little less than ``pages_per_window`` full pages (the buffer
size, so a whole window can be read ahead). The estimate is smoothed (a log-scale moving
average) so one unusually busy or quiet window does not swing the next ones, and moves
by at most a factor of four per observation, between ``MIN_WIDTH`` and ``MAX_WIDTH``.
Correctness never depends on the widths, only the number of requests does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from forwarder.timeutil import parse_rfc3339

MICROS = 1_000_000
MIN_WIDTH = 60 * MICROS
MAX_WIDTH = 30 * 86400 * MICROS
# Aim a little below whole pages, so that an ordinary wobble of the rate does not spill a
# window into one more, nearly empty page.
TARGET_FILL = 0.9
MAX_STEP = 4.0
# Weight of a new observation in the (log-scale) moving average of the width.
SMOOTHING = 0.3


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """``min_occurred_at`` .. ``max_occurred_at`` in integer microseconds, both inclusive
    (``end_us`` ``None``: open-ended, up to the newest entry)."""

    start_us: int
    end_us: int | None


class WindowPlan:
    """Consecutive windows from ``start_us`` up to ``tail_us``, then one open-ended window.

    Iterated lazily (the fetcher asks for the next window when a slot frees up), so
    :meth:`observe` calls made meanwhile size the windows still to come.
    """

    def __init__(
        self,
        start_us: int,
        tail_us: int,
        width_us: int,
        page_size: int,
        pages_per_window: int = 1,
    ) -> None:
        self.start_us = start_us
        self.tail_us = tail_us
        self.width_us = max(MIN_WIDTH, width_us)
        self.target_entries = TARGET_FILL * page_size * max(1, pages_per_window)
        self._observed = False
        self.widths: list[int] = []
        """Widths of the closed windows planned so far (for tests and benchmarks)."""

    @property
    def single(self) -> bool:
        """Nothing to split: one open-ended window covers the whole range."""
        return self.start_us + self.width_us > self.tail_us

    def __iter__(self) -> Iterator[TimeWindow]:
        if self.single:
            yield TimeWindow(self.start_us, None)
            return
        while self.start_us < self.tail_us:
            # The last closed window is cut at the tail: the open one starts there.
            width = min(self.width_us, self.tail_us - self.start_us)
            window = TimeWindow(self.start_us, self.start_us + width - 1)
            self.widths.append(width)
            self.start_us += width
            yield window
        yield TimeWindow(self.start_us, None)

    def observe(self, window: TimeWindow, collection: Sequence[Any], more: bool) -> None:
        """Learn the density from the first page of ``window`` (``more``: it has a next
        page) and size the windows still to plan to ``target_entries`` each."""
        if window.end_us is None:
            return
        if more:
            # A full page: its entries span from the window's start to the last one.
            last = _occurred_us(collection[-1]) if collection else None
            if last is None or last <= window.start_us:
                return
            per_entry = (last - window.start_us) / len(collection)
        else:
            # The whole window in one page: its density is entries per width.
            per_entry = (window.end_us - window.start_us + 1) / max(1, len(collection))
        target = per_entry * self.target_entries
        if self._observed:
            target = math.exp(
                (1 - SMOOTHING) * math.log(self.width_us) + SMOOTHING * math.log(target)
            )
        self._observed = True
        target = min(max(target, self.width_us / MAX_STEP), self.width_us * MAX_STEP)
        self.width_us = int(min(max(target, MIN_WIDTH), MAX_WIDTH))


def to_micros(timestamp: float) -> int:
    return round(timestamp * MICROS)


def format_micros(timestamp_us: int) -> str:
    """RFC 3339 with microseconds, computed in integers (window bounds must be exact)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=timestamp_us)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def _occurred_us(entry: Any) -> int | None:
    try:
        return to_micros(parse_rfc3339(entry["occurred_at"]))
    except (KeyError, TypeError, ValueError):
        return None  # a malformed record (dead-lettered later) teaches nothing
