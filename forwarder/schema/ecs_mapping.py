"""ECS categorization of every audit event: one table per provider, read in one place.

``event.category`` / ``event.type`` / ``event.outcome`` (and, for Google, which parameter
names the affected user, ``user.target``) come from here and nowhere else; the
normalizers look a row up once per event and the generated docs (``docs/schema.md``)
print these same rows.

Conventions, applied consistently:

- Sharing and ownership (ACLs, event ownership transfer, Calendly permissions, users,
  groups, teams, API/SCIM tokens) are ``iam``; everything else a person sets up
  (calendars, events, schedules, event types, integrations, settings) is
  ``configuration``; logins are ``authentication``; Exchange interop look-ups are
  ``api`` ``access`` (calls to Exchange Web Services or Google's free/busy API).
- ``event.type`` says what happened to the object: ``creation`` / ``deletion`` /
  ``change``, ``access`` for reads (exports, print previews, look-ups), ``info`` for
  notifications and error reports, ``user`` / ``group`` / ``admin`` added for ``iam``.
- ``outcome`` is the ONE outcome decision of a row, from which both formats are derived:
  ECS ``event.outcome`` and OCSF ``status_id`` / ``status`` (``forwarder.schema.ocsf``).
  ``success`` for things that happened, ``failure`` for ``*_unsuccessful`` look-ups,
  failed logins and error reports, and ``None`` (no ``event.outcome``, no OCSF status)
  where an outcome does not apply: ``event.type: info`` rows (ECS: "generally not
  populated" for them) unless the row says otherwise with a reason, and requests whose
  result is not known yet (a requested ownership transfer or data deletion is ``info``,
  not a change). Unknown events get their outcome from their name alone
  (:func:`outcome_from_name`: ``Login.Failure`` is a failure) and none otherwise.
- ``reason`` says why a row is not what the conventions above would give, or why it
  changed (the golden tests of such rows name the same reason).
- Unknown events (a name or namespace/action not in these tables) get the ``*_UNKNOWN``
  row (namespace-specific category for a new action of a known Calendly namespace); the
  normalizers mark them ``Event.mapped = False``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# -- ECS 8.11 allowed values ------------------------------------------------------------

EVENT_KINDS = ("event",)
"""``event.kind`` values this forwarder produces (audit logs are always ``event``)."""

OUTCOMES = ("success", "failure", "unknown")
"""ECS ``event.outcome`` allowed values."""

CATEGORY_EXPECTED_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # Since ECS 8.7 (elastic/ecs#2147).
        "api": (
            "access",
            "admin",
            "allowed",
            "change",
            "creation",
            "deletion",
            "denied",
            "end",
            "info",
            "start",
            "user",
        ),
        "authentication": ("start", "end", "info"),
        "configuration": ("access", "change", "creation", "deletion", "info"),
        "database": ("access", "change", "info", "error"),
        "driver": ("change", "end", "info", "start"),
        "file": ("access", "change", "creation", "deletion", "info"),
        "host": ("access", "change", "end", "info", "start"),
        "iam": ("admin", "change", "creation", "deletion", "group", "info", "user"),
        "intrusion_detection": ("allowed", "denied", "info"),
        "library": ("start",),
        "malware": ("info",),
        "network": (
            "access",
            "allowed",
            "connection",
            "denied",
            "end",
            "info",
            "protocol",
            "start",
        ),
        "package": ("access", "change", "deletion", "info", "installation", "start"),
        "process": ("access", "change", "end", "info", "start"),
        "registry": ("access", "change", "creation", "deletion"),
        "session": ("start", "end", "info"),
        "threat": ("indicator",),
        "vulnerability": ("info",),
        "web": ("access", "error", "info"),
    }
)
"""ECS ``event.category`` allowed values -> the ``event.type`` values ECS expects with it."""

EVENT_TYPES = (
    "access", "admin", "allowed", "change", "connection", "creation", "deletion", "denied",
    "end", "error", "group", "indicator", "info", "installation", "protocol", "start", "user",
)  # fmt: skip
"""ECS ``event.type`` allowed values."""


@dataclass(frozen=True, slots=True)
class EcsCategorization:
    """The ECS categorization fields of one kind of event, and its outcome decision."""

    category: tuple[str, ...]
    type: tuple[str, ...]
    outcome: str | None
    """``success`` / ``failure`` / ``unknown``, or None: no outcome applies. ECS
    ``event.outcome`` and OCSF ``status_id`` are both derived from this one value."""
    reason: str = ""
    """Why the row departs from the module's conventions (or changed), when it does."""


@dataclass(frozen=True, slots=True)
class GoogleEcsRow:
    """One Google Calendar event name: its categorization and who it is done to."""

    ecs: EcsCategorization
    target: str | None = None
    """The parameter whose value is the affected user (``user.target``), if any."""


SUCCESS, FAILURE, UNKNOWN = OUTCOMES

# Short names so that each row below fits on one line.
_IAM = ("iam",)
_IAM_CONFIGURATION = ("iam", "configuration")
_CONFIGURATION = ("configuration",)
_API = ("api",)
_AUTHENTICATION = ("authentication",)
_ACCESS = ("access",)
_CHANGE = ("change",)
_CREATION = ("creation",)
_DELETION = ("deletion",)
_INFO = ("info",)
_START = ("start",)
_ADMIN_CHANGE = ("admin", "change")
_USER_CHANGE = ("user", "change")
_USER_CREATION = ("user", "creation")
_USER_DELETION = ("user", "deletion")
_USER_INFO = ("user", "info")
_GROUP_CHANGE = ("group", "change")
_GROUP_CREATION = ("group", "creation")
_GROUP_DELETION = ("group", "deletion")


NONE: str | None = None
"""The outcome decision "not applicable": no ``event.outcome``, no OCSF status."""
_DEFAULT = "default"


def _outcome(type_: tuple[str, ...], outcome: str | None) -> str | None:
    # The convention: things that happened succeeded; info rows carry no outcome.
    if outcome != _DEFAULT:
        return outcome
    return NONE if "info" in type_ else SUCCESS


def _ecs(
    category: tuple[str, ...],
    type_: tuple[str, ...],
    outcome: str | None = _DEFAULT,
    reason: str = "",
) -> EcsCategorization:
    return EcsCategorization(category, type_, _outcome(type_, outcome), reason)


def _google(
    category: tuple[str, ...],
    type_: tuple[str, ...],
    outcome: str | None = _DEFAULT,
    target: str | None = None,
    reason: str = "",
) -> GoogleEcsRow:
    return GoogleEcsRow(_ecs(category, type_, outcome, reason), target)


# An error report is a failure even though it is ``info``: the reason of those rows.
_ERROR_REPORT = "an error report: info, but it says something failed"
_EWS = "an API call (EWS, free/busy API): api, was network"
_REQUEST = "a request, not a change: its result is a later event (issue 17)"


# -- Google Calendar: one row per event name (the 38 of the catalog) ---------------------

GOOGLE_EVENTS: Mapping[str, GoogleEcsRow] = MappingProxyType(
    {
        # calendar_change
        "change_calendar_acls": _google(_IAM, _CHANGE, target="grantee_email"),
        "change_calendar_country": _google(_CONFIGURATION, _CHANGE),
        "create_calendar": _google(_CONFIGURATION, _CREATION),
        "delete_calendar": _google(_CONFIGURATION, _DELETION),
        "change_calendar_description": _google(_CONFIGURATION, _CHANGE),
        "export_calendar": _google(_CONFIGURATION, _ACCESS),
        "change_calendar_location": _google(_CONFIGURATION, _CHANGE),
        "print_preview_calendar": _google(_CONFIGURATION, _ACCESS),
        "change_calendar_timezone": _google(_CONFIGURATION, _CHANGE),
        "change_calendar_title": _google(_CONFIGURATION, _CHANGE),
        # notification
        "notification_triggered": _google(
            _CONFIGURATION,
            _INFO,
            target="recipient_email",
            reason="info: no outcome (was success; ECS leaves it out for info events)",
        ),
        # subscription_change
        "add_subscription": _google(_CONFIGURATION, _CREATION, target="subscriber_calendar_id"),
        "delete_subscription": _google(_CONFIGURATION, _DELETION, target="subscriber_calendar_id"),
        # appointment_schedule_change
        "change_appointment_schedule": _google(_CONFIGURATION, _CHANGE),
        "create_appointment_schedule": _google(_CONFIGURATION, _CREATION),
        "delete_appointment_schedule": _google(_CONFIGURATION, _DELETION),
        # event_change
        "create_event": _google(_CONFIGURATION, _CREATION),
        "delete_event": _google(_CONFIGURATION, _DELETION),
        "add_event_guest": _google(_CONFIGURATION, _CHANGE, target="event_guest"),
        "change_event_guest_response_auto": _google(_CONFIGURATION, _CHANGE, target="event_guest"),
        "remove_event_guest": _google(_CONFIGURATION, _CHANGE, target="event_guest"),
        "change_event_guest_response": _google(_CONFIGURATION, _CHANGE, target="event_guest"),
        "change_event": _google(_CONFIGURATION, _CHANGE),
        "print_preview_event": _google(_CONFIGURATION, _ACCESS),
        # Emptying an event from the trash is its permanent deletion.
        "remove_event_from_trash": _google(_CONFIGURATION, _DELETION),
        "restore_event": _google(_CONFIGURATION, _CHANGE),
        "change_event_start_time": _google(_CONFIGURATION, _CHANGE),
        "change_event_title": _google(_CONFIGURATION, _CHANGE),
        # Ownership is access: a transfer is an IAM change, only done once accepted.
        "transfer_event_completed": _google(_IAM, _CHANGE),
        "transfer_event_requested": _google(
            _IAM, _INFO, target="grantee_email", reason=_REQUEST + "; was change/unknown"
        ),
        # interop (Exchange free/busy and resource look-ups over EWS)
        "interop_freebusy_lookup_outbound_successful": _google(_API, _ACCESS, reason=_EWS),
        "interop_freebusy_lookup_inbound_successful": _google(_API, _ACCESS, reason=_EWS),
        "interop_exchange_resource_availability_lookup_successful": _google(
            _API, _ACCESS, reason=_EWS
        ),
        "interop_exchange_resource_list_lookup_successful": _google(_API, _ACCESS, reason=_EWS),
        "interop_freebusy_lookup_outbound_unsuccessful": _google(
            _API, _ACCESS, FAILURE, reason=_EWS
        ),
        "interop_freebusy_lookup_inbound_unsuccessful": _google(
            _API, _ACCESS, FAILURE, reason=_EWS
        ),
        "interop_exchange_resource_availability_lookup_unsuccessful": _google(
            _API, _ACCESS, FAILURE, reason=_EWS
        ),
        "interop_exchange_resource_list_lookup_unsuccessful": _google(
            _API, _ACCESS, FAILURE, reason=_EWS
        ),
    }
)
"""Google Calendar event name -> ECS categorization and ``user.target`` parameter."""

_BY_NAME = "or from the name: Failed, Failure, Error, Unsuccessful... -> failure"
GOOGLE_UNKNOWN = GoogleEcsRow(_ecs(_CONFIGURATION, _INFO, reason=_BY_NAME))
"""The row of an event name not in :data:`GOOGLE_EVENTS` whose name says no outcome."""

# Words that make an action name a failure / a success, whatever the exact spelling
# (``Failed``, ``Failure``, ``login_failed``, ``LoginFailure``, ``*_unsuccessful``).
_FAILURE_WORDS = frozenset(
    {"fail", "failed", "failure", "failures", "error", "errors", "unsuccessful", "denied",
     "rejected", "invalid"}
)  # fmt: skip
_SUCCESS_WORDS = frozenset({"success", "succeeded", "successful", "succeed"})
# Words of an identifier: snake_case, kebab-case, dotted, spaced or CamelCase.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def outcome_from_name(name: str) -> str | None:
    """``failure`` / ``success`` when an (unknown) event's name says so, else None.

    Failure words win (``Failed_Success_Check`` is a failure): a missed failure hides an
    attack, a missed success only loses a detail.
    """
    words = {word.lower() for word in _WORD.findall(name)}
    if not _FAILURE_WORDS.isdisjoint(words):
        return FAILURE
    if not _SUCCESS_WORDS.isdisjoint(words):
        return SUCCESS
    return NONE


def google_unknown(name: str) -> GoogleEcsRow:
    """The row of an event name missing from :data:`GOOGLE_EVENTS`: outcome from its name."""
    outcome = outcome_from_name(name)
    if outcome is None:
        return GOOGLE_UNKNOWN
    return GoogleEcsRow(_ecs(_CONFIGURATION, _INFO, outcome, "unknown: outcome from its name"))


# -- Calendly: one row per activity (namespace, action) of the catalog -------------------

CALENDLY_ACTIVITIES: Mapping[tuple[str, str], EcsCategorization] = MappingProxyType(
    {
        # API tokens are credentials (iam) that configure the organization's access.
        ("API", "Token_Created"): _ecs(_IAM_CONFIGURATION, _CREATION),
        ("API", "Token_Revoked"): _ecs(_IAM_CONFIGURATION, _DELETION),
        ("Availability", "Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Availability", "Schedule_Created"): _ecs(_CONFIGURATION, _CREATION),
        # A connected calendar is a connection created; an error is reported, not done.
        ("Calendar", "Connected"): _ecs(_CONFIGURATION, _CREATION),
        ("Calendar", "Disconnected"): _ecs(_CONFIGURATION, _DELETION),
        ("Calendar", "Error"): _ecs(_CONFIGURATION, _INFO, FAILURE, _ERROR_REPORT),
        ("Compliance", "Data_Deletion_Completed"): _ecs(_CONFIGURATION, _DELETION),
        ("Compliance", "Data_Deletion_Requested"): _ecs(
            _CONFIGURATION, _INFO, reason=_REQUEST + "; was deletion/unknown"
        ),
        ("Event_Type", "Collective_Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Event_Type", "Collective_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "Collective_Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Event_Type", "Group_Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Event_Type", "Group_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "Group_Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Event_Type", "One_On_One_Link_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "One_Off_Meeting_Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Event_Type", "One_Off_Meeting_Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Event_Type", "One_Off_Meeting_Canceled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "One_On_One_Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Event_Type", "One_On_One_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "One_On_One_Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Event_Type", "Poll_Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Event_Type", "Poll_Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Event_Type", "Poll_Bookings_Canceled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "Poll_Scheduled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "Poll_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "Round_Robin_Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Event_Type", "Round_Robin_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Event_Type", "Round_Robin_Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Groups", "Admin_Assigned"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Admin_Removed"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Created"): _ecs(_IAM, _GROUP_CREATION),
        ("Groups", "Deleted"): _ecs(_IAM, _GROUP_DELETION),
        ("Groups", "Logo_Created"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Logo_Updated"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Logo_Deleted"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Member_Added"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Member_Removed"): _ecs(_IAM, _GROUP_CHANGE),
        ("Groups", "Updated"): _ecs(_IAM, _GROUP_CHANGE),
        ("Integrations", "GoToMeeting_Connected"): _ecs(_CONFIGURATION, _CREATION),
        ("Integrations", "GoToMeeting_Disconnected"): _ecs(_CONFIGURATION, _DELETION),
        ("Integrations", "GoToMeeting_Revoked"): _ecs(_CONFIGURATION, _DELETION),
        ("Integrations", "Microsoft_Teams_Disconnected"): _ecs(_CONFIGURATION, _DELETION),
        ("Integrations", "Microsoft_Teams_Revoked"): _ecs(_CONFIGURATION, _DELETION),
        ("Integrations", "Salesforce_Connected"): _ecs(_CONFIGURATION, _CREATION),
        ("Integrations", "Salesforce_Disconnected"): _ecs(_CONFIGURATION, _DELETION),
        ("Integrations", "Salesforce_Error"): _ecs(_CONFIGURATION, _INFO, FAILURE, _ERROR_REPORT),
        ("Integrations", "Webex_Connected"): _ecs(_CONFIGURATION, _CREATION),
        ("Integrations", "Zoom_Connected"): _ecs(_CONFIGURATION, _CREATION),
        ("Integrations", "Zoom_Disconnected"): _ecs(_CONFIGURATION, _DELETION),
        ("Integrations", "Zoom_Revoked"): _ecs(_CONFIGURATION, _DELETION),
        ("Login", "Failed"): _ecs(_AUTHENTICATION, _START, FAILURE),
        ("Login", "Succeeded"): _ecs(_AUTHENTICATION, _START),
        ("Managed_Events", "Assigned"): _ecs(_CONFIGURATION, _CHANGE),
        ("Managed_Events", "Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Managed_Events", "Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Managed_Events", "Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Managed_Events", "Unassigned"): _ecs(_CONFIGURATION, _CHANGE),
        # What members may do: IAM policy that affects no single user or group.
        ("Permissions", "Event_Types_Updated"): _ecs(_IAM, _ADMIN_CHANGE),
        ("Permissions", "SMS_Communication_Updated"): _ecs(_IAM, _ADMIN_CHANGE),
        ("Permissions", "Workflows_Updated"): _ecs(_IAM, _ADMIN_CHANGE),
        ("Routing_Forms", "Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Routing_Forms", "Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Routing_Forms", "Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Routing_Forms", "Published"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Branding_Enabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Branding_Disabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Domain_Added"): _ecs(_CONFIGURATION, _CREATION),
        ("Settings", "Domain_Removed"): _ecs(_CONFIGURATION, _DELETION),
        ("Settings", "Domain_Verified"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Domain_Control_Enabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Domain_Control_Disabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Domain_Control_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "Email_Audit_Enabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SAML_Configured"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SAML_Disabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SAML_Enforced"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SCIM_Removed"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SCIM_Disabled"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SCIM_Enforced"): _ecs(_CONFIGURATION, _CHANGE),
        ("Settings", "SAML_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        # SCIM tokens are credentials, like API tokens.
        ("Settings", "SCIM_Token_Created"): _ecs(_IAM_CONFIGURATION, _CREATION),
        ("Settings", "SCIM_Token_Revoked"): _ecs(_IAM_CONFIGURATION, _DELETION),
        ("Teams", "Created"): _ecs(_IAM, _GROUP_CREATION),
        ("Teams", "Deleted"): _ecs(_IAM, _GROUP_DELETION),
        ("Teams", "Member_Added"): _ecs(_IAM, _GROUP_CHANGE),
        ("Teams", "Member_Removed"): _ecs(_IAM, _GROUP_CHANGE),
        ("Teams", "Updated"): _ecs(_IAM, _GROUP_CHANGE),
        ("User_Management", "Added"): _ecs(_IAM, _USER_CREATION),
        ("User_Management", "Deactivated"): _ecs(_IAM, _USER_CHANGE),
        ("User_Management", "Deleted"): _ecs(_IAM, _USER_DELETION),
        ("User_Management", "Error"): _ecs(_IAM, _USER_INFO, FAILURE, _ERROR_REPORT),
        # A pending invitation is a pending user: sending creates it, canceling deletes it.
        ("User_Management", "Invitation_Canceled"): _ecs(_IAM, _USER_DELETION),
        ("User_Management", "Invitation_Declined"): _ecs(_IAM, _USER_CHANGE),
        ("User_Management", "Invitation_Resent"): _ecs(_IAM, _USER_CHANGE),
        ("User_Management", "Invitation_Sent"): _ecs(_IAM, _USER_CREATION),
        ("User_Management", "Updated"): _ecs(_IAM, _USER_CHANGE),
        ("User_Management", "Reactivated"): _ecs(_IAM, _USER_CHANGE),
        ("User_Management", "Removed"): _ecs(_IAM, _USER_DELETION),
        ("User_Management", "Role_Changed"): _ecs(_IAM, _USER_CHANGE),
        ("User_Management", "User_Pending"): _ecs(
            _IAM, _USER_INFO, reason="info: no outcome (was success)"
        ),
        ("User_Profile", "URL_Slug_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("User_Profile", "Welcome_Message_Updated"): _ecs(_CONFIGURATION, _CHANGE),
        ("Workflows", "Assigned"): _ecs(_CONFIGURATION, _CHANGE),
        ("Workflows", "Created"): _ecs(_CONFIGURATION, _CREATION),
        ("Workflows", "Deleted"): _ecs(_CONFIGURATION, _DELETION),
        ("Workflows", "Updated"): _ecs(_CONFIGURATION, _CHANGE),
    }
)
"""Calendly ``(namespace, action)`` -> ECS categorization, for every catalog activity."""

CALENDLY_NAMESPACE_CATEGORIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "API": _IAM_CONFIGURATION,
        "Availability": _CONFIGURATION,
        "Calendar": _CONFIGURATION,
        "Compliance": _CONFIGURATION,
        "Event_Type": _CONFIGURATION,
        "Groups": _IAM,
        "Integrations": _CONFIGURATION,
        "Login": _AUTHENTICATION,
        "Managed_Events": _CONFIGURATION,
        "Permissions": _IAM,
        "Routing_Forms": _CONFIGURATION,
        "Settings": _CONFIGURATION,
        "Teams": _IAM,
        "User_Management": _IAM,
        "User_Profile": _CONFIGURATION,
        "Workflows": _CONFIGURATION,
    }
)
"""Category of a *new* action of a known namespace (type ``info``, outcome from its name)."""

CALENDLY_UNKNOWN = _ecs(_CONFIGURATION, _INFO, reason=_BY_NAME)
"""The categorization of an activity of an unknown namespace (whose name says no outcome)."""

_CALENDLY_NAMESPACE_UNKNOWN: Mapping[str, EcsCategorization] = MappingProxyType(
    {
        namespace: _ecs(category, _INFO, reason=_BY_NAME)
        for namespace, category in CALENDLY_NAMESPACE_CATEGORIES.items()
    }
)
# Namespaces looked up whatever their case (``login``, ``LOGIN``): the API's spelling of
# a category is only confirmed for two of them.
_NAMESPACE_BY_FOLDED: Mapping[str, str] = MappingProxyType(
    {namespace.casefold(): namespace for namespace in CALENDLY_NAMESPACE_CATEGORIES}
)
LOGIN_NAMESPACE = "Login"


def calendly_namespace(namespace: str) -> str:
    """The catalog's spelling of ``namespace`` (case-insensitive), else ``namespace``."""
    return _NAMESPACE_BY_FOLDED.get(namespace.casefold(), namespace)


def calendly_unknown(namespace: str, action: str = "") -> EcsCategorization:
    """The generic categorization of an activity missing from :data:`CALENDLY_ACTIVITIES`.

    A known namespace keeps its category; the outcome comes from the action's name
    (:func:`outcome_from_name`), and a login attempt whose name says how it ended
    (``Login.Failure``, ``Login.Success``) is ``authentication`` ``start`` like the
    catalog's ``Login.Failed`` / ``Login.Succeeded``.
    """
    known = calendly_namespace(namespace)
    base = _CALENDLY_NAMESPACE_UNKNOWN.get(known, CALENDLY_UNKNOWN)
    outcome = outcome_from_name(action) if action else None
    if outcome is None:
        return base
    type_ = _START if known == LOGIN_NAMESPACE else _INFO
    return _ecs(base.category, type_, outcome, "unknown: outcome from its name")
