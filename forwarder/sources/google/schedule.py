"""Where the Google source has read, and which older slices it must read again.

Google reports Calendar activities late (tens of minutes, up to a couple of hours), so an
activity dated ``t`` may first be listed at ``t + lag``. The source reads the *head*
(``[head, now - end_margin)``) on every poll, and re-reads each older slice of the log a
few times, at the growing ages of the **re-scan schedule** (default 2 min, 10 min,
40 min, 3 h; the last one is ``settle_window``): for each step ``s`` it keeps
``until[s]``, such that every activity dated before it has been listed at least ``s``
seconds after its date. A re-scan of step ``s`` reads ``[until[s], now - s)`` and moves
``until[s]`` to its end. An activity reported ``lag`` seconds late is therefore caught by
the first step ``s >= lag`` (any lag up to ``settle_window``), and every activity is read
at most ``1 + len(schedule)`` times, whatever ``settle_window / poll_interval`` is.

Any completed read ``[start, end)`` whose first request went out at ``scanned_at`` lists
everything of ``[start, min(end, scanned_at - s))`` at an age of at least ``s``, so it
moves ``until[s]`` there when ``until[s]`` is not before ``start`` (no gap). A catch-up
(the head hours behind) therefore needs no re-scan of what it reads at an age beyond a
step. When the head reads such a stretch while ``until[s]`` is still behind its start,
the stretch is remembered (``ahead[s]``): the re-scan then reads only the gap up to it,
and jumps past it.

``final_before`` (the least ``until``, the last step's) is where everything before is
final: the committed cursor of the metrics, and the time before which a delivered key
can be forgotten (no later read starts before it).

Boundaries are whole milliseconds (the API's resolution, and the precision of the
``startTime``/``endTime`` sent), always rounded down: a boundary a little early only
reads a record again (skipped as known), never skips one.

The state is immutable: each batch carries the state it leads to, which the source
takes only once the batch is handed on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from forwarder.timeutil import format_rfc3339

# Windows shorter than this are not worth a request at the head (the next poll reads
# a longer one); a re-scan slice waits until it is at least this wide too.
MIN_WINDOW_SECONDS = 1.0
# A step's re-scan slice waits until it is this fraction of the step wide: a late activity
# is caught at most step/20 later than the step says (6 s at 2 min, 9 min at 3 h), and
# a long step costs a request per ~step/20 instead of one per poll.
SLICE_FRACTION = 1 / 20


def floor_ms(when: float) -> float:
    """``when`` rounded down to a whole millisecond."""
    return math.floor(when * 1000) / 1000


def step_label(step: float) -> str:
    """A step as the metric label and cursor key: its seconds (``"600"``, ``"0.5"``)."""
    return str(int(step)) if float(step).is_integer() else repr(float(step))


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch ``[start, end)`` of event time."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """The head and, per step of the schedule, how far re-reads at that age have come."""

    steps: tuple[float, ...]
    head: float
    """The end of the last head window read completely: everything before was read once."""
    until: tuple[float, ...]
    """Per step: everything before it was listed at least that step after its date."""
    ahead: tuple[Span | None, ...]
    """Per step: a stretch after ``until`` the head already read at that age, if any."""

    @classmethod
    def starting_at(cls, steps: tuple[float, ...], when: float) -> ScheduleState:
        """A first start: nothing read before ``when``, and nothing to re-read there."""
        when = floor_ms(when)
        return cls(steps, when, (when,) * len(steps), (None,) * len(steps))

    @property
    def final_before(self) -> float:
        """Everything dated before this is final (read at ``settle_window`` or later)."""
        return min(self.until, default=self.head)

    def after_read(
        self, start: float, end: float, scanned_at: float, *, head_read: bool
    ) -> ScheduleState:
        """The state once the read of ``[start, end)`` that started at ``scanned_at`` (the
        API's clock) is complete; ``head_read``: it was the head's next window."""
        head = max(self.head, end) if head_read else self.head
        until = list(self.until)
        ahead = list(self.ahead)
        for index, step in enumerate(self.steps):
            covered = min(end, floor_ms(scanned_at - step))
            reached, stretch = until[index], ahead[index]
            if covered > start:
                if reached >= start:
                    reached = max(reached, covered)
                elif head_read:
                    if stretch is None:
                        stretch = Span(start, covered)
                    elif stretch.start <= start <= stretch.end:
                        stretch = Span(stretch.start, max(stretch.end, covered))
                    # A second, separate stretch is not remembered: its re-scan reads it.
            if stretch is not None and reached >= stretch.start:
                reached, stretch = max(reached, stretch.end), None
            until[index] = min(reached, head)
            ahead[index] = stretch
        return replace(self, head=head, until=tuple(until), ahead=tuple(ahead))

    def rescan_window(
        self, index: int, api_now: float, max_window: float
    ) -> tuple[float, float] | None:
        """The next slice step ``index`` should re-read now, ``None`` if none is due."""
        step = self.steps[index]
        start = self.until[index]
        due = min(floor_ms(api_now - step), self.head)
        stretch = self.ahead[index]
        if stretch is not None and stretch.start <= due:
            # Only the gap before what the head already read at this age: whatever its width.
            end = min(stretch.start, start + max_window)
            return (start, end) if end > start else None
        if due - start < max(MIN_WINDOW_SECONDS, step * SLICE_FRACTION):
            return None
        return (start, min(due, floor_ms(start + max_window)))

    def cursor(self) -> dict[str, Any]:
        """The committed cursor: small, whatever the volume (a few numbers per step)."""
        final_before = self.final_before
        cursor: dict[str, Any] = {
            "head": self.head,
            "head_time": format_rfc3339(self.head),
            "final_before": final_before,
            "final_before_time": format_rfc3339(final_before),
            "rescanned": {
                step_label(step): until for step, until in zip(self.steps, self.until, strict=True)
            },
        }
        ahead = {
            step_label(step): [stretch.start, stretch.end]
            for step, stretch in zip(self.steps, self.ahead, strict=True)
            if stretch is not None
        }
        if ahead:
            cursor["ahead"] = ahead
        return cursor

    @classmethod
    def from_cursor(
        cls, steps: tuple[float, ...], cursor: Mapping[str, Any], *, legacy_margin: float
    ) -> ScheduleState:
        """The state a committed cursor stands for, in this schedule (raises ValueError,
        TypeError, KeyError or AttributeError on a cursor of another shape).

        The schedule may have changed since the cursor was written: a step takes the
        furthest position of the stored steps at least as long as itself (listed at that
        age is listed at its own); a step longer than every stored one starts at the
        least stored position (a longer settle window applies from then on: what was
        final before stays final, its keys are gone).

        A cursor of the versions before re-scan schedules (``watermark``,
        ``final_before``) re-scanned ``[final_before, watermark)`` whole in its last
        window, whose first request went out after ``watermark`` (the window ended
        ``end_margin`` before the API's now at the start of that poll). So everything
        before ``watermark - s`` was listed at an age of at least ``s``; the API's
        clock offset may have moved since, by at most ``legacy_margin``
        (``max_clock_offset``), which is taken off too. Nothing before ``final_before``
        is re-read (its ids expired), and the old ids de-duplicate what is.
        """
        if "head" not in cursor:
            watermark = floor_ms(_finite(cursor["watermark"]))
            final_before = min(floor_ms(_finite(cursor["final_before"])), watermark)
            until = tuple(
                min(watermark, max(final_before, floor_ms(watermark - step - legacy_margin)))
                for step in steps
            )
            return cls(steps, watermark, until, (None,) * len(steps))
        head = floor_ms(_finite(cursor["head"]))
        stored = {float(label): _finite(value) for label, value in cursor["rescanned"].items()}
        stored_ahead = {
            float(label): Span(_finite(span[0]), _finite(span[1]))
            for label, span in (cursor.get("ahead") or {}).items()
        }
        until_list: list[float] = []
        ahead_list: list[Span | None] = []
        for step in steps:
            longer = [value for stored_step, value in stored.items() if stored_step >= step]
            reached = max(longer) if longer else min(stored.values(), default=head)
            reached = min(floor_ms(reached), head)
            stretch = stored_ahead.get(step)
            if stretch is not None and not (reached < stretch.start < stretch.end <= head):
                stretch = None
            until_list.append(reached)
            ahead_list.append(stretch)
        return cls(steps, head, tuple(until_list), tuple(ahead_list))


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite time")
    return number
