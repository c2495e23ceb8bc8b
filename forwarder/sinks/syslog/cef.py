"""CEF payload (ArcSight Common Event Format, version 0):
``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value key=value ...``.

Header fields escape ``\\`` and ``|``; extension values escape ``\\`` and ``=``; newlines
are written ``\\n`` and ``\\r`` in both (the CEF rule), and every other control character
(tab, NUL, C1, U+2028, U+2029) as ``\\t`` or ``\\uXXXX``
(:data:`~forwarder.sinks.syslog.fields.CONTROL_ESCAPES`), so that one event stays one line
and one field. The fields are in :mod:`forwarder.sinks.syslog.mapping`.
"""

from __future__ import annotations

from forwarder.events import Event
from forwarder.sinks.syslog.fields import CONTROL_ESCAPES, escaper
from forwarder.sinks.syslog.mapping import CEF_EXTENSIONS, CEF_SEVERITY, product

escape_header = escaper({**CONTROL_ESCAPES, "\\": "\\\\", "|": "\\|"})
escape_extension = escaper({**CONTROL_ESCAPES, "\\": "\\\\", "=": "\\="})


class CefPayload:
    """Encodes an event as one CEF line; the signature id is the action, the name the
    event's message."""

    def __init__(self) -> None:
        # provider -> "CEF:0|Vendor|Product|Version|", built once per provider.
        self._prefixes: dict[str, str] = {}

    def _prefix(self, provider: str) -> str:
        prefix = self._prefixes.get(provider)
        if prefix is None:
            vendor, name, version = (escape_header(text) for text in product(provider).fields())
            prefix = self._prefixes[provider] = f"CEF:0|{vendor}|{name}|{version}|"
        return prefix

    def encode(self, event: Event, severity: int) -> bytes:
        message = event.document.get("message")
        name = message if isinstance(message, str) and message else event.action
        parts = [
            self._prefix(event.provider),
            escape_header(event.action),
            "|",
            escape_header(name),
            "|",
            str(CEF_SEVERITY[severity]),
            "|",
        ]
        extension: list[str] = []
        for key, label, get in CEF_EXTENSIONS:
            value = get(event)
            if value is None:
                continue
            extension.append(f"{key}={escape_extension(value)}")
            if label is not None:
                extension.append(f"{key}Label={label}")
        parts.append(" ".join(extension))
        return "".join(parts).encode()
