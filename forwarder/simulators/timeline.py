"""Seeded arrival times: the skeleton of every simulated dataset.

A dataset is defined by a seed, a start time, an average rate and an optional end. The
gaps between entries are exponential (a Poisson process) drawn from a generator seeded
only by those settings, so entry ``i`` always lands at the same instant: a restarted
simulator serves the same data, and a test can predict it. Times are integer
microseconds so that RFC 3339 round trips are exact (floats would drift by one
microsecond now and then and break boundary tests).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

MICROS = 1_000_000


def to_micros(timestamp: float) -> int:
    """Unix seconds -> integer microseconds (rounded, so parsed RFC 3339 values are exact)."""
    return round(timestamp * MICROS)


@dataclass
class Arrivals:
    """The arrival times of a dataset, generated one after the other and not kept.

    :class:`Timeline` keeps them in a list; a log that stores its entries its own way
    (the Google simulator's compact index) takes them from here, so both see the very
    same times for the same settings.

    ``tie_fraction`` of the gaps are zero so several entries share one timestamp now and
    then: the consumers' boundary de-duplication needs that to be exercised.
    """

    seed: str
    start_us: int
    rate_per_minute: float
    end_us: int | None = None
    tie_fraction: float = 0.05
    _rng: random.Random = field(init=False, repr=False)
    _next_us: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:timeline")
        if self.rate_per_minute > 0:
            self._next_us = self.start_us + self._gap(allow_tie=False)

    def _gap(self, *, allow_tie: bool = True) -> int:
        if allow_tie and self._rng.random() < self.tie_fraction:
            return 0
        # Zero gaps must not raise the average rate: stretch the others to compensate.
        mean_us = 60.0 * MICROS / self.rate_per_minute / (1.0 - self.tie_fraction)
        return max(1, int(self._rng.expovariate(1.0 / mean_us)))

    def take_until(self, until_us: int, most: int | None = None) -> list[int]:
        """The arrivals not taken yet, up to ``until_us`` (and the end), in order; at
        most ``most`` of them (the rest come with the next call)."""
        limit = until_us if self.end_us is None else min(until_us, self.end_us)
        times: list[int] = []
        while self._next_us is not None and self._next_us <= limit:
            if most is not None and len(times) >= most:
                break
            times.append(self._next_us)
            self._next_us += self._gap()
        return times


@dataclass
class Timeline:
    """Lazily generated, append-only arrival times in microseconds (see :class:`Arrivals`)."""

    seed: str
    start_us: int
    rate_per_minute: float
    end_us: int | None = None
    tie_fraction: float = 0.05
    _times: list[int] = field(default_factory=list, init=False, repr=False)
    _arrivals: Arrivals = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._arrivals = Arrivals(
            self.seed, self.start_us, self.rate_per_minute, self.end_us, self.tie_fraction
        )

    def extend_to(self, until_us: int) -> int:
        """Generate every arrival up to ``until_us`` (and the end); return how many exist."""
        self._times += self._arrivals.take_until(until_us)
        return len(self._times)

    def count_until(self, until_us: int) -> int:
        """How many arrivals happen at or before ``until_us`` (generating them if needed)."""
        self.extend_to(until_us)
        return bisect_right(self._times, until_us)

    def time_of(self, index: int) -> int:
        """Arrival time of entry ``index`` (already generated)."""
        return self._times[index]

    @property
    def generated(self) -> int:
        """How many arrivals have been generated so far."""
        return len(self._times)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_micros(timestamp_us: int, digits: int = 6) -> str:
    """RFC 3339 UTC with ``digits`` (3 or 6) fraction digits, computed without floats."""
    moment = _EPOCH + timedelta(microseconds=timestamp_us)
    fraction = f"{moment.microsecond:06d}"[:digits]
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"
