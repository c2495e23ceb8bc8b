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
from forwarder.schema.calendly_messages import (
    ACTIVITY_TEMPLATES,
    GENERIC_TEMPLATE,
    TARGET_FALLBACK,
)
from forwarder.schema.ecs_mapping import CALENDLY_ACTIVITIES, EcsCategorization, calendly_unknown
from forwarder.schema.fields import (
    ECS_VERSION,
    DecodeProblem,
    encode_original,
    is_ip,
    optional_object,
    optional_str,
    require_object,
    require_str,
    target_user,
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

# ``details`` keys that name the user an activity was done to (``user.target``), in order
# of preference: an object with ``email`` / ``uri`` / ``name`` or a plain string. Calendly
# does not document ``details``; unknown shapes simply yield no target.
TARGET_KEYS = ("user", "member", "invitee", "assignee")
# ``details`` keys that carry the client's address and user agent (login activities).
IP_KEYS = ("ip_address", "ip")
USER_AGENT_KEYS = ("user_agent",)
# Most details carry none of the keys above: one set test skips all their look-ups.
_DETAIL_KEYS = frozenset(TARGET_KEYS + IP_KEYS + USER_AGENT_KEYS)


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
"""``(namespace, action)`` -> short activity name (``Event Type - One On One Created``) for
every activity of the catalog; other activities are phrased the same way on the fly."""

# ``(namespace, action)`` -> (message template, ECS categorization), so that mapping a
# known activity is one dict look-up. The templates are filled with str.format_map: unlike
# Google parameters, every value here is a non-empty string, and format_map (in C) leaves
# the braces or format syntax *inside* a value alone; the templates themselves are ours.
_ACTIVITIES: Mapping[tuple[str, str], tuple[str, EcsCategorization]] = MappingProxyType(
    {key: (template, CALENDLY_ACTIVITIES[key]) for key, template in ACTIVITY_TEMPLATES.items()}
)


def normalize_entry(entry: Mapping[str, Any], *, ingested: str) -> Event:
    """One Activity Log entry, normalized.

    ``ingested`` (RFC 3339) is when the forwarder read the record; it becomes both
    ``event.created`` and ``event.ingested``. Raises :class:`MalformedRecordError` when
    the entry is not an object, ``uri``, ``namespace`` or ``action`` is missing or not a
    non-empty string, ``occurred_at`` is missing or not RFC 3339, or the entry is not
    plain JSON. Unknown namespaces and actions are mapped generically (the event has
    ``mapped=False``); mistyped optional fields are left out of the mapped fields and
    listed in ``calendly.decode_problems``.
    """
    record = require_object(entry, "entry")
    uri = require_str(record, "uri", "uri")
    timestamp, at_timestamp = event_time(record.get("occurred_at"), "occurred_at")
    namespace = require_str(record, "namespace", "namespace")
    action = require_str(record, "action", "action")
    original = encode_original(record, "entry")

    problems: list[DecodeProblem] = []
    qualified = f"{namespace}.{action}"
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

    interesting = details is not None and not _DETAIL_KEYS.isdisjoint(details)
    target, target_label = _target(details) if interesting else (None, None)
    known = _ACTIVITIES.get((namespace, action))
    if known is not None:
        template, ecs = known
        values = {"actor": label, "target": target_label or TARGET_FALLBACK}
    else:
        template, ecs = GENERIC_TEMPLATE, calendly_unknown(namespace)
        phrase = ACTIVITY_PHRASES.get((namespace, action)) or _activity_phrase(namespace, action)
        values = {"actor": label, "activity": phrase}

    document: dict[str, Any] = {
        "@timestamp": at_timestamp,
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": calendly_event_key(uri),
            "kind": "event",
            # Fresh lists: the mapping table's tuples must never be reachable from a
            # document that a consumer may edit.
            "category": list(ecs.category),
            "type": list(ecs.type),
            "outcome": ecs.outcome,
            "action": qualified,
            "provider": PROVIDER,
            "dataset": DATASET,
            # When the forwarder read the record: the Activity Log has no separate "created".
            "created": ingested,
            "ingested": ingested,
            "original": original,
        },
        "message": template.format_map(values),
    }
    if target is not None:
        user["target"] = target
    if user:
        document["user"] = user
    ip = _client(details, document) if interesting else None
    related = _related(user, target, ip)
    if related:
        document["related"] = related
    if organization is not None:
        document["organization"] = {"id": organization}
    if problems:
        calendly["decode_problems"] = problems
    document["calendly"] = calendly
    event_id = document["event"]["id"]
    return Event(
        event_id, timestamp, PROVIDER, qualified, document, record, mapped=known is not None
    )


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


def _target(details: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """ECS ``user.target`` fields and message label of the user ``details`` name, if any.

    Best effort over an undocumented object: values of unexpected types are skipped
    silently (they are not problems of the record, only shapes this mapping does not know).
    """
    for key in TARGET_KEYS:
        value = details.get(key)
        if type(value) is str and value:
            if value.startswith(("https://", "http://")):
                return {"id": value}, value
            return target_user(value), value
        if type(value) is dict:
            target = _target_object(value)
            if target:
                label = target.get("full_name") or target.get("email") or target.get("id")
                return target, label
    return None, None


def _target_object(value: Mapping[str, Any]) -> dict[str, Any]:
    email = value.get("email")
    target: dict[str, Any] = user_from_email(email) if type(email) is str and email else {}
    name = value.get("name")
    if type(name) is not str or not name:
        name = value.get("display_name")
    if type(name) is str and name:
        target["full_name"] = name
        target.setdefault("name", name)
    uri = value.get("uri")
    if type(uri) is str and uri:
        target["id"] = uri
    return target


def _client(details: Mapping[str, Any], document: dict[str, Any]) -> str | None:
    """``source.ip`` / ``user_agent.original`` from ``details`` that carry them (logins);
    returns the IP address. A value that is not an address is left in ``details`` only."""
    for key in USER_AGENT_KEYS:
        user_agent = details.get(key)
        if type(user_agent) is str and user_agent:
            document["user_agent"] = {"original": user_agent}
            break
    for key in IP_KEYS:
        ip = details.get(key)
        if type(ip) is str and is_ip(ip):
            document["source"] = {"ip": ip}
            return ip
    return None


def _related(
    user: Mapping[str, Any], target: Mapping[str, Any] | None, ip: str | None
) -> dict[str, list[str]]:
    email, user_id = user.get("email"), user.get("id")
    users = [email] if email else []
    if user_id and user_id != email:
        users.append(user_id)
    if target is not None:
        users.extend(
            value
            for value in (target.get("email"), target.get("id"))
            if value and value not in users
        )
    related: dict[str, list[str]] = {}
    if users:
        related["user"] = users
    if ip is not None:
        related["ip"] = [ip]
    return related
