"""`forwarder normalize` on real pages from each simulator, in each format, validated
against the ECS JSON Schema of docs/ and the official OCSF schema."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import jsonschema
import jwt
import orjson
import pytest

from forwarder.clock import ManualClock
from forwarder.schema.ocsf.validate import load_schema, validate_ocsf
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.simulators.server import run_app

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


async def _calendly_page() -> bytes:
    simulator = CalendlySimulator(
        CalendlyConfig(start=T0 - 3600, rate_per_minute=5), ManualClock(T0)
    )
    async with run_app(simulator.app()) as url, aiohttp.ClientSession() as session:
        params = {"organization": simulator.config.organization_uri, "count": "100"}
        headers = {"Authorization": f"Bearer {simulator.config.token}"}
        async with session.get(url + "/activity_log_entries", params=params, headers=headers) as r:
            assert r.status == 200
            return await r.read()


async def _google_page() -> bytes:
    simulator = GoogleReportsSimulator(
        GoogleConfig(start=T0 - 3600, rate_per_minute=5), ManualClock(T0), ServiceAccount.generate()
    )
    async with run_app(simulator.app()) as url, aiohttp.ClientSession() as session:
        account = simulator.account
        assertion = jwt.encode(
            {
                "iss": account.client_email,
                "aud": url + "/token",
                "scope": "https://www.googleapis.com/auth/admin.reports.audit.readonly",
                "sub": simulator.config.delegated_admin,
                "iat": int(T0),
                "exp": int(T0) + 3600,
            },
            account.private_key_pem,
            algorithm="RS256",
            headers={"kid": account.private_key_id},
        )
        grant = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion,
        }
        async with session.post(url + "/token", data=grant) as r:
            token = (await r.json())["access_token"]
        async with session.get(
            url + "/admin/reports/v1/activity/users/all/applications/calendar",
            params={"maxResults": "200"},
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status == 200
            return await r.read()


@pytest.mark.parametrize("source", ["calendly", "google_calendar"])
@pytest.mark.parametrize("fmt", ["ecs", "ocsf"])
def test_normalize_a_simulator_page(source: str, fmt: str) -> None:
    page = asyncio.run(_calendly_page() if source == "calendly" else _google_page())
    records = orjson.loads(page)["collection" if source == "calendly" else "items"]
    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "normalize", "--source", source, "--format", fmt],
        input=page,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    documents = [orjson.loads(line) for line in result.stdout.splitlines()]
    expected = len(records) if source == "calendly" else sum(len(r["events"]) for r in records)
    assert len(documents) == expected > 10
    if fmt == "ecs":
        schema = orjson.loads((ROOT / "docs" / "ecs-output.schema.json").read_bytes())
        validator = jsonschema.Draft202012Validator(schema)
        for document in documents:
            validator.validate(document)
    else:
        ocsf = load_schema()
        for document in documents:
            assert validate_ocsf(document, ocsf) == [], document
