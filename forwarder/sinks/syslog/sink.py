"""The syslog sink: one RFC 5424 (or RFC 3164) message per event over UDP, TCP or TLS."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

import orjson

from forwarder.config.model import SyslogSinkConfig, TlsConfig
from forwarder.events import Event
from forwarder.observability.logging import get_logger
from forwarder.observability.metrics import Metrics
from forwarder.sinks.base import SendResult
from forwarder.sinks.syslog.fields import FACILITY_CODES, SEVERITY_CODES, cut_utf8
from forwarder.sinks.syslog.payloads import build_payload
from forwarder.sinks.syslog.rfc3164 import Rfc3164Encoder
from forwarder.sinks.syslog.rfc5424 import Rfc5424Encoder
from forwarder.sinks.syslog.transport import (
    StreamTransport,
    Transport,
    TransportError,
    UdpTransport,
)
from forwarder.sinks.tls import client_context

DEFAULT_PORTS = {"udp": 514, "tcp": 514, "tls": 6514}


def build_encoder(config: SyslogSinkConfig) -> Rfc5424Encoder | Rfc3164Encoder:
    """The message encoder the configuration asks for."""
    payload = build_payload(config)
    facility = FACILITY_CODES[config.facility]
    severity = None if config.severity == "auto" else SEVERITY_CODES[config.severity]
    hostname = config.hostname or socket.gethostname()
    procid = str(os.getpid())
    if config.protocol == "rfc3164":
        return Rfc3164Encoder(
            payload,
            facility=facility,
            severity=severity,
            hostname=hostname,
            app_name=config.app_name,
            procid=procid,
        )
    return Rfc5424Encoder(
        payload,
        facility=facility,
        severity=severity,
        hostname=hostname,
        app_name=config.app_name,
        procid=procid,
        msgid=config.msgid,
        sd_id=config.sd_id,
        timestamp_precision=config.timestamp_precision,
        bom=config.bom,
    )


def build_transport(sink_id: str, config: SyslogSinkConfig) -> Transport:
    """The transport the configuration asks for; reads the TLS files now (a ConfigError
    names the key)."""
    port = config.port or DEFAULT_PORTS[config.transport]
    if config.transport == "udp":
        return UdpTransport(config.host, port)
    context = None
    if config.transport == "tls":
        context = client_context(config.tls or TlsConfig(), f"sinks.{sink_id}.tls")
    return StreamTransport(
        config.host,
        port,
        framing=config.framing,
        ssl_context=context,
        server_hostname=config.server_name or config.host,
        connect_timeout=config.connect_timeout,
        write_timeout=config.write_timeout,
    )


class SyslogSink:
    """Sends each event as one syslog message and acknowledges a batch once every message
    was handed over (see :mod:`forwarder.sinks.syslog.transport` for what that guarantees
    per transport: the kernel's send buffer, not the receiver's disk).

    Messages longer than the transport's limit (``max_udp_bytes`` for UDP,
    ``max_message_bytes`` for TCP/TLS) are cut on a UTF-8 character boundary and counted in
    ``forwarder_sink_truncated_events_total``. No message carries a raw control character
    or line separator (header fields are printable ASCII; structured data, CEF and LEEF
    escape them, the JSON payload writes them as ``\\u`` escapes), so no receiver can see
    a message split; with LF framing an LF would still be written as ``\\n`` (a guard: none
    is left by then). On a connection failure the
    whole batch is reported for retry (UDP: the messages not yet sent), the connection is
    dropped and the next send reconnects; the sink worker backs off meanwhile, so the
    cursor waits and nothing is dropped. An event that cannot be encoded at all is
    rejected (dead-lettered) as ``unencodable``.
    """

    def __init__(self, sink_id: str, config: SyslogSinkConfig, metrics: Metrics) -> None:
        self.id = sink_id
        self.format = config.format
        # Severity, CEF and LEEF fields come from the document.
        self.reads_documents = True
        self._encoder = build_encoder(config)
        self._transport = build_transport(sink_id, config)
        udp = config.transport == "udp"
        self._limit = config.max_udp_bytes if udp else config.max_message_bytes
        self._escape_lf = not udp and config.framing == "lf"
        self._truncated = metrics.truncated_events.labels(sink_id)
        self._log = get_logger("forwarder.sink.syslog", sink=sink_id)

    async def start(self) -> None:
        try:
            await self._transport.open()
        except TransportError as error:
            self._log.warning("syslog_unavailable_at_start", error=str(error))

    def _encode(self, event: Event) -> tuple[bytes, bool]:
        message = self._encoder.encode(event)
        if self._escape_lf and b"\n" in message:
            message = message.replace(b"\n", b"\\n")
        if len(message) > self._limit:
            return cut_utf8(message, self._limit), True
        return message, False

    async def send(self, events: Sequence[Event]) -> SendResult:
        messages: list[bytes] = []
        positions: list[int] = []  # index in `events` of each message
        truncated: list[int] = []  # index in `messages` of each cut message
        rejected: dict[int, str] = {}
        for index, event in enumerate(events):
            try:
                message, cut = self._encode(event)
            except orjson.JSONEncodeError:
                # orjson refuses the document (e.g. non-string keys): no retry can help.
                rejected[index] = "unencodable"
                continue
            if cut:
                truncated.append(len(messages))
            messages.append(message)
            positions.append(index)
        if not messages:
            return SendResult(rejected=rejected)
        try:
            await self._transport.send(messages)
        except TransportError as error:
            self._count_truncated(truncated, error.sent)
            return SendResult(
                retry=str(error),
                rejected=rejected,
                delivered=frozenset(positions[: error.sent]),
            )
        self._count_truncated(truncated, len(messages))
        return SendResult(rejected=rejected)

    def _count_truncated(self, truncated: list[int], sent: int) -> None:
        count = sum(1 for index in truncated if index < sent)
        if count:
            self._truncated.inc(count)

    async def aclose(self) -> None:
        await self._transport.close()
