"""Fixed-window request limits driven by the injected clock."""

from __future__ import annotations

import math
from dataclasses import dataclass

from forwarder.clock import Clock


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The state of one key's window after a request."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Whole seconds until the window resets (at least 1 while it is open)."""


@dataclass(slots=True)
class _Window:
    started: float
    count: int


class FixedWindowLimiter:
    """``limit`` requests per ``window`` seconds per key; the window opens on first use."""

    def __init__(self, limit: int, clock: Clock, window: float = 60.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def hit(self, key: str) -> RateDecision:
        """Count one request for ``key`` and say whether it is within the limit."""
        now = self._clock.now()
        state = self._windows.get(key)
        if state is None or now >= state.started + self.window:
            state = self._windows[key] = _Window(now, 0)
        state.count += 1
        reset = max(1, math.ceil(state.started + self.window - now))
        return RateDecision(
            allowed=state.count <= self.limit,
            limit=self.limit,
            remaining=max(0, self.limit - state.count),
            reset_seconds=reset,
        )
