"""Property tests: whatever the APIs send, normalization either maps it or raises
MalformedRecordError, and what it produces always serializes."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from forwarder.schema.calendly import normalize_entry
from forwarder.schema.errors import REASONS, MalformedRecordError
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.ids import calendly_event_key, google_event_key
from forwarder.schema.messages import safe_message
from forwarder.schema.normalize_stream import normalize_payload

from .builders import INGESTED, calendly_entry, user_actor
from .strategies import ANY_RECORDS, JSON_VALUES, PROPERTY_SETTINGS, TEXT, activities


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
        # Issue 17: control and bidi characters are escaped in the message.
        assert event.document["message"].startswith(safe_message(display_name) + " ")


@PROPERTY_SETTINGS
@given(st.binary(max_size=300), st.sampled_from(["calendly", "google_calendar"]))
def test_normalize_payload_never_raises(data: bytes, provider: str) -> None:
    events, failures = normalize_payload(provider, data, ingested=INGESTED)
    for _record, error in failures:
        assert isinstance(error, MalformedRecordError)
    for event in events:
        orjson.dumps(event.document)


@PROPERTY_SETTINGS
@given(TEXT, TEXT, TEXT, st.integers(min_value=0, max_value=1000), TEXT)
def test_ids_are_pure_functions(time: str, qualifier: str, name: str, index: int, uri: str) -> None:
    key = google_event_key(None, time, qualifier, name, index)
    assert key == google_event_key(None, time, qualifier, name, index)
    assert key != google_event_key(None, time, qualifier, name, index + 1)
    assert key != google_event_key(None, time, qualifier, name + "x", index)
    assert calendly_event_key(uri) == calendly_event_key(uri)
    assert calendly_event_key(uri) != calendly_event_key(uri + "x")
