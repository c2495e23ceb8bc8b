"""Golden documents: one Calendly activity per category (16), with realistic details, the
exact message and the key ECS fields; plus every activity's sentence."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from forwarder.schema.calendly import normalize_entry
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.calendly_messages import ACTIVITY_TEMPLATES

from .builders import INGESTED, SYSTEM_ACTOR, calendly_entry, user_actor

API = "https://api.calendly.com"
BOB = {"uri": f"{API}/users/U2", "email": "bob@x.com", "name": "Bob Stone"}
BOB_TARGET = {
    "id": f"{API}/users/U2",
    "email": "bob@x.com",
    "name": "bob",
    "domain": "x.com",
    "full_name": "Bob Stone",
}
ALICE_USER = {
    "id": f"{API}/users/U1",
    "email": "alice@x.com",
    "name": "alice",
    "domain": "x.com",
    "full_name": "Alice Martin",
    "roles": ["Owner"],
    "group": {"id": f"{API}/groups/G1", "name": "Sales"},
}
USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


class Golden(NamedTuple):
    action: str
    details: dict[str, Any]
    message: str
    category: list[str]
    type: list[str]
    outcome: str
    system: bool = False
    target: dict[str, Any] | None = None


GOLDEN: dict[str, Golden] = {
    "API": Golden(
        "Token_Created",
        {"token_name": "SIEM export", "token_type": "personal_access_token"},
        "Alice Martin created an API token",
        ["iam", "configuration"], ["creation"], "success",
    ),
    "Availability": Golden(
        "Schedule_Created",
        {"schedule": {"uri": f"{API}/user_availability_schedules/S1", "name": "Working hours"}},
        "Alice Martin created an availability schedule",
        ["configuration"], ["creation"], "success",
    ),
    "Calendar": Golden(
        "Error",
        {"provider": "office365", "calendar_email": "bob@x.com", "error": "token_expired"},
        "Calendly System reported a calendar connection error",
        ["configuration"], ["info"], "failure", system=True,
    ),
    "Compliance": Golden(
        "Data_Deletion_Completed",
        {"deletion_type": "invitee", "emails_count": 2, "requested_by": "alice@x.com"},
        "Calendly System completed a data deletion",
        ["configuration"], ["deletion"], "success", system=True,
    ),
    "Event_Type": Golden(
        "Round_Robin_Created",
        {"event_type": {"uri": f"{API}/event_types/E1", "name": "Product Demo"}},
        "Alice Martin created a round robin event type",
        ["configuration"], ["creation"], "success",
    ),
    "Groups": Golden(
        "Member_Added",
        {"group": {"uri": f"{API}/groups/G2", "name": "Support"}, "user": BOB},
        "Alice Martin added Bob Stone to a group",
        ["iam"], ["group", "change"], "success", target=BOB_TARGET,
    ),
    "Integrations": Golden(
        "Zoom_Revoked",
        {"integration": "zoom", "account": "bob@x.com"},
        "Alice Martin revoked the Zoom connection",
        ["configuration"], ["deletion"], "success",
    ),
    "Login": Golden(
        "Failed",
        {
            "ip_address": "203.0.113.77",
            "user_agent": USER_AGENT,
            "method": "password",
            "reason": "invalid_password",
        },
        "Alice Martin failed to log in",
        ["authentication"], ["start"], "failure",
    ),
    "Managed_Events": Golden(
        "Assigned",
        {
            "event_type": {"uri": f"{API}/event_types/E2", "name": "Intro Call"},
            "assignee": "bob@x.com",
        },
        "Alice Martin assigned a managed event type to bob@x.com",
        ["configuration"], ["change"], "success",
        target={"email": "bob@x.com", "name": "bob", "domain": "x.com"},
    ),
    "Permissions": Golden(
        "Workflows_Updated",
        {"role": "user", "allowed": False},
        "Alice Martin updated the workflow permissions",
        ["iam"], ["admin", "change"], "success",
    ),
    "Routing_Forms": Golden(
        "Published",
        {"routing_form": {"uri": f"{API}/routing_forms/R1", "name": "Inbound leads"}},
        "Alice Martin published a routing form",
        ["configuration"], ["change"], "success",
    ),
    "Settings": Golden(
        "SAML_Enforced",
        {"setting": "saml"},
        "Alice Martin enforced SAML single sign-on",
        ["configuration"], ["change"], "success",
    ),
    "Teams": Golden(
        "Member_Removed",
        {"team": {"uri": f"{API}/teams/T1", "name": "Sales team"}, "user": "bob@x.com"},
        "Alice Martin removed bob@x.com from a team",
        ["iam"], ["group", "change"], "success",
        target={"email": "bob@x.com", "name": "bob", "domain": "x.com"},
    ),
    "User_Management": Golden(
        "Deactivated",
        {"user": {"uri": f"{API}/users/U2", "email": "bob@x.com"}},
        "Alice Martin deactivated bob@x.com",
        ["iam"], ["user", "change"], "success",
        target={"id": f"{API}/users/U2", "email": "bob@x.com", "name": "bob", "domain": "x.com"},
    ),
    "User_Profile": Golden(
        "URL_Slug_Updated",
        {"from": "alice-1", "to": "alice-martin"},
        "Alice Martin updated a profile URL slug",
        ["configuration"], ["change"], "success",
    ),
    "Workflows": Golden(
        "Created",
        {"workflow": {"uri": f"{API}/workflows/W1", "name": "Email reminder"}},
        "Alice Martin created a workflow",
        ["configuration"], ["creation"], "success",
    ),
}  # fmt: skip


def test_golden_table_has_one_activity_per_category() -> None:
    assert list(GOLDEN) == list(CALENDLY_CATEGORIES)
    for namespace, golden in GOLDEN.items():
        assert golden.action in CALENDLY_CATEGORIES[namespace].actions


@pytest.mark.parametrize("namespace", list(GOLDEN))
def test_golden_category(namespace: str) -> None:
    golden = GOLDEN[namespace]
    actor = dict(SYSTEM_ACTOR) if golden.system else user_actor()
    entry = calendly_entry(namespace, golden.action, actor=actor, details=golden.details)
    event = normalize_entry(entry, ingested=INGESTED)
    doc = event.document

    assert doc["message"] == golden.message
    assert event.action == doc["event"]["action"] == f"{namespace}.{golden.action}"
    assert event.mapped is True
    assert doc["event"]["category"] == golden.category
    assert doc["event"]["type"] == golden.type
    assert doc["event"]["outcome"] == golden.outcome
    assert doc["event"]["created"] == doc["event"]["ingested"] == INGESTED
    assert doc["organization"] == {"id": f"{API}/organizations/ORG1"}
    # details are kept whole, the actor as sent.
    assert doc["calendly"]["details"] == golden.details
    assert doc["calendly"]["actor"] == actor
    assert doc["calendly"]["namespace"] == namespace
    assert doc["calendly"]["category"] == CALENDLY_CATEGORIES[namespace].title

    expected_user: dict[str, Any] = {} if golden.system else dict(ALICE_USER)
    if golden.target is not None:
        expected_user["target"] = golden.target
    assert doc.get("user", {}) == expected_user
    related = [] if golden.system else ["alice@x.com", f"{API}/users/U1"]
    if golden.target is not None:
        related += [golden.target[k] for k in ("email", "id") if k in golden.target]
    assert doc.get("related", {}).get("user", []) == related

    if namespace == "Login":
        assert doc["source"] == {"ip": "203.0.113.77"}
        assert doc["user_agent"] == {"original": USER_AGENT}
        assert doc["related"]["ip"] == ["203.0.113.77"]
    else:
        assert "source" not in doc and "user_agent" not in doc


def test_login_succeeded() -> None:
    entry = calendly_entry("Login", "Succeeded", details={"ip_address": "2001:db8::7"})
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert doc["message"] == "Alice Martin logged in"
    assert (doc["event"]["category"], doc["event"]["type"], doc["event"]["outcome"]) == (
        ["authentication"],
        ["start"],
        "success",
    )
    assert doc["source"] == {"ip": "2001:db8::7"}


@pytest.mark.parametrize(
    ("namespace", "action"),
    [(ns, action) for ns, category in CALENDLY_CATEGORIES.items() for action in category.actions],
)
def test_every_activity_sentence(namespace: str, action: str) -> None:
    template = ACTIVITY_TEMPLATES[(namespace, action)]
    with_target = calendly_entry(namespace, action, details={"user": BOB})
    without = calendly_entry(namespace, action, actor=dict(SYSTEM_ACTOR), details={})
    assert normalize_entry(with_target, ingested=INGESTED).document["message"] == (
        template.format(actor="Alice Martin", target="Bob Stone")
    )
    assert normalize_entry(without, ingested=INGESTED).document["message"] == (
        template.format(actor="Calendly System", target="a user")
    )


@pytest.mark.parametrize(
    ("details", "target", "label"),
    [
        ({"member": {"display_name": "Eve"}}, {"full_name": "Eve", "name": "Eve"}, "Eve"),
        ({"invitee": f"{API}/users/U9"}, {"id": f"{API}/users/U9"}, f"{API}/users/U9"),
        ({"user": "Frank"}, {"name": "Frank"}, "Frank"),
        # Unknown shapes and empty values name nobody.
        ({"user": 42}, None, "a user"),
        ({"user": {"uri": 7, "email": None}}, None, "a user"),
        ({"user": ""}, None, "a user"),
        # The first key present wins.
        (
            {"assignee": "z@x.com", "user": "y@x.com"},
            {"email": "y@x.com", "name": "y", "domain": "x.com"},
            "y@x.com",
        ),
    ],
)  # fmt: skip
def test_target_shapes(details: dict[str, Any], target: dict[str, Any] | None, label: str) -> None:
    entry = calendly_entry("User_Management", "Removed", details=details)
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert doc["user"].get("target") == target
    assert doc["message"] == f"Alice Martin removed {label} from the organization"


def test_invalid_ip_in_details_is_not_source_ip() -> None:
    entry = calendly_entry("Login", "Succeeded", details={"ip_address": "10.0.0.300"})
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert "source" not in doc
    assert doc["calendly"]["details"] == {"ip_address": "10.0.0.300"}
