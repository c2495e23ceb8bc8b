"""Google Calendar audit events (ECS documents) -> OCSF 1.7.0 events.

Reads the ECS document the normalizer built (``google_workspace.*``, ``source.ip``,
``message``); the class and activity come from :data:`mapping.GOOGLE_EVENTS`. Parameters
that end up in an OCSF attribute are taken out of a copy of the parameters; whatever is
left goes to ``unmapped.parameters``, so nothing of the record is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from forwarder.events import Event
from forwarder.schema.google_calendar import DATASET
from forwarder.schema.ocsf.classes import (
    ACCOUNT_GOOGLE_WORKSPACE,
    ACCOUNT_TYPES,
    OTHER,
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
    take_text,
    text,
)
from forwarder.schema.ocsf.mapping import (
    ACL,
    ENTITY,
    GOOGLE_ACL_REVOKED,
    GOOGLE_EVENTS,
    GUEST,
    INTEROP_INBOUND,
    INTEROP_OUTBOUND,
    OWNER_ACCEPT,
    OWNER_OFFER,
    Kind,
    OcsfMapping,
    google_generic,
)
from forwarder.schema.sharing import (
    CALENDAR,
    DOMAIN,
    GROUP,
    PARTY_PARAMETERS,
    PUBLIC,
    RESOURCE,
    USER,
    classify,
)

PRODUCT_NAME = "Google Calendar"
VENDOR_NAME = "Google"
LOG_PROVIDER = "Google Workspace Admin SDK Reports API"
PRODUCT: Mapping[str, str] = MappingProxyType({"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME})
EXCHANGE = "Microsoft Exchange"
# The access level Google records when an ACL entry is removed.
NO_ACCESS = "none"
# ECS google_workspace fields carried to unmapped as they are (not mapped elsewhere).
_CARRIED = ("event_index", "event_count", "owner_domain", "resource_details", "decode_problems")
# The classified parties (grantee, guest...) go along whole: kind and `external` have no
# OCSF attribute of their own, and a rule on unmapped.grantee.external reads like the ECS one.
_CARRIED_CALENDAR = (
    "event_type",
    "resource_ids",
    "event_start",
    "event_end",
    "requested_period",
    *PARTY_PARAMETERS.values(),
)
# OCSF user.type (type_id 99 Other) of a party that is not a user account.
_PARTY_USER_TYPES: Mapping[str, str] = MappingProxyType(
    {
        GROUP: "Group",
        DOMAIN: "Domain",
        PUBLIC: "Public",
        RESOURCE: "Resource Calendar",
        CALENDAR: "Calendar",
    }
)


@dataclass(slots=True)
class _Context:
    """What the class-specific builders read and write for one event."""

    name: str
    rest: dict[str, Any]
    """The parameters not mapped yet: a builder removes what it maps."""
    actor: dict[str, Any]
    actor_user: dict[str, Any] | None
    ip: str | None


def google_to_ocsf(event: Event) -> dict[str, Any]:
    """One Google Calendar event as an OCSF event (see :func:`forwarder.schema.ocsf.to_ocsf`)."""
    document = event.document
    workspace = as_object(document.get("google_workspace"))
    calendar = as_object(workspace.get("calendar"))
    name = text(calendar, "event_name") or event.action
    parameters = as_object(calendar.get("parameters"))
    ident = as_object(workspace.get("id"))
    customer_id = text(ident, "customer_id")

    unmapped: dict[str, Any] = {}
    actor, actor_user = _actor(as_object(workspace.get("actor")), customer_id, unmapped)
    context = _Context(name, dict(parameters), actor, actor_user, source_ip(document))
    mapping = GOOGLE_EVENTS.get(name) or google_generic(name, parameters)
    built = _BUILDERS[mapping.target](mapping, context)
    if built is None:
        assert mapping.fallback is not None  # every class with a target has one
        built = _entity(mapping.fallback, context)
    mapping, part = built

    out: dict[str, Any] = mapping.header.copy()
    out["time"] = millis(event.timestamp)
    out["timezone_offset"] = 0  # source times are UTC
    message = document.get("message")
    if type(message) is str:
        out["message"] = message
    out["metadata"] = _metadata(event, document, ident, name, customer_id)
    if context.actor:
        out["actor"] = context.actor
    if context.ip is not None:
        out["src_endpoint"] = _endpoint(context.ip, workspace, unmapped)
    elif "network_info" in workspace:
        unmapped["network_info"] = workspace["network_info"]
    out.update(part)
    user_agent = take_text(context.rest, "user_agent")
    if user_agent is not None:
        out.setdefault("http_request", {})["user_agent"] = user_agent

    if context.rest:
        unmapped["parameters"] = context.rest
    for source, keys in ((workspace, _CARRIED), (calendar, _CARRIED_CALENDAR)):
        for key in keys:
            value = source.get(key)
            if value is not None:
                unmapped[key] = value
    put(out, "unmapped", unmapped)
    return out


def _metadata(
    event: Event,
    document: Mapping[str, Any],
    ident: Mapping[str, Any],
    name: str,
    customer_id: str | None,
) -> dict[str, Any]:
    original: dict[str, Any] = {}
    time = text(ident, "time")
    if time is not None:
        original["original_time"] = time
        qualifier = text(ident, "unique_qualifier")
        if qualifier is not None:
            # Google's own key of the activity: every event of one activity shares it.
            original["correlation_uid"] = f"{time}/{qualifier}"
    return metadata(
        event,
        document,
        product=PRODUCT,
        log_provider=LOG_PROVIDER,
        log_name=DATASET,
        event_code=name,
        original=original,
        tenant_uid=customer_id,
    )


def _actor(
    source: Mapping[str, Any], customer_id: str | None, unmapped: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """OCSF ``actor`` and its ``user`` (None when the activity names no person)."""
    email = text(source, "email")
    profile_id = text(source, "profile_id")
    caller_type = text(source, "type")
    user: dict[str, Any] = {}
    if email is not None:
        # A Workspace user signs in with the full address: it is the user name.
        user["name"] = email
        if EMAIL_ADDRESS.fullmatch(email):
            user["email_addr"] = email
            user["domain"] = email.rpartition("@")[2]
    if profile_id is not None:
        user["uid"] = profile_id
    actor: dict[str, Any] = {}
    if user:
        if caller_type == "USER":
            user["type_id"] = USER_TYPE_USER
            user["type"] = USER_TYPES[USER_TYPE_USER]
        if customer_id is not None:
            user["account"] = {
                "uid": customer_id,
                "type_id": ACCOUNT_GOOGLE_WORKSPACE,
                "type": ACCOUNT_TYPES[ACCOUNT_GOOGLE_WORKSPACE],
            }
        actor["user"] = user
    put(unmapped, "caller_type", caller_type)
    info = as_object(source.get("application_info"))
    app_name = text(info, "application_name")
    app_uid = text(info, "oauth_client_id")
    key = text(source, "key")
    if app_name is not None:
        actor["app_name"] = app_name
    if app_uid is None and key is not None:
        # callerType KEY: an OAuth 2LO consumer key or a robot account's identifier.
        app_uid, key = key, None
    if app_uid is not None:
        actor["app_uid"] = app_uid
    put(unmapped, "actor_key", key)
    put(unmapped, "impersonation", info.get("impersonation"))
    return actor, user or None


def _endpoint(ip: str, workspace: Mapping[str, Any], unmapped: dict[str, Any]) -> dict[str, Any]:
    """``src_endpoint`` with the IP and, from ``networkInfo``, location and AS number."""
    endpoint: dict[str, Any] = {"ip": ip}
    info = workspace.get("network_info")
    if info is None:
        return endpoint
    network = as_object(info)
    location: dict[str, Any] = {}
    country = text(network, "region_code")  # ISO 3166-1 alpha-2
    region = text(network, "subdivision_code")  # ISO 3166-2
    if country is not None:
        location["country"] = country
    if region is not None:
        location["region"] = region
    if location:
        endpoint["location"] = location
    asns = network.get("ip_asn")
    if type(asns) is list and len(asns) == 1 and type(asns[0]) is int:
        endpoint["autonomous_system"] = {"number": asns[0]}
    if len(network) != len(location) + ("autonomous_system" in endpoint):
        unmapped["network_info"] = info  # something did not fit: keep it all
    return endpoint


_Built = tuple[OcsfMapping, dict[str, Any]]


def _entity(mapping: OcsfMapping, context: _Context) -> _Built:
    """Entity Management: the calendar / event / schedule... named by its parameters."""
    kind = mapping.kind
    entity: dict[str, Any] = {"type_id": kind.type_id, "type": kind.type}
    uid = take_text(context.rest, kind.uid_parameter)
    name = take_text(context.rest, kind.name_parameter) or kind.name
    if uid is not None:
        entity["uid"] = uid
    if name is not None or uid is None:
        entity["name"] = name or kind.label
    return mapping, {"entity": entity}


def _resources(kind: Kind, rest: dict[str, Any]) -> list[dict[str, Any]]:
    """The calendar or event as OCSF ``resources`` (empty when the record names neither)."""
    resource: dict[str, Any] = {"type": kind.label}
    uid = take_text(rest, kind.uid_parameter)
    name = take_text(rest, kind.name_parameter)
    if uid is not None:
        resource["uid"] = uid
    if name is not None:
        resource["name"] = name
    return [resource] if len(resource) > 1 else []


def _access(
    mapping: OcsfMapping, user: dict[str, Any], context: _Context, privileges: list[str]
) -> _Built:
    part: dict[str, Any] = {"user": user, "privileges": privileges}
    put(part, "resources", _resources(mapping.kind, context.rest))
    return mapping, part


def _acl(mapping: OcsfMapping, context: _Context) -> _Built | None:
    grantee = text(context.rest, "grantee_email")
    if grantee is None:
        return None
    del context.rest["grantee_email"]
    level = text(context.rest, "access_level")
    if level == NO_ACCESS:
        # What was revoked is not recorded; "none" stays in unmapped.parameters.
        return _access(GOOGLE_ACL_REVOKED, _party_user(grantee), context, [])
    privileges = [level] if level is not None else []
    if level is not None:
        del context.rest["access_level"]
    return _access(mapping, _party_user(grantee), context, privileges)


def _party_user(value: str) -> dict[str, Any]:
    """The OCSF ``user`` a grantee or guest parameter names: a person for a user's address;
    a domain, the public, a group or a calendar as a user of type Other, so that a
    domain-wide or public grant never reads as one person's (forwarder.schema.sharing)."""
    principal = classify(value)
    if principal.kind == USER and principal.email is not None:
        return person(principal.email)
    user: dict[str, Any] = {"name": principal.email or value}
    label = _PARTY_USER_TYPES.get(principal.kind)
    if label is not None:
        user["type_id"] = OTHER
        user["type"] = label
    if principal.domain is not None:
        user["domain"] = principal.domain
    return user


def _named_user(parameter: str) -> Callable[[OcsfMapping, _Context], _Built | None]:
    def build(mapping: OcsfMapping, context: _Context) -> _Built | None:
        address = take_text(context.rest, parameter)
        if address is None:
            return None
        return _access(mapping, _party_user(address), context, list(mapping.privileges))

    return build


def _owner_accept(mapping: OcsfMapping, context: _Context) -> _Built | None:
    if context.actor_user is None:
        return None
    return _access(mapping, dict(context.actor_user), context, list(mapping.privileges))


def _interop(inbound: bool) -> Callable[[OcsfMapping, _Context], _Built | None]:
    # Inbound: an Exchange server called Google's free/busy API. Outbound: Google called
    # the Exchange Web Services at remote_ews_url on the user's behalf.
    caller, callee = (EXCHANGE, PRODUCT_NAME) if inbound else (PRODUCT_NAME, EXCHANGE)

    def build(mapping: OcsfMapping, context: _Context) -> _Built:
        context.actor.setdefault("app_name", caller)
        part: dict[str, Any] = {
            "api": {"operation": context.name, "service": {"name": callee}},
        }
        if context.ip is None:
            # src_endpoint is required here: without the client's IP, the calling service.
            part["src_endpoint"] = {"svc_name": caller}
        error = take_text(context.rest, "interop_error_code")
        if error is not None:
            part["status_code"] = error
        url = take_text(context.rest, "remote_ews_url")
        if url is not None:
            part["http_request"] = {"url": {"url_string": url}}
            host = _hostname(url)
            if host is not None:
                part["dst_endpoint"] = {"hostname": host}
        put(part, "resources", _resources(mapping.kind, context.rest))
        return mapping, part

    return build


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname or None
    except ValueError:  # e.g. an unbalanced "[" in the netloc
        return None


_BUILDERS: Mapping[str, Callable[[OcsfMapping, _Context], _Built | None]] = MappingProxyType(
    {
        ENTITY: _entity,
        ACL: _acl,
        GUEST: _named_user("event_guest"),
        OWNER_OFFER: _named_user("grantee_email"),
        OWNER_ACCEPT: _owner_accept,
        INTEROP_INBOUND: _interop(inbound=True),
        INTEROP_OUTBOUND: _interop(inbound=False),
    }
)
