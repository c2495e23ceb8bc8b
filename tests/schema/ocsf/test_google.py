"""Google Calendar events -> OCSF: every documented event validates against the official
1.7.0 schema, with the class, activity and key fields of the mapping table."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

import forwarder
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.ocsf import to_ocsf
from forwarder.schema.ocsf.mapping import GOOGLE_EVENTS
from forwarder.schema.ocsf.validate import OcsfSchema

from ..builders import ACTIVITY_TIME, INGESTED, UNIQUE_QUALIFIER, activity, gevent, param
from .ocsf_check import EWS_URL, GRANTEE, documented_parameters, google_event, valid_ocsf

TIME_MS = 1743490992345  # ACTIVITY_TIME
STATUS_OF_OUTCOME = {
    "success": (1, "Success"),
    "failure": (2, "Failure"),
    "unknown": (0, "Unknown"),
}
INGESTED_MS = 1743494400000

# The mapping table, restated: (class_uid, activity_id) per documented event name.
EXPECTED: dict[str, tuple[int, int]] = {
    "create_calendar": (3004, 1),
    "delete_calendar": (3004, 4),
    "change_calendar_country": (3004, 3),
    "change_calendar_description": (3004, 3),
    "change_calendar_location": (3004, 3),
    "change_calendar_timezone": (3004, 3),
    "change_calendar_title": (3004, 3),
    "export_calendar": (3004, 2),
    "print_preview_calendar": (3004, 2),
    "change_calendar_acls": (3005, 1),
    "notification_triggered": (3004, 1),
    "add_subscription": (3004, 1),
    "delete_subscription": (3004, 4),
    "create_appointment_schedule": (3004, 1),
    "change_appointment_schedule": (3004, 3),
    "delete_appointment_schedule": (3004, 4),
    "create_event": (3004, 1),
    "change_event": (3004, 3),
    "change_event_start_time": (3004, 3),
    "change_event_title": (3004, 3),
    "change_event_guest_response": (3004, 3),
    "change_event_guest_response_auto": (3004, 3),
    "restore_event": (3004, 3),
    "delete_event": (3004, 4),
    "remove_event_from_trash": (3004, 4),
    "print_preview_event": (3004, 2),
    "add_event_guest": (3005, 1),
    "remove_event_guest": (3005, 2),
    "transfer_event_requested": (3005, 99),  # issue 17: a request, Other (was Assign)
    "transfer_event_completed": (3005, 1),
    "interop_freebusy_lookup_outbound_successful": (6003, 2),
    "interop_freebusy_lookup_outbound_unsuccessful": (6003, 2),
    "interop_freebusy_lookup_inbound_successful": (6003, 2),
    "interop_freebusy_lookup_inbound_unsuccessful": (6003, 2),
    "interop_exchange_resource_availability_lookup_successful": (6003, 2),
    "interop_exchange_resource_availability_lookup_unsuccessful": (6003, 2),
    "interop_exchange_resource_list_lookup_successful": (6003, 2),
    "interop_exchange_resource_list_lookup_unsuccessful": (6003, 2),
}


def test_the_table_covers_exactly_the_catalog() -> None:
    assert set(GOOGLE_EVENTS) == set(CALENDAR_EVENTS) == set(EXPECTED)
    assert len(GOOGLE_EVENTS) == 38
    for name, (class_uid, activity_id) in EXPECTED.items():
        mapping = GOOGLE_EVENTS[name]
        assert (mapping.ocsf_class.uid, mapping.activity_id) == (class_uid, activity_id), name


@pytest.mark.parametrize("name", sorted(CALENDAR_EVENTS))
def test_every_documented_event_validates(name: str, ocsf_schema: OcsfSchema) -> None:
    event = google_event(name, *documented_parameters(CALENDAR_EVENTS[name]))
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)

    class_uid, activity_id = EXPECTED[name]
    assert (doc["class_uid"], doc["activity_id"]) == (class_uid, activity_id)
    assert doc["type_uid"] == class_uid * 100 + activity_id
    assert doc["category_uid"] == class_uid // 1000
    assert doc["severity_id"] == 1
    assert doc["time"] == TIME_MS
    assert doc["message"] == event.document["message"]
    assert doc["actor"]["user"]["email_addr"] == "alice@x.com"
    assert doc["actor"]["user"]["uid"] == "114511147312345678901"
    assert doc["src_endpoint"]["ip"] == "203.0.113.5"
    assert doc["metadata"] == {
        "version": "1.7.0",
        "product": {"name": "Google Calendar", "vendor_name": "Google"},
        "log_provider": "Google Workspace Admin SDK Reports API",
        "log_name": "google_workspace.calendar",
        "uid": event.id,
        "event_code": name,
        "original_time": ACTIVITY_TIME,
        "correlation_uid": f"{ACTIVITY_TIME}/{UNIQUE_QUALIFIER}",
        "tenant_uid": "C03az79cb",
        "logged_time": INGESTED_MS,
        # Issue 17: the shipper, like ECS agent.*.
        "loggers": [
            {
                "name": "forwarder",
                "product": {"name": "forwarder", "version": forwarder.__version__},
                "version": forwarder.__version__,
                "logged_time": INGESTED_MS,
            }
        ],
    }
    # Issue 17: the status is the ECS outcome (both from the row's one outcome decision).
    outcome = event.document["event"].get("outcome")
    if outcome is None:
        assert "status_id" not in doc and "status" not in doc
    else:
        assert (doc["status_id"], doc["status"]) == STATUS_OF_OUTCOME[outcome]
    if name.endswith("_unsuccessful"):
        assert (doc["status_id"], doc["status"]) == (2, "Failure")
        assert doc["status_code"] == "ERROR_TIMEOUT"
    elif name.endswith("_successful"):
        assert (doc["status_id"], doc["status"]) == (1, "Success")
    if doc["activity_id"] == 99:
        assert doc["activity_name"] == name  # the source's own name, never "Other"
    if "user_agent" in CALENDAR_EVENTS[name].parameters:
        assert doc["http_request"]["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"


def _leaves(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


@pytest.mark.parametrize("name", sorted(CALENDAR_EVENTS))
def test_no_parameter_is_lost(name: str) -> None:
    event = google_event(name, *documented_parameters(CALENDAR_EVENTS[name]))
    doc = to_ocsf(event, raw_data=False)
    parameters = event.document["google_workspace"]["calendar"]["parameters"]
    leftover = doc.get("unmapped", {}).get("parameters", {})
    mapped = _leaves({key: value for key, value in doc.items() if key != "unmapped"})
    for key, value in parameters.items():
        assert leftover.get(key) == value or value in mapped, key
    # ... and a parameter is either mapped or carried, not both.
    assert set(leftover) <= set(parameters)


def test_entity_is_named_by_its_parameters(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "change_calendar_title",
        param("calendar_id", value="team@group.calendar.google.com"),
        param("calendar_title", value="Équipe ✈"),
        param("api_kind", value="web"),
    )
    doc = valid_ocsf(event, ocsf_schema)
    assert doc["entity"] == {
        "type_id": 99,
        "type": "Calendar",
        "uid": "team@group.calendar.google.com",
        "name": "Équipe ✈",
    }
    assert doc["unmapped"]["parameters"] == {"api_kind": "web"}
    assert doc["raw_data"] == event.document["event"]["original"]


def test_entity_without_identifying_parameters_is_named_by_its_kind(
    ocsf_schema: OcsfSchema,
) -> None:
    doc = valid_ocsf(google_event("create_event"), ocsf_schema)
    assert doc["entity"] == {"type_id": 99, "type": "Calendar Event", "name": "Calendar Event"}


def test_acl_grant(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "change_calendar_acls",
        param("access_level", value="owner"),
        param("calendar_id", value="alice@x.com"),
        param("grantee_email", value=GRANTEE),
    )
    doc = valid_ocsf(event, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"]) == (3005, 1)
    assert doc["activity_name"] == "Assign Privileges"
    assert doc["user"] == {"name": GRANTEE, "email_addr": GRANTEE}
    assert doc["privileges"] == ["owner"]
    assert doc["resources"] == [{"type": "Calendar", "uid": "alice@x.com"}]


def test_acl_removed_is_a_revoke(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "change_calendar_acls",
        param("access_level", value="none"),
        param("grantee_email", value=GRANTEE),
    )
    doc = valid_ocsf(event, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (3005, 2, 300502)
    assert doc["type_name"] == "User Access Management: Revoke Privileges"
    assert doc["privileges"] == []
    assert doc["unmapped"]["parameters"] == {"access_level": "none"}


def test_acl_grantee_that_is_not_an_address(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "change_calendar_acls",
        param("access_level", value="read"),
        param("grantee_email", value="x.com"),  # a domain-wide ACL
    )
    doc = valid_ocsf(event, ocsf_schema)
    # Changed (sharing scopes): the domain is said to be one, not left as a user's name.
    assert doc["user"] == {"name": "x.com", "type_id": 99, "type": "Domain", "domain": "x.com"}
    assert doc["unmapped"]["grantee"] == {"value": "x.com", "kind": "domain", "domain": "x.com"}


def test_acl_without_grantee_falls_back_to_an_entity_update(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "change_calendar_acls",
        param("access_level", value="editor"),
        param("calendar_id", value="alice@x.com"),
    )
    doc = valid_ocsf(event, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"]) == (3004, 3)
    assert doc["entity"]["uid"] == "alice@x.com"
    assert doc["unmapped"]["parameters"] == {"access_level": "editor"}
    assert doc["metadata"]["event_code"] == "change_calendar_acls"


def test_guests_gain_and_lose_access_to_the_event(ocsf_schema: OcsfSchema) -> None:
    added = valid_ocsf(
        google_event(
            "add_event_guest",
            param("event_guest", value=GRANTEE),
            param("event_id", value="evt1"),
            param("event_title", value="Board"),
        ),
        ocsf_schema,
    )
    assert (added["activity_id"], added["user"]["email_addr"]) == (1, GRANTEE)
    assert added["privileges"] == ["guest"]
    assert added["resources"] == [{"type": "Calendar Event", "uid": "evt1", "name": "Board"}]
    removed = valid_ocsf(
        google_event("remove_event_guest", param("event_guest", value=GRANTEE)), ocsf_schema
    )
    assert (removed["class_uid"], removed["activity_id"]) == (3005, 2)
    assert "resources" not in removed


def test_ownership_transfer(ocsf_schema: OcsfSchema) -> None:
    offered = valid_ocsf(
        google_event("transfer_event_requested", param("grantee_email", value=GRANTEE)),
        ocsf_schema,
    )
    assert offered["user"]["email_addr"] == GRANTEE
    assert offered["privileges"] == ["owner"]
    accepted = valid_ocsf(google_event("transfer_event_completed"), ocsf_schema)
    assert accepted["user"]["email_addr"] == "alice@x.com"  # the actor took ownership
    assert accepted["user"] is not accepted["actor"]["user"]
    # Nobody named: the change is still an event update.
    anonymous = valid_ocsf(
        google_event("transfer_event_completed", email=None, profile_id=None), ocsf_schema
    )
    assert (anonymous["class_uid"], anonymous["activity_id"]) == (3004, 3)


def test_interop_outbound_failure(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "interop_freebusy_lookup_outbound_unsuccessful",
        param("calendar_id", value="room1@exchange.example.com"),
        param("interop_error_code", value="ERROR_AUTH"),
        param("remote_ews_url", value=EWS_URL),
        param("requested_period_start", intValue="1743748267"),
    )
    doc = valid_ocsf(event, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"], doc["status_id"]) == (6003, 2, 2)
    assert doc["status_code"] == "ERROR_AUTH"
    assert doc["api"] == {
        "operation": "interop_freebusy_lookup_outbound_unsuccessful",
        "service": {"name": "Microsoft Exchange"},
    }
    assert doc["actor"]["app_name"] == "Google Calendar"
    assert doc["http_request"] == {"url": {"url_string": EWS_URL}}
    assert doc["dst_endpoint"] == {"hostname": "mail.example.com"}
    assert doc["resources"] == [{"type": "Calendar", "uid": "room1@exchange.example.com"}]
    assert doc["unmapped"]["parameters"] == {"requested_period_start": 1743748267}
    assert doc["unmapped"]["requested_period"] == {"start": "2025-04-04T06:31:07Z"}


def test_interop_inbound_without_ip_names_the_calling_service(ocsf_schema: OcsfSchema) -> None:
    doc = valid_ocsf(
        google_event("interop_freebusy_lookup_inbound_successful", ip=None), ocsf_schema
    )
    assert doc["src_endpoint"] == {"svc_name": "Microsoft Exchange"}
    assert doc["actor"]["app_name"] == "Microsoft Exchange"
    assert doc["api"]["service"] == {"name": "Google Calendar"}
    assert doc["status_id"] == 1


def test_unknown_event_is_entity_management_other(ocsf_schema: OcsfSchema) -> None:
    event = google_event(
        "quantum_entangle_calendar",
        param("calendar_id", value="alice@x.com"),
        param("secs_in_advance", intValue="600"),
    )
    assert not event.mapped
    doc = valid_ocsf(event, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (3004, 99, 300499)
    assert doc["activity_name"] == "quantum_entangle_calendar"
    assert doc["type_name"] == "Entity Management: Other"
    assert doc["entity"]["uid"] == "alice@x.com"
    assert doc["unmapped"]["parameters"] == {"secs_in_advance": 600}


def test_actor_without_person(ocsf_schema: OcsfSchema) -> None:
    record = activity(gevent("create_calendar"), email=None, profile_id=None, ip=None)
    record["actor"] = {
        "callerType": "KEY",
        "key": "robot-key-1",
        "applicationInfo": {"applicationName": "Zapier", "impersonation": True},
    }
    event = _only(record)
    doc = valid_ocsf(event, ocsf_schema)
    assert doc["actor"] == {"app_name": "Zapier", "app_uid": "robot-key-1"}
    assert "src_endpoint" not in doc
    assert doc["unmapped"]["caller_type"] == "KEY"
    assert doc["unmapped"]["impersonation"] is True


def test_no_actor_at_all(ocsf_schema: OcsfSchema) -> None:
    record = activity(gevent("delete_event"), email=None, profile_id=None, ip=None)
    del record["actor"]
    doc = valid_ocsf(_only(record), ocsf_schema)
    assert "actor" not in doc


def test_actor_email_that_ocsf_would_reject(ocsf_schema: OcsfSchema) -> None:
    doc = valid_ocsf(google_event("create_event", email="josé@exämple.com"), ocsf_schema)
    assert doc["actor"]["user"]["name"] == "josé@exämple.com"
    assert "email_addr" not in doc["actor"]["user"]


def test_network_info_goes_to_the_source_endpoint(ocsf_schema: OcsfSchema) -> None:
    record = activity(gevent("create_event"), ip="2001:db8::1")
    record["networkInfo"] = {"ipAsn": [15169], "regionCode": "US", "subdivisionCode": "US-CA"}
    doc = valid_ocsf(_only(record), ocsf_schema)
    assert doc["src_endpoint"] == {
        "ip": "2001:db8::1",
        "location": {"country": "US", "region": "US-CA"},
        "autonomous_system": {"number": 15169},
    }
    assert "network_info" not in doc["unmapped"]
    record["networkInfo"]["ipAsn"] = [15169, 36040]  # two: kept as they came
    doc = valid_ocsf(_only(record), ocsf_schema)
    assert doc["unmapped"]["network_info"]["ip_asn"] == [15169, 36040]


def test_events_of_one_activity_share_the_correlation_uid(ocsf_schema: OcsfSchema) -> None:
    from forwarder.schema.google_calendar import normalize_activity

    record = activity(
        gevent("change_event_title", param("event_title", value="New")),
        gevent("change_event_start_time", param("start_time", intValue="63879175800")),
    )
    first, second = (
        valid_ocsf(event, ocsf_schema) for event in normalize_activity(record, ingested=INGESTED)
    )
    assert first["metadata"]["correlation_uid"] == second["metadata"]["correlation_uid"]
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert (first["unmapped"]["event_index"], second["unmapped"]["event_index"]) == (0, 1)
    assert second["unmapped"]["event_start"] == "2025-04-01T07:30:00Z"


def test_output_is_fresh_and_serializes() -> None:
    event = google_event("create_event", param("event_id", value="e1"))
    first, second = to_ocsf(event), to_ocsf(event)
    assert first == second
    assert first is not second
    assert first["metadata"] is not second["metadata"]
    orjson.dumps(first)


def _only(record: dict[str, Any]) -> Any:
    from forwarder.schema.google_calendar import normalize_activity

    [event] = normalize_activity(record, ingested=INGESTED)
    return event
