"""Contract tests of the Google Reports (Calendar) simulator's activities.list over HTTP."""

from __future__ import annotations

import ipaddress
import itertools
import tracemalloc
from typing import Any

import pytest
from sim_harness import T0, StartGoogle

from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.simulators.google_data import calendar_seconds
from forwarder.simulators.timeline import format_micros
from forwarder.timeutil import format_rfc3339, parse_rfc3339

RATA_DIE_OFFSET = 62135683200


def newest_first(activity: dict[str, Any]) -> tuple[float, int]:
    return (-parse_rfc3339(activity["id"]["time"]), -int(activity["id"]["uniqueQualifier"]))


def ident(activity: dict[str, Any]) -> tuple[str, str]:
    return activity["id"]["time"], activity["id"]["uniqueQualifier"]


def truth_activities(api, **kwargs: Any) -> list[dict[str, Any]]:
    return [record["activity"] for record in api.sim.truth(**kwargs)]


async def test_activities_come_newest_first(start_google: StartGoogle) -> None:
    api = await start_google(rate_per_minute=30.0)
    status, body, _ = await api.list({"maxResults": 1000})
    assert status == 200
    assert body["kind"] == "admin#reports#activities"
    assert body["etag"]
    items = body["items"]
    assert len(items) == len(api.sim.truth()) > 100
    assert items == sorted(items, key=newest_first)
    assert "nextPageToken" not in body
    times = [item["id"]["time"] for item in items]
    assert len(set(times)) < len(times), "some activities must share id.time"


@pytest.mark.parametrize("max_results", [7, 50, 1000])
async def test_pagination_covers_every_activity_once(
    start_google: StartGoogle, max_results: int
) -> None:
    api = await start_google()
    truth = truth_activities(api)
    items, pages = await api.collect({"maxResults": max_results})
    assert [ident(a) for a in items] == [ident(a) for a in sorted(truth, key=newest_first)]
    assert pages == max(1, -(-len(truth) // max_results))


async def test_max_results_one_over_a_window(start_google: StartGoogle) -> None:
    api = await start_google()
    truth = sorted(truth_activities(api), key=newest_first)
    start, end = truth[30]["id"]["time"], truth[20]["id"]["time"]
    items, _ = await api.collect({"maxResults": 1, "startTime": start, "endTime": end})
    expected = [a for a in truth if start <= a["id"]["time"] < end]
    assert len(expected) >= 9
    assert [ident(a) for a in items] == [ident(a) for a in expected]


async def test_start_inclusive_end_exclusive(start_google: StartGoogle) -> None:
    api = await start_google()
    target = truth_activities(api)[25]
    at = target["id"]["time"]
    _, body, _ = await api.list({"startTime": at})
    assert ident(target) in [ident(a) for a in body["items"]]
    assert all(a["id"]["time"] >= at for a in body["items"])
    _, body, _ = await api.list({"endTime": at})
    assert ident(target) not in [ident(a) for a in body.get("items", [])]
    assert all(a["id"]["time"] < at for a in body["items"])


async def test_empty_window_has_no_items_and_no_token(start_google: StartGoogle) -> None:
    api = await start_google()
    status, body, _ = await api.list(
        {"startTime": format_rfc3339(T0 - 7200), "endTime": format_rfc3339(T0 - 3600)}
    )
    assert status == 200
    assert body.get("items", []) == []
    assert "nextPageToken" not in body


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"endTime": format_rfc3339(T0 + 60)}, None),
        ({"startTime": format_rfc3339(T0 + 60)}, None),
        ({"startTime": format_rfc3339(T0 - 60), "endTime": format_rfc3339(T0 - 60)}, None),
        ({"startTime": format_rfc3339(T0 - 60), "endTime": format_rfc3339(T0 - 120)}, None),
        ({"startTime": "yesterday"}, "startTime"),
        ({"endTime": "2027-01-15 07:00:00"}, "endTime"),
        ({"maxResults": 0}, "maxResults"),
        ({"maxResults": 1001}, "maxResults"),
        ({"pageToken": "bogus"}, "pageToken"),
    ],
)
async def test_invalid_queries(
    start_google: StartGoogle, params: dict[str, Any], location: str | None
) -> None:
    api = await start_google()
    status, body, _ = await api.list(params)
    assert status == 400
    error = body["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["errors"][0]["reason"] == "invalid"
    if location is not None:
        assert error["errors"][0]["location"] == location


async def test_only_the_calendar_application(start_google: StartGoogle) -> None:
    api = await start_google()
    status, body, _ = await api.list(path="/admin/reports/v1/activity/users/all/applications/drive")
    assert status == 400
    assert body["error"]["errors"][0]["reason"] == "invalid"


async def test_page_token_from_another_query_is_refused(start_google: StartGoogle) -> None:
    api = await start_google()
    _, body, _ = await api.list({"maxResults": 5})
    token = body["nextPageToken"]
    status, _, _ = await api.list({"maxResults": 9, "pageToken": token})
    assert status == 200
    status, body, _ = await api.list(
        {"maxResults": 5, "eventName": "create_event", "pageToken": token}
    )
    assert status == 400
    assert body["error"]["message"] == "Invalid pageToken"
    assert body["error"]["errors"][0]["reason"] == "invalid"


async def test_late_activity_is_invisible_until_its_lag_has_passed(
    start_google: StartGoogle, clock
) -> None:
    api = await start_google()
    late = api.sim.add_activity(T0 - 60, visible_after_seconds=5400, event_name="delete_event")
    window = {"startTime": format_rfc3339(T0 - 3600)}

    items, _ = await api.collect(window)
    assert ident(late) not in [ident(a) for a in items]
    clock.set(T0 - 60 + 5399)
    items, _ = await api.collect(window)
    assert ident(late) not in [ident(a) for a in items]

    clock.set(T0 - 60 + 5400)
    items, _ = await api.collect(window)
    served = next(a for a in items if ident(a) == ident(late))
    assert served == late
    assert served["id"]["time"] == format_micros(round((T0 - 60) * 1e6), 3)
    record = next(r for r in api.sim.truth() if ident(r["activity"]) == ident(late))
    assert record["visible_at_unix"] == pytest.approx(T0 - 60 + 5400)


async def test_lag_model_delays_generated_activities(start_google: StartGoogle, clock) -> None:
    api = await start_google(min_lag=5, max_lag=60, late_fraction=0.2, late_lag=5400)
    records = api.sim.truth()
    lags = [r["visible_at_unix"] - parse_rfc3339(r["activity"]["id"]["time"]) for r in records]
    assert all(5 <= lag <= 60 or lag == pytest.approx(5400) for lag in lags)
    assert any(lag == pytest.approx(5400) for lag in lags)

    items, _ = await api.collect({})
    visible = {ident(r["activity"]) for r in api.sim.truth(visible_only=True)}
    assert {ident(a) for a in items} == visible
    assert len(visible) < len(records)
    clock.advance(5400)
    items, _ = await api.collect({"endTime": format_rfc3339(T0)})
    assert {ident(a) for a in items} == {ident(r["activity"]) for r in records}


async def test_quota_exceeded_is_a_403_envelope(start_google: StartGoogle, clock) -> None:
    api = await start_google(quota_per_minute=3)
    statuses = [(await api.list())[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, body, _ = await api.list()
    assert status == 403
    error = body["error"]
    assert error["code"] == 403
    assert error["status"] == "PERMISSION_DENIED"
    assert error["errors"][0]["reason"] == "rateLimitExceeded"
    assert error["errors"][0]["domain"] == "usageLimits"
    clock.advance(60)
    assert (await api.list())[0] == 200


async def test_activity_shape_and_parameter_typing(start_google: StartGoogle) -> None:
    api = await start_google(rate_per_minute=60.0, start=T0 - 3600)
    items, _ = await api.collect({})
    assert len(items) > 3000
    negative = multi = ipv6 = undocumented = 0
    for activity in items:
        assert activity["kind"] == "admin#reports#activity"
        assert activity["etag"]
        assert activity["id"]["applicationName"] == "calendar"
        assert activity["id"]["customerId"] == api.sim.config.customer_id
        assert len(activity["id"]["time"]) == len("2027-01-15T07:00:00.000Z")
        qualifier = int(activity["id"]["uniqueQualifier"])
        assert -(2**63) <= qualifier < 2**63
        negative += qualifier < 0
        assert activity["actor"]["callerType"] == "USER"
        assert activity["actor"]["email"].endswith("@example.com")
        assert activity["actor"]["profileId"].isdigit()
        assert activity["ownerDomain"] == "example.com"
        address = ipaddress.ip_address(activity["ipAddress"])
        ipv6 += address.version == 6
        multi += len(activity["events"]) > 1
        activity_unix = parse_rfc3339(activity["id"]["time"])
        for event in activity["events"]:
            spec = CALENDAR_EVENTS[event["name"]]
            assert event["type"] == spec.type
            for param in event["parameters"]:
                keys = set(param) - {"name"}
                assert len(keys) == 1
                kind = spec.parameters.get(param["name"])
                if kind is None:
                    assert param["name"] == "secs_in_advance"
                    undocumented += 1
                    kind = "integer"
                expected_key = {"string": "value", "integer": "intValue", "boolean": "boolValue"}
                assert keys == {expected_key[kind]}
                if kind == "integer":
                    assert isinstance(param["intValue"], str)
                    value = int(param["intValue"])
                    if param["name"] in ("start_time", "end_time"):
                        # Meetings start minutes to 3 days after the change, last <= 1 h.
                        meeting = value - RATA_DIE_OFFSET
                        assert activity_unix - 900 < meeting <= activity_unix + 3 * 86400 + 3600
                    if param["name"].startswith("requested_period_"):
                        assert activity_unix - 86400 < value < activity_unix + 8 * 86400
                elif kind == "boolean":
                    assert isinstance(param["boolValue"], bool)
                else:
                    assert isinstance(param["value"], str)
    assert negative and multi and ipv6 and undocumented
    assert 0.05 < multi / len(items) < 0.15
    names = {event["name"] for activity in items for event in activity["events"]}
    assert len(names) >= 30


def test_calendar_seconds_match_the_documented_example() -> None:
    # 63879175800 is 2025-04-01T07:30:00Z (forwarder.schema.times); the "obvious" offset
    # from 0001-01-01 would land one day later.
    assert calendar_seconds(int(parse_rfc3339("2025-04-01T07:30:00Z"))) == 63879175800


async def test_filters(start_google: StartGoogle) -> None:
    api = await start_google(rate_per_minute=40.0)
    truth = sorted(truth_activities(api), key=newest_first)

    items, _ = await api.collect({"eventName": "create_event"})
    assert items
    assert [ident(a) for a in items] == [
        ident(a) for a in truth if any(e["name"] == "create_event" for e in a["events"])
    ]

    address = truth[0]["ipAddress"]
    items, _ = await api.collect({"actorIpAddress": address})
    assert [ident(a) for a in items] == [ident(a) for a in truth if a["ipAddress"] == address]

    email = truth[0]["actor"]["email"]
    status, body, _ = await api.list(
        path=f"/admin/reports/v1/activity/users/{email}/applications/calendar"
    )
    assert status == 200
    assert [ident(a) for a in body["items"]] == [
        ident(a) for a in truth if a["actor"]["email"] == email
    ]


async def test_same_seed_same_data(start_google: StartGoogle) -> None:
    first = await start_google(seed=3, min_lag=1, max_lag=30)
    second = await start_google(seed=3, min_lag=1, max_lag=30)
    other = await start_google(seed=4, min_lag=1, max_lag=30)
    assert first.sim.truth() == second.sim.truth()
    assert truth_activities(first) != truth_activities(other)
    _, a, _ = await first.list({"maxResults": 40})
    _, b, _ = await second.list({"maxResults": 40})
    assert a["items"] == b["items"]


async def test_late_activities_can_lag_over_a_range(start_google: StartGoogle) -> None:
    api = await start_google(
        rate_per_minute=60.0, min_lag=5, max_lag=60, late_fraction=0.2, late_min_lag=60,
        late_lag=10_800,
    )  # fmt: skip
    lags = [
        r["visible_at_unix"] - parse_rfc3339(r["activity"]["id"]["time"]) for r in api.sim.truth()
    ]
    late = [lag for lag in lags if lag > 60]
    assert all(5 <= lag <= 10_800 for lag in lags)
    assert 0.1 < len(late) / len(lags) < 0.3
    # Spread over the range, not one value: some caught by a 10 min re-read, some by 3 h.
    assert min(late) < 600 and max(late) > 9000
    # The same activities as with a fixed late lag: only when they show up differs.
    fixed = await start_google(rate_per_minute=60.0, min_lag=5, max_lag=60, late_fraction=0.2)
    assert truth_activities(fixed) == truth_activities(api)


async def test_lag_settings_do_not_change_content(start_google: StartGoogle) -> None:
    quick = await start_google(seed=5)
    slow = await start_google(seed=5, min_lag=10, max_lag=20, late_fraction=0.5)
    assert truth_activities(quick) == truth_activities(slow)


async def test_injected_activity_with_extra_events_and_parameters(
    start_google: StartGoogle,
) -> None:
    api = await start_google()
    activity = api.sim.add_activity(
        T0 - 10,
        event_name="some_new_event",
        extra_event_names=("add_event_guest",),
        parameters={"start_time": 63879175800, "is_recurring": True, "api_kind": "web"},
        ip_address="2001:db8::1",
    )
    assert [e["name"] for e in activity["events"]] == ["some_new_event", "add_event_guest"]
    params = {p["name"]: p for p in activity["events"][0]["parameters"]}
    assert params["start_time"] == {"name": "start_time", "intValue": "63879175800"}
    assert params["is_recurring"] == {"name": "is_recurring", "boolValue": True}
    assert params["api_kind"] == {"name": "api_kind", "value": "web"}
    _, body, _ = await api.list({"actorIpAddress": "2001:db8::1"})
    assert body["items"] == [activity]


async def pages_with_work(
    api, params: dict[str, Any], pages: int
) -> list[tuple[list[tuple[str, str]], int, int]]:
    """The first ``pages`` pages of a query: (item ids, records touched, bodies built)."""
    result = []
    token = None
    for _ in range(pages):
        touched, built = api.sim.listing.records_touched, api.sim.listing.bodies_built
        query = dict(params, **({"pageToken": token} if token else {}))
        status, body, _ = await api.list(query)
        assert status == 200, body
        result.append(
            (
                [ident(a) for a in body["items"]],
                api.sim.listing.records_touched - touched,
                api.sim.listing.bodies_built - built,
            )
        )
        token = body["nextPageToken"]
    return result


async def test_page_work_does_not_grow_with_the_window(start_google: StartGoogle) -> None:
    # 8 h of history, 29k activities: a page of the whole history must cost what a page
    # of its last hour costs (the old simulator re-read the whole window on every page).
    api = await start_google(start=T0 - 8 * 3600, rate_per_minute=60.0)
    narrow = {"startTime": format_rfc3339(T0 - 3600), "maxResults": 100}
    wide = {"startTime": format_rfc3339(T0 - 8 * 3600), "maxResults": 100}
    narrow_pages = await pages_with_work(api, narrow, 5)
    wide_pages = await pages_with_work(api, wide, 5)
    assert [items for items, _, _ in wide_pages] == [items for items, _, _ in narrow_pages]
    for items, touched, built in narrow_pages + wide_pages:
        assert len(items) == 100
        # The page, and one record past it (is there a next page?).
        assert touched == 101
        assert built == 100

    # Deep in the wide window too: page 200 of 288 costs the same as the first.
    truth = sorted(truth_activities(api), key=newest_first)
    assert len(truth) > 25_000
    deep = truth[20_000]
    deep_window = {"endTime": deep["id"]["time"], **wide}
    deep_pages = await pages_with_work(api, deep_window, 2)
    older = [ident(a) for a in truth if a["id"]["time"] < deep["id"]["time"]]
    assert [item for items, _, _ in deep_pages for item in items] == older[:200]
    assert [(touched, built) for _, touched, built in deep_pages] == [(101, 100)] * 2


async def test_page_work_with_hidden_activities_is_the_page_and_what_it_steps_over(
    start_google: StartGoogle,
) -> None:
    # Activities not visible yet are stepped over one by one; they are as many as the
    # lag model holds back in the page's stretch of time, however long the window.
    api = await start_google(
        start=T0 - 6 * 3600,
        rate_per_minute=60.0,
        max_lag=120,
        late_fraction=0.05,
        late_lag=3 * 3600,
        late_min_lag=60,
    )
    records = api.sim.truth()
    hidden_times = sorted(
        parse_rfc3339(r["activity"]["id"]["time"]) for r in records if r["visible_at_unix"] > T0
    )
    assert len(hidden_times) > 200
    pages = {
        hours: await pages_with_work(
            api, {"startTime": format_rfc3339(T0 - hours * 3600), "maxResults": 200}, 7
        )
        for hours in (1, 6)
    }
    assert pages[1] == pages[6]
    previous_oldest = T0
    stepped_over_in_all = 0
    for (items, touched, built), (next_items, _, _) in itertools.pairwise(pages[6]):
        # The walk goes from below the previous page's last item to the next page's
        # first (read to know it exists), stepping over the hidden ones in between.
        oldest, look_ahead = parse_rfc3339(items[-1][0]), parse_rfc3339(next_items[0][0])
        stepped_over = sum(look_ahead <= t <= previous_oldest for t in hidden_times)
        stepped_over_in_all += stepped_over
        assert built == len(items) == 200
        assert len(items) + 1 <= touched <= len(items) + 1 + stepped_over
        previous_oldest = oldest
    assert stepped_over_in_all > 0, "the pages must step over hidden activities"


async def test_the_log_holds_an_activity_in_a_few_dozen_bytes(
    start_google: StartGoogle, clock
) -> None:
    # 100 activities/s: 1.26 M in 3.5 h must fit in a simulator far under a gigabyte, so
    # the log keeps keys in flat arrays and builds bodies when it serves them.
    api = await start_google(start=T0, rate_per_minute=6000.0)
    clock.advance(500)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        status, body, _ = await api.list({"maxResults": 10})
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert status == 200 and len(body["items"]) == 10
    generated = len(api.sim._log)
    assert generated > 40_000
    assert (after - before) / generated < 64
    # Served again, a body is built again from the seed (nothing kept), identically.
    built = api.sim.listing.bodies_built
    _, again, _ = await api.list({"maxResults": 10})
    assert again["items"] == body["items"]
    assert api.sim.listing.bodies_built == built + 10
