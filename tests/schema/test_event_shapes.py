"""Issue 17, part S1: ``event.id`` names the event, and the one-event-per-record shape
(``"events": {...}``, as collectors and archives such as Elastic's store Google activities)
normalizes to the same ids and documents as the API's ``events[]`` array.

The records are built like Elastic's Google Workspace calendar test data: one record per
event, ``events`` an object, every ``uniqueQualifier`` and ``customerId`` "1", and sibling
events of one activity sharing ``id.time`` (which is what made the positional ids of the
release before collide).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.ids import (
    google_activity_event_keys,
    google_event_key,
    legacy_google_event_key,
)
from forwarder.schema.normalize_stream import normalize_payload

from .builders import INGESTED, activity, gevent, param

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(CALENDAR_EVENTS)
# The fields that describe the record in hand rather than the event: the record as
# received, and the event's position among the events of that record.
POSITIONAL = ("event_index", "event_count")

# Values shaped as the API sends them (intValue as a string), one per parameter kind;
# times as Elastic's sample has them (start/end: seconds since the Rata Die epoch).
_VALUES: dict[str, dict[str, Any]] = {
    "string": {"value": "foo@bar.com"},
    "integer": {"intValue": "600"},
    "boolean": {"boolValue": True},
}
_TIMES = {
    "start_time": "63879175800",
    "end_time": "63879177600",
    "requested_period_start": "1743748267",
    "requested_period_end": "1743748267",
}


def _event(name: str) -> dict[str, Any]:
    spec = CALENDAR_EVENTS[name]
    parameters = [
        param(p, intValue=_TIMES[p]) if p in _TIMES else param(p, **_VALUES[kind])
        for p, kind in spec.parameters.items()
    ]
    return gevent(name, *parameters, type=spec.type)


def _api_activities() -> list[dict[str, Any]]:
    """The 38 catalog events in activities of one, two and three events, in catalog
    order, as the API lists them."""
    activities = []
    start = 0
    while start < len(NAMES):
        size = 1 + len(activities) % 3
        record = activity(
            *(_event(name) for name in NAMES[start : start + size]),
            time=f"2025-04-01T07:{len(activities):02d}:12.671Z",
            unique_qualifier="1",
            customer_id="1",
        )
        activities.append(record)
        start += size
    assert [e["name"] for a in activities for e in a["events"]] == NAMES
    return activities


def _split(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per event, ``events`` an object: what a collector makes of ``record``."""
    return [{**copy.deepcopy(record), "events": copy.deepcopy(event)} for event in record["events"]]


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` without what describes the record in hand (see ``POSITIONAL``)."""
    document = copy.deepcopy(document)
    del document["event"]["original"]
    for key in POSITIONAL:
        del document["google_workspace"][key]
    return document


@pytest.mark.parametrize("name", NAMES)
def test_one_event_as_an_object_normalizes_as_the_same_event_in_a_list(name: str) -> None:
    in_list = activity(_event(name))
    as_object = {**in_list, "events": _event(name)}

    [listed] = normalize_activity(in_list, ingested=INGESTED)
    [single] = normalize_activity(as_object, ingested=INGESTED)

    assert single.id == listed.id == google_activity_event_keys(as_object)[0]
    # The same document: only event.original differs, the record verbatim as received.
    assert single.document["event"].pop("original") == orjson.dumps(as_object).decode()
    del listed.document["event"]["original"]
    assert single.document == listed.document
    assert single.raw is as_object and single.mapped


def test_an_activity_split_one_event_per_record_keeps_every_id_and_document() -> None:
    record = next(a for a in _api_activities() if len(a["events"]) == 3)
    listed = normalize_activity(record, ingested=INGESTED)
    split = [
        event for part in _split(record) for event in normalize_activity(part, ingested=INGESTED)
    ]

    assert [e.id for e in split] == [e.id for e in listed]
    assert len({e.id for e in split}) == 3
    assert [_comparable(e.document) for e in split] == [_comparable(e.document) for e in listed]
    # Positions count the events of the record in hand.
    assert [e.document["google_workspace"]["event_index"] for e in listed] == [0, 1, 2]
    assert [e.document["google_workspace"]["event_count"] for e in listed] == [3, 3, 3]
    positions = {
        (
            e.document["google_workspace"]["event_index"],
            e.document["google_workspace"]["event_count"],
        )
        for e in split
    }
    assert positions == {(0, 1)}
    # The release before numbered events by position: every split record is at 0, so all
    # three got one id (two dropped as duplicates, compacted away by Kafka).
    legacy = {
        legacy_google_event_key(part["id"]["time"], part["id"]["uniqueQualifier"], 0)
        for part in _split(record)
    }
    assert len(legacy) == 1


def test_both_shapes_through_normalize_payload_give_identical_ids_and_documents() -> None:
    """The acceptance test: an API response page and the same events as NDJSON, one per
    record, through ``forwarder normalize``'s reader."""
    activities = _api_activities()
    page = orjson.dumps({"kind": "admin#reports#activities", "items": activities})
    ndjson = b"\n".join(orjson.dumps(part) for a in activities for part in _split(a))

    from_page, page_failures = normalize_payload("google_calendar", page, ingested=INGESTED)
    from_records, record_failures = normalize_payload("google_calendar", ndjson, ingested=INGESTED)

    assert page_failures == [] and record_failures == []
    # (A decode problem names its field by its path in the record in hand, events[i]:
    # the values here are all well-formed, so there is none.)
    assert not any("decode_problems" in e.document["google_workspace"] for e in from_page)
    assert len(from_page) == len(from_records) == len(NAMES)
    by_id = {e.id: _comparable(e.document) for e in from_page}
    assert len(by_id) == len(NAMES), "two events of the page share an id"
    assert {e.id: _comparable(e.document) for e in from_records} == by_id
    assert [e.id for e in from_page] == [
        k for a in activities for k in google_activity_event_keys(a)
    ]


def test_the_cli_accepts_one_event_per_record() -> None:
    records = [part for a in _api_activities()[:4] for part in _split(a)]
    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "normalize", "--source", "google_calendar"],
        input=b"\n".join(orjson.dumps(r) for r in records),
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    documents = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [d["event"]["action"] for d in documents] == [r["events"]["name"] for r in records]
    assert len({d["event"]["id"] for d in documents}) == len(records)


def test_two_events_of_one_name_in_one_activity() -> None:
    record = activity(
        gevent("add_event_guest", param("event_guest", value="a@y.com")),
        gevent("create_event"),
        gevent("add_event_guest", param("event_guest", value="b@y.com")),
        customer_id="C1",
    )
    events = normalize_activity(record, ingested=INGESTED)
    ident = record["id"]
    assert [e.id for e in events] == [
        google_event_key("C1", ident["time"], ident["uniqueQualifier"], "add_event_guest", 0),
        google_event_key("C1", ident["time"], ident["uniqueQualifier"], "create_event", 0),
        google_event_key("C1", ident["time"], ident["uniqueQualifier"], "add_event_guest", 1),
    ]
    # Split, each record holds one event and cannot know it was the second of its name:
    # the first keeps its id, the second takes the same one (documented limitation).
    split = [normalize_activity(part, ingested=INGESTED)[0].id for part in _split(record)]
    assert split == [events[0].id, events[1].id, events[0].id]


def test_the_customer_tells_two_domains_apart() -> None:
    first = normalize_activity(
        activity(gevent("create_event"), customer_id="C1"), ingested=INGESTED
    )
    second = normalize_activity(
        activity(gevent("create_event"), customer_id="C2"), ingested=INGESTED
    )
    assert first[0].id != second[0].id
    without = activity(gevent("create_event"))
    del without["id"]["customerId"]
    assert normalize_activity(without, ingested=INGESTED)[0].id == google_event_key(
        None, without["id"]["time"], without["id"]["uniqueQualifier"], "create_event"
    )


def test_a_mistyped_customer_id_is_left_out_of_the_id_as_of_the_document() -> None:
    record = activity(gevent("create_event"))
    record["id"]["customerId"] = 42
    [event] = normalize_activity(record, ingested=INGESTED)
    assert "organization" not in event.document
    assert (
        event.id
        == google_activity_event_keys(record)[0]
        == google_event_key(
            None, record["id"]["time"], record["id"]["uniqueQualifier"], "create_event"
        )
    )
