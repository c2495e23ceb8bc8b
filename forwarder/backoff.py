"""Exponential backoff with full jitter, shared by the sources and the sink workers."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """Delay before attempt ``n`` is uniform in [0, min(maximum, initial * 2**n)]
    (full jitter spreads retries of many clients), but never below a server's
    ``Retry-After`` / rate-limit reset."""

    initial: float = 1.0
    maximum: float = 30.0
    attempt: int = 0
    rng: random.Random | None = None

    def next_delay(self, at_least: float | None = None) -> float:
        ceiling = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        delay = (self.rng or random).uniform(0, ceiling)
        if at_least is not None:
            delay = max(delay, at_least)
        return delay

    def reset(self) -> None:
        self.attempt = 0
