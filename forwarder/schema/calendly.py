"""Calendly Activity Log entries to ECS-style events.

``event.action`` is the fully qualified ``Namespace.Action`` (``API.Token_Created``), not
the bare action: the same action names recur across namespaces (``Groups.Created``,
``Teams.Created``, ``Workflows.Created``), so the bare name alone would be ambiguous in a
SIEM. It is built from ``namespace`` and ``action``, which are validated; the API's own
``fully_qualified_name`` is kept in ``calendly.fully_qualified_name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from forwarder.events import Event
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.fields import (
    ECS_VERSION,
    DecodeProblem,
    encode_original,
    optional_object,
    optional_str,
    require_object,
    require_str,
    user_from_email,
)
from forwarder.schema.ids import calendly_event_key
from forwarder.schema.times import event_time

PROVIDER = "calendly"
DATASET = "calendly.activity_log"

SYSTEM_ACTOR_TYPE = "System"
# Calendly's own name for its system actor, used when an entry's System actor has none.
SYSTEM_ACTOR_NAME = "Calendly System"
UNKNOWN_ACTOR = "Someone"


def _words(identifier: str) -> str:
    return identifier.replace("_", " ")


def _category_title(namespace: str) -> str:
    category = CALENDLY_CATEGORIES.get(namespace)
    return category.title if category is not None else _words(namespace)


def _activity_phrase(namespace: str, action: str) -> str:
    return f"{_category_title(namespace)} - {_words(action)}"


ACTIVITY_PHRASES: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        (namespace, action): _activity_phrase(namespace, action)
        for namespace, category in CALENDLY_CATEGORIES.items()
        for action in category.actions
    }
)
"""``(namespace, action)`` -> message phrase (``Event Type - One On One Created``) for every
activity of the catalog; other activities are phrased the same way on the fly."""


def normalize_entry(entry: Mapping[str, Any], *, ingested: str) -> Event:
    """One Activity Log entry, normalized.

    Raises :class:`MalformedRecordError` when the entry is not an object, ``uri``,
    ``namespace`` or ``action`` is missing or not a non-empty string, ``occurred_at`` is
    missing or not RFC 3339, or the entry is not plain JSON. Unknown namespaces and
    actions are mapped generically; mistyped optional fields are left out of the mapped
    fields and listed in ``calendly.decode_problems``.
    """
    record = require_object(entry, "entry")
    uri = require_str(record, "uri", "uri")
    timestamp, at_timestamp = event_time(record.get("occurred_at"), "occurred_at")
    namespace = require_str(record, "namespace", "namespace")
    action = require_str(record, "action", "action")
    original = encode_original(record, "entry")

    problems: list[DecodeProblem] = []
    qualified = f"{namespace}.{action}"
    phrase = ACTIVITY_PHRASES.get((namespace, action)) or _activity_phrase(namespace, action)
    calendly: dict[str, Any] = {
        "uri": uri,
        "namespace": namespace,
        "action": action,
        "fully_qualified_name": (
            optional_str(record, "fully_qualified_name", "fully_qualified_name", problems)
            or qualified
        ),
        "category": _category_title(namespace),
    }
    details = optional_object(record, "details", "details", problems)
    if details is not None:
        calendly["details"] = details
    organization = optional_str(record, "organization", "organization", problems)
    if organization is not None:
        calendly["organization"] = organization

    actor = optional_object(record, "actor", "actor", problems)
    user: dict[str, Any] = {}
    label = UNKNOWN_ACTOR
    if actor is not None:
        calendly["actor"] = actor
        label, user, actor_organization = _actor(actor, problems)
        # The entry's own organization is required by the API; the actor's is a fallback.
        organization = organization or actor_organization

    document: dict[str, Any] = {
        "@timestamp": at_timestamp,
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": calendly_event_key(uri),
            "kind": "event",
            "action": qualified,
            "provider": PROVIDER,
            "dataset": DATASET,
            "ingested": ingested,
            "original": original,
        },
        "message": f"{label}: {phrase}",
    }
    if user:
        document["user"] = user
        related = [value for value in (user.get("email"), user.get("id")) if value]
        if related:
            document["related"] = {"user": related}
    if organization is not None:
        document["organization"] = {"id": organization}
    if problems:
        calendly["decode_problems"] = problems
    document["calendly"] = calendly
    return Event(document["event"]["id"], timestamp, PROVIDER, qualified, document, record)


def _actor(
    actor: Mapping[str, Any], problems: list[DecodeProblem]
) -> tuple[str, dict[str, Any], str | None]:
    """The actor's message label, ECS ``user`` fields (none for the System actor) and
    organization URI."""
    actor_type = optional_str(actor, "type", "actor.type", problems)
    display_name = optional_str(actor, "display_name", "actor.display_name", problems)
    if actor_type == SYSTEM_ACTOR_TYPE:
        # Calendly acting on its own: no user to attribute the event to.
        return display_name or SYSTEM_ACTOR_NAME, {}, None
    actor_uri = optional_str(actor, "uri", "actor.uri", problems)
    alternative = optional_str(
        actor, "alternative_identifier", "actor.alternative_identifier", problems
    )
    # The alternative identifier is the user's email in practice; only use it as
    # user.email when it looks like one.
    email = alternative if alternative and "@" in alternative else None
    user: dict[str, Any] = user_from_email(email) if email else {}
    if display_name:
        user["full_name"] = display_name
        user.setdefault("name", display_name)
    if actor_uri:
        user["id"] = actor_uri
    org_uri = None
    org = optional_object(actor, "organization", "actor.organization", problems)
    if org is not None:
        role = optional_str(org, "role", "actor.organization.role", problems)
        if role:
            user["roles"] = [role]
        org_uri = optional_str(org, "uri", "actor.organization.uri", problems) or None
    group = optional_object(actor, "group", "actor.group", problems)
    if group is not None:
        group_fields = {
            "id": optional_str(group, "uri", "actor.group.uri", problems),
            "name": optional_str(group, "name", "actor.group.name", problems),
        }
        group_fields = {key: value for key, value in group_fields.items() if value}
        if group_fields:
            user["group"] = group_fields
    label = display_name or alternative or actor_uri or UNKNOWN_ACTOR
    return label, user, org_uri
