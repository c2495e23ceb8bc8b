"""Every documented Calendar event, with all its documented parameters, maps cleanly."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.schema.google_calendar import EVENT_MAPPINGS, normalize_activity
from forwarder.schema.google_calendar_catalog import (
    CALENDAR_EVENTS,
    EVENT_TYPES,
    CalendarEventSpec,
)
from forwarder.schema.messages import UNKNOWN, placeholders

from .builders import INGESTED, activity, gevent, param

# Integer parameters with a meaning get realistic values; the others any integer.
_INTEGERS = {
    "start_time": "63879175800",
    "end_time": "63879177600",
    "requested_period_start": "1743748267",
    "requested_period_end": "1743834667",
}
_SPECIAL_PLACEHOLDERS = {"actor", "IP_ADDRESS_IDENTIFIER"}


def _filled(name: str, kind: str) -> dict[str, Any]:
    if kind == "integer":
        return param(name, intValue=_INTEGERS.get(name, "42"))
    if kind == "boolean":
        return param(name, boolValue=True)
    return param(name, value=f"<{name}>")


def test_catalog_is_complete() -> None:
    assert len(CALENDAR_EVENTS) == 38
    assert {spec.type for spec in CALENDAR_EVENTS.values()} == set(EVENT_TYPES)
    assert set(EVENT_MAPPINGS) == set(CALENDAR_EVENTS)


@pytest.mark.parametrize("spec", list(CALENDAR_EVENTS.values()), ids=lambda spec: spec.name)
def test_placeholders_are_documented_parameters(spec: CalendarEventSpec) -> None:
    for name in placeholders(EVENT_MAPPINGS[spec.name].template):
        assert name in _SPECIAL_PLACEHOLDERS or name in spec.parameters, name


@pytest.mark.parametrize("spec", list(CALENDAR_EVENTS.values()), ids=lambda spec: spec.name)
def test_documented_event_renders_fully(spec: CalendarEventSpec) -> None:
    parameters = [_filled(name, kind) for name, kind in spec.parameters.items()]
    record = activity(gevent(spec.name, *parameters, type=spec.type), ip="192.0.2.10")
    [event] = normalize_activity(record, ingested=INGESTED)
    doc = event.document
    message = doc["message"]

    assert "{" not in message and "}" not in message
    assert UNKNOWN not in message
    for name in placeholders(EVENT_MAPPINGS[spec.name].template):
        expected = {"actor": "alice@x.com", "IP_ADDRESS_IDENTIFIER": "192.0.2.10"}.get(
            name, f"<{name}>"
        )
        assert expected in message

    calendar = doc["google_workspace"]["calendar"]
    assert calendar["event_type"] == spec.type
    assert set(calendar["parameters"]) == set(spec.parameters)
    for name, kind in spec.parameters.items():
        value = calendar["parameters"][name]
        assert type(value) is {"string": str, "integer": int, "boolean": bool}[kind], name
    if "start_time" in spec.parameters:
        assert calendar["event_start"] == "2025-04-01T07:30:00Z"
    if "requested_period_start" in spec.parameters:
        assert calendar["requested_period"]["start"].startswith("2025-04-04T")
    assert "decode_problems" not in doc["google_workspace"]


@pytest.mark.parametrize("spec", list(CALENDAR_EVENTS.values()), ids=lambda spec: spec.name)
def test_documented_event_without_parameters_still_renders(spec: CalendarEventSpec) -> None:
    [event] = normalize_activity(activity(gevent(spec.name), ip=None), ingested=INGESTED)
    message = event.document["message"]
    assert "{" not in message and "}" not in message
    assert message.strip()
