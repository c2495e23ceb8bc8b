"""RFC 5424 messages:
``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID id=".." source=".." provider=".."
action=".."] BOM MSG``.

Everything that depends only on the configuration is built once; what depends on the
(source, provider) pair or on the action is cached per pair / action, so that the work
per event is the PRI, the timestamp, escaping the event id and the payload.
"""

from __future__ import annotations

import time

from forwarder.events import Event
from forwarder.sinks.syslog.fields import (
    APP_NAME_MAX,
    BOM,
    HOSTNAME_MAX,
    MSGID_MAX,
    PROCID_MAX,
    auto_severity,
    header_field,
    is_sd_name,
    sd_value,
)
from forwarder.sinks.syslog.payloads import Payload

MSGID_FROM_ACTION = "action"
# An action is a catalog name in practice; the bound only guards memory against a source
# that would invent a new one per event.
ACTION_CACHE_MAX = 4096


class Rfc3339:
    """Formats unix times as RFC 3339 UTC with microseconds (``.123456Z``) or
    milliseconds (``.123Z``, what QRadar parses); the date-time part is cached per second."""

    def __init__(self, precision: str = "microseconds") -> None:
        self._scale, self._digits = (1000, 3) if precision == "milliseconds" else (1_000_000, 6)
        self._second = -1
        self._prefix = ""

    def format(self, timestamp: float) -> str:
        seconds, fraction = divmod(round(timestamp * self._scale), self._scale)
        if seconds != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
            self._second = seconds
        return f"{self._prefix}{fraction:0{self._digits}d}Z"


class Rfc5424Encoder:
    """Builds strict RFC 5424 messages: header fields printable US-ASCII, cut to their
    limits, NILVALUE when empty; one SD element with PARAM-VALUEs escaped; MSG = optional
    BOM + the payload.

    ``severity`` is a fixed code, or ``None`` for ``auto`` (from the event's outcome and
    category, see :func:`~forwarder.sinks.syslog.fields.auto_severity`). ``msgid`` is
    ``action`` (the event's action), a fixed string, or ``-``.
    """

    def __init__(
        self,
        payload: Payload,
        *,
        facility: int,
        severity: int | None,
        hostname: str,
        app_name: str,
        procid: str,
        msgid: str = MSGID_FROM_ACTION,
        sd_id: str = "forwarder@32473",
        timestamp_precision: str = "microseconds",
        bom: bool = True,
    ) -> None:
        if not is_sd_name(sd_id):
            raise ValueError(f"invalid SD-ID {sd_id!r}")
        self._payload = payload
        self._base_pri = facility * 8
        self._severity = severity
        self._clock = Rfc3339(timestamp_precision)
        fields = (
            header_field(hostname, HOSTNAME_MAX),
            header_field(app_name, APP_NAME_MAX),
            header_field(procid, PROCID_MAX),
        )
        self._middle = f" {' '.join(fields)} "
        self._fixed_msgid = None if msgid == MSGID_FROM_ACTION else header_field(msgid, MSGID_MAX)
        self._sd_start = f' [{sd_id} id="'
        self._bom = BOM if bom else b""
        # (source, provider) -> '" source=".." provider=".." action="'
        self._routes: dict[tuple[str, str], str] = {}
        # action -> (MSGID, escaped action + '"] ')
        self._actions: dict[str, tuple[str, str]] = {}

    def _route(self, event: Event) -> str:
        key = (event.source, event.provider)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = (
                f'" source="{sd_value(event.source)}" provider="{sd_value(event.provider)}"'
                ' action="'
            )
        return route

    def _action(self, action: str) -> tuple[str, str]:
        cached = self._actions.get(action)
        if cached is None:
            msgid = self._fixed_msgid or header_field(action, MSGID_MAX)
            cached = (msgid, f'{sd_value(action)}"] ')
            if len(self._actions) < ACTION_CACHE_MAX:
                self._actions[action] = cached
        return cached

    def encode(self, event: Event) -> bytes:
        severity = self._severity
        if severity is None:
            severity = auto_severity(event.document)
        msgid, action = self._action(event.action)
        head = (
            f"<{self._base_pri + severity}>1 {self._clock.format(event.timestamp)}"
            f"{self._middle}{msgid}{self._sd_start}{sd_value(event.id)}"
            f"{self._route(event)}{action}"
        )
        return head.encode() + self._bom + self._payload.encode(event, severity)
