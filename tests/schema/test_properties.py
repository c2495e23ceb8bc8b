"""Property tests: whatever the APIs send, normalization either maps it or raises
MalformedRecordError, and what it produces always serializes."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarder.schema.calendly import normalize_entry
from forwarder.schema.errors import REASONS, MalformedRecordError
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.ids import calendly_event_key, google_event_key
from forwarder.schema.normalize_stream import normalize_payload

from .builders import INGESTED, calendly_entry, user_actor

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Text that stresses encoders and renderers: emoji (astral plane), right-to-left text and
# overrides, control characters, NUL, JSON/format syntax; plus arbitrary Unicode.
_TRICKY = st.sampled_from(
    [
        "😀👩🏽‍💻",
        "مرحبا بالعالم",
        "שלום\u202eevil\u202c",
        "\x00\x01\x1b[31m\x7f",
        "line\nbreak\r\ttab",
        "{actor} {access_level} {{}} %s",
        '"quoted" \\ backslash',
        "\ufeff\u200b\u2028\u2029",
        "",
    ]
)
TEXT = st.one_of(_TRICKY, st.text(max_size=40))
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# JSON values as orjson.loads produces them (floats finite so records round-trip).
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
INT_TEXT = st.one_of(INT64.map(str), st.integers().map(str), TEXT)


def _parameter_value(parameters: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[Any]:
    """One parameter's value key, with well-typed and ill-typed values mixed."""
    return st.one_of(
        st.fixed_dictionaries({"value": st.one_of(TEXT, JSON_VALUES)}),
        st.fixed_dictionaries({"intValue": st.one_of(INT_TEXT, JSON_VALUES)}),
        st.fixed_dictionaries({"boolValue": st.one_of(st.booleans(), JSON_VALUES)}),
        st.fixed_dictionaries({"multiValue": st.one_of(st.lists(TEXT), JSON_VALUES)}),
        st.fixed_dictionaries({"multiIntValue": st.one_of(st.lists(INT_TEXT), JSON_VALUES)}),
        st.fixed_dictionaries(
            {
                "messageValue": st.one_of(
                    st.fixed_dictionaries({"parameter": parameters}), JSON_VALUES
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "multiMessageValue": st.lists(
                    st.one_of(st.fixed_dictionaries({"parameter": parameters}), JSON_VALUES),
                    max_size=3,
                )
            }
        ),
        st.just({}),
    )


def _parameter(parameters: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[Any]:
    names = st.one_of(
        st.sampled_from(
            [
                "start_time",
                "end_time",
                "requested_period_start",
                "event_title",
                "grantee_email",
                "event_guest",
            ]
        ),
        TEXT,
    )
    named = st.builds(
        lambda name, value: {"name": name, **value}, names, _parameter_value(parameters)
    )
    return st.one_of(named, named, named, JSON_VALUES)


PARAMETER_LISTS = st.recursive(
    st.just([]), lambda inner: st.lists(_parameter(inner), max_size=5), max_leaves=20
)
EVENT_NAMES = st.one_of(st.sampled_from(sorted(CALENDAR_EVENTS)), TEXT.filter(bool))


@st.composite
def activities(draw: st.DrawFn) -> dict[str, Any]:
    """Activities that can be identified, with anything in every other field."""
    events = draw(
        st.lists(
            st.builds(
                lambda name, parameters, type_: {
                    "name": name,
                    "parameters": parameters,
                    "type": type_,
                },
                EVENT_NAMES,
                PARAMETER_LISTS,
                st.one_of(TEXT, JSON_VALUES),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2025-04-01T07:03:12.345Z",
            "uniqueQualifier": draw(st.one_of(INT64.map(str), TEXT.filter(bool))),
            "customerId": draw(st.one_of(TEXT, JSON_VALUES)),
        },
        "actor": draw(
            st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "email": st.one_of(TEXT, JSON_VALUES),
                        "profileId": TEXT,
                        "callerType": TEXT,
                        "key": TEXT,
                        "applicationInfo": JSON_VALUES,
                    },
                ),
                JSON_VALUES,
            )
        ),
        "ipAddress": draw(st.one_of(TEXT, st.ip_addresses().map(str), JSON_VALUES)),
        "networkInfo": draw(JSON_VALUES),
        "resourceDetails": draw(JSON_VALUES),
        "events": events,
    }


def _check_document(document: dict[str, Any], record: Any) -> None:
    encoded = orjson.dumps(document)
    assert orjson.loads(encoded) == document
    assert orjson.loads(document["event"]["original"]) == record
    assert isinstance(document["message"], str)


@PROPERTY_SETTINGS
@given(activities())
def test_identifiable_activities_always_map_and_serialize(record: dict[str, Any]) -> None:
    events = normalize_activity(record, ingested=INGESTED)
    assert len(events) == len(record["events"])
    assert len({event.id for event in events}) == len(events)
    for index, event in enumerate(events):
        _check_document(event.document, record)
        assert event.document["google_workspace"]["event_index"] == index
        assert event.action == record["events"][index]["name"]
        # Parameters are always an object keyed by name, whatever came in.
        assert isinstance(event.document["google_workspace"]["calendar"]["parameters"], dict)
        for problem in event.document["google_workspace"].get("decode_problems", []):
            assert set(problem) == {"field", "problem"}


# Anything at all where an activity is expected, including unserializable integers.
ANY_RECORDS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "id",
                        "events",
                        "time",
                        "uniqueQualifier",
                        "name",
                        "parameters",
                        "actor",
                        "uri",
                        "occurred_at",
                        "namespace",
                        "action",
                        "details",
                    ]
                ),
                TEXT,
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=25,
)


@PROPERTY_SETTINGS
@given(ANY_RECORDS)
def test_arbitrary_google_input_raises_only_malformed_record_error(record: Any) -> None:
    try:
        events = normalize_activity(record, ingested=INGESTED)
    except MalformedRecordError as error:
        assert error.reason in REASONS
        assert error.detail
    else:
        for event in events:
            orjson.dumps(event.document)


@PROPERTY_SETTINGS
@given(ANY_RECORDS)
def test_arbitrary_calendly_input_raises_only_malformed_record_error(record: Any) -> None:
    try:
        event = normalize_entry(record, ingested=INGESTED)
    except MalformedRecordError as error:
        assert error.reason in REASONS
    else:
        orjson.dumps(event.document)


@PROPERTY_SETTINGS
@given(
    namespace=TEXT.filter(bool),
    action=TEXT.filter(bool),
    display_name=TEXT,
    details=JSON_VALUES,
    actor_type=st.sampled_from(["User", "System", "Robot"]),
)
def test_calendly_unicode_entries_map_and_serialize(
    namespace: str, action: str, display_name: str, details: Any, actor_type: str
) -> None:
    actor = user_actor()
    actor["display_name"] = display_name
    actor["type"] = actor_type
    entry = calendly_entry(namespace, action, actor=actor)
    entry["details"] = details
    event = normalize_entry(entry, ingested=INGESTED)
    _check_document(event.document, entry)
    assert event.action == f"{namespace}.{action}"
    if display_name:
        assert event.document["message"].startswith(display_name + ": ")


@PROPERTY_SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["calendly", "google_calendar"]))
def test_normalize_payload_never_raises(data: bytes, provider: str) -> None:
    events, failures = normalize_payload(provider, data, ingested=INGESTED)
    for _record, error in failures:
        assert isinstance(error, MalformedRecordError)
    for event in events:
        orjson.dumps(event.document)


@PROPERTY_SETTINGS
@given(TEXT, TEXT, st.integers(min_value=0, max_value=1000), TEXT)
def test_ids_are_pure_functions(time: str, qualifier: str, index: int, uri: str) -> None:
    assert google_event_key(time, qualifier, index) == google_event_key(time, qualifier, index)
    assert google_event_key(time, qualifier, index) != google_event_key(time, qualifier, index + 1)
    assert calendly_event_key(uri) == calendly_event_key(uri)
    assert calendly_event_key(uri) != calendly_event_key(uri + "x")
