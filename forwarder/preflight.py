"""``forwarder check-config --online``: try every component against its real peer once,
with the real clients, and say per component what failed and the likely fix.

Sources obtain their credentials (a Google access token) and read one page; sinks connect
and run the cheapest check their protocol allows (Kafka: bootstrap and cluster metadata;
syslog: TCP connect and TLS handshake; HTTP: one request carrying no event). Nothing is
delivered, no cursor is read or written, and no file is created. Every check is bounded by
a timeout, and every text shown goes through the redactor (a peer may echo a secret).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from forwarder.checkpoint.writable import write_problem
from forwarder.clock import SystemClock
from forwarder.config.loader import ConfigError, collect_secrets
from forwarder.config.model import (
    CalendlySourceConfig,
    Config,
    FileSinkConfig,
    GoogleCalendarSourceConfig,
    HttpSinkConfig,
    KafkaSinkConfig,
    SinkConfig,
    SourceConfig,
    SyslogSinkConfig,
)
from forwarder.observability.metrics import Metrics
from forwarder.observability.redact import Redactor
from forwarder.sources.base import CredentialsError, SourceError

DEFAULT_TIMEOUT = 15.0
_NETWORK = (
    "check the address, that the peer is up, and that the network (proxy, firewall) lets "
    "this host reach it"
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one component's check: ``ok``, ``detail`` (what was checked, or what
    failed) and, on failure, the likely ``fix``."""

    component: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False

    def line(self) -> str:
        status = "skip  " if self.skipped else "ok    " if self.ok else "FAILED"
        fix = f"; fix: {self.fix}" if self.fix and not self.ok else ""
        return f"{status} {self.component}: {self.detail}{fix}"


async def check_online(
    config: Config, *, per_check: float = DEFAULT_TIMEOUT, skip: frozenset[str] = frozenset()
) -> list[Outcome]:
    """One :class:`Outcome` per source and sink, in the config's order, the checks run
    concurrently, each within ``per_check`` seconds. Components in ``skip`` (a key such as
    ``sources.calendly``) are reported as not checked."""
    redactor = Redactor(collect_secrets(config))
    # aiokafka logs each refused connection (to stderr, logging being unconfigured here):
    # the component's line says it once.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    logging.getLogger("aiokafka").propagate = False
    checks: list[tuple[str, Callable[[], Awaitable[Outcome]], str]] = []
    for source_id, source in config.sources.items():
        key = f"sources.{source_id}"
        checks.append((key, _source_check(key, source_id, source, per_check, redactor), _NETWORK))
    for sink_id, sink in config.sinks.items():
        key = f"sinks.{sink_id}"
        checks.append((key, _sink_check(key, sink_id, sink, redactor), _sink_network(sink)))
    results = await asyncio.gather(
        *(
            _skipped(key) if key in skip else _bounded(key, check, per_check, fix)
            for key, check, fix in checks
        )
    )
    return [
        Outcome(
            result.component,
            result.ok,
            redactor.redact(result.detail),
            result.fix,
            result.skipped,
        )
        for result in results
    ]


async def _skipped(key: str) -> Outcome:
    return Outcome(
        key,
        True,
        "not checked: served by the built-in demo simulators, which only `forwarder run` starts",
        skipped=True,
    )


async def _bounded(
    key: str, check: Callable[[], Awaitable[Outcome]], limit: float, fix: str
) -> Outcome:
    try:
        return await asyncio.wait_for(check(), limit)
    except TimeoutError:
        return Outcome(key, False, f"no answer within {limit:g}s", fix)
    except ConfigError as error:
        return Outcome(key, False, f"config error: {error.problem}", f"correct {error.key}")
    except Exception as error:  # a diagnostic reports whatever a client raised, per component
        return Outcome(key, False, f"{type(error).__name__}: {error}", fix)


def _sink_network(config: SinkConfig) -> str:
    if isinstance(config, KafkaSinkConfig):
        return (
            "check bootstrap_servers, that the brokers are up and that their advertised "
            "listeners are reachable from this host (and security_protocol matches the port)"
        )
    if isinstance(config, SyslogSinkConfig):
        return "check host, port and transport, and that the receiver listens there"
    return _NETWORK


# -- sources -------------------------------------------------------------------------------


def _source_check(
    key: str, source_id: str, config: SourceConfig, timeout: float, redactor: Redactor
) -> Callable[[], Awaitable[Outcome]]:
    async def check() -> Outcome:
        from forwarder.daemon import build_source

        # One attempt, no retry: a pre-flight reports, it does not wait out an outage.
        quick = config.model_copy(
            update={"max_attempts": 1, "request_timeout": min(config.request_timeout, timeout)}
        )
        source = build_source(source_id, quick, Metrics(), SystemClock(), redactor)
        try:
            count = await source.probe()  # type: ignore[attr-defined]
        except CredentialsError as error:
            # The source's own advice (after "; ") is replaced by the fix.
            what = str(error).split("; ", 1)[0]
            return Outcome(key, False, what, _credentials_fix(key, config, str(error)))
        except SourceError as error:
            what = str(error)
            if what.endswith("TimeoutError"):
                what += f" (no answer within {quick.request_timeout:g}s)"
            return Outcome(key, False, what, f"{_NETWORK} (base_url: {config.base_url})")
        finally:
            await source.aclose()
        what = "access token obtained, " if isinstance(config, GoogleCalendarSourceConfig) else ""
        return Outcome(key, True, f"{what}read one page ({count} record(s)) from {config.base_url}")

    return check


def _credentials_fix(key: str, config: SourceConfig, message: str) -> str:
    if isinstance(config, CalendlySourceConfig):
        return (
            f"put a valid Calendly token in {key}.token_file (an owner or admin's personal "
            "access token or OAuth token with activity_log:read, on an Enterprise plan)"
        )
    if "token request refused" in message or "cannot sign" in message:
        return (
            f"create a new JSON key for the service account ({key}.credentials_file), and "
            "check that domain-wide delegation grants its client id the scope "
            "admin.reports.audit.readonly and that delegated_admin exists"
        )
    return (
        f"give {key}.delegated_admin the Reports admin privilege, and the service account's "
        "client id the scope admin.reports.audit.readonly (domain-wide delegation)"
    )


# -- sinks ---------------------------------------------------------------------------------


def _sink_check(
    key: str, sink_id: str, config: SinkConfig, redactor: Redactor
) -> Callable[[], Awaitable[Outcome]]:
    async def check() -> Outcome:
        if isinstance(config, FileSinkConfig):
            problem = write_problem(Path(config.path), directory=False)
            if problem is not None:
                return Outcome(
                    key,
                    False,
                    problem,
                    f"give the forwarder's user write access or change {key}.path",
                )
            return Outcome(key, True, f"{config.path} can be written (nothing written now)")
        if isinstance(config, KafkaSinkConfig):
            return await _kafka(key, sink_id, config)
        if isinstance(config, SyslogSinkConfig):
            return await _syslog(key, sink_id, config)
        if isinstance(config, HttpSinkConfig):
            return await _http(key, sink_id, config, redactor)
        return Outcome(key, True, "writes to standard output")

    return check


async def _kafka(key: str, sink_id: str, config: KafkaSinkConfig) -> Outcome:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from forwarder.sinks.kafka import producer_options

    producer = AIOKafkaProducer(**producer_options(sink_id, config))
    try:
        await producer.start()  # bootstrap: connect, authenticate, read the cluster metadata
        brokers = len(producer.client.cluster.brokers())
    except KafkaError as error:
        fix = _sink_network(config)
        text = str(error) or type(error).__name__
        if isinstance(error, KafkaConnectionError):
            text = "no broker answered (connection refused, unreachable or not Kafka)"
        elif "SASL" in text or "Authentication" in text:
            fix = f"check {key}.sasl (mechanism, username, password) against the broker's users"
        servers = ", ".join(config.bootstrap_servers)
        return Outcome(key, False, f"cannot bootstrap from {servers}: {text}", fix)
    finally:
        await producer.stop()
    return Outcome(
        key, True, f"connected to {', '.join(config.bootstrap_servers)}: {brokers} broker(s)"
    )


async def _syslog(key: str, sink_id: str, config: SyslogSinkConfig) -> Outcome:
    from forwarder.sinks.syslog.sink import build_transport
    from forwarder.sinks.syslog.transport import TransportError

    transport = build_transport(sink_id, config)
    try:
        await transport.open()
    except TransportError as error:
        return Outcome(key, False, str(error), _syslog_fix(key, config, str(error)))
    finally:
        await transport.close()
    if config.transport == "udp":
        return Outcome(key, True, f"udp {config.host} resolved (UDP cannot confirm a receiver)")
    done = "connected, TLS handshake done" if config.transport == "tls" else "connected"
    return Outcome(key, True, f"{done} ({config.transport} {config.host})")


def _syslog_fix(key: str, config: SyslogSinkConfig, message: str) -> str:
    if "CERTIFICATE_VERIFY_FAILED" in message or "certificate verify failed" in message:
        return (
            f"set {key}.tls.ca_file to the CA that signed the receiver's certificate, and "
            f"{key}.server_name (or host) to a name the certificate holds"
        )
    if "WRONG_VERSION_NUMBER" in message or "SSL" in message:
        return "check that the port speaks TLS (transport: tls) and the TLS settings"
    return _sink_network(config)


async def _http(key: str, sink_id: str, config: HttpSinkConfig, redactor: Redactor) -> Outcome:
    from forwarder.daemon import build_sink
    from forwarder.sinks.http import HttpSink

    sink = build_sink(sink_id, config, Metrics(), redactor)
    assert isinstance(sink, HttpSink)
    try:
        status, answer = await sink.probe()
    except (aiohttp.ClientError, OSError) as error:
        return Outcome(key, False, f"POST {config.url} failed: {error}", _NETWORK)
    finally:
        await sink.aclose()
    said = f": {answer}" if answer else ""
    if 200 <= status < 300:
        return Outcome(key, True, f"HTTP {status} to an empty request")
    if status in (401, 403, 407):
        return Outcome(
            key,
            False,
            f"HTTP {status}, credentials refused{said}",
            f"check {key}.auth (or header_files) against the receiver's tokens and their rights",
        )
    if status in (404, 405):
        return Outcome(
            key,
            False,
            f"HTTP {status}, no such endpoint{said}",
            f"check {key}.url (the path of the receiver's ingest endpoint) and encoding",
        )
    if 300 <= status < 400:
        return Outcome(key, False, f"HTTP {status} redirect", f"set {key}.url to the final address")
    if 400 <= status < 500:
        # Credentials passed, the request reached the endpoint; an empty body is refused
        # by some receivers (HEC: "No data", _bulk: "request body is required").
        return Outcome(
            key, True, f"reachable, credentials accepted (HTTP {status} to an empty request)"
        )
    return Outcome(key, False, f"HTTP {status}{said}", "the receiver is failing: check its health")
