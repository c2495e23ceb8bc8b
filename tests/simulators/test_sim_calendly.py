"""Contract tests of the Calendly Activity Log simulator over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from sim_harness import T0, StartCalendly

from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.timeutil import parse_rfc3339

SORT_FIELDS = ("action", "actor.display_name", "actor.uri", "namespace", "occurred_at")


def sort_key(entry: dict[str, Any], field: str) -> tuple[Any, str]:
    if field == "occurred_at":
        value: Any = parse_rfc3339(entry["occurred_at"])
    elif field.startswith("actor."):
        value = entry["actor"].get(field.removeprefix("actor."), "")
    else:
        value = entry[field]
    return value, entry["uri"]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("count", [7, 20, 1000])
async def test_pagination_covers_every_entry_once_in_order(
    start_calendly: StartCalendly, direction: str, count: int
) -> None:
    api = await start_calendly()
    truth = api.sim.truth()
    assert len(truth) > 200

    entries, pages = await api.collect(api.params(count=count, sort=f"occurred_at:{direction}"))

    expected = truth if direction == "asc" else truth[::-1]
    assert [e["uri"] for e in entries] == [e["uri"] for e in expected]
    assert pages == -(-len(truth) // count)


async def test_count_one_pages_through_a_window(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    window = api.sim.truth()[40:52]
    params = api.params(
        count=1,
        sort="occurred_at:asc",
        min_occurred_at=window[0]["occurred_at"],
        max_occurred_at=window[-1]["occurred_at"],
    )
    entries, pages = await api.collect(params)
    # The window's edges may share a timestamp with neighbours (ties); inclusive bounds.
    low, high = window[0]["occurred_at"], window[-1]["occurred_at"]
    expected = [e for e in api.sim.truth() if low <= e["occurred_at"] <= high]
    assert [e["uri"] for e in entries] == [e["uri"] for e in expected]
    assert pages == len(expected)


@pytest.mark.parametrize("field", SORT_FIELDS)
@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_every_sort_field_is_stable_and_complete(
    start_calendly: StartCalendly, field: str, direction: str
) -> None:
    api = await start_calendly(rate_per_minute=3.0)
    truth = api.sim.truth()

    entries, _ = await api.collect(api.params(count=13, sort=f"{field}:{direction}"))

    expected = sorted(truth, key=lambda e: sort_key(e, field), reverse=direction == "desc")
    assert [e["uri"] for e in entries] == [e["uri"] for e in expected]


async def test_previous_page_token_goes_back(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    _, first, _ = await api.get(api.params(count=5))
    assert first["pagination"]["previous_page_token"] is None
    assert first["pagination"]["previous_page"] is None
    _, second, _ = await api.get(url=first["pagination"]["next_page"])
    assert second["pagination"]["previous_page_token"]
    _, back, _ = await api.get(url=second["pagination"]["previous_page"])
    assert back["collection"] == first["collection"]


async def test_live_data_grows_with_the_clock_and_never_leaks_the_future(
    start_calendly: StartCalendly, clock
) -> None:
    api = await start_calendly()
    _, page, _ = await api.get(api.params(count=1000))
    assert all(parse_rfc3339(e["occurred_at"]) <= T0 for e in page["collection"])
    before = page["total_count"]

    clock.advance(600)
    _, page, _ = await api.get(api.params(count=1000))
    assert page["total_count"] > before
    assert all(parse_rfc3339(e["occurred_at"]) <= T0 + 600 for e in page["collection"])
    assert page["last_event_time"] == page["collection"][0]["occurred_at"]


async def test_keyset_pages_do_not_shift_when_entries_arrive(
    start_calendly: StartCalendly, clock
) -> None:
    api = await start_calendly()
    original = [e["uri"] for e in api.sim.truth()][::-1]
    _, page, _ = await api.get(api.params(count=25))
    seen = [e["uri"] for e in page["collection"]]
    while page["pagination"]["next_page"]:
        clock.advance(30)  # new entries land at the head of a desc listing meanwhile
        _, page, _ = await api.get(url=page["pagination"]["next_page"])
        seen.extend(e["uri"] for e in page["collection"])
    assert seen == original


async def test_entries_have_the_documented_shape(start_calendly: StartCalendly) -> None:
    api = await start_calendly(rate_per_minute=60.0)
    truth = api.sim.truth()
    uris = [e["uri"] for e in truth]
    assert len(set(uris)) == len(uris)
    occurred = [e["occurred_at"] for e in truth]
    assert len(set(occurred)) < len(occurred), "some entries must share occurred_at"
    system = [e for e in truth if e["actor"]["type"] == "System"]
    assert system and all(
        e["actor"] == {"display_name": "Calendly System", "type": "System"} for e in system
    )
    for entry in truth:
        assert set(entry) >= {
            "uri", "occurred_at", "namespace", "action", "fully_qualified_name",
            "details", "organization", "actor",
        }  # fmt: skip
        assert entry["uri"].startswith("https://api.calendly.com/activity_log_entries/")
        assert len(entry["occurred_at"]) == len("2026-11-27T10:00:00.123456Z")
        assert entry["occurred_at"].endswith("Z")
        assert entry["namespace"] in CALENDLY_CATEGORIES
        assert entry["action"] in CALENDLY_CATEGORIES[entry["namespace"]].actions
        assert entry["fully_qualified_name"] == f"{entry['namespace']}.{entry['action']}"
        assert isinstance(entry["details"], dict)
        assert entry["organization"] == api.sim.config.organization_uri
        if entry["actor"]["type"] == "User":
            actor = entry["actor"]
            assert actor["uri"].startswith("https://api.calendly.com/users/")
            assert "@" in actor["alternative_identifier"]
            assert actor["organization"]["uri"] == api.sim.config.organization_uri
            assert set(actor["group"]) == {"uri", "name", "role"}


async def test_time_bounds_are_inclusive(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    target = api.sim.truth()[10]
    at = target["occurred_at"]
    _, page, _ = await api.get(api.params(min_occurred_at=at, max_occurred_at=at))
    assert target["uri"] in [e["uri"] for e in page["collection"]]
    assert all(e["occurred_at"] == at for e in page["collection"])


async def test_filters(start_calendly: StartCalendly) -> None:
    api = await start_calendly(rate_per_minute=30.0)
    truth = api.sim.truth()
    user = api.sim.users[3]

    by_namespace, _ = await api.collect(api.params(namespace="Login,API", count=100))
    assert by_namespace
    assert [e["uri"] for e in by_namespace] == [
        e["uri"] for e in truth[::-1] if e["namespace"] in ("Login", "API")
    ]

    by_action, _ = await api.collect(api.params(action="Created", count=100))
    assert by_action and all(e["action"] == "Created" for e in by_action)

    by_actor, _ = await api.collect(api.params(actor=user.uri, count=100))
    assert by_actor
    assert [e["uri"] for e in by_actor] == [
        e["uri"] for e in truth[::-1] if e["actor"].get("uri") == user.uri
    ]

    by_search, _ = await api.collect(api.params(search_term=user.email.upper(), count=100))
    assert {e["uri"] for e in by_actor} <= {e["uri"] for e in by_search}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"count": "1001"}, "count"),
        ({"count": "0"}, "count"),
        ({"count": "ten"}, "count"),
        ({"sort": "occurred_at:sideways"}, "sort"),
        ({"sort": "uri:asc"}, "sort"),
        ({"min_occurred_at": "yesterday"}, "min_occurred_at"),
        ({"max_occurred_at": "2026-13-01T00:00:00Z"}, "max_occurred_at"),
        ({"search_term": "x" * 301}, "search_term"),
        ({"page_token": "not-a-token"}, "page_token"),
    ],
)
async def test_invalid_arguments(
    start_calendly: StartCalendly, params: dict[str, str], parameter: str
) -> None:
    api = await start_calendly()
    status, body, _ = await api.get(api.params(**params))
    assert status == 400
    assert body["title"] == "Invalid Argument"
    assert body["message"]
    assert parameter in [d["parameter"] for d in body["details"]]
    assert all(d["message"] for d in body["details"])


async def test_organization_is_required_and_must_match(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    status, body, _ = await api.get({"count": "5"})
    assert status == 400
    assert body["details"][0]["parameter"] == "organization"

    other = "https://api.calendly.com/organizations/SOMEONEELSE00000"
    status, body, _ = await api.get({"organization": other})
    assert status == 403
    assert body["title"] == "Permission Denied"
    assert body["message"] == "You do not have permission to access this resource."


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_bad_token_is_unauthenticated(start_calendly: StartCalendly, token) -> None:
    api = await start_calendly()
    status, body, headers = await api.get(token=token)
    assert status == 401
    assert body["title"] == "Unauthenticated"
    assert body["message"]
    assert "X-RateLimit-Limit" in headers


async def test_rate_limit_headers_on_every_response_and_429(
    start_calendly: StartCalendly, clock
) -> None:
    api = await start_calendly(rate_limit_per_minute=4)
    responses = [
        await api.get(),
        await api.get(api.params(count=5000)),
        await api.get({"organization": "https://api.calendly.com/organizations/X"}),
        await api.get(),
        await api.get(),
        await api.get(),
    ]
    statuses = [status for status, _, _ in responses]
    assert statuses == [200, 400, 403, 200, 429, 429]
    remaining = [int(h["X-RateLimit-Remaining"]) for _, _, h in responses]
    assert remaining == [3, 2, 1, 0, 0, 0]
    for _, _, headers in responses:
        assert headers["X-RateLimit-Limit"] == "4"
        assert 1 <= int(headers["X-RateLimit-Reset"]) <= 60
    assert responses[-1][1]["title"] == "Too Many Requests"

    clock.advance(45)
    _, _, headers = await api.get()
    assert int(headers["X-RateLimit-Reset"]) == 15
    clock.advance(15)
    status, _, headers = await api.get()
    assert status == 200
    assert headers["X-RateLimit-Remaining"] == "3"


async def test_page_token_is_bound_to_its_query(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    _, page, _ = await api.get(api.params(count=5))
    token = page["pagination"]["next_page_token"]

    # Same query, other page size: still fine (count does not define the result set).
    status, _, _ = await api.get(api.params(count=9, page_token=token))
    assert status == 200
    status, body, _ = await api.get(api.params(count=5, namespace="Login", page_token=token))
    assert status == 400
    assert body["details"][0]["parameter"] == "page_token"
    status, _, _ = await api.get(api.params(count=5, sort="occurred_at:asc", page_token=token))
    assert status == 400
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    status, _, _ = await api.get(api.params(count=5, page_token=tampered))
    assert status == 400


async def test_total_count_is_capped(start_calendly: StartCalendly) -> None:
    api = await start_calendly(max_total_count=50)
    _, page, _ = await api.get(api.params(count=10))
    assert page["total_count"] == 50
    assert page["exceeds_max_total_count"] is True
    entries, _ = await api.collect(api.params(count=100))
    assert len(entries) == len(api.sim.truth()) > 50


async def test_injected_entry_is_served_once_its_time_comes(
    start_calendly: StartCalendly, clock
) -> None:
    api = await start_calendly()
    entry = api.sim.add_entry(T0 + 5, "Compliance", "Data_Deletion_Requested")
    _, page, _ = await api.get(api.params(namespace="Compliance", action="Data_Deletion_Requested"))
    assert entry["uri"] not in [e["uri"] for e in page["collection"]]
    clock.advance(5)
    _, page, _ = await api.get(api.params(namespace="Compliance", action="Data_Deletion_Requested"))
    assert page["collection"][0] == entry


async def test_same_seed_same_data(start_calendly: StartCalendly) -> None:
    first = await start_calendly(seed=7)
    second = await start_calendly(seed=7)
    other = await start_calendly(seed=8)
    assert first.sim.truth() == second.sim.truth()
    assert first.sim.truth() != other.sim.truth()
    _, a, _ = await first.get(first.params(count=50))
    _, b, _ = await second.get(second.params(count=50))
    assert a["collection"] == b["collection"]


async def test_end_time_stops_the_dataset(start_calendly: StartCalendly, clock) -> None:
    api = await start_calendly(end=T0 - 600)
    count = len(api.sim.truth())
    clock.advance(3600)
    assert len(api.sim.truth()) == count
    assert all(parse_rfc3339(e["occurred_at"]) <= T0 - 600 for e in api.sim.truth())
