"""Calendly Activity Log entries to ECS-style events.

``event.action`` is the fully qualified ``Namespace.Action`` (``API.Token_Created``), not
the bare action: the same action names recur across namespaces (``Groups.Created``,
``Teams.Created``, ``Workflows.Created``), so the bare name alone would be ambiguous in a
SIEM. It is built from ``namespace`` and ``action``, which are validated; the API's own
``fully_qualified_name`` is kept in ``calendly.fully_qualified_name``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    agent_fields,
    encode_original,
    is_ip,
    mistyped,
    require_object,
    require_str,
    target_user,
    user_from_email,
)
from forwarder.schema.ids import calendly_event_key
from forwarder.schema.messages import safe_message
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


@dataclass(frozen=True, slots=True)
class _Activity:
    """What a known ``(namespace, action)`` contributes to every document, computed once."""

    category: str
    """``calendly.category``: the catalog title of the namespace."""
    template: str
    """The message; filled with str.format_map. Unlike Google parameters, every value here
    is a non-empty string, and format_map (in C) leaves the braces or format syntax *inside*
    a value alone; the templates themselves are ours."""
    actor_suffix: str | None
    """The rest of a template that is ``{actor}`` then literal text, the common case: the
    message is then a concatenation."""
    ecs: EcsCategorization


def _activity(namespace: str, action: str, template: str) -> _Activity:
    head, placeholder, tail = template.partition("{actor}")
    simple = bool(not head and placeholder and "{" not in tail and "}" not in tail)
    return _Activity(
        _category_title(namespace),
        template,
        tail if simple else None,
        CALENDLY_ACTIVITIES[namespace, action],
    )


# ``(namespace, action)`` -> what it maps to, so that mapping a known activity is one look-up.
_ACTIVITIES: Mapping[tuple[str, str], _Activity] = MappingProxyType(
    {key: _activity(*key, template) for key, template in ACTIVITY_TEMPLATES.items()}
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
    # The hot path: one call per record. Optional fields are type-checked inline rather
    # than through optional_str/optional_object (same rules, a call less per field).
    record = entry if type(entry) is dict else require_object(entry, "entry")
    get = record.get
    uri = get("uri")
    if type(uri) is not str or not uri:
        uri = require_str(record, "uri", "uri")
    timestamp, at_timestamp = event_time(get("occurred_at"), "occurred_at")
    namespace = get("namespace")
    if type(namespace) is not str or not namespace:
        namespace = require_str(record, "namespace", "namespace")
    action = get("action")
    if type(action) is not str or not action:
        action = require_str(record, "action", "action")
    original = encode_original(record, "entry")

    problems: list[DecodeProblem] = []
    qualified = f"{namespace}.{action}"
    known = _ACTIVITIES.get((namespace, action))
    fully_qualified_name = get("fully_qualified_name")
    if fully_qualified_name is not None and type(fully_qualified_name) is not str:
        fully_qualified_name = mistyped(problems, "fully_qualified_name")
    calendly: dict[str, Any] = {
        "uri": uri,
        "namespace": namespace,
        "action": action,
        "fully_qualified_name": fully_qualified_name or qualified,
        "category": known.category if known is not None else _category_title(namespace),
    }
    details = get("details")
    if details is not None:
        if type(details) is dict or isinstance(details, Mapping):
            calendly["details"] = details
        else:
            details = mistyped(problems, "details")
    organization = get("organization")
    if organization is not None:
        if type(organization) is str:
            calendly["organization"] = organization
        else:
            organization = mistyped(problems, "organization")

    actor = get("actor")
    user: dict[str, Any] = {}
    label = UNKNOWN_ACTOR
    if actor is not None:
        if type(actor) is dict or isinstance(actor, Mapping):
            calendly["actor"] = actor
            label, user, actor_organization = _actor(actor, problems)
            # The entry's own organization is required by the API; the actor's is a fallback.
            organization = organization or actor_organization
        else:
            mistyped(problems, "actor")

    interesting = details is not None and not _DETAIL_KEYS.isdisjoint(details)
    target, target_label = _target(details) if interesting else (None, None)
    if known is not None:
        ecs = known.ecs
        if known.actor_suffix is not None:
            message = label + known.actor_suffix
        else:
            values = {"actor": label, "target": target_label or TARGET_FALLBACK}
            message = known.template.format_map(values)
    else:
        ecs = calendly_unknown(namespace, action)
        phrase = ACTIVITY_PHRASES.get((namespace, action)) or _activity_phrase(namespace, action)
        message = GENERIC_TEMPLATE.format_map({"actor": label, "activity": phrase})

    event_id = calendly_event_key(uri)
    document: dict[str, Any] = {
        "@timestamp": at_timestamp,
        "ecs": {"version": ECS_VERSION},
        "agent": agent_fields(),
        "event": {
            "id": event_id,
            "kind": "event",
            # Fresh lists: the mapping table's tuples must never be reachable from a
            # document that a consumer may edit.
            "category": list(ecs.category),
            "type": list(ecs.type),
            "action": qualified,
            "provider": PROVIDER,
            "dataset": DATASET,
            # When the forwarder read the record: the Activity Log has no separate "created".
            "created": ingested,
            "ingested": ingested,
            "original": original,
        },
        # Display names and actions are user- or API-supplied: escape controls and bidi.
        "message": safe_message(message),
    }
    if ecs.outcome is not None:
        # The row's one outcome decision; absent where none applies (info, requests).
        document["event"]["outcome"] = ecs.outcome
    if target is not None:
        user["target"] = target
    if user:
        document["user"] = user
    ip = _client(details, document) if interesting else None
    if user or ip is not None:
        related = _related(user, target, ip)
        if related:
            document["related"] = related
    if organization is not None:
        document["organization"] = {"id": organization}
    if problems:
        calendly["decode_problems"] = problems
    document["calendly"] = calendly
    # Positional: keyword arguments cost a measurable share of a dataclass __init__ here.
    return Event(event_id, timestamp, PROVIDER, qualified, document, record, known is not None)


def _actor(
    actor: Mapping[str, Any], problems: list[DecodeProblem]
) -> tuple[str, dict[str, Any], str | None]:
    """The actor's message label, ECS ``user`` fields (none for the System actor) and
    organization URI."""
    get = actor.get
    actor_type = get("type")
    if actor_type is not None and type(actor_type) is not str:
        actor_type = mistyped(problems, "actor.type")
    display_name = get("display_name")
    if display_name is not None and type(display_name) is not str:
        display_name = mistyped(problems, "actor.display_name")
    if actor_type == SYSTEM_ACTOR_TYPE:
        # Calendly acting on its own: no user to attribute the event to.
        return display_name or SYSTEM_ACTOR_NAME, {}, None
    actor_uri = get("uri")
    if actor_uri is not None and type(actor_uri) is not str:
        actor_uri = mistyped(problems, "actor.uri")
    alternative = get("alternative_identifier")
    if alternative is not None and type(alternative) is not str:
        alternative = mistyped(problems, "actor.alternative_identifier")
    # The alternative identifier is the user's email in practice; only use it as
    # user.email when it looks like one.
    user: dict[str, Any] = (
        user_from_email(alternative) if alternative and "@" in alternative else {}
    )
    if display_name:
        user["full_name"] = display_name
        user.setdefault("name", display_name)
    if actor_uri:
        user["id"] = actor_uri
    org_uri = None
    org = get("organization")
    if org is not None:
        if type(org) is dict or isinstance(org, Mapping):
            role = org.get("role")
            if role is not None and type(role) is not str:
                role = mistyped(problems, "actor.organization.role")
            if role:
                user["roles"] = [role]
            org_uri = org.get("uri")
            if org_uri is not None and type(org_uri) is not str:
                org_uri = mistyped(problems, "actor.organization.uri")
            org_uri = org_uri or None
        else:
            mistyped(problems, "actor.organization")
    group = get("group")
    if group is not None:
        if type(group) is dict or isinstance(group, Mapping):
            group_fields = _group(group, problems)
            if group_fields:
                user["group"] = group_fields
        else:
            mistyped(problems, "actor.group")
    label = display_name or alternative or actor_uri or UNKNOWN_ACTOR
    return label, user, org_uri


def _group(group: Mapping[str, Any], problems: list[DecodeProblem]) -> dict[str, Any]:
    """``user.group`` from the actor's group: its non-empty ``uri`` (id) and ``name``."""
    fields: dict[str, Any] = {}
    group_uri = group.get("uri")
    if type(group_uri) is str:
        if group_uri:
            fields["id"] = group_uri
    elif group_uri is not None:
        mistyped(problems, "actor.group.uri")
    name = group.get("name")
    if type(name) is str:
        if name:
            fields["name"] = name
    elif name is not None:
        mistyped(problems, "actor.group.name")
    return fields


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
