"""Simulator knobs for data a hostile or broken API serves, within the real contract's
shape: entries dated in the future, records the API keeps returning malformed, and a
``Date`` header from a clock gone wrong."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from sim_harness import T0, StartCalendly, StartGoogle

from forwarder.timeutil import parse_rfc3339


async def test_calendly_entry_dated_in_the_future_is_served_from_a_given_time(
    start_calendly: StartCalendly, clock
) -> None:
    api = await start_calendly()
    future = api.sim.add_entry(parse_rfc3339("9999-12-31T00:00:00Z"), served_from=T0 + 60)
    ascending = api.params(count=100, sort="occurred_at:asc")
    entries, _ = await api.collect(ascending)
    assert future["uri"] not in {entry["uri"] for entry in entries}
    clock.advance(60)
    entries, _ = await api.collect(ascending)
    assert entries[-1] == future, "sorted by occurred_at: last"
    # A query starting after every real entry still returns it, on every call.
    later = api.params(count=100, min_occurred_at="2030-01-01T00:00:00Z")
    for _ in range(2):
        entries, _ = await api.collect(later)
        assert entries == [future]


async def test_calendly_entry_missing_fields_is_served_so_every_time(
    start_calendly: StartCalendly,
) -> None:
    api = await start_calendly()
    broken = api.sim.add_entry(T0 - 60, drop_fields=("namespace", "occurred_at", "uri"))
    assert "namespace" not in broken and "occurred_at" not in broken
    assert "uri" in broken, "kept: the API pages by it"
    for _ in range(2):
        entries, _ = await api.collect(api.params(count=7))
        assert entries.count(broken) == 1
    assert broken in api.sim.truth()


async def test_google_activity_missing_fields_is_served_so_every_time(
    start_google: StartGoogle,
) -> None:
    api = await start_google()
    broken = api.sim.add_activity(T0 - 60, drop_fields=("events", "id"))
    assert "events" not in broken and "id" in broken
    params = {"startTime": "2027-01-15T07:00:00.000Z", "maxResults": 7}
    for _ in range(2):
        items, _ = await api.collect(params)
        assert items.count(broken) == 1


async def test_date_offset_moves_the_date_header_only(
    start_calendly: StartCalendly, start_google: StartGoogle
) -> None:
    far = parse_rfc3339("9999-12-31T00:00:00Z") - T0
    calendly = await start_calendly(date_offset=far)
    status, page, headers = await calendly.get(calendly.params(count=5))
    assert status == 200 and page["collection"]
    assert parsedate_to_datetime(headers["Date"]).year == 9999
    google = await start_google(date_offset=-3600.0)
    status, _, headers = await google.list({"maxResults": 5})
    assert status == 200
    assert parsedate_to_datetime(headers["Date"]).timestamp() == T0 - 3600
