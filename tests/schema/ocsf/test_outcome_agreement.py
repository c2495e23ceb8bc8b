"""Issue 17 (S3): one outcome per event, in both formats.

Every catalog event (the 38 Google names and every Calendly namespace/action) is
normalized to ECS and converted to OCSF; the ECS ``event.outcome`` and the OCSF
``status_id`` / ``status`` must say the same thing, because both come from the one
outcome decision of the event's row in ``forwarder.schema.ecs_mapping``. Failed logins
are failures whatever the API's spelling, requests are not changes, and every OCSF
activity 99 (Other) carries the source's own name.
"""

from __future__ import annotations

from typing import Any

import pytest

import forwarder
from forwarder.events import Event
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.ecs_mapping import CALENDLY_ACTIVITIES
from forwarder.schema.ecs_mapping import GOOGLE_EVENTS as ECS_GOOGLE_EVENTS
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.ocsf.classes import OTHER
from forwarder.schema.ocsf.mapping import (
    CALENDLY_EVENTS,
    GOOGLE_EVENTS,
    calendly_generic,
    google_generic,
)
from forwarder.schema.ocsf.validate import OcsfSchema

from ..builders import param
from .ocsf_check import calendly_event, documented_parameters, google_event, valid_ocsf

# ECS event.outcome -> OCSF (status_id, status); absent <-> absent.
STATUS_OF_OUTCOME: dict[str | None, tuple[int, str] | None] = {
    "success": (1, "Success"),
    "failure": (2, "Failure"),
    "unknown": (0, "Unknown"),
    None: None,
}
CALENDLY_KEYS = [
    (namespace, action)
    for namespace, category in CALENDLY_CATEGORIES.items()
    for action in category.actions
]

# Every Calendly action that can mean a failure. The catalog's own (the help article:
# Login "Échec", Calendar / Salesforce / User Management "Erreur"), then the spellings the
# API may use for a failed login: only ``Namespace.Action`` with
# ``Words_Joined_By_Underscores`` is confirmed, so the words, not one spelling, decide.
CATALOG_FAILURES = [
    ("Login", "Failed"),
    ("Calendar", "Error"),
    ("Integrations", "Salesforce_Error"),
    ("User_Management", "Error"),
]
LOGIN_FAILURE_SPELLINGS = [
    ("Login", "Failure"),
    ("Login", "Fail"),
    ("Login", "Unsuccessful"),
    ("Login", "Login_Failed"),
    ("Login", "LoginFailure"),
    ("Login", "Failed_MFA"),
    ("Login", "SSO_Failure"),
    ("Login", "Denied"),
    ("login", "failed"),
    ("LOGIN", "FAILURE"),
]


def _agree(event: Event, doc: dict[str, Any]) -> str | None:
    """Assert the ECS outcome and the OCSF status agree; return the outcome."""
    outcome = event.document["event"].get("outcome")
    expected = STATUS_OF_OUTCOME[outcome]
    if expected is None:
        assert "status_id" not in doc and "status" not in doc, event.action
    else:
        assert (doc["status_id"], doc["status"]) == expected, event.action
    return outcome


def test_the_catalogs_are_all_covered() -> None:
    assert len(CALENDAR_EVENTS) == 38
    assert set(CALENDLY_KEYS) == set(CALENDLY_ACTIVITIES) == set(CALENDLY_EVENTS)


@pytest.mark.parametrize("name", list(CALENDAR_EVENTS))
def test_google_ecs_and_ocsf_agree_on_outcome(name: str, ocsf_schema: OcsfSchema) -> None:
    event = google_event(name, *documented_parameters(CALENDAR_EVENTS[name]))
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)
    outcome = _agree(event, doc)
    row = ECS_GOOGLE_EVENTS[name].ecs
    assert outcome == row.outcome  # the table's decision, not the converter's guess
    if "info" in row.type and outcome is not None:
        assert row.reason, name  # an info row has no outcome unless it says why


@pytest.mark.parametrize(("namespace", "action"), CALENDLY_KEYS)
def test_calendly_ecs_and_ocsf_agree_on_outcome(
    namespace: str, action: str, ocsf_schema: OcsfSchema
) -> None:
    event = calendly_event(namespace, action)
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)
    outcome = _agree(event, doc)
    row = CALENDLY_ACTIVITIES[namespace, action]
    assert outcome == row.outcome
    if "info" in row.type and outcome is not None:
        assert row.reason, (namespace, action)


@pytest.mark.parametrize(
    ("namespace", "action"),
    [
        ("Login", "Success"),
        ("Login", "Succeeded_SSO"),
        ("Settings", "Passkeys_Enabled"),
        ("Billing_Plans", "Invoice_Failed"),
        ("Quantum", "Portal_Opened"),
    ],
)
def test_unknown_calendly_activities_agree_too(
    namespace: str, action: str, ocsf_schema: OcsfSchema
) -> None:
    event = calendly_event(namespace, action)
    assert event.mapped is False
    _agree(event, valid_ocsf(event, ocsf_schema, raw_data=False))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("brand_new_thing", None),
        ("interop_new_lookup_unsuccessful", "failure"),
        ("interop_new_lookup_successful", "success"),
    ],
)
def test_unknown_google_names_agree_too(
    name: str, expected: str | None, ocsf_schema: OcsfSchema
) -> None:
    event = google_event(name)
    assert event.mapped is False
    assert _agree(event, valid_ocsf(event, ocsf_schema, raw_data=False)) == expected


@pytest.mark.parametrize(("namespace", "action"), CATALOG_FAILURES + LOGIN_FAILURE_SPELLINGS)
def test_every_calendly_failure_is_a_failure_in_both_formats(
    namespace: str, action: str, ocsf_schema: OcsfSchema
) -> None:
    event = calendly_event(namespace, action)
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)
    assert event.document["event"]["outcome"] == "failure"
    assert (doc["status_id"], doc["status"]) == (2, "Failure")
    if namespace.casefold() == "login":
        # A failed login attempt: ECS authentication start, OCSF Authentication Logon.
        assert event.document["event"]["category"] == ["authentication"]
        assert event.document["event"]["type"] == ["start"]
        assert (doc["class_uid"], doc["activity_id"]) == (3002, 1)


def test_only_failures_are_failures() -> None:
    failures = {key for key, row in CALENDLY_ACTIVITIES.items() if row.outcome == "failure"}
    assert failures == set(CATALOG_FAILURES)
    # The successful login is a success, not a failure nor "no outcome".
    assert CALENDLY_ACTIVITIES["Login", "Succeeded"].outcome == "success"


def test_a_requested_transfer_is_not_a_completed_one(ocsf_schema: OcsfSchema) -> None:
    spec = CALENDAR_EVENTS["transfer_event_requested"]
    requested = google_event(spec.name, *documented_parameters(spec))
    spec = CALENDAR_EVENTS["transfer_event_completed"]
    completed = google_event(spec.name, *documented_parameters(spec))
    ecs = requested.document["event"]
    assert (ecs["category"], ecs["type"], "outcome" in ecs) == (["iam"], ["info"], False)
    assert completed.document["event"]["type"] == ["change"]
    assert completed.document["event"]["outcome"] == "success"

    offer = valid_ocsf(requested, ocsf_schema, raw_data=False)
    accept = valid_ocsf(completed, ocsf_schema, raw_data=False)
    assert (offer["class_uid"], offer["activity_id"], offer["activity_name"]) == (
        3005,
        OTHER,
        "transfer_event_requested",
    )
    assert "status_id" not in offer
    assert offer["user"]["email_addr"] == "bob@y.com"  # who was offered the event
    assert (accept["class_uid"], accept["activity_name"], accept["status"]) == (
        3005,
        "Assign Privileges",
        "Success",
    )


def test_a_requested_transfer_without_grantee_stays_a_request(ocsf_schema: OcsfSchema) -> None:
    doc = valid_ocsf(google_event("transfer_event_requested"), ocsf_schema, raw_data=False)
    assert (doc["class_uid"], doc["activity_id"], doc["activity_name"]) == (
        3004,
        OTHER,
        "transfer_event_requested",
    )


def test_a_requested_data_deletion_is_not_a_deletion(ocsf_schema: OcsfSchema) -> None:
    event = calendly_event("Compliance", "Data_Deletion_Requested")
    assert event.document["event"]["type"] == ["info"]
    assert "outcome" not in event.document["event"]
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)
    assert (doc["activity_id"], doc["activity_name"]) == (OTHER, "Data_Deletion_Requested")
    assert "status_id" not in doc


def test_every_other_activity_carries_the_source_name() -> None:
    mappings = [
        *((name, mapping) for name, mapping in GOOGLE_EVENTS.items()),
        *((action, mapping) for (_ns, action), mapping in CALENDLY_EVENTS.items()),
        ("some_new_event", google_generic("some_new_event", {})),
        ("Portal_Opened", calendly_generic("Settings", "Portal_Opened")),
        ("Portal_Opened", calendly_generic("Quantum", "Portal_Opened")),
    ]
    others = 0
    for name, mapping in mappings:
        for candidate in (mapping, mapping.fallback):
            if candidate is not None and candidate.activity_id == OTHER:
                others += 1
                assert candidate.header["activity_name"] == name, name
    assert others >= 8  # Error / User_Pending / requests... and the generic ones


def test_a_revoked_acl_agrees_too(ocsf_schema: OcsfSchema) -> None:
    # access_level "none" switches the OCSF activity (Revoke): the outcome stays the row's.
    event = google_event(
        "change_calendar_acls",
        param("grantee_email", value="bob@y.com"),
        param("access_level", value="none"),
    )
    doc = valid_ocsf(event, ocsf_schema, raw_data=False)
    assert doc["activity_name"] == "Revoke Privileges"
    assert _agree(event, doc) == "success"


def test_every_ocsf_event_names_the_forwarder(ocsf_schema: OcsfSchema) -> None:
    for event in (google_event("create_event"), calendly_event("Login", "Failure")):
        [logger] = valid_ocsf(event, ocsf_schema, raw_data=False)["metadata"]["loggers"]
        assert (logger["name"], logger["version"]) == ("forwarder", forwarder.__version__)
