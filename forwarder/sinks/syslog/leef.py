"""LEEF 2.0 payload (IBM QRadar Log Event Extended Format):
``LEEF:2.0|Vendor|Product|Version|EventID|<delimiter>|key=value<delimiter>key=value``.

The delimiter is declared in the header (``x09`` for tab, the default, or the character
itself). Header fields escape ``\\`` and ``|``; attribute values escape ``\\``, the
delimiter (``\\t`` for tab, else ``\\`` + the character), newlines (``\\n``, ``\\r``) and
every other control character (``\\t``, ``\\uXXXX``: see
:data:`~forwarder.sinks.syslog.fields.CONTROL_ESCAPES`).
The attributes are in :mod:`forwarder.sinks.syslog.mapping`.
"""

from __future__ import annotations

from forwarder.events import Event
from forwarder.sinks.syslog.cef import escape_header
from forwarder.sinks.syslog.fields import CONTROL_ESCAPES, escaper
from forwarder.sinks.syslog.mapping import (
    LEEF_ATTRIBUTES,
    LEEF_DEV_TIME_FORMAT,
    LEEF_SEVERITY,
    product,
)

TAB = "\t"


class LeefPayload:
    """Encodes an event as one LEEF 2.0 line; the event id is the action."""

    def __init__(self, delimiter: str = TAB) -> None:
        if (
            len(delimiter) != 1
            or delimiter in "\\|="
            or delimiter in CONTROL_ESCAPES.keys() - {TAB}
        ):
            raise ValueError(f"unusable LEEF delimiter {delimiter!r}")
        self._delimiter = delimiter
        self._declared = f"x{ord(delimiter):02x}" if delimiter == TAB else delimiter
        self._escape = escaper(
            {
                **CONTROL_ESCAPES,
                "\\": "\\\\",
                delimiter: "\\t" if delimiter == TAB else "\\" + delimiter,
            }
        )
        self._prefixes: dict[str, str] = {}

    def _prefix(self, provider: str) -> str:
        prefix = self._prefixes.get(provider)
        if prefix is None:
            vendor, name, version = (escape_header(text) for text in product(provider).fields())
            prefix = self._prefixes[provider] = f"LEEF:2.0|{vendor}|{name}|{version}|"
        return prefix

    def encode(self, event: Event, severity: int) -> bytes:
        escape = self._escape
        attributes = [f"devTimeFormat={LEEF_DEV_TIME_FORMAT}", f"sev={LEEF_SEVERITY[severity]}"]
        for key, get in LEEF_ATTRIBUTES:
            value = get(event)
            if value is not None:
                attributes.append(f"{key}={escape(value)}")
        return (
            f"{self._prefix(event.provider)}{escape_header(event.action)}"
            f"|{self._declared}|{self._delimiter.join(attributes)}"
        ).encode()
