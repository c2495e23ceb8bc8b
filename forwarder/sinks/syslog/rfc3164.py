"""RFC 3164 (BSD syslog) messages, a legacy option for receivers that predate RFC 5424:
``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG``.

The timestamp is the event time in UTC (the format has neither year nor zone, and no
fraction); TAG is the app name, at most 32 alphanumeric characters (RFC 3164 section
4.1.3). There is no structured data and no BOM: the event id, source and action are in
the payload.
"""

from __future__ import annotations

import re
import time

from forwarder.events import Event
from forwarder.sinks.syslog.fields import HOSTNAME_MAX, auto_severity, header_field
from forwarder.sinks.syslog.payloads import Payload

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TAG_MAX = 32
_NOT_TAG = re.compile(r"[^A-Za-z0-9_.-]")


class Rfc3164Encoder:
    """Builds ``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`` messages."""

    def __init__(
        self,
        payload: Payload,
        *,
        facility: int,
        severity: int | None,
        hostname: str,
        app_name: str,
        procid: str,
    ) -> None:
        self._payload = payload
        self._base_pri = facility * 8
        self._severity = severity
        tag = _NOT_TAG.sub("_", app_name[:TAG_MAX]) or "forwarder"
        pid = header_field(procid, 16)
        self._tail = f" {header_field(hostname, HOSTNAME_MAX)} {tag}[{pid}]: "
        self._second = -1
        self._stamp = ""

    def _timestamp(self, timestamp: float) -> str:
        second = int(timestamp)
        if second != self._second:
            t = time.gmtime(second)
            # Day of month space-padded: "Jan  5".
            self._stamp = (
                f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} "
                f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            )
            self._second = second
        return self._stamp

    def encode(self, event: Event) -> bytes:
        severity = self._severity
        if severity is None:
            severity = auto_severity(event.document)
        head = f"<{self._base_pri + severity}>{self._timestamp(event.timestamp)}{self._tail}"
        return head.encode() + self._payload.encode(event, severity)
