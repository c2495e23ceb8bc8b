"""The sources seal each event as they normalize it when the daemon asks them to."""

from __future__ import annotations

import orjson
import pytest
from source_harness import batch_events, drain


@pytest.mark.parametrize("seal_formats", [None, ("ecs",), ("ecs", "ocsf")])
async def test_calendly_source_seals_new_events(calendly, seal_formats) -> None:  # type: ignore[no-untyped-def]
    simulator, make_source = await calendly(page_size=50)
    source = make_source()
    source.seal_formats = seal_formats
    source.restore(None)
    events = batch_events(await drain(source))
    assert len(events) == len(simulator.truth()) > 100
    assert {event.sealed for event in events} == {seal_formats is not None}
    # Sealed or not, the output is each entry as the API returned it.
    for event, entry in zip(events, simulator.truth(), strict=True):
        assert (
            orjson.loads(event.encoded("ecs"))["event"]["original"] == orjson.dumps(entry).decode()
        )


@pytest.mark.parametrize("seal_formats", [None, ("raw",)])
async def test_google_source_seals_every_event_of_an_activity(google, seal_formats) -> None:  # type: ignore[no-untyped-def]
    simulator, make_source = await google()
    source = make_source()
    source.seal_formats = seal_formats
    source.restore(None)
    events = batch_events(await drain(source))
    truth = simulator.truth()
    assert len(events) == sum(len(item["activity"]["events"]) for item in truth) > 100
    assert {event.sealed for event in events} == {seal_formats is not None}
    activities = {orjson.dumps(item["activity"]) for item in truth}
    assert {event.encoded("raw") for event in events} == activities
