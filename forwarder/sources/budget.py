"""A source's API request budget: at most ``per_minute`` requests in any minute.

Google's Reports API allows 250 *filtered* ``activities.list`` queries a minute per
Cloud project, shared with every other tool of that project, so a source must not spend
them as fast as it can even when it has a lot to read (a catch-up and every re-scan
due at once). :class:`RequestBudget` is a sliding minute on the source's clock: a request
goes out only while fewer than ``per_minute`` went out in the 60 seconds before it, else
it waits until the oldest of them is a minute old. Every request of the source takes
from it, each attempt of a retry too; the caller decides what "request" means (the
Google source counts its API list requests, not the token endpoint's, which has a quota
of its own).

Priorities are the caller's: :meth:`has_room` lets a request that can wait for the next
poll (a re-scan) step aside while the budget is tight, leaving room for the ones that
cannot (the head). The wait itself happens inside the request gate's slot, right before
the request is sent, so the time recorded is the time the request went out.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

from forwarder.clock import Clock

WINDOW_SECONDS = 60.0


class RequestBudget:
    """At most ``per_minute`` requests in any 60 seconds of ``clock``, counted by purpose."""

    def __init__(
        self, clock: Clock, per_minute: int, on_request: Callable[[str], None] | None = None
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._clock = clock
        self.per_minute = per_minute
        self._sent: deque[float] = deque()
        self._on_request = on_request
        self.requests: Counter[str] = Counter()
        """Requests sent, by purpose (for tests and benchmarks; the metric is exported by
        ``on_request``)."""
        self.waits = 0
        """Times a request had to wait for the budget."""

    def used(self) -> int:
        """Requests sent in the last minute."""
        self._forget(self._clock.now())
        return len(self._sent)

    def used_ratio(self) -> float:
        """Requests sent in the last minute over the budget (read at each scrape)."""
        return self.used() / self.per_minute

    def has_room(self, requests: int = 1) -> bool:
        """Whether ``requests`` more could go out now without waiting."""
        return self.used() + requests <= self.per_minute

    async def acquire(self, purpose: str) -> None:
        """Wait until a request may go out, and count it as sent now."""
        while True:
            now = self._clock.now()
            self._forget(now)
            if len(self._sent) < self.per_minute:
                self.record(purpose)
                return
            self.waits += 1
            await self._clock.sleep(max(0.001, self._sent[0] + WINDOW_SECONDS - now))

    def seconds_until_room(self) -> float:
        """0 when a request may go out now, else how long until the oldest one in the
        window is a minute old (a shared budget waits on both, see
        :mod:`forwarder.sources.google.project_budget`)."""
        now = self._clock.now()
        self._forget(now)
        if len(self._sent) < self.per_minute:
            return 0.0
        return max(0.001, self._sent[0] + WINDOW_SECONDS - now)

    def record(self, purpose: str) -> None:
        """Count a request as sent now, without waiting (the caller checked the room)."""
        self._sent.append(self._clock.now())
        self.requests[purpose] += 1
        if self._on_request is not None:
            self._on_request(purpose)

    def _forget(self, now: float) -> None:
        sent = self._sent
        horizon = now - WINDOW_SECONDS
        while sent and sent[0] <= horizon:
            sent.popleft()
