"""Google Calendar activities -> ECS-style events: golden documents and edge cases."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.google_calendar import activity_time, normalize_activity
from forwarder.schema.ids import google_event_key

from .builders import (
    ACTIVITY_TIME,
    INGESTED,
    UNIQUE_QUALIFIER,
    activity,
    gevent,
    param,
)


def _one(record: dict) -> dict:
    events = normalize_activity(record, ingested=INGESTED)
    assert len(events) == 1
    return events[0].document


def _rata_die_to_rfc3339(value: int) -> str:
    # Computed from the definition, not from the module's constant: Rata Die day 0 is
    # 0000-12-31, one day before 0001-01-01 (which datetime cannot go below).
    moment = datetime(1, 1, 1, tzinfo=UTC) + timedelta(seconds=value) - timedelta(days=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_change_calendar_acls_golden() -> None:
    record = activity(
        gevent(
            "change_calendar_acls",
            param("access_level", value="editor"),
            param("api_kind", value="web"),
            param("calendar_id", value="alice@x.com"),
            param("grantee_email", value="bob@y.com"),
            type="calendar_change",
        )
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    doc = event.document

    assert doc["message"] == (
        "alice@x.com changed the access level on a calendar for bob@y.com to editor"
    )
    assert doc["@timestamp"] == "2025-04-01T07:03:12.345Z"
    assert doc["event"] == {
        "id": google_event_key(
            "C03az79cb", ACTIVITY_TIME, UNIQUE_QUALIFIER, "change_calendar_acls"
        ),
        "kind": "event",
        "category": ["iam"],
        "type": ["change"],
        "outcome": "success",
        "action": "change_calendar_acls",
        "provider": "google_calendar",
        "dataset": "google_workspace.calendar",
        "created": INGESTED,
        "ingested": INGESTED,
        "original": doc["event"]["original"],
    }
    # event.original is a string holding the whole raw activity.
    assert isinstance(doc["event"]["original"], str)
    assert orjson.loads(doc["event"]["original"]) == record
    assert doc["user"] == {
        "email": "alice@x.com",
        "name": "alice",
        "domain": "x.com",
        "id": "114511147312345678901",
        "target": {"email": "bob@y.com", "name": "bob", "domain": "y.com"},
    }
    assert doc["source"] == {"ip": "203.0.113.5"}
    assert doc["organization"] == {"id": "C03az79cb"}
    assert doc["related"] == {
        "user": ["alice@x.com", "114511147312345678901", "bob@y.com"],
        "ip": ["203.0.113.5"],
    }
    gw = doc["google_workspace"]
    assert gw["actor"] == {
        "type": "USER",
        "email": "alice@x.com",
        "profile_id": "114511147312345678901",
    }
    assert gw["id"] == {
        "time": ACTIVITY_TIME,
        "unique_qualifier": UNIQUE_QUALIFIER,
        "application_name": "calendar",
        "customer_id": "C03az79cb",
    }
    assert gw["event_index"] == 0
    assert gw["owner_domain"] == "x.com"
    assert gw["calendar"] == {
        "event_type": "calendar_change",
        "event_name": "change_calendar_acls",
        "parameters": {
            "access_level": "editor",
            "api_kind": "web",
            "calendar_id": "alice@x.com",
            "grantee_email": "bob@y.com",
        },
        # The grantee, classified (forwarder.schema.sharing); no internal_domains: no
        # `external` flag.
        "grantee": {"value": "bob@y.com", "kind": "user", "email": "bob@y.com", "domain": "y.com"},
    }
    assert "decode_problems" not in gw

    assert event.id == doc["event"]["id"]
    assert event.action == "change_calendar_acls"
    assert event.provider == "google_calendar"
    assert event.raw is record
    assert event.mapped is True
    assert event.timestamp == datetime(2025, 4, 1, 7, 3, 12, 345000, tzinfo=UTC).timestamp()
    # The document serializes as it is (what the ECS sinks send).
    assert orjson.loads(event.encoded("ecs")) == doc


def test_create_event_start_and_end_times_use_the_rata_die_epoch() -> None:
    start, end = 63879175800, 63879177600
    record = activity(
        gevent(
            "create_event",
            param("event_title", value="Weekly sync"),
            param("start_time", intValue=str(start)),
            param("end_time", intValue=str(end)),
            type="event_change",
        )
    )
    calendar = _one(record)["google_workspace"]["calendar"]

    assert calendar["event_start"] == _rata_die_to_rfc3339(start) == "2025-04-01T07:30:00Z"
    assert calendar["event_end"] == _rata_die_to_rfc3339(end) == "2025-04-01T08:00:00Z"
    # The raw integers are kept, typed, next to the decoded times.
    assert calendar["parameters"]["start_time"] == start
    assert calendar["parameters"]["end_time"] == end
    # Same day as the activity (07:03Z), not one day later as the 0001-01-01 offset gives.
    assert calendar["event_start"][:10] == ACTIVITY_TIME[:10]


def test_interop_inbound_message_names_the_exchange_server_ip() -> None:
    record = activity(
        gevent(
            "interop_freebusy_lookup_inbound_successful",
            param("api_kind", value="ews"),
            param("calendar_id", value="room-1@x.com"),
            param("requested_period_start", intValue="1743748267"),
            param("requested_period_end", intValue="1743834667"),
            type="interop",
        ),
        ip="198.51.100.7",
    )
    doc = _one(record)

    assert doc["message"] == (
        "Exchange Server at 198.51.100.7 acting as alice@x.com successfully fetched "
        "availability for Google calendar room-1@x.com"
    )
    # requested_period_* are Unix seconds (not milliseconds: not January 1970).
    expected_start = datetime.fromtimestamp(1743748267, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected_end = datetime.fromtimestamp(1743834667, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert doc["google_workspace"]["calendar"]["requested_period"] == {
        "start": expected_start,
        "end": expected_end,
    }
    assert expected_start.startswith("2025-04-04")
    assert doc["source"]["ip"] == "198.51.100.7"
    assert doc["related"]["ip"] == ["198.51.100.7"]


def test_unknown_event_name_is_mapped_generically() -> None:
    record = activity(
        gevent(
            "brand_new_calendar_thing",
            param("calendar_id", value="alice@x.com"),
            param("secs_in_advance", intValue="600"),
            type="calendar_change",
        )
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    doc = event.document

    assert event.action == doc["event"]["action"] == "brand_new_calendar_thing"
    assert event.mapped is False
    assert doc["message"] == "alice@x.com performed the Calendar action brand_new_calendar_thing"
    # Issue 17: info with a name that says no outcome: no event.outcome (was "unknown").
    assert (doc["event"]["category"], doc["event"]["type"], doc["event"].get("outcome")) == (
        ["configuration"],
        ["info"],
        None,
    )
    calendar = doc["google_workspace"]["calendar"]
    assert calendar["event_type"] == "calendar_change"
    assert calendar["parameters"] == {"calendar_id": "alice@x.com", "secs_in_advance": 600}


def test_unknown_event_without_type_or_parameters() -> None:
    record = activity({"name": "mystery"})
    calendar = _one(record)["google_workspace"]["calendar"]
    assert calendar == {"event_name": "mystery", "parameters": {}}


def test_every_event_of_an_activity_becomes_an_event() -> None:
    record = activity(
        gevent("create_event", param("event_title", value="A"), type="event_change"),
        gevent("add_event_guest", param("event_guest", value="g@y.com"), type="event_change"),
        gevent("notification_triggered", param("notification_method", value="email")),
    )
    events = normalize_activity(record, ingested=INGESTED)

    assert [e.action for e in events] == [
        "create_event",
        "add_event_guest",
        "notification_triggered",
    ]
    assert len({e.id for e in events}) == 3
    assert [e.document["google_workspace"]["event_index"] for e in events] == [0, 1, 2]
    assert [e.document["google_workspace"]["event_count"] for e in events] == [3, 3, 3]
    # Named, not numbered: the id survives a collector splitting the activity.
    assert [e.id for e in events] == [
        google_event_key("C03az79cb", ACTIVITY_TIME, UNIQUE_QUALIFIER, e.action) for e in events
    ]
    # Each keeps its own parameters; all share the activity's time and raw record.
    assert events[1].document["related"]["user"][-1] == "g@y.com"
    assert "event_guest" not in events[0].document["google_workspace"]["calendar"]["parameters"]
    assert {e.timestamp for e in events} == {events[0].timestamp}
    assert all(e.raw is record for e in events)
    # Documents are independent objects: editing one leaves the others alone.
    events[0].document["google_workspace"]["actor"]["email"] = "changed"
    assert events[1].document["google_workspace"]["actor"]["email"] == "alice@x.com"


def test_same_activity_gives_the_same_ids_and_documents() -> None:
    record = activity(gevent("create_event"), gevent("delete_event"))
    first = normalize_activity(record, ingested=INGESTED)
    # A copy that went through JSON (another poll, another process) gives the same ids.
    again = normalize_activity(orjson.loads(orjson.dumps(record)), ingested=INGESTED)
    assert [e.id for e in first] == [e.id for e in again]
    assert [e.document for e in first] == [e.document for e in again]


def test_different_unique_qualifier_gives_different_ids() -> None:
    one = normalize_activity(activity(gevent("create_event")), ingested=INGESTED)[0]
    other = normalize_activity(
        activity(gevent("create_event"), unique_qualifier="4961328429713306829"),
        ingested=INGESTED,
    )[0]
    assert one.id != other.id


@pytest.mark.parametrize(
    ("email", "profile_id", "actor"),
    [
        ("alice@x.com", "1", "alice@x.com"),
        (None, "114511147312345678901", "114511147312345678901"),
        (None, None, "Someone"),
    ],
)
def test_message_actor_falls_back_to_profile_id_then_someone(
    email: str | None, profile_id: str | None, actor: str
) -> None:
    record = activity(gevent("create_calendar"), email=email, profile_id=profile_id)
    doc = _one(record)
    assert doc["message"] == f"{actor} created a new calendar"
    if email is None:
        assert "email" not in doc.get("user", {})


def test_missing_parameters_render_as_unknown() -> None:
    record = activity(gevent("change_calendar_acls"), ip=None)
    doc = _one(record)
    assert doc["message"] == (
        "alice@x.com changed the access level on a calendar for (unknown) to (unknown)"
    )
    assert "source" not in doc
    assert "ip" not in doc["related"]


def test_inbound_interop_without_ip_renders() -> None:
    record = activity(gevent("interop_freebusy_lookup_inbound_unsuccessful"), ip=None)
    assert _one(record)["message"].startswith("Exchange Server at (unknown) acting as")


def test_invalid_ip_is_not_put_in_source_ip() -> None:
    doc = _one(activity(gevent("create_calendar"), ip="not-an-ip"))
    assert "source" not in doc
    assert "ip" not in doc["related"]
    assert {"field": "ipAddress", "problem": "invalid_ip"} in doc["google_workspace"][
        "decode_problems"
    ]


def test_ipv6_source_ip() -> None:
    doc = _one(activity(gevent("create_calendar"), ip="2001:db8::1"))
    assert doc["source"] == {"ip": "2001:db8::1"}


def test_mistyped_optional_fields_are_noted_not_fatal() -> None:
    record = activity(gevent("create_calendar"))
    record["actor"]["email"] = 42
    record["ownerDomain"] = ["x.com"]
    record["events"][0]["type"] = 7
    doc = _one(record)
    problems = doc["google_workspace"]["decode_problems"]
    assert {"field": "actor.email", "problem": "invalid_type"} in problems
    assert {"field": "ownerDomain", "problem": "invalid_type"} in problems
    assert {"field": "events[0].type", "problem": "invalid_type"} in problems
    assert doc["message"] == "114511147312345678901 created a new calendar"
    # The catalog's type stands in for the unusable one.
    assert doc["google_workspace"]["calendar"]["event_type"] == "calendar_change"


def test_out_of_range_event_time_is_a_decode_problem() -> None:
    record = activity(gevent("create_event", param("start_time", intValue="0")))
    gw = _one(record)["google_workspace"]
    assert "event_start" not in gw["calendar"]
    assert gw["calendar"]["parameters"]["start_time"] == 0
    assert {"field": "events[0].parameters.start_time", "problem": "invalid_time"} in gw[
        "decode_problems"
    ]


def test_actor_application_info_and_network_info() -> None:
    record = activity(gevent("create_event"))
    record["actor"]["applicationInfo"] = {
        "applicationName": "Zapier",
        "impersonation": True,
        "oauthClientId": "1234.apps.googleusercontent.com",
    }
    record["networkInfo"] = {"ipAsn": [64500], "regionCode": "FR", "subdivisionCode": "FR-75"}
    record["resourceDetails"] = [{"id": "r1", "type": "calendar"}]
    record["events"][0]["resourceIds"] = ["r1"]
    gw = _one(record)["google_workspace"]
    assert gw["actor"]["application_info"] == {
        "application_name": "Zapier",
        "impersonation": True,
        "oauth_client_id": "1234.apps.googleusercontent.com",
    }
    assert gw["network_info"] == {
        "ip_asn": [64500],
        "region_code": "FR",
        "subdivision_code": "FR-75",
    }
    assert gw["resource_details"] == [{"id": "r1", "type": "calendar"}]
    assert gw["calendar"]["resource_ids"] == ["r1"]


def test_integer_unique_qualifier_gives_the_same_id_as_its_string() -> None:
    as_int = activity(gevent("create_event"), unique_qualifier="-12")
    as_int["id"]["uniqueQualifier"] = -12
    assert (
        normalize_activity(as_int, ingested=INGESTED)[0].id
        == normalize_activity(
            activity(gevent("create_event"), unique_qualifier="-12"), ingested=INGESTED
        )[0].id
    )


def test_activity_time() -> None:
    assert activity_time(activity(gevent("x"))) == pytest.approx(1743490992.345)
    with pytest.raises(MalformedRecordError) as caught:
        activity_time({"id": {"time": "yesterday"}})
    assert caught.value.reason == "invalid_timestamp"


def _without(path: tuple[str, ...]) -> dict:
    record = activity(gevent("create_event"))
    target = record
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return record


def _with(path: tuple[str | int, ...], value: object) -> dict:
    record = copy.deepcopy(activity(gevent("create_event"), gevent("delete_event")))
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return record


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        ([1, 2], "not_an_object", "activity"),
        ("text", "not_an_object", "activity"),
        (None, "not_an_object", "activity"),
        (_without(("id",)), "missing_field", "id"),
        (_with(("id",), "abc"), "invalid_type", "id"),
        (_without(("id", "time")), "missing_field", "id.time"),
        (_with(("id", "time"), 1743490992), "invalid_type", "id.time"),
        (_with(("id", "time"), "2025-04-01 07:03"), "invalid_timestamp", "id.time"),
        (_with(("id", "time"), "2025-04-01T07:03:12"), "invalid_timestamp", "id.time"),
        (_with(("id", "time"), "0001-01-01T00:00:00+01:00"), "invalid_timestamp", "id.time"),
        (_without(("id", "uniqueQualifier")), "missing_field", "id.uniqueQualifier"),
        (_with(("id", "uniqueQualifier"), ""), "invalid_value", "id.uniqueQualifier"),
        (_with(("id", "uniqueQualifier"), 1.5), "invalid_type", "id.uniqueQualifier"),
        (_with(("id", "uniqueQualifier"), True), "invalid_type", "id.uniqueQualifier"),
        (_without(("events",)), "missing_field", "events"),
        # One event as an object is the one-event-per-record shape (accepted: issue 17).
        (_with(("events",), "create_event"), "invalid_type", "events"),
        (_with(("events",), {"type": "event_change"}), "missing_field", "events[0].name"),
        (_with(("events",), []), "invalid_value", "events"),
        (_with(("events", 1), "delete_event"), "invalid_type", "events[1]"),
        (_with(("events", 1, "name"), None), "missing_field", "events[1].name"),
        (_with(("events", 0, "name"), ["create_event"]), "invalid_type", "events[0].name"),
        (_with(("actor", "email"), "\ud800"), "unserializable", "activity"),
        (_with(("etag",), 2**70), "unserializable", "activity"),
    ],
)
def test_malformed_activities(record: object, reason: str, field: str) -> None:
    with pytest.raises(MalformedRecordError) as caught:
        normalize_activity(record, ingested=INGESTED)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert caught.value.detail.startswith(field + " ")
