"""What the Google source's re-scan schedule promises, computed from the simulator's
ground truth (a uniquely named module, importable from the test modules)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from legacy_state import google_ids as event_keys

from forwarder.sources.google.keys import activity_key
from forwarder.sources.google.schedule import SLICE_FRACTION
from forwarder.timeutil import parse_rfc3339

DEFAULT_STEPS = (120.0, 600.0, 2400.0, 10800.0)


def caught_by(
    simulator: Any,
    last_poll: float,
    steps: tuple[float, ...] = DEFAULT_STEPS,
    end_margin: float = 5.0,
) -> Counter[str]:
    """The events a source polling on ``steps`` must have delivered by a poll at
    ``last_poll``: an activity visible when it happened, once the head has passed it; one
    reported ``lag`` seconds late, once the first step ``s >= lag`` has re-read its
    slice (at most ``s / 20`` after the age ``s``, the slice's width). Reported later
    than the last step: never promised."""
    ids: Counter[str] = Counter()
    for record in simulator.truth(last_poll):
        activity = record["activity"]
        when = parse_rfc3339(activity["id"]["time"])
        lag = record["visible_at_unix"] - when
        if lag <= 0:
            due = when + end_margin
        else:
            step = next((step for step in steps if step >= lag), None)
            if step is None:
                continue
            due = when + step * (1 + SLICE_FRACTION) + 0.001
        if due < last_poll:
            ids.update(event_keys(activity))
    return ids


def activity_keys(simulator: Any, since: float, until: float) -> set[bytes]:
    """The keys of the simulator's activities dated in ``[since, until]``."""
    return {
        key
        for record in simulator.truth(until)
        if parse_rfc3339(record["activity"]["id"]["time"]) >= since
        and (key := activity_key(record["activity"])) is not None
    }
