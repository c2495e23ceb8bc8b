"""The Google token endpoint is a peer too: its answer is validated before anything of it
is kept (a non-empty RFC 6750 bearer token of bounded length, token_type Bearer, a
finite positive expires_in clamped to sane bounds), and however short the lifetime it
claims, token requests stay bounded."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from aiohttp import web
from hostile import Upstream, rewrite_json
from source_harness import HOUR, T0, drain, event_ids, google_truth, sample

from forwarder.sources.base import MalformedResponseError
from forwarder.sources.google.auth import MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME


async def _behind_proxy(google: Any, hostile: Any, tmp_path: Any, **source: Any):  # type: ignore[no-untyped-def]
    """The simulator with its token endpoint behind the hostile proxy (the key file's
    token_uri, which is also the assertion's audience, points at the proxy)."""
    simulator, make_source = await google({"start": T0 - HOUR}, page_size=20)
    proxy = await hostile(simulator.url)
    simulator.write_service_account_key(tmp_path / "google-key.json", proxy.url + "/token")
    built = make_source(**source)
    built.restore(None)
    accepted: list[str] = []
    built._tokens._on_secret = lambda secret: accepted.append(secret)
    return simulator, built, proxy, accepted


def _raw(body: bytes) -> Any:
    async def tamper(request: web.Request, upstream: Upstream) -> web.StreamResponse:
        return web.Response(status=200, body=body, content_type="application/json")

    return tamper


INVALID = {
    "expires_in_zero": rewrite_json(lambda body: {**body, "expires_in": 0}),
    "expires_in_negative": rewrite_json(lambda body: {**body, "expires_in": -3600}),
    "expires_in_string": rewrite_json(lambda body: {**body, "expires_in": "3600"}),
    "expires_in_null": rewrite_json(lambda body: {**body, "expires_in": None}),
    "expires_in_true": rewrite_json(lambda body: {**body, "expires_in": True}),
    "expires_in_nan": _raw(b'{"access_token": "ya29.x", "expires_in": NaN}'),
    "expires_in_1e400": _raw(b'{"access_token": "ya29.x", "expires_in": 1e400}'),
    "crlf_in_token": rewrite_json(
        lambda body: {**body, "access_token": body["access_token"] + "\r\nX-Injected: 1"}
    ),
    "space_in_token": rewrite_json(lambda body: {**body, "access_token": "ya29 abc"}),
    "empty_token": rewrite_json(lambda body: {**body, "access_token": ""}),
    "numeric_token": rewrite_json(lambda body: {**body, "access_token": 12345}),
    "huge_token": rewrite_json(lambda body: {**body, "access_token": "a" * 100_000}),
    "mac_token_type": rewrite_json(lambda body: {**body, "token_type": "mac"}),
}


@pytest.mark.parametrize("answer", list(INVALID))
async def test_an_invalid_token_response_is_retried_never_stored(
    google, hostile, clock, metrics, tmp_path, answer
) -> None:
    simulator, source, proxy, accepted = await _behind_proxy(google, hostile, tmp_path)
    proxy.push("/token", INVALID[answer])
    delivered = event_ids(await drain(source))
    assert Counter(delivered) == google_truth(simulator, T0 - 5)
    assert proxy.requests["/token"] == 2
    assert len(accepted_tokens(accepted)) == 1, "only the valid token was accepted"
    errors = sample(
        metrics, "forwarder_source_errors_total", source="gcal", error_type="malformed_response"
    )
    assert errors == 1


def accepted_tokens(secrets: list[str]) -> list[str]:
    """Tokens among the secrets reported (the others are the signed assertions)."""
    return [secret for secret in secrets if secret.startswith("ya29.")]


async def test_an_endpoint_that_never_answers_validly_costs_max_attempts_per_poll(
    google, hostile, clock, metrics, tmp_path
) -> None:
    simulator, source, proxy, accepted = await _behind_proxy(
        google, hostile, tmp_path, max_attempts=4
    )
    proxy.push("/token", INVALID["crlf_in_token"], count=1000)
    for poll in (1, 2):
        with pytest.raises(MalformedResponseError):
            await drain(source)
        assert proxy.requests["/token"] == 4 * poll
    assert accepted_tokens(accepted) == []
    assert "activities" not in simulator.stats.as_json()["by_route"], "no API call without one"


@pytest.mark.parametrize("expires_in", [1, 0.001, 299, 300])
async def test_a_tiny_lifetime_does_not_mean_a_token_request_per_api_call(
    google, hostile, clock, metrics, tmp_path, expires_in
) -> None:
    """Before: with expires_in below the 300 s refresh margin, every API call fetched a
    token. Now the lifetime is at least MIN_TOKEN_LIFETIME and the margin at most half
    of it: over an hour of polls, one token request per 30 s at most."""
    simulator, source, proxy, accepted = await _behind_proxy(google, hostile, tmp_path)
    proxy.push(
        "/token", rewrite_json(lambda body: {**body, "expires_in": expires_in}), count=10_000
    )
    delivered: list[str] = []
    for _ in range(12):
        delivered += event_ids(await drain(source))
        clock.advance(300)
    api_calls = sum(simulator.stats.as_json()["by_route"]["activities"].values())
    tokens = proxy.requests["/token"]
    assert api_calls > 3 * tokens
    assert tokens <= 12 + 1
    assert len(accepted_tokens(accepted)) == tokens
    assert Counter(delivered) == google_truth(simulator, clock.now() - 300 - 5)
    capped = sample(
        metrics, "forwarder_source_capped_values_total", source="gcal", kind="token_lifetime"
    )
    assert capped == (tokens if expires_in < MIN_TOKEN_LIFETIME else 0)


async def test_a_huge_lifetime_is_clamped(google, hostile, clock, metrics, tmp_path) -> None:
    simulator, source, proxy, accepted = await _behind_proxy(google, hostile, tmp_path)
    proxy.push("/token", rewrite_json(lambda body: {**body, "expires_in": 1e15}), count=10)
    delivered = event_ids(await drain(source))
    assert proxy.requests["/token"] == 1
    # Google's real token expires after an hour: a 401 brings one refresh, not an outage.
    clock.advance(2 * HOUR)
    await drain(source)
    assert proxy.requests["/token"] == 2
    clock.advance(MAX_TOKEN_LIFETIME)
    await drain(source)
    assert proxy.requests["/token"] == 3
    capped = sample(
        metrics, "forwarder_source_capped_values_total", source="gcal", kind="token_lifetime"
    )
    assert capped == 3
    assert len(accepted_tokens(accepted)) == 3
    assert Counter(delivered) == google_truth(simulator, T0 - 5)
