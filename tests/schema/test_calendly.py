"""Calendly Activity Log entries -> ECS-style events."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from forwarder.schema.calendly import normalize_entry
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.ids import calendly_event_key

from .builders import INGESTED, SYSTEM_ACTOR, calendly_entry, user_actor


def test_user_actor_golden() -> None:
    entry = calendly_entry("API", "Token_Created")
    event = normalize_entry(entry, ingested=INGESTED)
    doc = event.document

    assert doc["@timestamp"] == "2026-03-20T10:11:12.123Z"
    assert event.timestamp == datetime(2026, 3, 20, 10, 11, 12, 123456, tzinfo=UTC).timestamp()
    assert doc["event"] == {
        "id": calendly_event_key(entry["uri"]),
        "kind": "event",
        "category": ["iam", "configuration"],
        "type": ["creation"],
        "outcome": "success",
        "action": "API.Token_Created",
        "provider": "calendly",
        "dataset": "calendly.activity_log",
        "created": INGESTED,
        "ingested": INGESTED,
        "original": orjson.dumps(entry).decode(),
    }
    assert doc["message"] == "Alice Martin created an API token"
    assert doc["user"] == {
        "id": "https://api.calendly.com/users/U1",
        "email": "alice@x.com",
        "name": "alice",
        "domain": "x.com",
        "full_name": "Alice Martin",
        "roles": ["Owner"],
        "group": {"id": "https://api.calendly.com/groups/G1", "name": "Sales"},
    }
    assert doc["organization"] == {"id": "https://api.calendly.com/organizations/ORG1"}
    assert doc["related"] == {"user": ["alice@x.com", "https://api.calendly.com/users/U1"]}
    assert doc["calendly"] == {
        "uri": entry["uri"],
        "namespace": "API",
        "action": "Token_Created",
        "fully_qualified_name": "API.Token_Created",
        "category": "API",
        "details": {"token_name": "siem"},
        "organization": "https://api.calendly.com/organizations/ORG1",
        "actor": user_actor(),
    }
    assert (event.id, event.provider, event.action) == (
        doc["event"]["id"],
        "calendly",
        "API.Token_Created",
    )
    assert event.raw is entry
    assert event.mapped is True
    assert orjson.loads(event.encoded("ecs")) == doc


def test_system_actor_has_no_user() -> None:
    entry = calendly_entry("Compliance", "Data_Deletion_Completed", actor=dict(SYSTEM_ACTOR))
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert doc["message"] == "Calendly System completed a data deletion"
    assert "user" not in doc
    assert "related" not in doc
    assert doc["calendly"]["actor"] == SYSTEM_ACTOR
    assert doc["event"]["action"] == "Compliance.Data_Deletion_Completed"


def test_unknown_namespace_and_action_are_mapped_generically() -> None:
    entry = calendly_entry("Quantum_Scheduling", "Portal_Opened", details={"portal": 7})
    event = normalize_entry(entry, ingested=INGESTED)
    doc = event.document
    assert event.action == "Quantum_Scheduling.Portal_Opened"
    assert event.mapped is False
    assert doc["message"] == (
        "Alice Martin performed the Calendly activity Quantum Scheduling - Portal Opened"
    )
    # Issue 17: info with a name that says no outcome: no event.outcome (was "unknown").
    assert (doc["event"]["category"], doc["event"]["type"], doc["event"].get("outcome")) == (
        ["configuration"],
        ["info"],
        None,
    )
    assert doc["calendly"]["category"] == "Quantum Scheduling"
    assert doc["calendly"]["details"] == {"portal": 7}


def test_unknown_action_of_a_known_namespace_keeps_its_category() -> None:
    event = normalize_entry(calendly_entry("Login", "Passkey_Registered"), ingested=INGESTED)
    doc = event.document
    assert event.mapped is False
    assert (
        doc["message"] == "Alice Martin performed the Calendly activity Login - Passkey Registered"
    )
    # Issue 17: info with a name that says no outcome: no event.outcome (was "unknown").
    assert (doc["event"]["category"], doc["event"]["type"], doc["event"].get("outcome")) == (
        ["authentication"],
        ["info"],
        None,
    )


def test_catalog_titles_are_used() -> None:
    doc = normalize_entry(
        calendly_entry("Event_Type", "One_On_One_Created"), ingested=INGESTED
    ).document
    assert doc["message"] == "Alice Martin created a one-on-one event type"
    assert doc["calendly"]["category"] == "Event Type"


@pytest.mark.parametrize(
    ("namespace", "action"),
    [(ns, action) for ns, category in CALENDLY_CATEGORIES.items() for action in category.actions],
)
def test_every_catalog_activity_normalizes(namespace: str, action: str) -> None:
    event = normalize_entry(calendly_entry(namespace, action), ingested=INGESTED)
    assert event.action == f"{namespace}.{action}"
    assert event.mapped is True
    message = event.document["message"]
    assert message.startswith("Alice Martin ")
    assert "_" not in message and "{" not in message and "}" not in message


def test_actor_fallbacks() -> None:
    actor = {"uri": "https://api.calendly.com/users/U2", "type": "User"}
    doc = normalize_entry(calendly_entry(actor=actor), ingested=INGESTED).document
    assert doc["message"] == "https://api.calendly.com/users/U2 created an API token"
    assert doc["user"] == {"id": "https://api.calendly.com/users/U2"}

    entry = calendly_entry()
    del entry["actor"]
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert doc["message"] == "Someone created an API token"
    assert "user" not in doc


def test_non_email_alternative_identifier_is_not_user_email() -> None:
    actor = {"type": "User", "display_name": "Bob", "alternative_identifier": "bob-sso-id"}
    doc = normalize_entry(calendly_entry(actor=actor), ingested=INGESTED).document
    assert doc["user"] == {"full_name": "Bob", "name": "Bob"}


def test_organization_falls_back_to_the_actors() -> None:
    entry = calendly_entry()
    del entry["organization"]
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert doc["organization"] == {"id": "https://api.calendly.com/organizations/ORG1"}


def test_mistyped_optional_fields_are_noted() -> None:
    entry = calendly_entry()
    entry["details"] = "oops"
    entry["actor"]["display_name"] = 5
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert "details" not in doc["calendly"]
    assert doc["calendly"]["decode_problems"] == [
        {"field": "details", "problem": "invalid_type"},
        {"field": "actor.display_name", "problem": "invalid_type"},
    ]
    assert doc["message"] == "alice@x.com created an API token"


def test_ids_are_deterministic_and_follow_the_uri() -> None:
    first = normalize_entry(calendly_entry(), ingested=INGESTED)
    later = "2026-03-21T00:00:00.000Z"
    again = normalize_entry(orjson.loads(orjson.dumps(calendly_entry())), ingested=later)
    other = normalize_entry(calendly_entry(uri="https://api.calendly.com/a/2"), ingested=INGESTED)
    assert first.id == again.id
    assert first.id != other.id


def _entry_with(key: str, value: object) -> dict:
    entry = calendly_entry()
    if value is _MISSING:
        del entry[key]
    else:
        entry[key] = value
    return entry


_MISSING = object()


@pytest.mark.parametrize(
    ("entry", "reason", "field"),
    [
        ([], "not_an_object", "entry"),
        (_entry_with("uri", _MISSING), "missing_field", "uri"),
        (_entry_with("uri", 5), "invalid_type", "uri"),
        (_entry_with("uri", ""), "invalid_value", "uri"),
        (_entry_with("occurred_at", _MISSING), "missing_field", "occurred_at"),
        (_entry_with("occurred_at", "20 March 2026"), "invalid_timestamp", "occurred_at"),
        (_entry_with("occurred_at", 1774001472), "invalid_type", "occurred_at"),
        (_entry_with("namespace", _MISSING), "missing_field", "namespace"),
        (_entry_with("namespace", None), "missing_field", "namespace"),
        (_entry_with("namespace", ["API"]), "invalid_type", "namespace"),
        (_entry_with("action", _MISSING), "missing_field", "action"),
        (_entry_with("action", {}), "invalid_type", "action"),
        (_entry_with("details", {"n": 2**64}), "unserializable", "entry"),
    ],
)
def test_malformed_entries(entry: object, reason: str, field: str) -> None:
    with pytest.raises(MalformedRecordError) as caught:
        normalize_entry(entry, ingested=INGESTED)  # type: ignore[arg-type]
    assert caught.value.reason == reason
    assert caught.value.detail.startswith(field + " ")
