"""Calendly Activity Log events (ECS documents) -> OCSF 1.7.0 events.

Reads ``calendly.*`` of the ECS document (the entry's namespace, action, actor as the API
sent it, details, organization); the class and activity come from
:data:`mapping.CALENDLY_EVENTS`. ``details`` is not documented by Calendly, so it is
carried whole: in ``entity.data`` for Entity Management, in ``unmapped.details`` else.
What the ECS normalizer found in it on a best-effort basis (``user.target``,
``source.ip``, ``user_agent.original``) is mapped from the ECS fields, not re-guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from forwarder.events import Event
from forwarder.schema.calendly import DATASET, SYSTEM_ACTOR_NAME, SYSTEM_ACTOR_TYPE
from forwarder.schema.ocsf.classes import (
    ACCOUNT_OTHER,
    ENTITY_USER,
    OTHER,
    USER_TYPE_ADMIN,
    USER_TYPE_SYSTEM,
    USER_TYPE_UNKNOWN,
    USER_TYPE_USER,
    USER_TYPES,
)
from forwarder.schema.ocsf.common import (
    EMAIL_ADDRESS,
    as_object,
    metadata,
    millis,
    person,
    put,
    source_ip,
    text,
)
from forwarder.schema.ocsf.mapping import (
    CALENDLY_EVENTS,
    LOGON_TARGET,
    OcsfMapping,
    calendly_generic,
)

PRODUCT_NAME = "Calendly"
VENDOR_NAME = "Calendly"
LOG_PROVIDER = "Calendly Activity Log API"
PRODUCT: Mapping[str, str] = MappingProxyType({"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME})
ACCOUNT_TYPE = "Calendly Organization"
# Calendly organization roles -> OCSF user.type_id (the role itself is kept in unmapped).
_ROLE_TYPES = {"owner": USER_TYPE_ADMIN, "admin": USER_TYPE_ADMIN, "user": USER_TYPE_USER}


def calendly_to_ocsf(event: Event) -> dict[str, Any]:
    """One Calendly Activity Log event as an OCSF event (see ``to_ocsf``)."""
    document = event.document
    calendly = as_object(document.get("calendly"))
    fallback_namespace, _, fallback_action = event.action.partition(".")
    namespace = text(calendly, "namespace") or fallback_namespace
    action = text(calendly, "action") or fallback_action
    organization = text(calendly, "organization") or text(
        as_object(document.get("organization")), "id"
    )
    details = calendly.get("details")

    unmapped: dict[str, Any] = {}
    actor_user = _actor_user(as_object(calendly.get("actor")), organization, unmapped)
    mapping = CALENDLY_EVENTS.get((namespace, action)) or calendly_generic(namespace, action)
    part: dict[str, Any] | None = None
    if mapping.target == LOGON_TARGET:
        part = _logon(actor_user, organization)
        if part is None:
            assert mapping.fallback is not None
            mapping = mapping.fallback
        else:
            put(unmapped, "details", details)
    if part is None:
        part = {"entity": _entity(mapping, details, document, unmapped)}

    out: dict[str, Any] = mapping.header.copy()
    out["time"] = millis(event.timestamp)
    out["timezone_offset"] = 0  # source times are UTC
    message = document.get("message")
    if type(message) is str:
        out["message"] = message
    out["metadata"] = _metadata(event, document, calendly, namespace, action, organization)
    if actor_user is not None:
        out["actor"] = {"user": actor_user}
    ip = source_ip(document)
    if ip is not None:
        out["src_endpoint"] = {"ip": ip}
    out.update(part)
    user_agent = text(as_object(document.get("user_agent")), "original")
    if user_agent is not None:
        out["http_request"] = {"user_agent": user_agent}
    put(unmapped, "decode_problems", calendly.get("decode_problems"))
    put(out, "unmapped", unmapped)
    return out


def _metadata(
    event: Event,
    document: Mapping[str, Any],
    calendly: Mapping[str, Any],
    namespace: str,
    action: str,
    organization: str | None,
) -> dict[str, Any]:
    original: dict[str, Any] = {}
    uri = text(calendly, "uri")
    if uri is not None:
        original["original_event_uid"] = uri
    occurred_at = event.raw.get("occurred_at") if isinstance(event.raw, Mapping) else None
    if type(occurred_at) is str:
        original["original_time"] = occurred_at
    return metadata(
        event,
        document,
        product=PRODUCT,
        log_provider=LOG_PROVIDER,
        log_name=DATASET,
        event_code=text(calendly, "fully_qualified_name") or f"{namespace}.{action}",
        original=original,
        tenant_uid=organization,
    )


def _account(organization: str) -> dict[str, Any]:
    return {"uid": organization, "type_id": ACCOUNT_OTHER, "type": ACCOUNT_TYPE}


def _actor_user(
    actor: Mapping[str, Any], organization: str | None, unmapped: dict[str, Any]
) -> dict[str, Any] | None:
    """The actor as an OCSF ``user``; None when the entry does not identify one."""
    if not actor:
        return None
    display_name = text(actor, "display_name")
    if text(actor, "type") == SYSTEM_ACTOR_TYPE:
        # Calendly acting on its own: its system account.
        return {
            "name": display_name or SYSTEM_ACTOR_NAME,
            "type_id": USER_TYPE_SYSTEM,
            "type": USER_TYPES[USER_TYPE_SYSTEM],
        }
    alternative = text(actor, "alternative_identifier")
    uri = text(actor, "uri")
    user: dict[str, Any] = {}
    if alternative is not None:
        # The login identifier (the user's email in practice): the user name.
        user["name"] = alternative
        if EMAIL_ADDRESS.fullmatch(alternative):
            user["email_addr"] = alternative
    elif display_name is not None and uri is None:
        user["name"] = display_name
    if uri is not None:
        user["uid"] = uri
    if not user:
        return None
    if display_name is not None:
        user["display_name"] = display_name
    org = as_object(actor.get("organization"))
    role = text(org, "role")
    if role is not None:
        type_id = _ROLE_TYPES.get(role.lower(), OTHER)
        user["type_id"] = type_id
        user["type"] = role if type_id == OTHER else USER_TYPES[type_id]
        unmapped["actor_role"] = role
    account = text(org, "uri") or organization
    if account is not None:
        user["account"] = _account(account)
    group = as_object(actor.get("group"))
    group_fields = {"uid": text(group, "uri"), "name": text(group, "name")}
    group_fields = {key: value for key, value in group_fields.items() if value is not None}
    if group_fields:
        user["groups"] = [group_fields]
    put(unmapped, "actor_group_role", text(group, "role"))
    return user


def _logon(user: dict[str, Any] | None, organization: str | None) -> dict[str, Any] | None:
    """Authentication's ``user`` (who logged in) and ``service``; None if nobody is known."""
    if user is not None:
        subject = dict(user)
    elif organization is not None:
        # Someone of this organization, unnamed (a failed login for an unknown address).
        subject = {
            "type_id": USER_TYPE_UNKNOWN,
            "type": USER_TYPES[USER_TYPE_UNKNOWN],
            "account": _account(organization),
        }
    else:
        return None
    return {"user": subject, "service": {"name": PRODUCT_NAME}}


def _entity(
    mapping: OcsfMapping, details: Any, document: Mapping[str, Any], unmapped: dict[str, Any]
) -> dict[str, Any]:
    """The managed entity: its kind, ``details`` as its content, and for a user entity the
    user the ECS normalizer found in ``details`` (``user.target``)."""
    kind = mapping.kind
    entity: dict[str, Any] = {"type_id": kind.type_id, "type": kind.type}
    target = _target_user(document) if kind.type_id == ENTITY_USER else None
    if target is not None:
        entity["user"] = target
        entity["name"] = target.get("name") or kind.label
        if "uid" in target:
            entity["uid"] = target["uid"]
    else:
        entity["name"] = kind.name or kind.label
    if type(details) is dict or isinstance(details, Mapping):
        entity["data"] = details  # managed_entity.data: "the entity content as JSON"
    else:
        put(unmapped, "details", details)
    return entity


def _target_user(document: Mapping[str, Any]) -> dict[str, Any] | None:
    """ECS ``user.target`` (email / full_name / id) as an OCSF ``user``."""
    target = as_object(as_object(document.get("user")).get("target"))
    email = text(target, "email")
    full_name = text(target, "full_name")
    uid = text(target, "id")
    user = person(email) if email is not None else {}
    if full_name is not None:
        user["full_name"] = full_name
        user.setdefault("name", full_name)
    if uid is not None:
        user["uid"] = uid
    return user or None
