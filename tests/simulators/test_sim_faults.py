"""Fault injection on both simulators: each kind does what it says, and only that."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from sim_harness import (
    ACTIVITIES_PATH,
    T0,
    CalendlyHarness,
    GoogleHarness,
    StartCalendly,
    StartGoogle,
    sign_assertion,
)

from forwarder.simulators.faults import FaultKind


async def calendly_page(api: CalendlyHarness) -> tuple[int, Any, Any]:
    return await api.get(api.params(count=10))


async def google_page(api: GoogleHarness) -> tuple[int, Any, Any]:
    return await api.list({"maxResults": 10})


async def push_over_http(session: aiohttp.ClientSession, url: str, kind: str, count: int = 1):
    async with session.post(url + "/_sim/faults", json={"kind": kind, "count": count}) as resp:
        return resp.status, await resp.json()


async def test_calendly_status_faults(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    for kind, status, title in [
        ("http_500", 500, "Internal Server Error"),
        ("http_503", 503, "Service Unavailable"),
        ("http_429", 429, "Too Many Requests"),
    ]:
        api.sim.faults.push(kind)
        got, body, headers = await calendly_page(api)
        assert (got, body["title"]) == (status, title)
        assert "X-RateLimit-Limit" in headers and "X-RateLimit-Reset" in headers
        if status == 429:
            assert headers["X-RateLimit-Remaining"] == "0"
        assert (await calendly_page(api))[0] == 200


async def test_google_status_faults(start_google: StartGoogle) -> None:
    api = await start_google()
    await api.access_token()
    for kind, status, reason, state in [
        ("http_500", 500, "backendError", "INTERNAL"),
        ("http_503", 503, "backendError", "UNAVAILABLE"),
        ("http_429", 429, "rateLimitExceeded", "RESOURCE_EXHAUSTED"),
        ("rate_limit_403", 403, "rateLimitExceeded", "PERMISSION_DENIED"),
    ]:
        api.sim.faults.push(kind)
        got, body, headers = await google_page(api)
        assert got == status
        assert body["error"]["code"] == status
        assert body["error"]["errors"][0]["reason"] == reason
        assert body["error"]["status"] == state
        if kind == "rate_limit_403":
            assert body["error"]["errors"][0]["domain"] == "usageLimits"
        if status in (429, 503):
            assert headers["Retry-After"] == "5"
        assert (await google_page(api))[0] == 200


async def test_truncated_json(start_calendly: StartCalendly, start_google: StartGoogle) -> None:
    calendly, google = await start_calendly(), await start_google()
    for api, page in ((calendly, calendly_page), (google, google_page)):
        api.sim.faults.push("truncated_json")
        status, body, _ = await page(api)
        assert status == 200
        assert isinstance(body, bytes)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(body)
        assert isinstance((await page(api))[1], dict)


async def test_missing_field_and_wrong_type(
    start_calendly: StartCalendly, start_google: StartGoogle
) -> None:
    calendly, google = await start_calendly(), await start_google()
    for api, page, key in ((calendly, calendly_page, "collection"), (google, google_page, "items")):
        api.sim.faults.push("missing_field")
        api.sim.faults.push("wrong_type")
        status, body, _ = await page(api)
        assert status == 200 and key not in body
        status, body, _ = await page(api)
        assert status == 200 and isinstance(body[key], str)
        status, body, _ = await page(api)
        assert isinstance(body[key], list)


async def test_bad_record_breaks_one_record_and_keeps_the_rest(
    start_calendly: StartCalendly, start_google: StartGoogle
) -> None:
    calendly, google = await start_calendly(), await start_google()
    for api, page, key, broken_fields in (
        (calendly, calendly_page, "collection", ("occurred_at", "uri")),
        (google, google_page, "items", ("id",)),
    ):
        _, clean, _ = await page(api)
        api.sim.faults.push("bad_record")
        status, spoiled, _ = await page(api)
        assert status == 200
        assert len(spoiled[key]) == len(clean[key]) == 10
        differing = [
            i for i, (a, b) in enumerate(zip(clean[key], spoiled[key], strict=True)) if a != b
        ]
        assert len(differing) == 1
        index = differing[0]
        assert all(field not in spoiled[key][index] for field in broken_fields)
        applied = api.sim.faults.applied[-1]
        assert applied.kind is FaultKind.BAD_RECORD
        assert applied.detail["original"] == clean[key][index]
        # Pagination is untouched: the next page follows the real last record.
        if key == "collection":
            assert spoiled["pagination"] == clean["pagination"]
        else:
            assert spoiled["nextPageToken"] == clean["nextPageToken"]


async def test_bad_record_waits_for_a_page_with_records(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    api.sim.faults.push("bad_record")
    _, empty, _ = await api.get(api.params(namespace="NoSuchNamespace"))
    assert empty["collection"] == []
    assert api.sim.faults.pending == ["bad_record"]
    _, page, _ = await calendly_page(api)
    assert sum("uri" not in entry for entry in page["collection"]) == 1


async def test_reset_closes_the_connection(
    start_calendly: StartCalendly, start_google: StartGoogle
) -> None:
    calendly, google = await start_calendly(), await start_google()
    token = await google.access_token()
    targets = (
        (calendly, calendly.endpoint, calendly.params(), calendly.sim.config.token),
        (google, google.url + ACTIVITIES_PATH, {}, token),
    )
    async with aiohttp.ClientSession() as fresh:
        for api, url, params, bearer in targets:
            headers = {"Authorization": f"Bearer {bearer}"}
            # aiohttp's client retries an idempotent request once after a disconnect, so a
            # single reset goes unnoticed by it: it takes two in a row to surface.
            api.sim.faults.push("reset")
            async with fresh.get(url, params=params, headers=headers) as response:
                assert response.status == 200
            assert api.sim.stats.count(status="reset") == 1
            api.sim.faults.push("reset", count=2)
            with pytest.raises(aiohttp.ClientConnectionError):
                async with fresh.get(url, params=params, headers=headers) as response:
                    await response.read()
            async with fresh.get(url, params=params, headers=headers) as response:
                assert response.status == 200
            assert api.sim.stats.count(status="reset") == 3


async def test_count_and_order_over_http(start_calendly: StartCalendly, session) -> None:
    api = await start_calendly()
    status, body = await push_over_http(session, api.url, "http_503", 2)
    assert status == 200
    assert body["pending"] == ["http_503", "http_503"]
    await push_over_http(session, api.url, "http_500")
    statuses = [(await calendly_page(api))[0] for _ in range(4)]
    assert statuses == [503, 503, 500, 200]

    status, body = await push_over_http(session, api.url, "no_such_fault")
    assert status == 400
    status, body = await push_over_http(session, api.url, "rate_limit_403")
    assert status == 400, "Calendly has no 403 rate limit"
    status, body = await push_over_http(session, api.url, "http_500", 0)
    assert status == 400


async def test_token_endpoint_is_not_faulted(start_google: StartGoogle) -> None:
    api = await start_google()
    api.sim.faults.push("http_500")
    assertion = sign_assertion(api.sim.account, token_uri=api.token_uri, now=T0)
    status, _ = await api.token_request(assertion)
    assert status == 200
    assert api.sim.faults.pending == ["http_500"]


async def test_status_faults_apply_before_auth(start_calendly: StartCalendly) -> None:
    api = await start_calendly()
    api.sim.faults.push("http_503")
    status, _, _ = await api.get(token="wrong")
    assert status == 503


async def test_truth_and_stats_over_http(start_calendly: StartCalendly, session, clock) -> None:
    api = await start_calendly()
    api.sim.faults.push("http_500")
    await calendly_page(api)
    await calendly_page(api)
    await api.get(token=None)
    async with session.get(api.url + "/_sim/stats") as response:
        stats = await response.json()
    assert stats["by_status"] == {"200": 1, "401": 1, "500": 1}
    assert stats["total"] == 3

    async with session.get(api.url + "/_sim/truth") as response:
        records = (await response.json())["records"]
    assert records == api.sim.truth()
    async with session.get(
        api.url + "/_sim/truth", params={"until": records[9]["occurred_at"]}
    ) as response:
        early = (await response.json())["records"]
    assert early == [r for r in records if r["occurred_at"] <= records[9]["occurred_at"]]


async def test_google_truth_over_http(start_google: StartGoogle, session) -> None:
    api = await start_google(min_lag=5, max_lag=10)
    async with session.get(api.url + "/_sim/truth") as response:
        records = (await response.json())["records"]
    assert records == api.sim.truth()
    assert {"activity", "visible_at", "visible_at_unix"} == set(records[0])


async def test_page_token_loop_hands_the_requested_token_out_again(
    start_calendly: StartCalendly, start_google: StartGoogle
) -> None:
    calendly = await start_calendly()
    calendly.sim.faults.push("page_token_loop", count=3)
    status, first, _ = await calendly.get(calendly.params(count=10))
    assert status == 200 and calendly.sim.faults.pending == ["page_token_loop"] * 3
    token = first["pagination"]["next_page_token"]
    for _ in range(3):
        status, page, _ = await calendly.get(calendly.params(count=10, page_token=token))
        assert status == 200
        assert page["pagination"]["next_page_token"] == token
        assert token in page["pagination"]["next_page"]
    status, page, _ = await calendly.get(calendly.params(count=10, page_token=token))
    assert page["pagination"]["next_page_token"] != token, "served three times, then real"
    assert [fault["kind"] for fault in calendly.sim.faults.as_json()["applied"]] == [
        "page_token_loop"
    ] * 3

    google = await start_google()
    google.sim.faults.push("page_token_loop")
    status, first, _ = await google_page(google)
    token = first["nextPageToken"]
    status, page, _ = await google.list({"maxResults": 10, "pageToken": token})
    assert status == 200 and page["nextPageToken"] == token
    assert not google.sim.faults.pending
