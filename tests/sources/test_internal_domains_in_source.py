"""A Google source's ``internal_domains`` reaches the normalizer: every grantee, guest,
subscriber and recipient of the simulator (all users of its domain, example.com) is
flagged by it, and left unflagged without it."""

from __future__ import annotations

import pytest
from source_harness import batch_events, drain

from forwarder.schema.sharing import PARTY_PARAMETERS


@pytest.mark.parametrize(
    ("internal_domains", "expected"),
    [(None, {None}), (["example.com"], {False}), (["partner.example"], {True})],
)
async def test_google_source_flags_parties_by_its_internal_domains(  # type: ignore[no-untyped-def]
    google, internal_domains, expected
) -> None:
    simulator, make_source = await google(internal_domains=internal_domains)
    assert simulator.config.domain == "example.com"
    source = make_source()
    source.restore(None)
    events = batch_events(await drain(source))
    flags = [
        calendar[party].get("external")
        for event in events
        if (calendar := event.document["google_workspace"]["calendar"])
        for party in PARTY_PARAMETERS.values()
        if party in calendar
    ]
    assert len(flags) > 20  # the simulator shares calendars and invites guests
    assert set(flags) == expected
