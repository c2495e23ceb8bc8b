"""API faults the sources must survive without losing, doubling or skipping anything."""

from __future__ import annotations

from collections import Counter

import pytest
from source_harness import HOUR, T0, drain, event_ids, google_truth, poll_until_done

from forwarder.schema.ids import calendly_event_key


class OffsetClock:
    """The API's clock: the host's clock plus ``offset`` seconds."""

    def __init__(self, host, offset: float) -> None:  # type: ignore[no-untyped-def]
        self.host, self.offset = host, offset

    def now(self) -> float:
        return self.host.now() + self.offset

    async def sleep(self, seconds: float) -> None:
        await self.host.sleep(seconds)


@pytest.mark.parametrize("offset", [-300.0, 300.0])
async def test_google_clock_skew_skips_nothing(google, clock, offset) -> None:
    simulator, make_source = await google({"start": T0 - 2 * HOUR}, OffsetClock(clock, offset))
    source = make_source()
    source.restore(None)
    delivered: list[str] = []
    for _ in range(8):
        delivered += await poll_until_done(source, attempts=5)
        clock.advance(600)
    assert abs(source.clock_offset - offset) < 3
    counts = Counter(delivered)
    assert max(counts.values()) == 1
    # Everything the API could show at the last poll (its clock, minus the end margin).
    last_poll_api_time = clock.now() - 600 + offset - 10
    assert google_truth(simulator, last_poll_api_time) - counts == Counter()


async def test_google_rejected_page_token_restarts_the_window(google, clock) -> None:
    simulator, make_source = await google(page_size=25)
    source = make_source()
    source.restore(None)
    simulator.faults.push("page_token_rejected")
    delivered = await poll_until_done(source, attempts=5)
    assert not simulator.faults.pending
    assert Counter(delivered) == google_truth(simulator, T0 - 5)


async def test_calendly_rejected_page_token_restarts_from_the_cursor(calendly, clock) -> None:
    simulator, make_source = await calendly(page_size=10)
    source = make_source()
    source.restore(None)
    simulator.faults.push("page_token_rejected")
    delivered = await poll_until_done(source, attempts=5)
    assert not simulator.faults.pending
    assert delivered == [calendly_event_key(e["uri"]) for e in simulator.truth()]


async def test_google_revoked_access_token_is_refreshed_once(google, clock) -> None:
    simulator, make_source = await google()
    source = make_source()
    source.restore(None)
    first = event_ids(await drain(source))
    simulator.tokens.revoke_all()
    clock.advance(600)
    second = event_ids(await drain(source))
    assert len(first) + len(second) == sum(google_truth(simulator, clock.now() - 5).values())
    statuses = simulator.stats.as_json()["by_route"]["activities"]
    assert statuses.get(401, statuses.get("401")) == 1
    assert (
        simulator.stats.as_json()["by_route"]["token"].get(200, 0)
        + simulator.stats.as_json()["by_route"]["token"].get("200", 0)
        == 2
    )


@pytest.mark.parametrize("source_kind", ["calendly", "google"])
async def test_invalid_utf8_in_one_record_does_not_block_the_log(
    calendly, google, clock, source_kind
) -> None:
    if source_kind == "calendly":
        simulator, make_source = await calendly(page_size=20)
        truth = [calendly_event_key(e["uri"]) for e in simulator.truth()]
    else:
        simulator, make_source = await google(page_size=20)
        truth = list(google_truth(simulator, T0 - 5).elements())
    source = make_source()
    source.restore(None)
    simulator.faults.push("invalid_utf8")
    batches = await drain(source)
    assert not simulator.faults.pending
    assert Counter(event_ids(batches)) == Counter(truth)
    originals = [event.document["event"]["original"] for batch in batches for event in batch.events]
    assert sum("caf\ufffd" in original for original in originals) == 1


@pytest.mark.parametrize("fault", ["slow", "reset_mid_body", "html_200"])
@pytest.mark.parametrize("source_kind", ["calendly", "google"])
async def test_timeouts_cut_bodies_and_html_pages_are_retried(
    calendly, google, clock, metrics, fault, source_kind
) -> None:
    options = {"page_size": 30, "request_timeout": 0.5}
    if source_kind == "calendly":
        simulator, make_source = await calendly(**options)
        truth = Counter(calendly_event_key(e["uri"]) for e in simulator.truth())
    else:
        simulator, make_source = await google(**options)
        truth = google_truth(simulator, T0 - 5)
    source = make_source()
    source.restore(None)
    # Twice: aiohttp retries a dropped idempotent request once by itself.
    simulator.faults.push(fault, count=2)
    delivered = Counter(event_ids(await drain(source)))
    assert not simulator.faults.pending
    assert delivered == truth
    errors = {
        sample.labels["error_type"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "forwarder_source_errors"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    expected = "malformed_response" if fault == "html_200" else "transient"
    assert errors.get(expected, 0) >= 1
