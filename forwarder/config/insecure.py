"""Insecure settings: refused when they would send a credential in clear, loud otherwise.

A forwarder of audit logs holds an API token for every source and a credential for most
sinks. A config that sends one of them over plain HTTP to another host, or that turns
certificate checks off, passes every schema check; so it is looked at here: credentials
in clear to a host that is not loopback are refused (exit 2) unless the component's
``allow_insecure: true`` says an operator meant it, and every other weak setting is a
warning printed by ``check-config``, logged at start and listed in ``/readyz``.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import orjson

from forwarder.config.model import (
    CalendlySourceConfig,
    Config,
    GoogleCalendarSourceConfig,
    HttpSinkConfig,
    KafkaSinkConfig,
    SyslogSinkConfig,
    TlsConfig,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One insecure setting: ``key`` names it; ``refused`` when it would send a
    credential in clear and the component does not say ``allow_insecure: true``."""

    key: str
    message: str
    refused: bool = False


def insecure_settings(config: Config) -> list[Finding]:
    """Every insecure setting of ``config``, in config order."""
    findings: list[Finding] = []
    for source_id, source in config.sources.items():
        findings.extend(_source_findings(f"sources.{source_id}", source))
    for sink_id, sink in config.sinks.items():
        key = f"sinks.{sink_id}"
        if isinstance(sink, HttpSinkConfig):
            findings.extend(_http_sink_findings(key, sink))
        elif isinstance(sink, KafkaSinkConfig):
            findings.extend(_kafka_findings(key, sink))
        if isinstance(sink, HttpSinkConfig | KafkaSinkConfig | SyslogSinkConfig):
            findings.extend(_tls_findings(f"{key}.tls", sink.tls))
    listen_host = config.metrics.listen.rpartition(":")[0].strip("[]")
    if (
        config.metrics.enabled
        and not config.metrics.allow_insecure
        and not is_loopback(listen_host)
    ):
        findings.append(
            Finding(
                "metrics.listen",
                f"/metrics and /readyz are served without authentication on "
                f"{listen_host or 'every address'}; restrict who can reach the port, then set "
                "metrics.allow_insecure: true",
            )
        )
    return findings


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (where nothing crosses a network)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _source_findings(
    key: str, source: CalendlySourceConfig | GoogleCalendarSourceConfig
) -> list[Finding]:
    urls = [("base_url", source.base_url, "its API token")]
    if isinstance(source, GoogleCalendarSourceConfig):
        token_url = source.token_url or _key_file_token_uri(source.credentials_file)
        if token_url:
            urls.append(("token_url", token_url, "the signed service-account assertion"))
    findings = []
    for name, url, what in urls:
        finding = _plain_http_credentials(f"{key}.{name}", url, what, source.allow_insecure)
        if finding is not None:
            findings.append(finding)
    return findings


def _http_sink_findings(key: str, sink: HttpSinkConfig) -> list[Finding]:
    if sink.auth is None and not sink.header_files:
        host = urllib.parse.urlsplit(sink.url).hostname
        if sink.url.startswith("http://") and not is_loopback(host):
            return [Finding(f"{key}.url", f"events are sent unencrypted to {host} (http://)")]
        return []
    finding = _plain_http_credentials(
        f"{key}.url", sink.url, "the sink's credentials", sink.allow_insecure
    )
    return [finding] if finding is not None else []


def _kafka_findings(key: str, sink: KafkaSinkConfig) -> list[Finding]:
    if sink.sasl is None or sink.security_protocol != "SASL_PLAINTEXT":
        return []
    remote = [server for server in sink.bootstrap_servers if not _server_is_loopback(server)]
    if not remote:
        return []
    if sink.sasl.mechanism == "PLAIN":
        message = (
            f"SASL PLAIN without TLS sends the password in clear to {remote[0]}; use "
            "security_protocol SASL_SSL"
        )
        if sink.allow_insecure:
            return [Finding(f"{key}.security_protocol", message + " (allowed by allow_insecure)")]
        return [
            Finding(
                f"{key}.security_protocol",
                message + ", or set allow_insecure: true on this sink",
                refused=True,
            )
        ]
    return [
        Finding(
            f"{key}.security_protocol",
            f"SASL_PLAINTEXT: events and the SCRAM exchange travel unencrypted to {remote[0]}",
        )
    ]


def _tls_findings(key: str, tls: TlsConfig | None) -> list[Finding]:
    if tls is not None and not tls.verify:
        return [
            Finding(
                f"{key}.verify",
                "certificate verification is off: anyone on the path can impersonate the "
                "receiver and read the events and credentials",
            )
        ]
    return []


def _plain_http_credentials(key: str, url: str, what: str, allowed: bool) -> Finding | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or is_loopback(parts.hostname):
        return None
    message = f"http:// sends {what} in clear to {parts.hostname}; use https://"
    if allowed:
        return Finding(key, message + " (allowed by allow_insecure)")
    return Finding(key, message + ", or set allow_insecure: true on this component", refused=True)


def _server_is_loopback(server: str) -> bool:
    host, _, port = server.rpartition(":")
    return is_loopback(host if port.isdigit() else server)


def _key_file_token_uri(path: Path) -> str | None:
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    uri = info.get("token_uri") if isinstance(info, dict) else None
    return uri if isinstance(uri, str) else None
