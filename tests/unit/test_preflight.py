"""``forwarder check-config --online`` against real peers: the API simulators
(``forwarder simulate``), a Kafka-protocol broker, rsyslog with TLS and an HTTP
receiver. One line per component, ``ok`` or ``FAILED`` with what failed and the fix;
exit 0 only when every component passed, 5 otherwise."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from e2e_harness import Simulators
from kafka_harness import Broker, free_port
from syslog_harness import Pki, Rsyslog, running

from forwarder.simulators.google_auth import ServiceAccount

SINK_TOKEN = "receiver-token-7f3a9c"
EXIT_PREFLIGHT = 5


@pytest.fixture(scope="module")
def simulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulators]:
    # `--history 1h`: the config's durations on the command line.
    running_simulators = Simulators(tmp_path_factory.mktemp("sim"), "--history", "1h")
    yield running_simulators
    running_simulators.stop()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    started = Broker()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Rsyslog]:
    server = pki.issue("server", "localhost", client=False)
    with running(Rsyslog(tmp_path_factory.mktemp("rsyslog"), pki, server)) as started:
        yield started


@pytest.fixture
async def receiver() -> AsyncIterator[str]:
    """An HTTP receiver: ``/ingest`` takes a bearer token (401 without the right one),
    any other path is 404. Its base URL."""

    async def ingest(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("Authorization") != f"Bearer {SINK_TOKEN}":
            return web.json_response({"error": "invalid token"}, status=401)
        return web.json_response({})

    async def hec(request: web.Request) -> web.Response:
        # Splunk's HEC: an accepted token with no event in the body is a 400 "No data".
        if request.headers.get("Authorization") != f"Splunk {SINK_TOKEN}":
            return web.json_response({"text": "Invalid token", "code": 4}, status=403)
        if not await request.read():
            return web.json_response({"text": "No data", "code": 5}, status=400)
        return web.json_response({"text": "Success", "code": 0})

    app = web.Application()
    app.router.add_post("/ingest", ingest)
    app.router.add_post("/services/collector/event", hec)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _check_online(config: Path, limit: str = "10s") -> tuple[int, list[str], str]:
    """Runs the command without blocking the loop serving the receiver."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder", "check-config", "--online", "--timeout", limit,
        "--config", str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode().splitlines(), stderr.decode()


def _line(lines: list[str], component: str) -> str:
    found = [line for line in lines if line.split(" ", 1)[1].lstrip().startswith(component + ":")]
    assert len(found) == 1, (component, lines)
    return found[0]


def _config(
    tmp_path: Path,
    simulators: Simulators,
    *,
    calendly_token_file: str,
    google_key_file: str,
    kafka: str,
    syslog_port: int,
    ca_file: Path,
    http: dict[str, str],
) -> Path:
    endpoints = simulators.endpoints
    https = "".join(
        f"""
  {name}:
    type: http
    url: {url}"""
        + (
            f"""
    encoding: splunk_hec
    auth: {{strategy: splunk, token_file: {tmp_path / "sink-token"}}}"""
            if url.endswith("/collector/event")
            else f"""
    auth: {{strategy: bearer, token_file: {tmp_path / "sink-token"}}}"""
        )
        for name, url in http.items()
    )
    (tmp_path / "sink-token").write_text(SINK_TOKEN + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
state_dir: {tmp_path / "state"}
sources:
  calendly:
    type: calendly
    base_url: {endpoints["calendly_url"]}
    organization: {endpoints["organization"]}
    token_file: {calendly_token_file}
  google:
    type: google_calendar
    base_url: {endpoints["google_url"]}
    credentials_file: {google_key_file}
    delegated_admin: {endpoints["delegated_admin"]}
sinks:
  events:
    type: file
    path: {tmp_path / "events.ndjson"}
  kafka:
    type: kafka
    bootstrap_servers: ["{kafka}"]
    request_timeout: 5s
    # The test broker's idempotent-producer handshake does not match aiokafka's (see
    # tests/sinks/test_kafka_sink.py).
    enable_idempotence: false
  syslog:
    type: syslog
    host: 127.0.0.1
    port: {syslog_port}
    transport: tls
    tls: {{ca_file: {ca_file}}}
    connect_timeout: 5s{https}
metrics: {{enabled: false}}
"""
    )
    return path


async def test_every_component_ok(
    tmp_path: Path, simulators: Simulators, broker: Broker, rsyslog: Rsyslog, pki: Pki,
    receiver: str,
) -> None:  # fmt: skip
    config = _config(
        tmp_path,
        simulators,
        calendly_token_file=simulators.endpoints["calendly_token_file"],
        google_key_file=simulators.endpoints["google_key_file"],
        kafka=broker.bootstrap,
        syslog_port=rsyslog.ports.tls,
        ca_file=pki.ca,
        http={"receiver": f"{receiver}/ingest", "hec": f"{receiver}/services/collector/event"},
    )
    code, lines, stderr = await _check_online(config)
    assert code == 0, (lines, stderr)
    assert lines[0].startswith("config OK: 2 source(s)")
    assert "read one page" in _line(lines, "sources.calendly")
    assert "access token obtained, read one page" in _line(lines, "sources.google")
    assert "nothing written now" in _line(lines, "sinks.events")
    assert "1 broker(s)" in _line(lines, "sinks.kafka")
    assert "TLS handshake done" in _line(lines, "sinks.syslog")
    assert "HTTP 200" in _line(lines, "sinks.receiver")
    assert "credentials accepted (HTTP 400 to an empty request)" in _line(lines, "sinks.hec")
    components = [line for line in lines if line.startswith(("ok ", "FAILED", "skip"))]
    assert len(components) == 7 and all(line.startswith("ok ") for line in components)
    assert lines[-1] == "online: 7 of 7 component(s) ok"
    assert not (tmp_path / "events.ndjson").exists() and not (tmp_path / "state").exists()
    assert rsyslog.records() == [], "a pre-flight must not deliver anything"


async def test_each_failure_is_named_with_its_fix(
    tmp_path: Path, simulators: Simulators, receiver: str
) -> None:
    wrong_token = tmp_path / "calendly-token"
    wrong_token.write_text("not-the-simulators-token\n")
    unknown_key = ServiceAccount.generate().write_key_file(
        tmp_path / "unknown-key.json", simulators.endpoints["google_token_uri"]
    )
    other_ca = Pki(tmp_path / "other-pki", name="some other CA")
    server = other_ca.issue("server", "localhost", client=False)
    # rsyslog's certificate is signed by a CA the sink does not trust.
    with running(Rsyslog(tmp_path / "rsyslog", other_ca, server)) as syslog_peer:
        config = _config(
            tmp_path,
            simulators,
            calendly_token_file=str(wrong_token),
            google_key_file=str(unknown_key),
            kafka=f"127.0.0.1:{free_port()}",  # nothing listens there
            syslog_port=syslog_peer.ports.tls,
            ca_file=Pki(tmp_path / "trusted-pki").ca,
            http={"refused": f"{receiver}/ingest", "missing": f"{receiver}/nosuch"},
        )
        (tmp_path / "sink-token").write_text("a-token-the-receiver-refuses\n")
        code, lines, stderr = await _check_online(config)
    assert code == EXIT_PREFLIGHT, (lines, stderr)

    calendly = _line(lines, "sources.calendly")
    assert calendly.startswith("FAILED") and "HTTP 401" in calendly
    assert "fix: put a valid Calendly token in sources.calendly.token_file" in calendly

    google = _line(lines, "sources.google")
    assert google.startswith("FAILED") and "token request refused" in google
    assert "fix: create a new JSON key for the service account" in google

    kafka = _line(lines, "sinks.kafka")
    assert kafka.startswith("FAILED") and "cannot bootstrap" in kafka
    assert "fix: check bootstrap_servers" in kafka

    syslog = _line(lines, "sinks.syslog")
    assert syslog.startswith("FAILED") and "CERTIFICATE_VERIFY_FAILED" in syslog
    assert "fix: set sinks.syslog.tls.ca_file to the CA that signed" in syslog

    refused = _line(lines, "sinks.refused")
    assert refused.startswith("FAILED") and "HTTP 401, credentials refused" in refused
    assert "fix: check sinks.refused.auth" in refused

    missing = _line(lines, "sinks.missing")
    assert missing.startswith("FAILED") and "HTTP 404, no such endpoint" in missing
    assert "fix: check sinks.missing.url" in missing

    assert _line(lines, "sinks.events").startswith("ok ")
    assert lines[-1] == "online: 1 of 7 component(s) ok"
    output = "\n".join(lines) + stderr
    for secret in ("not-the-simulators-token", "a-token-the-receiver-refuses"):
        assert secret not in output


async def test_a_peer_that_never_answers_fails_within_the_timeout(
    tmp_path: Path, simulators: Simulators
) -> None:
    # Accepted by the kernel, never read from nor answered.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        config = tmp_path / "config.yaml"
        config.write_text(
            f"""
state_dir: {tmp_path / "state"}
sources:
  calendly:
    type: calendly
    base_url: http://127.0.0.1:{port}
    organization: {simulators.endpoints["organization"]}
    token_file: {simulators.endpoints["calendly_token_file"]}
sinks:
  web: {{type: http, url: "http://127.0.0.1:{port}/ingest"}}
metrics: {{enabled: false}}
"""
        )
        code, lines, stderr = await _check_online(config, limit="1s")
    assert code == EXIT_PREFLIGHT, (lines, stderr)
    for component in ("sources.calendly", "sinks.web"):
        line = _line(lines, component)
        assert line.startswith("FAILED"), line
        assert "no answer within 1s" in line and "fix: check the address" in line
