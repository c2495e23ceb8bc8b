"""The syslog sink: RFC 5424 (or RFC 3164) messages carrying the event as JSON, CEF or
LEEF, over UDP, TCP or TLS (RFC 5425).

Layout: :mod:`.fields` (codes, severity, escaping, limits), :mod:`.rfc5424` and
:mod:`.rfc3164` (message encoders), :mod:`.payloads`, :mod:`.cef`, :mod:`.leef` and
:mod:`.mapping` (what MSG carries), :mod:`.transport` (sockets and framing), :mod:`.sink`.
"""

from __future__ import annotations

from forwarder.sinks.syslog.sink import SyslogSink

__all__ = ["SyslogSink"]
