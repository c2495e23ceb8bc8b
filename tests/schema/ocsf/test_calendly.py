"""Calendly Activity Log events -> OCSF: every catalog activity validates against the
official 1.7.0 schema, Login is an Authentication with its outcome, and unknown
namespaces/actions are forwarded all the same."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.schema.calendly import normalize_entry
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.ocsf.mapping import CALENDLY_EVENTS, CALENDLY_NAMESPACES
from forwarder.schema.ocsf.validate import OcsfSchema

from ..builders import INGESTED, SYSTEM_ACTOR, calendly_entry, user_actor
from .ocsf_check import calendly_event, valid_ocsf

OCCURRED_MS = 1774001472123  # 2026-03-20T10:11:12.123456Z
ORGANIZATION = "https://api.calendly.com/organizations/ORG1"
CATALOG = sorted(
    (namespace, action)
    for namespace, category in CALENDLY_CATEGORIES.items()
    for action in category.actions
)

# The mapping table, restated: namespace -> (class_uid, entity type or None).
EXPECTED_CLASSES: dict[str, tuple[int, str | None]] = {
    "API": (3004, "API Token"),
    "Availability": (3004, "Availability Schedule"),
    "Calendar": (3004, "Calendar Connection"),
    "Compliance": (3004, "Personal Data"),
    "Event_Type": (3004, "Event Type"),
    "Groups": (3004, "Group"),
    "Integrations": (3004, "Integration"),
    "Login": (3002, None),
    "Managed_Events": (3004, "Managed Event Type"),
    "Permissions": (3004, "Policy"),
    "Routing_Forms": (3004, "Routing Form"),
    "Settings": (3004, "Organization Setting"),
    "Teams": (3004, "Group"),
    "User_Management": (3004, "User"),
    "User_Profile": (3004, "User Profile"),
    "Workflows": (3004, "Workflow"),
}
# Failure / Success outcomes the action names carry.
FAILURES = {
    ("Calendar", "Error"),
    ("Integrations", "Salesforce_Error"),
    ("Login", "Failed"),
    ("User_Management", "Error"),
}
SUCCESSES = {("Login", "Succeeded")}


def test_the_table_covers_exactly_the_catalog() -> None:
    assert set(CALENDLY_EVENTS) == set(CATALOG)
    assert set(CALENDLY_NAMESPACES) == set(CALENDLY_CATEGORIES) == set(EXPECTED_CLASSES)
    assert len(CALENDLY_NAMESPACES) == 16


@pytest.mark.parametrize(("namespace", "action"), CATALOG)
def test_every_catalog_activity_validates(
    namespace: str, action: str, ocsf_schema: OcsfSchema
) -> None:
    details = {"token_name": "siem", "changes": {"duration": {"from": 15, "to": 30}}}
    event = calendly_event(namespace, action, details=details)
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)

    class_uid, entity_type = EXPECTED_CLASSES[namespace]
    mapping = CALENDLY_EVENTS[namespace, action]
    assert doc["class_uid"] == class_uid
    assert doc["activity_id"] == mapping.activity_id
    assert doc["type_uid"] == class_uid * 100 + mapping.activity_id
    assert doc["time"] == OCCURRED_MS
    assert doc["message"] == event.document["message"]
    assert doc["actor"]["user"]["email_addr"] == "alice@x.com"
    assert doc["actor"]["user"]["uid"] == "https://api.calendly.com/users/U1"
    assert "src_endpoint" not in doc  # the Activity Log records no address
    assert doc["metadata"]["event_code"] == f"{namespace}.{action}"
    assert doc["metadata"]["uid"] == event.id
    assert doc["metadata"]["original_event_uid"] == event.raw["uri"]
    assert doc["metadata"]["original_time"] == "2026-03-20T10:11:12.123456Z"
    assert doc["metadata"]["tenant_uid"] == ORGANIZATION
    # Issue 17: the status is the ECS outcome (the row's one outcome decision).
    outcome = event.document["event"].get("outcome")
    expected = {"success": (1, "Success"), "failure": (2, "Failure")}.get(outcome)
    if (namespace, action) in FAILURES:
        assert expected == (2, "Failure")
    if (namespace, action) in SUCCESSES:
        assert expected == (1, "Success")
    if expected is None:
        assert "status_id" not in doc and "status" not in doc
    else:
        assert (doc["status_id"], doc["status"]) == expected
    if doc["activity_id"] == 99:
        assert doc["activity_name"] == action  # the source's own name, never "Other"
    if class_uid == 3002:
        assert doc["activity_name"] == "Logon"
        assert doc["user"]["email_addr"] == "alice@x.com"
        assert doc["service"] == {"name": "Calendly"}
        assert doc["unmapped"]["details"] == details
    else:
        invitation = action.startswith("Invitation_")
        assert doc["entity"]["type"] == ("User Invitation" if invitation else entity_type)
        assert doc["entity"]["data"] == details  # undocumented: carried whole


def test_login_failed_and_succeeded(ocsf_schema: OcsfSchema) -> None:
    failed = valid_ocsf(calendly_event("Login", "Failed"), ocsf_schema)
    succeeded = valid_ocsf(calendly_event("Login", "Succeeded"), ocsf_schema)
    assert (failed["class_uid"], failed["activity_id"], failed["status_id"]) == (3002, 1, 2)
    assert (succeeded["type_uid"], succeeded["status"]) == (300201, "Success")
    assert failed["raw_data"].startswith('{"uri":')


def test_login_of_an_unknown_person_is_still_a_logon(ocsf_schema: OcsfSchema) -> None:
    entry = calendly_entry("Login", "Failed")
    del entry["actor"]
    doc = valid_ocsf(normalize_entry(entry, ingested=INGESTED), ocsf_schema)
    assert (doc["class_uid"], doc["status_id"]) == (3002, 2)
    assert doc["user"] == {
        "type_id": 0,
        "type": "Unknown",
        "account": {"uid": ORGANIZATION, "type_id": 99, "type": "Calendly Organization"},
    }
    assert "actor" not in doc


def test_login_without_actor_or_organization_falls_back(ocsf_schema: OcsfSchema) -> None:
    entry = calendly_entry("Login", "Failed")
    del entry["actor"], entry["organization"]
    doc = valid_ocsf(normalize_entry(entry, ingested=INGESTED), ocsf_schema)
    # Issue 17: activity 99 is named after the source's action (was "Logon").
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (3004, 99, "Failed")
    assert doc["status_id"] == 2
    assert doc["entity"]["type"] == "Login"


def test_unknown_login_action_keeps_its_outcome(ocsf_schema: OcsfSchema) -> None:
    doc = valid_ocsf(calendly_event("Login", "Succeeded_SSO"), ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"], doc["status_id"]) == (3002, 1, 1)


def test_system_actor(ocsf_schema: OcsfSchema) -> None:
    event = calendly_event("Compliance", "Data_Deletion_Completed", actor=dict(SYSTEM_ACTOR))
    doc = valid_ocsf(event, ocsf_schema)
    assert doc["actor"] == {"user": {"name": "Calendly System", "type_id": 3, "type": "System"}}
    assert (doc["activity_id"], doc["entity"]["type"]) == (4, "Personal Data")


def test_unknown_action_of_a_known_namespace(ocsf_schema: OcsfSchema) -> None:
    event = calendly_event("Settings", "Passkeys_Enabled")
    assert not event.mapped
    doc = valid_ocsf(event, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (
        3004,
        99,
        "Passkeys_Enabled",
    )
    assert doc["entity"] == {
        "type_id": 99,
        "type": "Organization Setting",
        "name": "Passkeys",
        "data": {"token_name": "siem"},
    }


def test_unknown_namespace(ocsf_schema: OcsfSchema) -> None:
    doc = valid_ocsf(calendly_event("Billing_Plans", "Invoice_Failed"), ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"], doc["status_id"]) == (3004, 99, 2)
    assert doc["entity"]["type"] == "Billing Plans"
    assert doc["metadata"]["event_code"] == "Billing_Plans.Invoice_Failed"


def test_entities_named_by_the_action(ocsf_schema: OcsfSchema) -> None:
    zoom = valid_ocsf(calendly_event("Integrations", "Zoom_Revoked"), ocsf_schema)
    assert (zoom["activity_id"], zoom["activity_name"]) == (9, "Disable")
    assert zoom["entity"]["name"] == "Zoom"
    token = valid_ocsf(calendly_event("Settings", "SCIM_Token_Created"), ocsf_schema)
    assert (token["activity_id"], token["entity"]["name"]) == (1, "SCIM Token")
    invitation = valid_ocsf(calendly_event("User_Management", "Invitation_Sent"), ocsf_schema)
    assert invitation["entity"]["type"] == "User Invitation"
    team = valid_ocsf(calendly_event("Teams", "Member_Added"), ocsf_schema)
    assert (team["entity"]["type_id"], team["entity"]["name"]) == (3, "Team")


def test_actor_roles_and_group(ocsf_schema: OcsfSchema) -> None:
    actor = user_actor()
    doc = valid_ocsf(calendly_event("Groups", "Member_Added", actor=actor), ocsf_schema)
    user = doc["actor"]["user"]
    assert (user["type_id"], user["type"]) == (2, "Admin")  # organization Owner
    assert user["display_name"] == "Alice Martin"
    assert user["groups"] == [{"uid": "https://api.calendly.com/groups/G1", "name": "Sales"}]
    assert user["account"]["uid"] == ORGANIZATION
    assert doc["unmapped"] == {"actor_role": "Owner", "actor_group_role": "Admin"}

    actor["organization"]["role"] = "user"
    assert (
        valid_ocsf(calendly_event("API", "Token_Created", actor=actor), ocsf_schema)["actor"][
            "user"
        ]["type_id"]
        == 1
    )
    actor["organization"]["role"] = "Billing Contact"
    user = valid_ocsf(calendly_event("API", "Token_Created", actor=actor), ocsf_schema)["actor"][
        "user"
    ]
    assert (user["type_id"], user["type"]) == (99, "Billing Contact")


@pytest.mark.parametrize(
    "actor",
    [
        {"type": "User", "display_name": "Only A Name"},
        {"type": "User", "alternative_identifier": "not an email", "uri": 7},
        {"type": "User", "display_name": 12, "organization": "nope", "group": []},
        {"type": "User"},
        {},
    ],
)
def test_odd_actors_still_validate(actor: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    doc = valid_ocsf(calendly_event("Workflows", "Created", actor=actor), ocsf_schema)
    user = doc.get("actor", {}).get("user", {})
    assert "email_addr" not in user


def test_login_client_address_and_agent(ocsf_schema: OcsfSchema) -> None:
    # What the ECS normalizer reads out of details (source.ip, user_agent.original).
    details = {"ip_address": "198.51.100.7", "user_agent": "Mozilla/5.0", "method": "saml"}
    doc = valid_ocsf(calendly_event("Login", "Succeeded", details=details), ocsf_schema)
    assert doc["src_endpoint"] == {"ip": "198.51.100.7"}
    assert doc["http_request"] == {"user_agent": "Mozilla/5.0"}
    assert doc["unmapped"]["details"] == details


def test_user_management_names_the_user_acted_on(ocsf_schema: OcsfSchema) -> None:
    details = {
        "user": {"email": "dan@x.com", "uri": "https://api.calendly.com/users/U9", "name": "Dan"}
    }
    doc = valid_ocsf(calendly_event("User_Management", "Added", details=details), ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"]) == (3004, 1)
    assert doc["entity"] == {
        "type_id": 2,
        "type": "User",
        "user": {
            "name": "dan@x.com",
            "email_addr": "dan@x.com",
            "full_name": "Dan",
            "uid": "https://api.calendly.com/users/U9",
        },
        "name": "dan@x.com",
        "uid": "https://api.calendly.com/users/U9",
        "data": details,
    }
    # Another kind of entity keeps the member in its data only.
    group = valid_ocsf(calendly_event("Groups", "Member_Added", details=details), ocsf_schema)
    assert "user" not in group["entity"]
    assert group["entity"]["data"] == details
