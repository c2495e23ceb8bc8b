"""The ECS mapping tables: complete, ECS-valid, and following the stated rules."""

from __future__ import annotations

import pytest

from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.calendly_messages import ACTIVITY_TEMPLATES, GENERIC_TEMPLATE
from forwarder.schema.ecs_mapping import (
    CALENDLY_ACTIVITIES,
    CALENDLY_NAMESPACE_CATEGORIES,
    CALENDLY_UNKNOWN,
    CATEGORY_EXPECTED_TYPES,
    EVENT_KINDS,
    EVENT_TYPES,
    GOOGLE_EVENTS,
    GOOGLE_UNKNOWN,
    OUTCOMES,
    EcsCategorization,
    calendly_unknown,
)
from forwarder.schema.field_reference import FIELDS
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.messages import compile_template, placeholders

from .ecs_check import SCHEMA

CALENDLY_KEYS = [
    (namespace, action)
    for namespace, category in CALENDLY_CATEGORIES.items()
    for action in category.actions
]
ALL_ROWS: list[tuple[str, EcsCategorization]] = [
    *((name, row.ecs) for name, row in GOOGLE_EVENTS.items()),
    ("google unknown", GOOGLE_UNKNOWN.ecs),
    *((".".join(key), ecs) for key, ecs in CALENDLY_ACTIVITIES.items()),
    *((namespace, calendly_unknown(namespace)) for namespace in CALENDLY_NAMESPACE_CATEGORIES),
    ("calendly unknown", CALENDLY_UNKNOWN),
]


def _ecs(key: tuple[str, str]) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    ecs = CALENDLY_ACTIVITIES[key]
    return ecs.category, ecs.type, ecs.outcome


def _fields(ecs: EcsCategorization) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    return ecs.category, ecs.type, ecs.outcome


def test_tables_cover_exactly_the_catalogs() -> None:
    assert list(GOOGLE_EVENTS) == list(CALENDAR_EVENTS)
    assert list(CALENDLY_ACTIVITIES) == CALENDLY_KEYS
    assert list(ACTIVITY_TEMPLATES) == CALENDLY_KEYS
    assert list(CALENDLY_NAMESPACE_CATEGORIES) == list(CALENDLY_CATEGORIES)
    assert len(CALENDLY_CATEGORIES) == 16


@pytest.mark.parametrize(("name", "ecs"), ALL_ROWS, ids=[name for name, _ in ALL_ROWS])
def test_rows_use_ecs_allowed_values_that_fit_together(name: str, ecs: EcsCategorization) -> None:
    assert ecs.category and set(ecs.category) <= set(CATEGORY_EXPECTED_TYPES)
    assert ecs.type and set(ecs.type) <= set(EVENT_TYPES)
    assert len(set(ecs.category)) == len(ecs.category)
    assert len(set(ecs.type)) == len(ecs.type)
    # One outcome decision per row (None: no event.outcome, no OCSF status); an info row
    # has none unless its reason says why (an error report is a failure).
    assert ecs.outcome in (*OUTCOMES, None)
    if "info" in ecs.type and ecs.outcome is not None:
        assert ecs.reason, name
    # ECS lists the types it expects with each category: every type fits one of them.
    for event_type in ecs.type:
        assert any(event_type in CATEGORY_EXPECTED_TYPES[c] for c in ecs.category), event_type


def test_google_rules() -> None:
    acls = GOOGLE_EVENTS["change_calendar_acls"]
    assert (acls.ecs.category, acls.ecs.type, acls.target) == (
        ("iam",),
        ("change",),
        "grantee_email",
    )
    for name, row in GOOGLE_EVENTS.items():
        if name.endswith("_unsuccessful"):
            assert row.ecs.outcome == "failure", name
        elif name.endswith("_successful"):
            assert row.ecs.outcome == "success", name
        if CALENDAR_EVENTS[name].type == "interop":
            # Issue 17: EWS / free-busy look-ups are API calls.
            assert row.ecs.category == ("api",), name
    assert GOOGLE_EVENTS["create_event"].ecs.type == ("creation",)
    assert GOOGLE_EVENTS["delete_calendar"].ecs.type == ("deletion",)
    assert GOOGLE_EVENTS["transfer_event_requested"].target == "grantee_email"
    assert _fields(GOOGLE_UNKNOWN.ecs) == (("configuration",), ("info",), None)
    # Issue 17: a request is not a change, a notification has no outcome.
    requested = GOOGLE_EVENTS["transfer_event_requested"].ecs
    assert (requested.category, requested.type, requested.outcome) == (("iam",), ("info",), None)
    assert GOOGLE_EVENTS["notification_triggered"].ecs.outcome is None


def test_google_targets_are_documented_user_parameters() -> None:
    targets = {name: row.target for name, row in GOOGLE_EVENTS.items() if row.target}
    for name, target in targets.items():
        assert target in CALENDAR_EVENTS[name].parameters, name
    assert {targets[name] for name in targets if "guest" in name} == {"event_guest"}
    assert targets["notification_triggered"] == "recipient_email"
    assert (
        targets["add_subscription"] == targets["delete_subscription"] == ("subscriber_calendar_id")
    )


def test_calendly_rules() -> None:
    assert _ecs(("Login", "Failed")) == (("authentication",), ("start",), "failure")
    assert _ecs(("Login", "Succeeded")) == (("authentication",), ("start",), "success")
    assert _ecs(("API", "Token_Created"))[1] == ("creation",)
    assert _ecs(("API", "Token_Revoked"))[1] == ("deletion",)
    for key in CALENDLY_KEYS:
        namespace, action = key
        category, types, outcome = _ecs(key)
        if namespace == "User_Management":
            assert category == ("iam",) and "user" in types, key
        if namespace in ("Groups", "Teams"):
            assert category == ("iam",) and "group" in types, key
        if namespace == "Settings" and action.startswith(("SAML", "SCIM", "Domain_Control")):
            if "Token" in action:
                assert "iam" in category, key
            else:
                assert (category, types) == (("configuration",), ("change",)), key
        if action.endswith("Error"):
            assert outcome == "failure", key
        if action.endswith("Created") and namespace not in ("Groups", "Teams"):
            assert "creation" in types, key
        if action.endswith("Deleted") and namespace not in ("Groups", "Teams"):
            assert "deletion" in types or action.startswith("Logo"), key


def test_unknown_calendly_activities_keep_their_namespace_category() -> None:
    assert _fields(calendly_unknown("Login")) == (("authentication",), ("info",), None)
    assert calendly_unknown("Nope") is CALENDLY_UNKNOWN
    # Issue 17: an unknown action's name decides its outcome (a failed login is a failure).
    failure = calendly_unknown("Login", "Failure")
    assert (failure.category, failure.type, failure.outcome) == (
        ("authentication",),
        ("start",),
        "failure",
    )


def test_calendly_templates_use_only_actor_and_target() -> None:
    for key, template in ACTIVITY_TEMPLATES.items():
        names = placeholders(compile_template(template))
        assert names[0] == "actor" and set(names) <= {"actor", "target"}, key
        assert template.startswith("{actor} "), key
    assert set(placeholders(compile_template(GENERIC_TEMPLATE))) == {"actor", "activity"}


def test_json_schema_enums_are_the_mapping_constants() -> None:
    event = SCHEMA["properties"]["event"]["properties"]
    assert event["kind"]["enum"] == list(EVENT_KINDS)
    assert event["category"]["items"]["enum"] == list(CATEGORY_EXPECTED_TYPES)
    assert event["type"]["items"]["enum"] == list(EVENT_TYPES)
    assert event["outcome"]["enum"] == list(OUTCOMES)
    assert event["provider"]["enum"] == ["google_calendar", "calendly"]


def _schema_paths(node: dict, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        if value.get("type") == "object" and "properties" in value:
            paths |= _schema_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def test_json_schema_and_field_reference_list_the_same_fields() -> None:
    assert _schema_paths(SCHEMA) == {field.name for field in FIELDS}
    assert len({field.name for field in FIELDS}) == len(FIELDS)
