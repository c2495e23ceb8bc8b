"""The simulated Calendar audit log as a compact index sorted by activity key.

``activities.list`` is a keyset range: ``startTime <= id.time < endTime``, newest first,
going on below the key a page token carries. The log keeps, per generated activity, only
its key (``id.time`` in microseconds, ``uniqueQualifier``), when it becomes visible and
which seeded activity it is: 32 bytes in flat arrays sorted by key, so a page starts where
a bisection says and walks its own records and no others. Bodies are built from the seed
when a page is served and never stored (a million activities held as dicts would take
gigabytes). Activities are generated as the clock (or a query) reaches them.

Activities whose reporting lag has not passed yet are listed, by position, in a sorted
list that shrinks as the clock moves, so a page skips them without looking at the visible
ones. Activities a test injects are few and kept whole in a list of their own, merged in.

Work per page: O(log n) to find where it starts, then the page's records, plus the
not-yet-visible activities it steps over (as many as the lag model holds back in that
stretch of time, however long the queried window is). :class:`ListingStats` counts it.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from forwarder.simulators.timeline import Arrivals

Key = tuple[int, int]
"""``(id.time in microseconds, uniqueQualifier)``: the API's order, read backwards."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One activity as a listing sees it."""

    time_us: int
    """``id.time`` in microseconds (always a whole millisecond)."""
    unique_qualifier: int
    visible_at: float
    index: int
    """The seeded activity's number, or -1 for an injected one."""
    activity: dict[str, Any] | None = None
    """An injected activity's body (generated ones are built from the seed when served)."""

    @property
    def key(self) -> Key:
        return (self.time_us, self.unique_qualifier)


@dataclass
class ListingStats:
    """What serving ``activities.list`` cost, in records (not time)."""

    pages: int = 0
    items_served: int = 0
    records_touched: int = 0
    """Records looked at by listings: served, stepped over (not yet visible), or read
    once past a page's end to know whether another page follows."""
    bodies_built: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "items_served": self.items_served,
            "records_touched": self.records_touched,
            "bodies_built": self.bodies_built,
        }


_Row = tuple[int, int, float, int]
"""``(time_us, uniqueQualifier, visible_at, number)`` while generating."""
# Activities generated at a time (bounded memory when hours of history are generated).
GENERATE_CHUNK = 16_384

Identity = Callable[[int], tuple[int, float]]
"""Seeded activity number -> (its ``uniqueQualifier``, its reporting lag in seconds)."""


@dataclass
class ActivityLog:
    """Generated and injected activities, listed by key range (see the module docstring)."""

    arrivals: Arrivals
    identity: Identity
    stats: ListingStats = field(default_factory=ListingStats)
    _times: array[int] = field(default_factory=lambda: array("q"), init=False, repr=False)
    _qualifiers: array[int] = field(default_factory=lambda: array("q"), init=False, repr=False)
    _visible_at: array[float] = field(default_factory=lambda: array("d"), init=False, repr=False)
    _indexes: array[int] = field(default_factory=lambda: array("q"), init=False, repr=False)
    _generated: int = field(default=0, init=False, repr=False)
    _hidden: list[int] = field(default_factory=list, init=False, repr=False)
    """Positions (ascending) of the activities not visible at ``_revealed_to``."""
    _reveal: list[tuple[float, int]] = field(default_factory=list, init=False, repr=False)
    """Heap of ``(visible_at, position)`` of the hidden ones: who shows up next."""
    _revealed_to: float = field(default=float("-inf"), init=False, repr=False)
    _injected_keys: list[Key] = field(default_factory=list, init=False, repr=False)
    _injected: list[LogRecord] = field(default_factory=list, init=False, repr=False)

    def __len__(self) -> int:
        return len(self._times) + len(self._injected)

    # -- keeping up with the clock -----------------------------------------------------

    def sync(self, now: float, until_us: int) -> None:
        """Reveal what is visible at ``now``, then generate every activity up to
        ``until_us`` (which may lie past ``now``: those are generated hidden)."""
        self._reveal_until(now)
        self._generate_until(until_us)

    def _reveal_until(self, now: float) -> None:
        if now < self._revealed_to:
            # The clock went back (tests set it): hide again what is not visible yet.
            visible_at = self._visible_at
            self._hidden = [p for p in range(len(visible_at)) if visible_at[p] > now]
            self._reveal = [(visible_at[p], p) for p in self._hidden]
            heapq.heapify(self._reveal)
        else:
            hidden, reveal = self._hidden, self._reveal
            while reveal and reveal[0][0] <= now:
                _, position = heapq.heappop(reveal)
                del hidden[bisect_left(hidden, position)]
        self._revealed_to = now

    def _generate_until(self, until_us: int) -> None:
        # Up to the end of until_us's millisecond: activities sharing an id.time are then
        # all generated together, and sorted by uniqueQualifier among themselves.
        until_us = until_us // 1000 * 1000 + 999
        carried: list[_Row] = []
        # A chunk at a time: hours of history at once would leave hundreds of megabytes
        # of freed tuples the allocator keeps.
        while arrivals := self.arrivals.take_until(until_us, GENERATE_CHUNK):
            rows = carried
            for number, arrival in enumerate(arrivals, self._generated):
                qualifier, lag = self.identity(number)
                time_us = arrival // 1000 * 1000
                rows.append((time_us, qualifier, time_us / 1e6 + lag, number))
            self._generated += len(arrivals)
            rows.sort()
            # The chunk may have cut the last millisecond in two: keep it for the next.
            last = rows[-1][0]
            split = len(rows)
            while split > 0 and rows[split - 1][0] == last:
                split -= 1
            carried = rows[split:]
            self._append(rows[:split])
        self._append(carried)

    def _append(self, rows: list[_Row]) -> None:
        revealed_to = self._revealed_to
        for time_us, qualifier, visible_at, number in rows:
            position = len(self._times)
            self._times.append(time_us)
            self._qualifiers.append(qualifier)
            self._visible_at.append(visible_at)
            self._indexes.append(number)
            if visible_at > revealed_to:
                # Positions only grow: the list stays sorted.
                self._hidden.append(position)
                heapq.heappush(self._reveal, (visible_at, position))

    def add(self, record: LogRecord) -> None:
        """Add an injected activity (visible or not, whatever its time)."""
        index = bisect_right(self._injected_keys, record.key)
        self._injected_keys.insert(index, record.key)
        self._injected.insert(index, record)

    # -- listing ----------------------------------------------------------------------

    def newest_first(
        self, start_us: int | None, end_us: int, below: Key | None, now: float
    ) -> Iterator[LogRecord]:
        """Activities visible at ``now`` with ``start_us <= time < end_us`` and a key
        below ``below``, newest first (call :meth:`sync` first)."""
        generated = self._generated_newest_first(start_us, end_us, below)
        injected = self._injected_newest_first(start_us, end_us, below, now)
        if not self._injected:
            return generated
        return heapq.merge(generated, injected, key=_record_key, reverse=True)

    def oldest_first(self, end_us: int) -> Iterator[LogRecord]:
        """Every activity with ``time < end_us``, visible or not, oldest first."""
        stop = bisect_left(self._times, end_us)
        generated = (self._record(position) for position in range(stop))
        injected = (r for r in self._injected if r.time_us < end_us)
        return heapq.merge(generated, injected, key=_record_key)

    def _end_position(self, end_us: int, below: Key | None) -> int:
        """Positions before this one have ``time < end_us`` and a key below ``below``."""
        times = self._times
        end = bisect_left(times, end_us)
        if below is not None:
            below_time, below_qualifier = below
            low = bisect_left(times, below_time, 0, end)
            high = bisect_right(times, below_time, low, end)
            end = min(end, bisect_left(self._qualifiers, below_qualifier, low, high))
        return end

    def _generated_newest_first(
        self, start_us: int | None, end_us: int, below: Key | None
    ) -> Iterator[LogRecord]:
        stats = self.stats
        low = 0 if start_us is None else bisect_left(self._times, start_us)
        position = self._end_position(end_us, below) - 1
        hidden = self._hidden
        # The hidden position nearest below (or at) the walk's position.
        next_hidden = bisect_right(hidden, position) - 1
        while position >= low:
            if next_hidden >= 0 and hidden[next_hidden] >= low:
                if hidden[next_hidden] == position:
                    stats.records_touched += 1
                    position -= 1
                    next_hidden -= 1
                    continue
                run_low = hidden[next_hidden] + 1
            else:
                run_low = low
            # Every position from here down to run_low is visible.
            while position >= run_low:
                stats.records_touched += 1
                yield self._record(position)
                position -= 1

    def _injected_newest_first(
        self, start_us: int | None, end_us: int, below: Key | None, now: float
    ) -> Iterator[LogRecord]:
        keys = self._injected_keys
        stop = bisect_left(keys, (end_us, -(2**63)))
        if below is not None:
            stop = min(stop, bisect_left(keys, below))
        for index in range(stop - 1, -1, -1):
            record = self._injected[index]
            if start_us is not None and record.time_us < start_us:
                return
            self.stats.records_touched += 1
            if record.visible_at <= now:
                yield record

    def _record(self, position: int) -> LogRecord:
        return LogRecord(
            self._times[position],
            self._qualifiers[position],
            self._visible_at[position],
            self._indexes[position],
        )


def _record_key(record: LogRecord) -> Key:
    return (record.time_us, record.unique_qualifier)
