"""The Google simulator's service-account key file and JWT-bearer token endpoint."""

from __future__ import annotations

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from sim_harness import ADMIN, T0, StartGoogle, sign_assertion

from forwarder.simulators.google_auth import GOOGLE_TOKEN_AUDIENCE, REPORTS_SCOPE, ServiceAccount


async def test_key_file_is_in_googles_format(start_google: StartGoogle, tmp_path) -> None:
    api = await start_google()
    path = api.sim.write_service_account_key(tmp_path / "sa.json", api.token_uri)
    key = orjson.loads(path.read_bytes())
    assert set(key) == {
        "type", "project_id", "private_key_id", "private_key", "client_email", "client_id",
        "auth_uri", "token_uri", "auth_provider_x509_cert_url", "client_x509_cert_url",
        "universe_domain",
    }  # fmt: skip
    assert key["type"] == "service_account"
    assert key["token_uri"] == api.token_uri
    assert key["client_email"].endswith(".iam.gserviceaccount.com")
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert key["universe_domain"] == "googleapis.com"
    loaded = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    assert loaded.public_key().public_numbers() == (
        api.sim.account.private_key.public_key().public_numbers()
    )
    assert path.stat().st_mode & 0o077 == 0
    assert ServiceAccount.from_key_file(path).client_email == key["client_email"]


async def test_correct_assertion_gets_a_token(start_google: StartGoogle) -> None:
    api = await start_google(token_lifetime=1234)
    status, body = await api.token_request(
        sign_assertion(api.sim.account, token_uri=api.token_uri, now=T0)
    )
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1234
    assert body["access_token"]
    status, _, _ = await api.list(token=body["access_token"])
    assert status == 200


@pytest.mark.parametrize("audience", ["own", GOOGLE_TOKEN_AUDIENCE])
async def test_googles_audience_and_the_endpoints_own_are_accepted(
    start_google: StartGoogle, audience: str
) -> None:
    # Stock Google clients sign aud=https://oauth2.googleapis.com/token whatever token_uri
    # their key file holds (Google requires it); clients that sign the URL they post to
    # send the simulator's own.
    api = await start_google()
    aud = api.token_uri if audience == "own" else audience
    status, body = await api.token_request(sign_assertion(api.sim.account, token_uri=aud, now=T0))
    assert status == 200, body
    status, _, _ = await api.list(token=body["access_token"])
    assert status == 200


async def test_scope_may_be_one_of_several(start_google: StartGoogle) -> None:
    api = await start_google()
    scope = "https://www.googleapis.com/auth/admin.directory.user.readonly " + REPORTS_SCOPE
    status, _ = await api.token_request(
        sign_assertion(api.sim.account, token_uri=api.token_uri, now=T0, scope=scope)
    )
    assert status == 200


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("wrong_signature", "invalid_grant"),
        ("wrong_kid", "invalid_grant"),
        ("wrong_iss", "invalid_grant"),
        ("wrong_aud", "invalid_grant"),
        ("legacy_aud", "invalid_grant"),
        ("aud_list", "invalid_grant"),
        ("aud_without_path", "invalid_grant"),
        ("expired", "invalid_grant"),
        ("issued_in_future", "invalid_grant"),
        ("too_long", "invalid_grant"),
        ("no_exp", "invalid_grant"),
        ("wrong_sub", "unauthorized_client"),
        ("no_sub", "unauthorized_client"),
        ("missing_scope", "invalid_scope"),
        ("other_scope", "invalid_scope"),
        ("garbage", "invalid_grant"),
    ],
)
async def test_bad_assertions_are_refused(
    start_google: StartGoogle, other_account: ServiceAccount, case: str, error: str
) -> None:
    api = await start_google()
    account, uri = api.sim.account, api.token_uri
    assertions = {
        # Signed by another key, but claiming to be our account and key id.
        "wrong_signature": lambda: sign_assertion(
            other_account,
            token_uri=uri,
            now=T0,
            kid=account.private_key_id,
            iss=account.client_email,
        ),
        "wrong_kid": lambda: sign_assertion(account, token_uri=uri, now=T0, kid="0" * 40),
        "wrong_iss": lambda: sign_assertion(account, token_uri=uri, now=T0, iss="x@y.z"),
        "wrong_aud": lambda: sign_assertion(
            account, token_uri="https://oauth2.example.com/token", now=T0
        ),
        # Google's old token endpoints, an audience list, and the URL without its path.
        "legacy_aud": lambda: sign_assertion(
            account, token_uri="https://www.googleapis.com/oauth2/v4/token", now=T0
        ),
        "aud_list": lambda: sign_assertion(
            account, token_uri=uri, now=T0, aud=[uri, GOOGLE_TOKEN_AUDIENCE]
        ),
        "aud_without_path": lambda: sign_assertion(
            account, token_uri=uri.removesuffix("/token"), now=T0
        ),
        "expired": lambda: sign_assertion(account, token_uri=uri, now=T0 - 7200),
        "issued_in_future": lambda: sign_assertion(account, token_uri=uri, now=T0 + 1800),
        "too_long": lambda: sign_assertion(account, token_uri=uri, now=T0, exp=int(T0) + 7200),
        "no_exp": lambda: sign_assertion(account, token_uri=uri, now=T0, exp=None),
        "wrong_sub": lambda: sign_assertion(account, token_uri=uri, now=T0, sub="eve@example.com"),
        "no_sub": lambda: sign_assertion(account, token_uri=uri, now=T0, sub=None),
        "missing_scope": lambda: sign_assertion(account, token_uri=uri, now=T0, scope=None),
        "other_scope": lambda: sign_assertion(
            account, token_uri=uri, now=T0, scope="https://www.googleapis.com/auth/calendar"
        ),
        "garbage": lambda: "not.a.jwt",
    }
    status, body = await api.token_request(assertions[case]())
    assert status == 400
    assert body["error"] == error
    assert body["error_description"]


async def test_skew_within_five_minutes_is_tolerated(start_google: StartGoogle) -> None:
    api = await start_google()
    # Expired 4 minutes ago by the server's clock: a client clock behind by 4 minutes.
    assertion = sign_assertion(api.sim.account, token_uri=api.token_uri, now=T0 - 3840)
    status, _ = await api.token_request(assertion)
    assert status == 200


async def test_wrong_grant_type(start_google: StartGoogle) -> None:
    api = await start_google()
    assertion = sign_assertion(api.sim.account, token_uri=api.token_uri, now=T0)
    status, body = await api.token_request(assertion, grant_type="client_credentials")
    assert status == 400
    assert body["error"] == "unsupported_grant_type"


async def test_access_token_expires_with_the_clock(start_google: StartGoogle, clock) -> None:
    api = await start_google()
    token = await api.access_token()
    clock.advance(3598)
    status, _, _ = await api.list(token=token)
    assert status == 200
    clock.advance(2)
    status, body, _ = await api.list(token=token)
    assert status == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"
    assert body["error"]["errors"][0]["reason"] == "authError"


@pytest.mark.parametrize("token", [None, "ya29.made-up"])
async def test_api_needs_a_valid_bearer_token(start_google: StartGoogle, token) -> None:
    api = await start_google()
    status, body, _ = await api.list(token=token)
    assert status == 401
    error = body["error"]
    assert error["code"] == 401
    assert error["status"] == "UNAUTHENTICATED"
    assert error["message"]
    assert {"message", "domain", "reason"} <= set(error["errors"][0])


async def test_token_endpoint_uses_the_configured_admin(start_google: StartGoogle) -> None:
    api = await start_google(delegated_admin="root@corp.example")
    assertion = sign_assertion(api.sim.account, token_uri=api.token_uri, now=T0, sub=ADMIN)
    status, body = await api.token_request(assertion)
    assert (status, body["error"]) == (400, "unauthorized_client")
    assertion = sign_assertion(
        api.sim.account, token_uri=api.token_uri, now=T0, sub="root@corp.example"
    )
    status, _ = await api.token_request(assertion)
    assert status == 200
