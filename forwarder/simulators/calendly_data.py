"""What the simulated Calendly Activity Log contains: entries built from a seed.

Entry ``i`` is a pure function of (seed, i, its time), drawn from its own generator, so
the content never depends on how many entries were generated before or on the settings
of the other simulator.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.simulators.people import build_people

API_BASE = "https://api.calendly.com"

SYSTEM_ACTOR: dict[str, Any] = {"display_name": "Calendly System", "type": "System"}

# Activities the Calendly system itself performs more often than people do.
_SYSTEM_LEANING = {
    ("Calendar", "Error"),
    ("Compliance", "Data_Deletion_Completed"),
    ("Integrations", "Salesforce_Error"),
    ("Integrations", "Zoom_Revoked"),
    ("User_Management", "Error"),
    ("User_Management", "User_Pending"),
}

GROUP_NAMES = ("Sales", "Support", "Engineering", "Recruiting", "Customer Success")
EVENT_TYPE_NAMES = ("30 Minute Meeting", "Intro Call", "Product Demo", "Interview", "Office Hours")
USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0.0.0 Safari/537.36",
    "Calendly/4.12 (iPhone; iOS 18.1)",
)


def calendly_id(rng: random.Random) -> str:
    """A 16-letter upper-case identifier, the shape Calendly uses in its URIs."""
    return "".join(rng.choices(string.ascii_uppercase, k=16))


@dataclass(frozen=True, slots=True)
class CalendlyUser:
    """A member of the simulated organization, as an Activity Log actor."""

    uri: str
    display_name: str
    email: str
    role: str
    group_uri: str
    group_name: str
    group_role: str

    def actor(self, organization_uri: str) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "type": "User",
            "display_name": self.display_name,
            "alternative_identifier": self.email,
            "organization": {"uri": organization_uri, "role": self.role},
            "group": {"uri": self.group_uri, "name": self.group_name, "role": self.group_role},
        }


def build_users(seed: str, domain: str, size: int = 12) -> tuple[CalendlyUser, ...]:
    """The organization's members (the first one is the owner)."""
    rng = random.Random(f"{seed}:calendly-users")
    groups = [(f"{API_BASE}/groups/{calendly_id(rng)}", name) for name in GROUP_NAMES]
    users = []
    for index, person in enumerate(build_people(f"{seed}:calendly", domain, size)):
        group_uri, group_name = rng.choice(groups)
        role = "owner" if index == 0 else rng.choice(("admin", "user", "user", "user"))
        users.append(
            CalendlyUser(
                uri=f"{API_BASE}/users/{calendly_id(rng)}",
                display_name=person.display_name,
                email=person.email,
                role=role,
                group_uri=group_uri,
                group_name=group_name,
                group_role=rng.choice(("admin", "member", "member")),
            )
        )
    return tuple(users)


Details = Callable[[random.Random, str, tuple[CalendlyUser, ...]], dict[str, Any]]


def _resource(rng: random.Random, kind: str, name: str) -> dict[str, Any]:
    return {"uri": f"{API_BASE}/{kind}/{calendly_id(rng)}", "name": name}


def _api(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    return {
        "token_name": rng.choice(("SIEM export", "Zapier", "Reporting script")),
        "token_type": rng.choice(("personal_access_token", "oauth_application")),
    }


def _availability(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    return {
        "schedule": _resource(rng, "user_availability_schedules", "Working hours"),
        "timezone": rng.choice(("Europe/Paris", "America/New_York", "Asia/Tokyo")),
    }


def _calendar(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "provider": rng.choice(("google", "office365", "exchange", "icloud")),
        "calendar_email": rng.choice(users).email,
    }
    if action == "Error":
        details["error"] = rng.choice(("token_expired", "sync_failed", "permission_revoked"))
    return details


def _compliance(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    return {
        "deletion_type": rng.choice(("invitee", "scheduled_events")),
        "emails_count": rng.randint(1, 5),
        "requested_by": rng.choice(users).email,
    }


def _event_type(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "event_type": _resource(rng, "event_types", rng.choice(EVENT_TYPE_NAMES))
    }
    if action.endswith("Updated"):
        old = rng.choice((15, 30, 45))
        details["changes"] = {"duration": {"from": old, "to": old + 15}}
    return details


def _groups(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {"group": _resource(rng, "groups", rng.choice(GROUP_NAMES))}
    if action.startswith(("Member", "Admin")):
        member = rng.choice(users)
        details["user"] = {"uri": member.uri, "email": member.email}
    return details


def _integrations(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    return {"integration": action.rsplit("_", 1)[0].lower(), "account": rng.choice(users).email}


def _login(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "ip_address": f"203.0.113.{rng.randint(1, 254)}",
        "user_agent": rng.choice(USER_AGENTS),
        "method": rng.choice(("password", "google", "microsoft", "saml")),
    }
    if action == "Failed":
        details["reason"] = rng.choice(("invalid_password", "sso_required", "locked_out"))
    return details


def _managed_events(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "event_type": _resource(rng, "event_types", rng.choice(EVENT_TYPE_NAMES))
    }
    if action in ("Assigned", "Unassigned"):
        details["assignee"] = rng.choice(users).email
    return details


def _permissions(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    return {"role": rng.choice(("admin", "user")), "allowed": rng.random() < 0.5}


def _routing_forms(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    form = rng.choice(("Inbound leads", "Support triage", "Candidate screening"))
    return {"routing_form": _resource(rng, "routing_forms", form)}


def _settings(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {"setting": action.rsplit("_", 1)[0].lower()}
    if action.startswith("Domain"):
        details["domain"] = rng.choice(("example.com", "example.org", "corp.example.net"))
    return details


def _teams(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    details: dict[str, Any] = {"team": _resource(rng, "teams", rng.choice(GROUP_NAMES) + " team")}
    if action.startswith("Member"):
        details["user"] = rng.choice(users).email
    return details


def _user_management(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    target = rng.choice(users)
    details: dict[str, Any] = {"user": {"uri": target.uri, "email": target.email}}
    if action == "Role_Changed":
        details["role"] = {"from": "user", "to": rng.choice(("admin", "owner"))}
    return details


def _user_profile(
    rng: random.Random, action: str, users: tuple[CalendlyUser, ...]
) -> dict[str, Any]:
    if action == "URL_Slug_Updated":
        return {"from": f"user-{rng.randint(1, 999)}", "to": f"user-{rng.randint(1000, 9999)}"}
    return {"length": rng.randint(10, 300)}


def _workflows(rng: random.Random, action: str, users: tuple[CalendlyUser, ...]) -> dict[str, Any]:
    flow = rng.choice(("Email reminder", "SMS reminder", "Follow-up"))
    return {"workflow": _resource(rng, "workflows", flow)}


DETAILS_BY_NAMESPACE: dict[str, Details] = {
    "API": _api,
    "Availability": _availability,
    "Calendar": _calendar,
    "Compliance": _compliance,
    "Event_Type": _event_type,
    "Groups": _groups,
    "Integrations": _integrations,
    "Login": _login,
    "Managed_Events": _managed_events,
    "Permissions": _permissions,
    "Routing_Forms": _routing_forms,
    "Settings": _settings,
    "Teams": _teams,
    "User_Management": _user_management,
    "User_Profile": _user_profile,
    "Workflows": _workflows,
}

_NAMESPACES = tuple(CALENDLY_CATEGORIES)


def build_entry(
    rng: random.Random,
    *,
    occurred_at: str,
    organization_uri: str,
    users: tuple[CalendlyUser, ...],
    system_actor_fraction: float,
    namespace: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    """One Activity Log entry as the API returns it (``rng`` is the entry's own generator)."""
    entry_id = calendly_id(rng)
    if namespace is None:
        namespace = rng.choice(_NAMESPACES)
    if action is None:
        category = CALENDLY_CATEGORIES.get(namespace)
        action = rng.choice(category.actions) if category else "Updated"
    leaning = 0.7 if (namespace, action) in _SYSTEM_LEANING else system_actor_fraction
    if rng.random() < leaning:
        actor = dict(SYSTEM_ACTOR)
    else:
        actor = rng.choice(users).actor(organization_uri)
    details_of = DETAILS_BY_NAMESPACE.get(namespace)
    details = details_of(rng, action, users) if details_of else {}
    return {
        "uri": f"{API_BASE}/activity_log_entries/{entry_id}",
        "occurred_at": occurred_at,
        "namespace": namespace,
        "action": action,
        "fully_qualified_name": f"{namespace}.{action}",
        "details": details,
        "organization": organization_uri,
        "actor": actor,
    }
