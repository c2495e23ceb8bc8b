"""Helpers for the OCSF tests: build events with the real normalizers, validate outputs."""

from __future__ import annotations

from typing import Any

import orjson

from forwarder.events import Event
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CalendarEventSpec
from forwarder.schema.ocsf import to_ocsf
from forwarder.schema.ocsf.validate import OcsfSchema, validate_ocsf

from ..builders import INGESTED, activity, calendly_entry, gevent, param

GRANTEE = "bob@y.com"
EWS_URL = "https://mail.example.com/EWS/Exchange.asmx"
# Typical values of the documented parameters (others get "<name>-value").
_STRINGS = {
    "access_level": "editor",
    "api_kind": "web",
    "calendar_id": "alice@x.com",
    "event_guest": GRANTEE,
    "grantee_email": GRANTEE,
    "recipient_email": "carol@z.org",
    "remote_ews_url": EWS_URL,
    "notification_method": "email",
    "notification_type": "event_invitation",
    "event_response_status": "accepted",
    "interop_error_code": "ERROR_TIMEOUT",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
}
_INTEGERS = {
    "start_time": "63879175800",
    "end_time": "63879177600",
    "requested_period_start": "1743748267",
    "requested_period_end": "1744353067",
}


def documented_parameters(spec: CalendarEventSpec) -> list[dict[str, Any]]:
    """Every documented parameter of ``spec``, typed as the Reports API sends it."""
    parameters = []
    for name, kind in spec.parameters.items():
        if kind == "integer":
            parameters.append(param(name, intValue=_INTEGERS.get(name, "42")))
        elif kind == "boolean":
            parameters.append(param(name, boolValue=True))
        else:
            parameters.append(param(name, value=_STRINGS.get(name, f"{name}-value")))
    return parameters


def google_event(name: str, *parameters: dict[str, Any], **record: Any) -> Event:
    """The one event of an activity holding ``name`` with ``parameters``."""
    [event] = normalize_activity(activity(gevent(name, *parameters), **record), ingested=INGESTED)
    return event


def calendly_event(namespace: str, action: str, **entry: Any) -> Event:
    return normalize_entry(calendly_entry(namespace, action, **entry), ingested=INGESTED)


def valid_ocsf(event: Event, schema: OcsfSchema, **options: Any) -> dict[str, Any]:
    """``to_ocsf(event)``, asserted to validate (no deprecated attributes either) and to
    survive an orjson round trip unchanged."""
    document = to_ocsf(event, **options)
    problems = validate_ocsf(document, schema, allow_deprecated=False)
    assert problems == [], problems
    assert orjson.loads(orjson.dumps(document)) == document
    return document
