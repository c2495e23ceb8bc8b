"""Google Workspace Calendar audit activities (Reports API) to ECS-style events.

One ``Activity`` can hold several ``events[]``; every one of them is a separate audit
event with its own id (:func:`forwarder.schema.ids.google_event_key`: the activity's key
and the event's name) and document. The raw record of each is the whole activity, which
is what the API returned.

Collectors and archives (Elastic's among them) split an activity into one record per
event, with ``events`` a single object instead of a list. Such a record is read as the
same activity with ``events: [that object]``: it gets the same id and the same document
as the event read from the API (apart from ``event.original``, the record as received,
and ``event_index`` / ``event_count``, which count the events of the record in hand).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from forwarder.events import Event
from forwarder.schema.ecs_mapping import (
    FAILURE,
    GOOGLE_EVENTS,
    EcsCategorization,
    google_unknown,
)
from forwarder.schema.errors import (
    INVALID_TYPE,
    INVALID_VALUE,
    MISSING_FIELD,
    MalformedRecordError,
)
from forwarder.schema.fields import (
    ECS_VERSION,
    DecodeProblem,
    agent_fields,
    encode_original,
    is_ip,
    mistyped,
    optional_object,
    optional_str,
    problem,
    require_object,
    require_str,
    user_from_email,
)
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS, CalendarEventSpec
from forwarder.schema.ids import google_event_keys
from forwarder.schema.messages import (
    EMPTY_VALUES,
    Template,
    compile_template,
    render,
    safe_message,
)
from forwarder.schema.parameters import decode_parameters
from forwarder.schema.sharing import (
    ADDRESS_KINDS,
    PARTY_PARAMETERS,
    USER,
    InternalDomains,
    Principal,
    party_fields,
)
from forwarder.schema.times import decode_calendar_seconds, decode_requested_period, event_time
from forwarder.schema.urls import url_fields

PROVIDER = "google_calendar"
DATASET = "google_workspace.calendar"

# Who the message names when the activity has no actor email, profile id or key.
UNKNOWN_ACTOR = "Someone"
GENERIC_TEMPLATE = "{actor} performed the Calendar action {event_name}"
"""The message of an event name that is not in the catalog."""
# Parameters that name a party (ACL grantees, invited guests, notified recipients,
# subscribers): classified (forwarder.schema.sharing); the addresses among them go to
# related.user so a search for a user finds the events done *to* them too.
USER_PARAMETERS = tuple(PARTY_PARAMETERS)
# Parameters with an ECS home of their own (they also stay in calendar.parameters).
USER_AGENT_PARAMETER = "user_agent"
URL_PARAMETER = "remote_ews_url"
# The organizer's calendar id: a person's address for a primary calendar (related.user),
# a calendar's own id (``...@group.calendar.google.com``, resources) otherwise.
ORGANIZER_PARAMETER = "organizer_calendar_id"
CALENDAR_ID_DOMAIN = ".calendar.google.com"
ERROR_CODE_PARAMETER = "interop_error_code"
INVALID_IP = "invalid_ip"
INVALID_TIME = "invalid_time"
INVALID_URL = "invalid_url"


@dataclass(frozen=True, slots=True)
class GoogleEventMapping:
    """How one Calendar event name maps into the document.

    Built at import from the catalog (type, message) and
    :data:`forwarder.schema.ecs_mapping.GOOGLE_EVENTS` (ECS categorization, target).
    """

    name: str
    event_type: str
    template: Template
    ecs: EcsCategorization
    target: str | None
    """The parameter naming the affected user (``user.target``), if any."""


def _mapping(spec: CalendarEventSpec) -> GoogleEventMapping:
    row = GOOGLE_EVENTS[spec.name]
    return GoogleEventMapping(
        spec.name, spec.type, compile_template(spec.message), row.ecs, row.target
    )


EVENT_MAPPINGS: Mapping[str, GoogleEventMapping] = MappingProxyType(
    {name: _mapping(spec) for name, spec in CALENDAR_EVENTS.items()}
)
"""Every documented event name -> its mapping. Other names are mapped generically."""

_GENERIC: Template = compile_template(GENERIC_TEMPLATE)


def activity_time(activity: Any) -> float:
    """The activity's time (``id.time``) as Unix seconds; raises MalformedRecordError."""
    ident = _require_id(require_object(activity, "activity"))
    return event_time(ident.get("time"), "id.time")[0]


def normalize_activity(
    activity: Mapping[str, Any],
    *,
    ingested: str,
    internal_domains: InternalDomains | None = None,
) -> list[Event]:
    """Every event of one Reports API ``Activity``, normalized, in ``events[]`` order.

    ``events`` may also be one event as an object (the one-event-per-record shape of
    collectors and archives): it is read as a list of that one event.

    ``ingested`` (RFC 3339) is when the forwarder read the record; it becomes both
    ``event.created`` and ``event.ingested``. Events whose name is not in the catalog are
    mapped generically and returned with ``mapped=False``.

    ``internal_domains`` (the source's ``internal_domains``) decides whether a grantee,
    guest, subscriber or recipient is ``external``; None leaves the flag out (unknown).

    Raises :class:`MalformedRecordError` when the activity cannot be identified: not an
    object, ``id.time`` missing or not RFC 3339, ``id.uniqueQualifier`` missing, ``events``
    missing, neither a list nor an object, or empty, an event that is not an object or has
    no string ``name``, or a record that is not plain JSON. Anything else that is off (mistyped
    optional fields or parameter values) is kept as well as possible and listed in
    ``google_workspace.decode_problems``; unknown event names are mapped generically.
    """
    # The hot path: the well-formed case is checked inline, the helpers only run to
    # raise (or for the rarer shapes they accept).
    record = activity if type(activity) is dict else require_object(activity, "activity")
    ident = record.get("id")
    if type(ident) is not dict:
        ident = _require_id(record)
    time_text = ident.get("time")
    timestamp, at_timestamp = event_time(time_text, "id.time")
    unique_qualifier = ident.get("uniqueQualifier")
    if type(unique_qualifier) is not str or not unique_qualifier:
        unique_qualifier = _require_unique_qualifier(ident)
    events = record.get("events")
    if type(events) is not list or not events:
        events = _events_list(record)  # one event as an object, or raises
    names: list[str] = []
    for index, event in enumerate(events):
        name = event.get("name") if type(event) is dict else None
        if type(name) is not str or not name:
            _require_event_objects(events)  # raises if this event is not an object
            name = require_str(event, "name", f"events[{index}].name")
        names.append(name)
    original = encode_original(record, "activity")

    shared = _activity_context(
        record, ident, time_text, at_timestamp, unique_qualifier, original, len(events)
    )
    event_ids = google_event_keys(shared.customer_id, time_text, unique_qualifier, names)
    results: list[Event] = []
    for index, name in enumerate(names):
        event_id = event_ids[index]
        mapping = EVENT_MAPPINGS.get(name)
        document = _document(
            shared, event_id, index, events[index], name, mapping, ingested, internal_domains
        )
        # Positional: keyword arguments cost a measurable share of a dataclass __init__ here.
        results.append(
            Event(event_id, timestamp, PROVIDER, name, document, record, mapping is not None)
        )
    return results


# Not frozen: a frozen dataclass sets each of these fields through object.__setattr__,
# which made building one of these per activity cost more than a whole document.
@dataclass(slots=True)
class _Activity:
    """The activity-level values every event document of one activity repeats."""

    time: str
    at_timestamp: str
    unique_qualifier: str
    customer_id: str | None
    application_name: str | None
    email: str | None
    profile_id: str | None
    caller_type: str | None
    actor_key: str | None
    application_info: dict[str, Any] | None
    ip: str | None
    owner_domain: str | None
    network_info: dict[str, Any] | None
    resource_details: list[Any] | None
    problems: list[DecodeProblem]
    message_values: dict[str, str | None]
    actor_label: str
    original: str
    event_count: int


def _activity_context(
    record: Mapping[str, Any],
    ident: Mapping[str, Any],
    time: str,
    at_timestamp: str,
    unique_qualifier: str,
    original: str,
    event_count: int,
) -> _Activity:
    """Read the activity-level fields once; mistyped optional ones become decode problems.

    Optional strings are checked inline (``optional_str`` rules: None or a string, else a
    problem and dropped): this runs for every activity.
    """
    problems: list[DecodeProblem] = []
    customer_id = ident.get("customerId")
    if customer_id is not None and type(customer_id) is not str:
        customer_id = mistyped(problems, "id.customerId")
    application_name = ident.get("applicationName")
    if application_name is not None and type(application_name) is not str:
        application_name = mistyped(problems, "id.applicationName")
    actor = record.get("actor")
    if type(actor) is not dict:
        actor = optional_object(record, "actor", "actor", problems) or {}
    email = actor.get("email")
    if email is not None and type(email) is not str:
        email = mistyped(problems, "actor.email")
    profile_id = actor.get("profileId")
    if profile_id is not None and type(profile_id) is not str:
        profile_id = mistyped(problems, "actor.profileId")
    caller_type = actor.get("callerType")
    if caller_type is not None and type(caller_type) is not str:
        caller_type = mistyped(problems, "actor.callerType")
    actor_key = actor.get("key")
    if actor_key is not None and type(actor_key) is not str:
        actor_key = mistyped(problems, "actor.key")
    application_info = None
    if actor.get("applicationInfo") is not None:
        raw_application_info = optional_object(
            actor, "applicationInfo", "actor.applicationInfo", problems
        )
        if raw_application_info:
            application_info = _application_info(raw_application_info, problems) or None
    ip = record.get("ipAddress")
    if ip is not None:
        if type(ip) is not str:
            ip = mistyped(problems, "ipAddress")
        elif not is_ip(ip):
            problems.append(problem("ipAddress", INVALID_IP))
            ip = None
    owner_domain = record.get("ownerDomain")
    if owner_domain is not None and type(owner_domain) is not str:
        owner_domain = mistyped(problems, "ownerDomain")
    network_info = None
    if record.get("networkInfo") is not None:
        raw_network_info = optional_object(record, "networkInfo", "networkInfo", problems)
        if raw_network_info:
            network_info = _network_info(raw_network_info, problems) or None
    resource_details = record.get("resourceDetails")
    if resource_details is not None and type(resource_details) is not list:
        problems.append(problem("resourceDetails", INVALID_TYPE))
        resource_details = None
    actor_label = email or profile_id or actor_key or UNKNOWN_ACTOR
    return _Activity(
        time,
        at_timestamp,
        unique_qualifier,
        customer_id,
        application_name,
        email,
        profile_id,
        caller_type,
        actor_key,
        application_info,
        ip,
        owner_domain,
        network_info,
        resource_details,
        problems,
        {"actor": actor_label, "IP_ADDRESS_IDENTIFIER": ip},
        actor_label,
        original,
        event_count,
    )


# The paths of the first events' fields, so that the common case formats none per event.
_PATHS = tuple(
    (f"events[{index}].parameters", f"events[{index}].type", f"events[{index}].resourceIds")
    for index in range(8)
)


def _event_paths(index: int) -> tuple[str, str, str]:
    if index < len(_PATHS):
        return _PATHS[index]
    return f"events[{index}].parameters", f"events[{index}].type", f"events[{index}].resourceIds"


def _document(
    activity: _Activity,
    event_id: str,
    index: int,
    event: Mapping[str, Any],
    name: str,
    mapping: GoogleEventMapping | None,
    ingested: str,
    internal_domains: InternalDomains | None = None,
) -> dict[str, Any]:
    """The ECS document of the ``index``-th event; built fresh, sharing no dict with others."""
    parameters_path, type_path, resource_ids_path = _event_paths(index)
    problems = [dict(item) for item in activity.problems] if activity.problems else []
    parameters = decode_parameters(event.get("parameters"), problems, parameters_path)
    event_type = event.get("type")
    if event_type is not None and type(event_type) is not str:
        event_type = mistyped(problems, type_path)
    if mapping is not None:
        # Parameters are user-supplied (titles): no control or bidi character in message.
        message = safe_message(render(mapping.template, activity.message_values, parameters))
        event_type = event_type or mapping.event_type
        ecs = mapping.ecs
        target_name = mapping.target
    else:
        values = {"actor": activity.actor_label, "event_name": name}
        message = safe_message(render(_GENERIC, values, EMPTY_VALUES))
        ecs = google_unknown(name).ecs
        target_name = None

    calendar: dict[str, Any] = {"event_name": name, "parameters": parameters}
    if event_type is not None:
        calendar["event_type"] = event_type
    if not _TIME_PARAMETER_NAMES.isdisjoint(parameters):
        _decode_times(parameters, calendar, problems, parameters_path)
    resource_ids = event.get("resourceIds")
    if resource_ids is not None:
        if type(resource_ids) is list and all(type(item) is str for item in resource_ids):
            calendar["resource_ids"] = resource_ids
        else:
            problems.append(problem(resource_ids_path, INVALID_TYPE))

    email = activity.email
    profile_id = activity.profile_id
    ip = activity.ip
    google_workspace: dict[str, Any] = {
        "actor": _google_actor(activity),
        "id": _google_id(activity),
        "event_index": index,
        "event_count": activity.event_count,
        "calendar": calendar,
    }
    if activity.owner_domain is not None:
        google_workspace["owner_domain"] = activity.owner_domain
    if activity.network_info:
        google_workspace["network_info"] = dict(activity.network_info)
    if activity.resource_details is not None:
        google_workspace["resource_details"] = activity.resource_details

    document: dict[str, Any] = {
        "@timestamp": activity.at_timestamp,
        "ecs": {"version": ECS_VERSION},
        "agent": agent_fields(),
        "event": {
            "id": event_id,
            "kind": "event",
            # Fresh lists: the mapping table's tuples must never be reachable from a
            # document that a consumer may edit.
            "category": list(ecs.category),
            "type": list(ecs.type),
            "action": name,
            "provider": PROVIDER,
            "dataset": DATASET,
            # When the forwarder read the record: the audit log has no separate "created".
            "created": ingested,
            "ingested": ingested,
            "original": activity.original,
        },
        "message": message,
    }
    if ecs.outcome is not None:
        # The row's one outcome decision; absent where none applies (info, requests).
        document["event"]["outcome"] = ecs.outcome
    # The parties the parameters name, classified: a domain-wide or public grant is never
    # taken for a user, and only a user's address fills user.target.
    principals: dict[str, Principal] = {}
    if not _USER_PARAMETER_NAMES.isdisjoint(parameters):
        for parameter, field in PARTY_PARAMETERS.items():
            value = parameters.get(parameter)
            if value and type(value) is str:
                principal, calendar[field] = party_fields(value, internal_domains)
                principals[parameter] = principal
    user = user_from_email(email) if email else {}
    if profile_id:
        user["id"] = profile_id
    target = principals.get(target_name) if target_name is not None else None
    if target is not None and target.kind == USER and target.email is not None:
        user["target"] = user_from_email(target.email)
    if user:
        document["user"] = user
    if ip is not None:
        document["source"] = {"ip": ip}
    user_agent = parameters.get(USER_AGENT_PARAMETER)
    if type(user_agent) is str and user_agent:
        document["user_agent"] = {"original": user_agent}
    url_text = parameters.get(URL_PARAMETER)
    if type(url_text) is str and url_text:
        url = url_fields(url_text)
        if url is None:
            problems.append(problem(f"{parameters_path}.{URL_PARAMETER}", INVALID_URL))
            url = {"original": url_text}
        document["url"] = url
    if activity.customer_id is not None:
        document["organization"] = {"id": activity.customer_id}

    # related.user: the actor, then the people the parameters name (grantees, guests...).
    users = [email] if email else []
    if profile_id and profile_id != email:
        users.append(profile_id)
    for principal in principals.values():
        address = principal.email
        if principal.kind in ADDRESS_KINDS and address is not None and address not in users:
            users.append(address)
    organizer = parameters.get(ORGANIZER_PARAMETER)
    if _is_user_calendar(organizer) and organizer not in users:
        users.append(organizer)
    if users:
        document["related"] = {"user": users, "ip": [ip]} if ip is not None else {"user": users}
    elif ip is not None:
        document["related"] = {"ip": [ip]}
    if ecs.outcome == FAILURE:
        error_code = parameters.get(ERROR_CODE_PARAMETER)
        if type(error_code) is str and error_code:
            document["error"] = {"code": error_code}
    if problems:
        google_workspace["decode_problems"] = problems
    document["google_workspace"] = google_workspace
    return document


def _is_user_calendar(value: Any) -> bool:
    """Whether a calendar id is a person's address (a primary calendar is named by it)."""
    return type(value) is str and "@" in value and not value.lower().endswith(CALENDAR_ID_DOMAIN)


def _google_actor(activity: _Activity) -> dict[str, Any]:
    actor: dict[str, Any] = {}
    if activity.caller_type is not None:
        actor["type"] = activity.caller_type
    if activity.email is not None:
        actor["email"] = activity.email
    if activity.profile_id is not None:
        actor["profile_id"] = activity.profile_id
    if activity.actor_key is not None:
        actor["key"] = activity.actor_key
    if activity.application_info:
        actor["application_info"] = dict(activity.application_info)
    return actor


def _google_id(activity: _Activity) -> dict[str, Any]:
    ident: dict[str, Any] = {"time": activity.time, "unique_qualifier": activity.unique_qualifier}
    if activity.application_name is not None:
        ident["application_name"] = activity.application_name
    if activity.customer_id is not None:
        ident["customer_id"] = activity.customer_id
    return ident


def _require_id(record: Mapping[str, Any]) -> Mapping[str, Any]:
    ident = record.get("id")
    if ident is None:
        raise MalformedRecordError(MISSING_FIELD, "id is missing")
    if type(ident) is not dict and not isinstance(ident, Mapping):
        raise MalformedRecordError(INVALID_TYPE, "id is not an object")
    return ident


def _require_unique_qualifier(ident: Mapping[str, Any]) -> str:
    value = ident.get("uniqueQualifier")
    # The API sends an int64 string (may be negative); accept a bare integer from
    # hand-written records, rendered the same way so the id does not change.
    if type(value) is int:
        return str(value)
    return require_str(ident, "uniqueQualifier", "id.uniqueQualifier")


def _events_list(record: Mapping[str, Any]) -> list[Any]:
    """``events`` as a list: one event given as an object (a record split per event) is a
    list of that event; raises when it is missing, empty or neither."""
    events = record.get("events")
    if events is None:
        raise MalformedRecordError(MISSING_FIELD, "events is missing")
    if type(events) is dict or isinstance(events, Mapping):
        return [events]
    if type(events) is not list:
        raise MalformedRecordError(INVALID_TYPE, "events is neither a list nor an object")
    if not events:
        raise MalformedRecordError(INVALID_VALUE, "events is empty")
    return events


def _require_event_objects(events: list[Any]) -> None:
    for index, event in enumerate(events):
        if type(event) is not dict and not isinstance(event, Mapping):
            raise MalformedRecordError(INVALID_TYPE, f"events[{index}] is not an object")


# Parameter name -> where its decoded RFC 3339 time goes under google_workspace.calendar
# (group object or None, field), and how it is encoded (see forwarder.schema.times).
_TIME_PARAMETERS = (
    ("start_time", None, "event_start", decode_calendar_seconds),
    ("end_time", None, "event_end", decode_calendar_seconds),
    ("requested_period_start", "requested_period", "start", decode_requested_period),
    ("requested_period_end", "requested_period", "end", decode_requested_period),
)


_TIME_PARAMETER_NAMES = frozenset(name for name, *_rest in _TIME_PARAMETERS)
# Most events name nobody: one set test skips the look-ups of USER_PARAMETERS.
_USER_PARAMETER_NAMES = frozenset(USER_PARAMETERS)


def _decode_times(
    parameters: Mapping[str, Any],
    calendar: dict[str, Any],
    problems: list[DecodeProblem],
    path: str,
) -> None:
    """Decoded RFC 3339 times next to the raw integers (which stay in ``parameters``)."""
    for name, group, field, decode in _TIME_PARAMETERS:
        value = parameters.get(name)
        if type(value) is not int:
            continue  # absent, or an undecodable intValue already noted
        text = decode(value)
        if text is None:
            problems.append(problem(f"{path}.{name}", INVALID_TIME))
        elif group is None:
            calendar[field] = text
        else:
            calendar.setdefault(group, {})[field] = text


def _application_info(info: Mapping[str, Any], problems: list[DecodeProblem]) -> dict[str, Any]:
    """``actor.applicationInfo`` with its documented types; others noted and dropped."""
    path = "actor.applicationInfo"
    mapped: dict[str, Any] = {}
    name = optional_str(info, "applicationName", f"{path}.applicationName", problems)
    if name is not None:
        mapped["application_name"] = name
    impersonation = info.get("impersonation")
    if type(impersonation) is bool:
        mapped["impersonation"] = impersonation
    elif impersonation is not None:
        problems.append(problem(f"{path}.impersonation", INVALID_TYPE))
    client_id = optional_str(info, "oauthClientId", f"{path}.oauthClientId", problems)
    if client_id is not None:
        mapped["oauth_client_id"] = client_id
    return mapped


def _network_info(info: Mapping[str, Any], problems: list[DecodeProblem]) -> dict[str, Any]:
    """``networkInfo`` with its documented types; others noted and dropped."""
    mapped: dict[str, Any] = {}
    ip_asn = info.get("ipAsn")
    if type(ip_asn) is list and all(type(item) is int for item in ip_asn):
        mapped["ip_asn"] = ip_asn
    elif ip_asn is not None:
        problems.append(problem("networkInfo.ipAsn", INVALID_TYPE))
    region = optional_str(info, "regionCode", "networkInfo.regionCode", problems)
    if region is not None:
        mapped["region_code"] = region
    subdivision = optional_str(info, "subdivisionCode", "networkInfo.subdivisionCode", problems)
    if subdivision is not None:
        mapped["subdivision_code"] = subdivision
    return mapped
