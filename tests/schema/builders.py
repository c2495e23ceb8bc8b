"""Raw API records for the schema tests, shaped like the real API responses."""

from __future__ import annotations

from typing import Any

INGESTED = "2025-04-01T08:00:00.000Z"
ACTIVITY_TIME = "2025-04-01T07:03:12.345Z"
UNIQUE_QUALIFIER = "-4961328429713306829"


def param(name: str, **value: Any) -> dict[str, Any]:
    """One Google parameter: ``param("x", value="a")``, ``param("n", intValue="3")``..."""
    return {"name": name, **value}


def gevent(name: str, *parameters: dict[str, Any], type: str | None = None) -> dict[str, Any]:
    """One element of an activity's ``events[]``."""
    event: dict[str, Any] = {"name": name, "parameters": list(parameters)}
    if type is not None:
        event["type"] = type
    return event


def activity(
    *events: dict[str, Any],
    time: str = ACTIVITY_TIME,
    unique_qualifier: str = UNIQUE_QUALIFIER,
    email: str | None = "alice@x.com",
    profile_id: str | None = "114511147312345678901",
    ip: str | None = "203.0.113.5",
    customer_id: str = "C03az79cb",
) -> dict[str, Any]:
    """A Reports API ``Activity`` of application ``calendar``."""
    actor: dict[str, Any] = {"callerType": "USER"}
    if email is not None:
        actor["email"] = email
    if profile_id is not None:
        actor["profileId"] = profile_id
    record: dict[str, Any] = {
        "kind": "admin#reports#activity",
        "id": {
            "time": time,
            "uniqueQualifier": unique_qualifier,
            "applicationName": "calendar",
            "customerId": customer_id,
        },
        "etag": '"etag/1"',
        "actor": actor,
        "ownerDomain": "x.com",
        "events": list(events),
    }
    if ip is not None:
        record["ipAddress"] = ip
    return record


def calendly_entry(
    namespace: str = "API",
    action: str = "Token_Created",
    *,
    uri: str = "https://api.calendly.com/activity_log_entries/ALE0001",
    occurred_at: str = "2026-03-20T10:11:12.123456Z",
    actor: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Calendly Activity Log entry; the actor defaults to an organization owner."""
    if actor is None:
        actor = user_actor()
    return {
        "uri": uri,
        "occurred_at": occurred_at,
        "namespace": namespace,
        "action": action,
        "fully_qualified_name": f"{namespace}.{action}",
        "details": details if details is not None else {"token_name": "siem"},
        "organization": "https://api.calendly.com/organizations/ORG1",
        "actor": actor,
    }


def user_actor() -> dict[str, Any]:
    """A Calendly User actor with organization role and group."""
    return {
        "uri": "https://api.calendly.com/users/U1",
        "type": "User",
        "display_name": "Alice Martin",
        "alternative_identifier": "alice@x.com",
        "organization": {"uri": "https://api.calendly.com/organizations/ORG1", "role": "Owner"},
        "group": {"uri": "https://api.calendly.com/groups/G1", "name": "Sales", "role": "Admin"},
    }


SYSTEM_ACTOR = {"display_name": "Calendly System", "type": "System"}
