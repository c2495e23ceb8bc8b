"""The MSG part of a syslog message: the event as JSON, CEF or LEEF."""

from __future__ import annotations

from typing import Protocol

from forwarder.config.model import SyslogSinkConfig
from forwarder.events import Event


class Payload(Protocol):
    def encode(self, event: Event, severity: int) -> bytes:
        """The MSG bytes (UTF-8) of ``event``; ``severity`` is its syslog severity code."""
        ...


class JsonPayload:
    """The event as JSON in the configured format (``ecs`` or ``raw``), shared with every
    other sink of that format (``Event.encoded`` caches it)."""

    def __init__(self, fmt: str) -> None:
        self._format = fmt

    def encode(self, event: Event, severity: int) -> bytes:
        return event.encoded(self._format)


def build_payload(config: SyslogSinkConfig) -> Payload:
    if config.payload == "cef":
        from forwarder.sinks.syslog.cef import CefPayload

        return CefPayload()
    if config.payload == "leef":
        from forwarder.sinks.syslog.leef import LeefPayload

        return LeefPayload()
    return JsonPayload(config.format)
