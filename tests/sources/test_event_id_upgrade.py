"""Issue 17, part S1: Google event ids now name the event (not its position); the upgrade
delivers nothing twice and loses nothing, whatever ids the state it starts from holds.

The Google source de-duplicates by activity key, which the change leaves alone; event ids
are in ``seen`` only in checkpoints of the JSON releases (one id per event) and, in the
release just before, for an activity without a key (an integer ``uniqueQualifier``). Both
were computed with the positional formula, which the source still matches.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hostile import rewrite_json
from legacy_state import google_ids, legacy_google, legacy_google_ids
from source_harness import HOUR, T0, drain, event_ids

from forwarder.sources.google.keys import activity_key

MINUTE = 60.0


async def test_a_json_release_checkpoint_with_repeated_event_names(google, clock) -> None:
    """Activities holding two events of one name: the old release's positional ids in
    ``seen`` keep every one it delivered from coming again; those after the upgrade are
    delivered once each, under ids that tell the two same-named events apart."""
    simulator, make_source = await google({"start": T0 - 2 * HOUR, "rate_per_minute": 2.0})
    names = ("add_event_guest", "add_event_guest", "notification_triggered")
    before = [simulator.add_activity(T0 - 600 + i, extra_event_names=names) for i in range(5)]
    after = [simulator.add_activity(T0 + 120 + i, extra_event_names=names) for i in range(5)]
    state, delivered_before = legacy_google(simulator.truth(T0), T0)
    assert {key for a in before for key in legacy_google_ids(a)} <= set(state["seen"])

    source = make_source()
    source.restore(state)
    delivered: list[str] = []
    for _ in range(30):
        clock.advance(MINUTE)
        delivered += event_ids(await drain(source))

    counts = Counter(delivered)
    assert max(counts.values()) == 1, "an event delivered twice"
    assert not set(counts) & set(delivered_before), "delivered again after the upgrade"
    new_ids = [key for a in after for key in google_ids(a)]
    assert len(set(new_ids)) == len(new_ids) == 5 * 4
    assert set(new_ids) <= set(counts), "an event after the upgrade was lost"


@pytest.mark.parametrize("kept", ["positional ids", "nothing (control)"])
async def test_a_key_less_activity_of_the_release_before_is_not_delivered_again(
    google, hostile, clock, kept: str
) -> None:
    """An activity with an integer ``uniqueQualifier`` has no activity key: the release
    before kept its positional event ids. Restored from that state, the source re-reads it
    at each re-scan step and delivers it no more; from a state without them (the control,
    showing the re-scans do return it), it delivers it again."""
    simulator, make_source = await google({"start": T0 - HOUR, "rate_per_minute": 1.0})
    keyless = simulator.add_activity(T0 - 300, extra_event_names=("add_event_guest",))
    qualifier = keyless["id"]["uniqueQualifier"]
    ids = google_ids(keyless)

    def integer_qualifier(body: dict[str, Any]) -> dict[str, Any]:
        items = [
            {**item, "id": {**item["id"], "uniqueQualifier": int(qualifier)}}
            if item["id"]["uniqueQualifier"] == qualifier
            else item
            for item in body.get("items", [])
        ]
        return {**body, "items": items}

    proxy = await hostile(simulator.url)
    proxy.push("/activity/", rewrite_json(integer_qualifier), count=100_000)
    first = make_source(base_url=proxy.url)
    first.restore(None)
    assert set(ids) <= set(event_ids(await drain(first)))
    state = first.checkpoint()
    assert activity_key(keyless) not in state["seen"]
    # Today's ids of it are in `seen`; the release before wrote its positional ones.
    when = {state["seen"].pop(key) for key in ids}
    assert len(when) == 1
    if kept == "positional ids":
        state["seen"].update(dict.fromkeys(legacy_google_ids(keyless), when.pop()))

    source = make_source(base_url=proxy.url)
    source.restore(state)
    delivered: list[str] = []
    for _ in range(3):
        # Past the re-scan steps that read the activity again (2, 10 and 40 minutes).
        clock.advance(20 * MINUTE)
        delivered += event_ids(await drain(source))
    again = sorted(key for key in delivered if key in ids)
    assert again == ([] if kept == "positional ids" else sorted(ids))
