"""The MSG part of a syslog message: the event as JSON, CEF or LEEF."""

from __future__ import annotations

import re
from typing import Protocol

from forwarder.config.model import SyslogSinkConfig
from forwarder.events import Event


class Payload(Protocol):
    def encode(self, event: Event, severity: int) -> bytes:
        """The MSG bytes (UTF-8) of ``event``; ``severity`` is its syslog severity code."""
        ...


# orjson escapes C0 controls in strings but leaves DEL, the C1 controls (U+0085 NEL among
# them) and U+2028 / U+2029 raw: some receivers end a line on them. In UTF-8 they are
# 0x7F, 0xC2 0x80-0x9F and 0xE2 0x80 0xA8-0xA9, sequences that cannot occur inside another
# character, and in JSON only inside strings: written as \u escapes they decode the same.
_JSON_RAW_CONTROL = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def _json_escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


class JsonPayload:
    """The event as JSON in the configured format (``ecs`` or ``raw``), shared with every
    other sink of that format (``Event.encoded`` caches it), with DEL, C1 controls, U+2028
    and U+2029 written as ``\\u`` escapes (still the same JSON)."""

    def __init__(self, fmt: str) -> None:
        self._format = fmt

    def encode(self, event: Event, severity: int) -> bytes:
        data = event.encoded(self._format)
        # Single-byte tests (memchr) rule out most events before the regex runs.
        if b"\x7f" in data or (not data.isascii() and (b"\xc2" in data or b"\xe2" in data)):
            return _JSON_RAW_CONTROL.sub(_json_escape, data)
        return data


def build_payload(config: SyslogSinkConfig) -> Payload:
    if config.payload == "cef":
        from forwarder.sinks.syslog.cef import CefPayload

        return CefPayload()
    if config.payload == "leef":
        from forwarder.sinks.syslog.leef import LeefPayload

        return LeefPayload()
    return JsonPayload(config.format)
