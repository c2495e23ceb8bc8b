"""Every field the ECS documents can hold: type, meaning and where it comes from.

The generated docs print this table (``docs/schema.md``); the tests check that every
field of every document they produce is listed here and that the JSON Schema
(``docs/ecs-output.schema.json``) describes exactly these fields, so the three cannot
drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from forwarder.schema.sharing import KINDS, PARTY_PARAMETERS

NOT_SET = ""
"""A provider column for a field that provider never sets."""


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One field of the ECS output."""

    name: str
    type: str
    """Elasticsearch/ECS field type (``keyword``, ``date``, ``ip``...); ``[]`` for arrays."""
    description: str
    google: str
    """Where the value comes from in a Google Calendar activity (empty: never set)."""
    calendly: str
    """Where the value comes from in a Calendly Activity Log entry (empty: never set)."""
    open: bool = False
    """A free-form subtree: kept as the API sent it, its inner fields are not listed."""


def _party_fields() -> tuple[FieldDoc, ...]:
    """The fields of each classified party (``google_workspace.calendar.grantee``...)."""
    kinds = ", ".join(f"`{kind}`" for kind in KINDS)
    rows: list[FieldDoc] = []
    for parameter, party in PARTY_PARAMETERS.items():
        prefix = f"google_workspace.calendar.{party}"
        source = f"`{parameter}` parameter"
        rows += [
            FieldDoc(f"{prefix}.value", "keyword", f"The {party}, as sent.", source, NOT_SET),
            FieldDoc(
                f"{prefix}.kind", "keyword",
                f"What the {party} is: {kinds} (see Sharing scopes below).", source, NOT_SET,
            ),
            FieldDoc(
                f"{prefix}.email", "keyword", f"The {party}'s address (kinds `user`, `group`).",
                source, NOT_SET,
            ),
            FieldDoc(
                f"{prefix}.domain", "keyword",
                f"The {party}'s domain: of the address, or the domain shared with.",
                source, NOT_SET,
            ),
            FieldDoc(
                f"{prefix}.external", "boolean",
                f"Whether the {party} is outside the source's `internal_domains`; absent "
                "when unknown (setting unset, or no domain). Always `true` for `public`.",
                source, NOT_SET,
            ),
        ]  # fmt: skip
    return tuple(rows)


FIELDS: tuple[FieldDoc, ...] = (
    # -- ECS ---------------------------------------------------------------------------
    FieldDoc(
        "@timestamp", "date", "When the audited action happened, UTC, milliseconds.",
        "`id.time`", "`occurred_at` (microseconds truncated)",
    ),
    FieldDoc("ecs.version", "keyword", "ECS version the document follows.", "constant", "constant"),
    FieldDoc(
        "agent.type", "keyword",
        "The shipper: always `forwarder`, so a SIEM can tell this forwarder's documents "
        "from other shippers'.",
        "constant", "constant",
    ),
    FieldDoc(
        "agent.version", "keyword", "The forwarder's version (`forwarder.__version__`).",
        "constant", "constant",
    ),
    FieldDoc(
        "labels.tenant", "keyword",
        "The tenant (customer) of the source that read the event: the source's `tenant` "
        "setting, by default its id. Absent from `forwarder normalize` output without "
        "`--tenant`. (OCSF: the `metadata.tags` pair named `tenant`.)",
        "source setting", "source setting",
    ),
    FieldDoc(
        "event.id", "keyword",
        "Deterministic id (BLAKE2b-128 hex): the same audit event gets the same id on every "
        "read; sinks and SIEMs de-duplicate on it.",
        "`id.customerId`, `id.time`, `id.uniqueQualifier`, `events[].name` and its occurrence "
        "in the activity (see Event ids below)",
        "`uri`",
    ),
    FieldDoc("event.kind", "keyword", "Always `event`.", "constant", "constant"),
    FieldDoc(
        "event.category", "keyword[]", "ECS category, from the mapping table below.",
        "`events[].name`", "`namespace`, `action`",
    ),
    FieldDoc(
        "event.type", "keyword[]", "ECS type, from the mapping table below.",
        "`events[].name`", "`namespace`, `action`",
    ),
    FieldDoc(
        "event.outcome", "keyword",
        "`success` or `failure`, from the mapping table below (the row's one outcome "
        "decision, which also gives OCSF `status_id`); absent where no outcome applies "
        "(`info` events, requests). An unknown event's comes from its name "
        "(`Login.Failure` is a `failure`).",
        "`events[].name`", "`namespace`, `action`",
    ),
    FieldDoc(
        "event.action", "keyword", "The audited action.",
        "`events[].name`", "`Namespace.Action` built from `namespace` and `action`",
    ),
    FieldDoc(
        "event.provider", "keyword", "`google_calendar` or `calendly`.", "constant", "constant"
    ),
    FieldDoc(
        "event.dataset", "keyword", "`google_workspace.calendar` or `calendly.activity_log`.",
        "constant", "constant",
    ),
    FieldDoc(
        "event.created", "date",
        "When the forwarder read the record (same value as `event.ingested`: neither API "
        "says when the audit record itself was written).",
        "read time", "read time",
    ),
    FieldDoc(
        "event.ingested", "date", "When the forwarder read the record.", "read time", "read time"
    ),
    FieldDoc(
        "event.original", "keyword",
        "The whole raw record as JSON text (for a Google activity with several events, "
        "the whole activity).",
        "the activity", "the entry",
    ),
    FieldDoc(
        "message", "match_only_text",
        "Human sentence: Google's admin-console message, or the Calendly activity "
        "sentence; missing Google parameters read `(unknown)`.",
        "catalog message format", "activity sentence table",
    ),
    FieldDoc(
        "user.id", "keyword", "The actor's id.", "`actor.profileId`", "`actor.uri` (User actor)"
    ),
    FieldDoc(
        "user.email", "keyword", "The actor's email address.",
        "`actor.email`", "`actor.alternative_identifier` when it contains `@`",
    ),
    FieldDoc(
        "user.name", "keyword", "The actor's short name: login part of the email address.",
        "`actor.email` before `@`",
        "`actor.alternative_identifier` before `@`, else `actor.display_name`",
    ),
    FieldDoc(
        "user.domain", "keyword", "Domain of the actor's email address.",
        "`actor.email` after `@`", "`actor.alternative_identifier` after `@`",
    ),
    FieldDoc(
        "user.full_name", "keyword", "The actor's display name.", NOT_SET, "`actor.display_name`"
    ),
    FieldDoc(
        "user.roles", "keyword[]", "The actor's organization role.",
        NOT_SET, "`actor.organization.role`",
    ),
    FieldDoc("user.group.id", "keyword", "The actor's group.", NOT_SET, "`actor.group.uri`"),
    FieldDoc(
        "user.group.name", "keyword", "The actor's group name.", NOT_SET, "`actor.group.name`"
    ),
    FieldDoc(
        "user.target.id", "keyword", "The affected user's id.",
        NOT_SET, "`details.{user,member,invitee,assignee}` URI (`uri` or a URL string)",
    ),
    FieldDoc(
        "user.target.email", "keyword", "The affected user's email address.",
        "the event's target parameter (mapping table) when it is of kind `user`",
        "`details.{user,member,invitee,assignee}.email`, or such a string with `@`",
    ),
    FieldDoc(
        "user.target.name", "keyword",
        "The affected user's short name (login part of the address, or the value itself).",
        "the event's target parameter (kind `user`) before `@`",
        "as `user.target.email`, else the display name",
    ),
    FieldDoc(
        "user.target.domain", "keyword", "Domain of the affected user's address.",
        "the event's target parameter (kind `user`) after `@`", "`user.target.email` after `@`",
    ),
    FieldDoc(
        "user.target.full_name", "keyword", "The affected user's display name.",
        NOT_SET, "`details.{user,member,invitee,assignee}.name` / `.display_name`",
    ),
    FieldDoc(
        "source.ip", "ip", "Client IP address (valid addresses only).",
        "`ipAddress`", "`details.ip_address` / `details.ip`",
    ),
    FieldDoc(
        "user_agent.original", "keyword", "Client user agent.",
        "`user_agent` parameter", "`details.user_agent`",
    ),
    FieldDoc(
        "url.original", "wildcard", "The Exchange Web Services URL as sent.",
        "`remote_ews_url` parameter", NOT_SET,
    ),
    FieldDoc(
        "url.full", "wildcard", "The URL, when absolute (scheme and host).",
        "`remote_ews_url` parameter", NOT_SET,
    ),
    FieldDoc("url.scheme", "keyword", "URL scheme.", "`remote_ews_url` parameter", NOT_SET),
    FieldDoc(
        "url.domain", "keyword", "URL host name (lower case).", "`remote_ews_url` parameter",
        NOT_SET,
    ),
    FieldDoc(
        "url.port", "long", "URL port, when explicit.", "`remote_ews_url` parameter", NOT_SET
    ),
    FieldDoc("url.path", "wildcard", "URL path.", "`remote_ews_url` parameter", NOT_SET),
    FieldDoc(
        "url.extension", "keyword", "Extension of the path's last segment, without the dot.",
        "`remote_ews_url` parameter", NOT_SET,
    ),
    FieldDoc("url.query", "keyword", "URL query string.", "`remote_ews_url` parameter", NOT_SET),
    FieldDoc(
        "url.fragment", "keyword", "URL fragment.", "`remote_ews_url` parameter", NOT_SET
    ),
    FieldDoc(
        "organization.id", "keyword", "The customer / organization.",
        "`id.customerId`", "`organization`, else `actor.organization.uri`",
    ),
    FieldDoc(
        "related.user", "keyword[]",
        "Every user identifier the event names: actor and affected users.",
        "actor email and profile id; the addresses (kinds `user`, `group`) of the "
        "`grantee_email`, `event_guest`, `recipient_email`, `subscriber_calendar_id` "
        "parameters",
        "`user.email`, `user.id`, `user.target.email`, `user.target.id`",
    ),
    FieldDoc(
        "related.ip", "ip[]", "Every IP address the event names.", "`ipAddress`", "as `source.ip`"
    ),
    FieldDoc(
        "error.code", "keyword", "Why an Exchange interop look-up failed.",
        "`interop_error_code` parameter of events with outcome `failure`", NOT_SET,
    ),
    # -- Google Workspace vendor fields -----------------------------------------------
    FieldDoc(
        "google_workspace.actor.type", "keyword", "Actor type (`USER`, `KEY`...).",
        "`actor.callerType`", NOT_SET,
    ),
    FieldDoc("google_workspace.actor.email", "keyword", "Actor email.", "`actor.email`", NOT_SET),
    FieldDoc(
        "google_workspace.actor.profile_id", "keyword", "Actor profile id.",
        "`actor.profileId`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.actor.key", "keyword", "Actor key (non-user actors).",
        "`actor.key`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.actor.application_info.application_name", "keyword",
        "Application that acted for the user.", "`actor.applicationInfo.applicationName`",
        NOT_SET,
    ),
    FieldDoc(
        "google_workspace.actor.application_info.impersonation", "boolean",
        "Whether the application impersonated the user.",
        "`actor.applicationInfo.impersonation`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.actor.application_info.oauth_client_id", "keyword",
        "OAuth client id of the application.", "`actor.applicationInfo.oauthClientId`", NOT_SET,
    ),
    FieldDoc("google_workspace.id.time", "keyword", "Activity time as sent.", "`id.time`", NOT_SET),
    FieldDoc(
        "google_workspace.id.unique_qualifier", "keyword",
        "Activity unique qualifier (int64 as a string, may be negative).",
        "`id.uniqueQualifier`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.id.application_name", "keyword", "Always `calendar`.",
        "`id.applicationName`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.id.customer_id", "keyword", "Customer id.", "`id.customerId`", NOT_SET
    ),
    FieldDoc(
        "google_workspace.event_index", "long",
        "Index of this event in the record's `events[]` (0 when `events` is one object).",
        "position in `events[]`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.event_count", "long",
        "Number of events in the record (1 when `events` is one object).",
        "length of `events[]`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.owner_domain", "keyword", "Domain that owns the audited resource.",
        "`ownerDomain`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.network_info.ip_asn", "long[]", "Autonomous system numbers of the IP.",
        "`networkInfo.ipAsn`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.network_info.region_code", "keyword", "Region of the IP.",
        "`networkInfo.regionCode`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.network_info.subdivision_code", "keyword", "Subdivision of the IP.",
        "`networkInfo.subdivisionCode`", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.resource_details", "flattened[]", "Resource details, as sent.",
        "`resourceDetails`", NOT_SET, open=True,
    ),
    FieldDoc(
        "google_workspace.calendar.event_name", "keyword", "Event name.", "`events[].name`", NOT_SET
    ),
    FieldDoc(
        "google_workspace.calendar.event_type", "keyword",
        "Event type (`calendar_change`, `event_change`, `interop`...).",
        "`events[].type`, else the catalog's", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.calendar.parameters", "object",
        "Every parameter, documented or not, by name, typed: `value` and `multiValue` as "
        "strings, `intValue` and `multiIntValue` as integers, `boolValue` as a boolean, "
        "`messageValue` as an object and `multiMessageValue` as a list of objects (decoded "
        "the same way); a mistyped value is kept as text and noted in `decode_problems`.",
        "`events[].parameters[]`", NOT_SET, open=True,
    ),
    FieldDoc(
        "google_workspace.calendar.event_start", "date",
        "Start of the calendar event: `start_time` (seconds since the Rata Die epoch) "
        "decoded to UTC; the raw integer stays in `parameters`.",
        "`start_time` parameter", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.calendar.event_end", "date", "End of the calendar event, as above.",
        "`end_time` parameter", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.calendar.requested_period.start", "date",
        "Start of the requested free/busy period (Unix seconds decoded to UTC).",
        "`requested_period_start` parameter", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.calendar.requested_period.end", "date",
        "End of the requested free/busy period.", "`requested_period_end` parameter", NOT_SET,
    ),
    FieldDoc(
        "google_workspace.calendar.resource_ids", "keyword[]", "Resource ids of the event.",
        "`events[].resourceIds`", NOT_SET,
    ),
    *_party_fields(),
    FieldDoc(
        "google_workspace.decode_problems", "object[]",
        "`{field, problem}` for each field that could not be mapped as documented "
        "(`invalid_type`, `invalid_integer`, `invalid_ip`, `invalid_time`, `invalid_url`...).",
        "the activity", NOT_SET,
    ),
    # -- Calendly vendor fields -------------------------------------------------------
    FieldDoc("calendly.uri", "keyword", "Activity Log entry URI.", NOT_SET, "`uri`"),
    FieldDoc("calendly.namespace", "keyword", "Category identifier.", NOT_SET, "`namespace`"),
    FieldDoc("calendly.action", "keyword", "Activity identifier.", NOT_SET, "`action`"),
    FieldDoc(
        "calendly.fully_qualified_name", "keyword", "`Namespace.Action` as sent.",
        NOT_SET, "`fully_qualified_name`, else built",
    ),
    FieldDoc(
        "calendly.category", "keyword", "Category title (`Event Type`, `User Management`...).",
        NOT_SET, "`namespace`",
    ),
    FieldDoc(
        "calendly.details", "flattened", "Activity details, whole, as sent.",
        NOT_SET, "`details`", open=True,
    ),
    FieldDoc(
        "calendly.organization", "keyword", "Organization URI.", NOT_SET, "`organization`"
    ),
    FieldDoc(
        "calendly.actor", "flattened",
        "The actor, whole, as sent (`type` is `User` or `System`).", NOT_SET, "`actor`",
        open=True,
    ),
    FieldDoc(
        "calendly.decode_problems", "object[]",
        "`{field, problem}` for each optional field that had the wrong type.",
        NOT_SET, "the entry",
    ),
)  # fmt: skip
"""Every field of the ECS output, in document order."""

OPEN_FIELDS = frozenset(field.name for field in FIELDS if field.open)
"""Fields whose content is free-form (not described field by field)."""
