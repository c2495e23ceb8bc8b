"""A source tags every event with its tenant (ECS ``labels.tenant``, OCSF
``metadata.tags``), by default its id, and exports ``forwarder_source_info``; both
providers, read from their simulators."""

from __future__ import annotations

import pytest
from source_harness import batch_events, drain

from forwarder.observability.metrics import Metrics
from forwarder.schema.ocsf import to_ocsf

TENANTS = [(None, None), ("acme-eu.1", "acme-eu.1")]


@pytest.mark.parametrize(("tenant", "expected"), TENANTS)
async def test_calendly_events_carry_the_tenant(  # type: ignore[no-untyped-def]
    calendly, metrics: Metrics, tenant: str | None, expected: str | None
) -> None:
    _, make_source = await calendly()
    await _check(make_source(tenant=tenant), metrics, "cal", "calendly", expected or "cal")


@pytest.mark.parametrize(("tenant", "expected"), TENANTS)
async def test_google_events_carry_the_tenant(  # type: ignore[no-untyped-def]
    google, metrics: Metrics, tenant: str | None, expected: str | None
) -> None:
    _, make_source = await google()
    await _check(make_source(tenant=tenant), metrics, "gcal", "google_calendar", expected or "gcal")


async def _check(source, metrics: Metrics, source_id: str, provider: str, want: str) -> None:  # type: ignore[no-untyped-def]
    source.restore(None)
    events = batch_events(await drain(source))
    assert len(events) > 3
    assert {event.document["labels"]["tenant"] for event in events} == {want}
    assert all(
        to_ocsf(event)["metadata"]["tags"] == [{"name": "tenant", "value": want}]
        for event in events
    )
    labels = {"source": source_id, "tenant": want, "provider": provider}
    assert metrics.registry.get_sample_value("forwarder_source_info", labels) == 1.0
