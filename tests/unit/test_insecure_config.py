"""Insecure settings: credentials in clear to another host are refused unless the
component says ``allow_insecure: true``; other weak settings are warned about by
``check-config``, at start and in /readyz."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from cli_harness import run_cli

from forwarder.config.insecure import insecure_settings, is_loopback
from forwarder.config.loader import ConfigError, parse_config
from forwarder.daemon import Daemon

BASE = """
state_dir: {tmp}/state
sources:
  cal:
    type: calendly
    base_url: {calendly_url}
    organization: https://api.calendly.com/organizations/X
    token_file: {tmp}/token
{source_extra}
sinks:
  out: {{type: file, path: {tmp}/out.ndjson}}
{sinks}
{top}
"""


def _text(tmp_path: Path, **parts: str) -> str:
    (tmp_path / "token").write_text("calendly-secret-token\n")
    (tmp_path / "hec-token").write_text("hec-secret-token\n")
    (tmp_path / "kafka-password").write_text("kafka-secret-password\n")
    values = {
        "calendly_url": "https://api.calendly.com",
        "source_extra": "",
        "sinks": "",
        "top": "",
    }
    values.update(parts)
    return BASE.format(tmp=tmp_path, **values)


def _refusal(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {})
    return str(caught.value)


def _warnings(text: str) -> dict[str, str]:
    return {finding.key: finding.message for finding in insecure_settings(parse_config(text, {}))}


def test_the_defaults_and_loopback_peers_raise_nothing(tmp_path: Path) -> None:
    assert _warnings(_text(tmp_path)) == {}
    local = _text(tmp_path, calendly_url="http://127.0.0.1:18081")
    assert _warnings(local) == {}


@pytest.mark.parametrize(
    "host", ["api.calendly.com", "calendly-proxy.internal", "10.0.0.7", "[2001:db8::1]"]
)
def test_a_source_token_over_http_to_another_host_is_refused(tmp_path: Path, host: str) -> None:
    text = _text(tmp_path, calendly_url=f"http://{host}")
    message = _refusal(text)
    assert message.startswith("sources.cal.base_url: http:// sends its API token in clear")
    assert "allow_insecure: true" in message
    assert "calendly-secret-token" not in message
    allowed = text.replace("token_file:", "allow_insecure: true\n    token_file:")
    warning = _warnings(allowed)["sources.cal.base_url"]
    assert "allowed by allow_insecure" in warning


def test_google_token_endpoint_over_http_is_refused_from_config_or_key_file(
    tmp_path: Path,
) -> None:
    key = tmp_path / "key.json"
    key.write_text(
        orjson.dumps({"type": "service_account", "token_uri": "http://evil.test/t"}).decode()
    )
    google = f"""  gcal:
    type: google_calendar
    credentials_file: {key}
    delegated_admin: admin@example.com"""
    assert _refusal(_text(tmp_path, source_extra=google)).startswith(
        "sources.gcal.token_url: http:// sends the signed service-account assertion in clear"
    )
    explicit = google + "\n    token_url: https://oauth2.googleapis.com/token"
    assert _warnings(_text(tmp_path, source_extra=explicit)) == {}


def test_http_sink_credentials_in_clear_are_refused_plain_events_are_warned(
    tmp_path: Path,
) -> None:
    auth = f"""  hec:
    type: http
    url: http://splunk.example.com:8088/services/collector/event
    encoding: splunk_hec
    auth: {{strategy: splunk, token_file: {tmp_path}/hec-token}}"""
    assert _refusal(_text(tmp_path, sinks=auth)).startswith(
        "sinks.hec.url: http:// sends the sink's credentials in clear to splunk.example.com"
    )
    header = f"""  ch:
    type: http
    url: http://clickhouse.example.com:8123/
    header_files: {{X-ClickHouse-Key: {tmp_path}/hec-token}}"""
    assert _refusal(_text(tmp_path, sinks=header)).startswith("sinks.ch.url: ")
    plain = """  plain:
    type: http
    url: http://collector.example.com/ingest"""
    assert _warnings(_text(tmp_path, sinks=plain)) == {
        "sinks.plain.url": "events are sent unencrypted to collector.example.com (http://)"
    }
    local = auth.replace("splunk.example.com", "127.0.0.1")
    assert _warnings(_text(tmp_path, sinks=local)) == {}


def test_sasl_plain_without_tls_is_refused_scram_is_warned(tmp_path: Path) -> None:
    kafka = f"""  kafka:
    type: kafka
    bootstrap_servers: [kafka-0.kafka:9092]
    security_protocol: SASL_PLAINTEXT
    sasl: {{mechanism: PLAIN, username: forwarder, password_file: {tmp_path}/kafka-password}}"""
    message = _refusal(_text(tmp_path, sinks=kafka))
    assert message.startswith("sinks.kafka.security_protocol: SASL PLAIN without TLS")
    assert "kafka-secret-password" not in message
    allowed = kafka + "\n    allow_insecure: true"
    assert "sinks.kafka.security_protocol" in _warnings(_text(tmp_path, sinks=allowed))
    scram = kafka.replace("PLAIN,", "SCRAM-SHA-512,")
    assert "SCRAM" in _warnings(_text(tmp_path, sinks=scram))["sinks.kafka.security_protocol"]
    local = kafka.replace("kafka-0.kafka:9092", "127.0.0.1:9092")
    assert _warnings(_text(tmp_path, sinks=local)) == {}


def test_tls_verification_off_and_public_metrics_are_warned(tmp_path: Path) -> None:
    syslog = """  siem:
    type: syslog
    host: siem.example.com
    transport: tls
    tls: {verify: false}"""
    warnings = _warnings(_text(tmp_path, sinks=syslog, top="metrics: {listen: '0.0.0.0:9108'}"))
    assert set(warnings) == {"sinks.siem.tls.verify", "metrics.listen"}
    assert "certificate verification is off" in warnings["sinks.siem.tls.verify"]
    assert "without authentication" in warnings["metrics.listen"]
    meant = _text(tmp_path, top="metrics: {listen: '0.0.0.0:9108', allow_insecure: true}")
    assert _warnings(meant) == {}


def test_check_config_prints_each_warning_and_exits_2_on_a_refusal(tmp_path: Path) -> None:
    config = tmp_path / "forwarder.yaml"
    config.write_text(_text(tmp_path, top="metrics: {listen: '0.0.0.0:9108'}"))
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert b"forwarder: warning: metrics.listen: /metrics and /readyz" in result.stderr
    assert result.stdout.startswith(b"config OK")
    config.write_text(_text(tmp_path, calendly_url="http://api.calendly.com"))
    refused = run_cli("check-config", "--config", str(config))
    assert refused.returncode == 2
    assert refused.stderr.startswith(b"forwarder: config error: sources.cal.base_url: http://")


def test_the_daemon_lists_insecure_settings_in_readyz(tmp_path: Path) -> None:
    config = parse_config(_text(tmp_path, top="metrics: {listen: '0.0.0.0:9108'}"), {})
    _, detail = Daemon(config).readiness()
    assert len(detail["warnings"]) == 1
    assert detail["warnings"][0].startswith("metrics.listen: /metrics and /readyz")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("api.localhost", True), ("0.0.0.0", False), ("", False), ("10.1.1.1", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
