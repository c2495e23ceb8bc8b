"""Property tests: whatever the APIs send that the normalizers accept, ``to_ocsf`` never
raises, its output serializes with orjson, and it validates against OCSF 1.7.0."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from forwarder.events import Event
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.ocsf import to_ocsf
from forwarder.schema.ocsf.classes import CLASSES
from forwarder.schema.ocsf.common import rfc3339_millis
from forwarder.schema.ocsf.validate import OcsfSchema, validate_ocsf

from ..builders import INGESTED, activity, calendly_entry

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CLASS_UIDS = {cls.uid for cls in CLASSES}

# Strings that stress encoders and validators, plus arbitrary Unicode.
TRICKY = st.sampled_from(
    [
        "",
        "😀👩🏽‍💻",
        "مرحبا\u202e",
        "a\x00b\n",
        '{"json": [1]}',
        "{actor}",
        "none",
        "josé@exämple.com",
        "bob@y.com\n",
        "http://[::1",
    ]
)
TEXT = st.one_of(TRICKY, st.text(max_size=20))
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
PARAMETER_NAMES = sorted({name for spec in CALENDAR_EVENTS.values() for name in spec.parameters})


@st.composite
def parameters(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    name = draw(st.sampled_from(PARAMETER_NAMES) | TEXT)
    values = [
        st.fixed_dictionaries({"value": TEXT | JSON}),
        st.fixed_dictionaries({"intValue": st.integers().map(str) | TEXT | INT64}),
        st.fixed_dictionaries({"boolValue": st.booleans() | TEXT}),
        st.fixed_dictionaries({"multiValue": st.lists(TEXT, max_size=3) | JSON}),
        st.fixed_dictionaries({"multiIntValue": st.lists(INT64.map(str), max_size=3)}),
        st.just({}),
    ]
    if depth < 2:
        nested = st.lists(parameters(depth + 1), max_size=2)
        values.append(
            st.fixed_dictionaries({"messageValue": st.fixed_dictionaries({"parameter": nested})})
        )
    return {"name": name, **draw(st.one_of(values))}


@st.composite
def google_activities(draw: st.DrawFn) -> dict[str, Any]:
    names = st.sampled_from(sorted(CALENDAR_EVENTS)) | TEXT.filter(bool)
    events = draw(
        st.lists(
            st.fixed_dictionaries(
                {"name": names, "parameters": st.lists(parameters(), max_size=6)},
                optional={"type": TEXT, "resourceIds": st.lists(TEXT, max_size=2) | JSON},
            ),
            min_size=1,
            max_size=3,
        )
    )
    record = activity(
        *events,
        email=draw(st.none() | st.emails() | TEXT),
        profile_id=draw(st.none() | TEXT),
        ip=draw(st.none() | st.ip_addresses().map(str) | TEXT),
        customer_id=draw(TEXT),
    )
    actor = record["actor"]
    actor["callerType"] = draw(st.sampled_from(["USER", "KEY", ""]) | JSON)
    if draw(st.booleans()):
        actor["key"] = draw(TEXT | JSON)
    if draw(st.booleans()):
        actor["applicationInfo"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "applicationName": TEXT | JSON,
                    "oauthClientId": TEXT,
                    "impersonation": JSON,
                },
            )
            | JSON
        )
    if draw(st.booleans()):
        record["networkInfo"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "ipAsn": st.lists(INT64, max_size=2) | JSON,
                    "regionCode": TEXT | JSON,
                    "subdivisionCode": TEXT,
                },
            )
            | JSON
        )
    if draw(st.booleans()):
        record["resourceDetails"] = draw(st.lists(JSON, max_size=2) | JSON)
    record["ownerDomain"] = draw(TEXT | JSON)
    return record


CALENDLY_NAMES = st.sampled_from(
    sorted(
        (namespace, action) for namespace, c in CALENDLY_CATEGORIES.items() for action in c.actions
    )
) | st.tuples(TEXT.filter(bool), TEXT.filter(bool))


@st.composite
def calendly_entries(draw: st.DrawFn) -> dict[str, Any]:
    namespace, action = draw(CALENDLY_NAMES)
    actor = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["User", "System"]) | TEXT | JSON,
                "uri": TEXT | JSON,
                "display_name": TEXT | JSON,
                "alternative_identifier": st.emails() | TEXT | JSON,
                "organization": st.fixed_dictionaries(
                    {}, optional={"uri": TEXT | JSON, "role": TEXT | JSON}
                )
                | JSON,
                "group": st.fixed_dictionaries(
                    {}, optional={"uri": TEXT, "name": TEXT | JSON, "role": TEXT}
                )
                | JSON,
            },
        )
    )
    # Shapes the ECS normalizer reads out of details (target user, client address).
    details = st.fixed_dictionaries(
        {},
        optional={
            "user": TEXT
            | JSON
            | st.fixed_dictionaries(
                {}, optional={"email": st.emails() | TEXT, "uri": TEXT, "name": TEXT | JSON}
            ),
            "ip_address": st.ip_addresses().map(str) | TEXT,
            "user_agent": TEXT | JSON,
        },
    )
    entry = calendly_entry(namespace, action, actor=actor, details=draw(details | JSON))
    if draw(st.booleans()):
        entry["details"] = draw(JSON)  # not even an object
    if draw(st.booleans()):
        entry["organization"] = draw(st.none() | TEXT | JSON)
    if draw(st.booleans()):
        del entry["actor"]
    return entry


def _check(event: Event, schema: OcsfSchema) -> None:
    document = to_ocsf(event)
    encoded = orjson.dumps(document)
    assert orjson.loads(encoded) == document
    assert validate_ocsf(document, schema, allow_deprecated=False) == []
    assert document["class_uid"] in CLASS_UIDS
    assert document["metadata"]["uid"] == event.id
    # The same millisecond as the ECS @timestamp.
    assert document["time"] == rfc3339_millis(event.document["@timestamp"])


@PROPERTY_SETTINGS
@given(record=google_activities())
def test_google_events_always_map_and_validate(
    record: dict[str, Any], ocsf_schema: OcsfSchema
) -> None:
    try:
        events = normalize_activity(record, ingested=INGESTED)
    except MalformedRecordError:
        assume(False)
        return
    for event in events:
        _check(event, ocsf_schema)


@PROPERTY_SETTINGS
@given(entry=calendly_entries())
def test_calendly_events_always_map_and_validate(
    entry: dict[str, Any], ocsf_schema: OcsfSchema
) -> None:
    try:
        event = normalize_entry(entry, ingested=INGESTED)
    except MalformedRecordError:
        assume(False)
        return
    _check(event, ocsf_schema)
