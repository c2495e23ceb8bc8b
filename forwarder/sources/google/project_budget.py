"""One request budget per Google Cloud project, shared fairly by the sources using it.

Google's Reports API quota is per Cloud project (250 filtered ``activities.list`` queries
a minute), shared by every client of the project: an MSSP whose one service account many
customer domains delegate to has one budget for all of them. :class:`ProjectBudgets`
(one per daemon) holds a sliding one-minute budget per project id
(``google_quota.max_requests_per_minute``, or ``google_quota.projects[id]``); each
Google source joins the budget of its key's project and gets a :class:`ProjectShare`,
which it leaves when it is closed. Each source keeps its own
:class:`~forwarder.sources.budget.RequestBudget` (``max_requests_per_minute``) as a cap
within the project's: a request goes out once both have room, and is recorded in both at
that moment.

Fair share, so that a tenant catching up hours of backlog cannot starve the others:

* a source's *share* is the budget over the number of sources of the project that sent a
  request in the last minute or are waiting now (counted as at least 2 while the project
  has two sources or more: an idle one may ask any moment, and a lone busy source that
  counted alone would take the reserve below);
* a *reserve* of ``max(1, per_minute // 10)`` requests is kept for the sources below
  their share: a source at or above its share may take a request only while more than
  the reserve are free in the window; a source below its share may take any free one;
* when several wait, the next request goes to the one that used the fewest in the last
  minute (ties: the first to ask).

Waiters wait on an event (set whenever a grant, a departure or a join may change who is
next) and on the clock until the oldest request of the window is a minute old (when a
request frees), whichever comes first: no lost wake-ups, no polling. Everything runs on
the event loop's thread; the decision and the recording happen in one step, with no
``await`` in between.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from forwarder.clock import Clock
from forwarder.observability.logging import get_logger
from forwarder.sources.base import SourceError
from forwarder.sources.budget import WINDOW_SECONDS, RequestBudget

if TYPE_CHECKING:
    from forwarder.config.model import GoogleQuotaConfig
    from forwarder.observability.metrics import Metrics


class ShareClosedError(SourceError):
    """A request of a source that left its project's budget (it is being closed)."""


def reserve_of(per_minute: int) -> int:
    """Requests kept free for the sources below their share."""
    return max(1, per_minute // 10)


@dataclass(eq=False, slots=True)
class _Waiter:
    """One request waiting for the project's budget."""

    share: ProjectShare
    own: RequestBudget
    order: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class ProjectReading:
    """What the metrics read of one project at a scrape."""

    project: str
    per_minute: int
    used_ratio: float
    sources: int
    waits: dict[str, int]


class ProjectBudget:
    """The sliding one-minute budget of one Cloud project and the shares of its sources."""

    def __init__(self, project_id: str, per_minute: int, clock: Clock) -> None:
        self.project_id = project_id
        self._clock = clock
        self.per_minute = per_minute
        self.reserve = reserve_of(per_minute)
        self._sent: deque[tuple[float, ProjectShare]] = deque()
        self.members: dict[ProjectShare, None] = {}
        """Shares joined (by handle: during a reload two may carry one source id)."""
        self._waiters: list[_Waiter] = []
        self._order = itertools.count()
        self.waits: dict[str, int] = {}
        """Requests that waited for this project's budget, by source id (the metric)."""
        self.sent_total = 0
        """Requests granted since the budget was created (tests and benchmarks)."""

    def set_per_minute(self, per_minute: int) -> None:
        """A new budget (config reload); waiters look again at once."""
        self.per_minute = per_minute
        self.reserve = reserve_of(per_minute)
        self._wake_all()

    # -- reading --------------------------------------------------------------------------

    def used(self) -> int:
        """Requests sent in the last minute (by every source of the project)."""
        self._forget(self._clock.now())
        return len(self._sent)

    def used_ratio(self) -> float:
        return self.used() / self.per_minute

    def share_of_each(self) -> float:
        """The budget over the sources using it now (see the module)."""
        active = sum(1 for share in self.members if share.recent or share.waiting)
        if len(self.members) > 1:
            active = max(active, 2)
        return self.per_minute / max(1, active)

    def has_room(self, share: ProjectShare, requests: int) -> bool:
        """Whether ``requests`` more of ``share`` could go out now under the fair share."""
        free = self.per_minute - self.used()
        if free < requests:
            return False
        if share.recent + requests <= self.share_of_each():
            return True
        return free - requests >= self.reserve

    # -- joining and leaving --------------------------------------------------------------

    def join(self, share: ProjectShare) -> None:
        self.members[share] = None
        self.waits.setdefault(share.source_id, 0)
        self._wake_all()

    def leave(self, share: ProjectShare) -> None:
        self.members.pop(share, None)
        if not any(other.source_id == share.source_id for other in self.members):
            self.waits.pop(share.source_id, None)
        # Its waiters give up (their source is closing); the others look again: the one
        # that was next may have left, and the share of each grew.
        for waiter in self._waiters:
            if waiter.share is share:
                waiter.wake.set()
        self._wake_all()

    # -- granting -------------------------------------------------------------------------

    async def acquire(self, share: ProjectShare, own: RequestBudget, purpose: str) -> None:
        """Wait until both this budget and ``own`` have room for ``share``, and record the
        request in both now."""
        waiter = _Waiter(share, own, next(self._order))
        self._waiters.append(waiter)
        share.waiting += 1
        counted = False
        try:
            while True:
                if share.left:
                    raise ShareClosedError(
                        f"source {share.source_id} left the request budget of its project"
                    )
                waiter.wake.clear()
                delay = self._try_grant(waiter, purpose)
                if delay is None:
                    return
                if not counted and own.seconds_until_room() == 0.0:
                    # Held by the project, not by the source's own cap.
                    counted = True
                    self.waits[share.source_id] = self.waits.get(share.source_id, 0) + 1
                    share.waits += 1
                await _first_of(waiter.wake, self._clock, delay)
        finally:
            share.waiting -= 1
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                # Whoever was behind it may be next now.
                self._wake_all()

    def _try_grant(self, waiter: _Waiter, purpose: str) -> float | None:
        """Grant ``waiter`` now (``None``) or say how long until the window next changes
        by itself (a grant or a departure elsewhere wakes it sooner)."""
        now = self._clock.now()
        self._forget(now)
        own_wait = waiter.own.seconds_until_room()
        if own_wait > 0.0:
            # Its own cap is spent: it steps out of the line until then.
            return own_wait
        ready = [w for w in self._waiters if not w.share.left and w.own.seconds_until_room() == 0.0]
        first = min(ready, key=lambda w: (w.share.recent, w.order))
        expiry = self._until_expiry(now)
        if first is not waiter:
            return expiry
        free = self.per_minute - len(self._sent)
        share = waiter.share
        if free <= 0 or (share.recent >= self.share_of_each() and free <= self.reserve):
            return expiry
        self._sent.append((now, share))
        share.recent += 1
        share.sent += 1
        self.sent_total += 1
        waiter.own.record(purpose)
        self._waiters.remove(waiter)
        # The next in line changed, and so may the share of each.
        self._wake_all()
        return None

    def _until_expiry(self, now: float) -> float:
        if not self._sent:
            return WINDOW_SECONDS
        return max(0.001, self._sent[0][0] + WINDOW_SECONDS - now)

    def _wake_all(self) -> None:
        for waiter in self._waiters:
            waiter.wake.set()

    def _forget(self, now: float) -> None:
        sent = self._sent
        horizon = now - WINDOW_SECONDS
        freed = False
        while sent and sent[0][0] <= horizon:
            _, share = sent.popleft()
            share.recent -= 1
            freed = True
        if freed:
            # A freed request may serve a waiter other than the one whose timer fired.
            self._wake_all()

    @property
    def idle(self) -> bool:
        """No source and nothing in the window: the budget can be dropped."""
        return not self.members and not self.used() and not self._waiters


class ProjectShare:
    """One source's handle on its project's budget; :meth:`leave` when the source closes."""

    def __init__(self, project: ProjectBudget, source_id: str) -> None:
        self.project = project
        self.source_id = source_id
        self.recent = 0
        """This share's requests in the project's window (the last minute)."""
        self.waiting = 0
        """This share's requests waiting now."""
        self.sent = 0
        """Requests granted in all (tests and benchmarks)."""
        self.waits = 0
        """Requests that waited for the project's budget (tests and benchmarks)."""
        self.left = False

    @property
    def project_id(self) -> str:
        return self.project.project_id

    def has_room(self, requests: int = 1) -> bool:
        """Whether ``requests`` more could go out now without waiting for the project
        (a re-scan steps aside while this is false)."""
        return self.project.has_room(self, requests)

    async def acquire(self, own: RequestBudget, purpose: str) -> None:
        """Wait until the project's budget and ``own`` both have room; record in both."""
        await self.project.acquire(self, own, purpose)

    def leave(self) -> None:
        """Stop sharing the project's budget (idempotent; requests still waiting fail)."""
        if self.left:
            return
        self.left = True
        self.project.leave(self)

    def __repr__(self) -> str:
        return f"ProjectShare(project={self.project_id!r}, source={self.source_id!r})"


class ProjectBudgets:
    """The budgets of every Google Cloud project the daemon's sources use (one per
    daemon, kept across config reloads)."""

    def __init__(self, clock: Clock, metrics: Metrics | None, quota: GoogleQuotaConfig) -> None:
        self._clock = clock
        self._quota = quota
        self._projects: dict[str, ProjectBudget] = {}
        # Bound here, not at import: logging is configured after the modules are loaded.
        self._log = get_logger("forwarder.source.google_project_budget")
        if metrics is not None:
            metrics.watch_google_projects(self)

    def join(self, project_id: str, source_id: str) -> ProjectShare:
        """A share of ``project_id``'s budget for ``source_id`` (created on first use)."""
        self._drop_idle()
        project = self._projects.get(project_id)
        if project is None:
            project = self._projects[project_id] = ProjectBudget(
                project_id, self._quota.per_minute(project_id), self._clock
            )
        share = ProjectShare(project, source_id)
        project.join(share)
        self._log.debug(
            "project_budget_joined",
            project=project_id,
            source=source_id,
            sources=len(project.members),
            per_minute=project.per_minute,
        )
        return share

    def configure(self, quota: GoogleQuotaConfig) -> None:
        """New budgets (config reload): each project's changes at once; what went out in
        the last minute still counts."""
        self._quota = quota
        for project_id, project in self._projects.items():
            per_minute = quota.per_minute(project_id)
            if per_minute != project.per_minute:
                project.set_per_minute(per_minute)

    def project(self, project_id: str) -> ProjectBudget | None:
        return self._projects.get(project_id)

    def readings(self) -> Iterator[ProjectReading]:
        """Each project with sources now (a project whose last source left is not
        exported: a removed tenant leaves no frozen series)."""
        for project_id, project in sorted(self._projects.items()):
            if not project.members:
                continue
            yield ProjectReading(
                project_id,
                project.per_minute,
                project.used_ratio(),
                len(project.members),
                dict(project.waits),
            )

    def _drop_idle(self) -> None:
        # A project whose last source left keeps its window for a minute (a source that
        # joins again right away, as on a reload, must not find it empty).
        for project_id in [p for p, budget in self._projects.items() if budget.idle]:
            del self._projects[project_id]


async def _first_of(event: asyncio.Event, clock: Clock, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` of ``clock`` passed, whichever is first."""
    if event.is_set():
        return
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    setter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({sleeper, setter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        setter.cancel()
