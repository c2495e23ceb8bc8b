"""Which OCSF class and activity every source event maps to: the table to review.

Choices, and why:

- **Entity Management (3004)** is the default: a create/read/update/delete/enable/disable
  on a thing in the application (a calendar, an event, an API token, a setting). It is an
  IAM class, so it carries ``actor`` and ``src_endpoint`` in the bundled schema; the
  application-category classes (Web Resources Activity...) only get ``actor`` from the
  host profile, which the bundled schema does not include. The thing acted on is the
  ``entity`` (``type_id`` 99 Other with its own ``type`` unless it is a user, group...).
- **User Access Management (3005)** when someone is given or loses access to a calendar
  or event: calendar ACL changes, guests added/removed, ownership transfers. Its ``user``
  is the grantee, named by the event's documented parameters; without one the event
  falls back to Entity Management (Update of the calendar/event) instead of inventing a
  user.
- **API Activity (6003)** for the Exchange interop lookups: a service-to-service API call,
  successful or not (``status_id``). It requires ``src_endpoint``: the client IP when the
  activity has one, else the service that made the call (``svc_name``).
- **Authentication (3002)** Logon for Calendly ``Login`` entries, Success/Failure.
- Calendly's ``details`` object is not documented (it "varies from action to action"):
  Calendly events other than Login are Entity Management with the entity named by its
  kind and ``details`` carried whole in ``entity.data``; a user entity also gets the user
  the ECS normalizer found in ``details`` (``user.target``) when there is one. That is
  why Groups/Teams and User Management are not Group Management / Account Change: their
  required ``group`` / ``user`` would often have to be made up, and a class that changes
  with the shape of ``details`` would split one kind of event across two classes.
- Unknown events are never dropped: Entity Management, activity 99 Other, with the source
  name as ``activity_name`` (OCSF's rule for Other); unknown Calendly actions of a known
  namespace keep the namespace's entity kind (and Login stays a Logon).

Outcome (``status_id`` / ``status``) is not decided here: it is derived from the ONE
outcome decision of the event's row in :mod:`forwarder.schema.ecs_mapping` (success ->
Success, failure -> Failure, unknown -> Unknown, none -> no status), the same value ECS
``event.outcome`` comes from, so the two formats cannot disagree. Unknown events take
theirs from their name (``Login.Failure`` is a Failure). Requests (an ownership transfer
requested) are activity 99 Other named after the source event, with no status: they are
not the privilege assignment that may follow. Severity is Informational throughout: an
audit record says what happened, not how bad it is.

Every class/activity pair is checked when this module is imported (an activity id the
class lacks raises), and the captions are the schema's (``classes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from forwarder.schema.ecs_mapping import (
    CALENDLY_ACTIVITIES,
    FAILURE,
    SUCCESS,
    UNKNOWN,
    calendly_namespace,
    calendly_unknown,
    google_unknown,
    outcome_from_name,
)
from forwarder.schema.ecs_mapping import GOOGLE_EVENTS as ECS_GOOGLE_EVENTS
from forwarder.schema.ocsf.classes import (
    API_ACTIVITY,
    ASSIGN_PRIVILEGES,
    AUTHENTICATION,
    CREATE,
    DELETE,
    DISABLE,
    ENABLE,
    ENTITY_GROUP,
    ENTITY_MANAGEMENT,
    ENTITY_POLICY,
    ENTITY_TYPES,
    ENTITY_USER,
    LOGON,
    OTHER,
    READ,
    REVOKE_PRIVILEGES,
    SEVERITIES,
    SEVERITY_INFORMATIONAL,
    STATUS_FAILURE,
    STATUS_SUCCESS,
    STATUS_UNKNOWN,
    STATUSES,
    UPDATE,
    USER_ACCESS_MANAGEMENT,
    OcsfClass,
)

# How the class-specific part of an event is built (see google.py / calendly.py).
ENTITY = "entity"
"""Entity Management: ``entity`` is the event's :class:`Kind`."""
ACL = "acl"
"""User Access: ``user`` = ``grantee_email``, ``privileges`` = [``access_level``];
Revoke Privileges when the level is ``none``."""
GUEST = "guest"
"""User Access: ``user`` = ``event_guest``."""
OWNER_OFFER = "owner_offer"
"""User Access: ``user`` = ``grantee_email`` (offered ownership)."""
OWNER_ACCEPT = "owner_accept"
"""User Access: ``user`` = the actor (accepted ownership)."""
INTEROP_INBOUND = "interop_inbound"
"""API Activity: an Exchange server read Google availability."""
INTEROP_OUTBOUND = "interop_outbound"
"""API Activity: Google read Exchange availability / resources."""
LOGON_TARGET = "logon"
"""Authentication: ``user`` = the actor."""


OUTCOME_STATUS: Mapping[str, int] = MappingProxyType(
    {SUCCESS: STATUS_SUCCESS, FAILURE: STATUS_FAILURE, UNKNOWN: STATUS_UNKNOWN}
)
"""The ECS outcome decision of a row -> OCSF ``status_id`` (no outcome: no status)."""


def status_for(outcome: str | None) -> int | None:
    """OCSF ``status_id`` of an outcome decision (:mod:`forwarder.schema.ecs_mapping`)."""
    return OUTCOME_STATUS[outcome] if outcome is not None else None


@dataclass(frozen=True, slots=True)
class Kind:
    """What an event acts on: the entity (or resource) type and where its identity is."""

    label: str
    """The entity type as the source would say it (``Calendar``, ``API Token``)."""
    type_id: int = OTHER
    """``managed_entity.type_id``; 99 Other makes ``label`` the ``type``."""
    name: str | None = None
    """A fixed entity name (Calendly: the subject of the action, ``SAML``); None: label."""
    uid_parameter: str | None = None
    """Google parameter holding the entity's id."""
    name_parameter: str | None = None
    """Google parameter holding the entity's name."""

    @property
    def type(self) -> str:
        """``managed_entity.type``: the caption of a known type id, else the label."""
        return self.label if self.type_id == OTHER else ENTITY_TYPES[self.type_id]


@dataclass(frozen=True, slots=True)
class OcsfMapping:
    """One source event -> OCSF class, activity and how to build the class's object."""

    ocsf_class: OcsfClass
    activity_id: int
    target: str
    kind: Kind
    status_id: int | None = None
    activity_name: str | None = None
    """The source's own label, for activity 99 Other (OCSF's rule)."""
    privileges: tuple[str, ...] = ()
    header: MappingProxyType[str, Any] = field(init=False, repr=False, compare=False)
    """The constant top-level fields: class, category, activity, type, severity, status."""
    fallback: OcsfMapping | None = field(init=False, repr=False, compare=False)
    """Used when the class's required target cannot be built from the record."""

    def __post_init__(self) -> None:
        cls = self.ocsf_class
        caption = cls.activity(self.activity_id)  # KeyError: not an activity of the class
        header: dict[str, Any] = {
            "category_uid": cls.category_uid,
            "category_name": cls.category_name,
            "class_uid": cls.uid,
            "class_name": cls.name,
            "activity_id": self.activity_id,
            "activity_name": (
                self.activity_name if self.activity_id == OTHER and self.activity_name else caption
            ),
            "type_uid": cls.uid * 100 + self.activity_id,
            "type_name": f"{cls.name}: {caption}",
            "severity_id": SEVERITY_INFORMATIONAL,
            "severity": SEVERITIES[SEVERITY_INFORMATIONAL],
        }
        if self.status_id is not None:
            header["status_id"] = self.status_id
            header["status"] = STATUSES[self.status_id]
        object.__setattr__(self, "header", MappingProxyType(header))
        object.__setattr__(self, "fallback", _fallback(self))


def _fallback(mapping: OcsfMapping) -> OcsfMapping | None:
    if mapping.ocsf_class is USER_ACCESS_MANAGEMENT:
        # Someone's access to the calendar/event changed, but the record does not say whose
        # (a request stays Other, under its own name).
        activity_id = OTHER if mapping.activity_id == OTHER else UPDATE
        return OcsfMapping(
            ENTITY_MANAGEMENT,
            activity_id,
            ENTITY,
            mapping.kind,
            mapping.status_id,
            mapping.activity_name,
        )
    if mapping.ocsf_class is AUTHENTICATION:
        # Other, named after the source's action (kept in activity_name by _logon).
        name = mapping.activity_name or "Logon"
        return OcsfMapping(ENTITY_MANAGEMENT, OTHER, ENTITY, mapping.kind, mapping.status_id, name)
    return None


def _entity(activity_id: int, kind: Kind, activity_name: str | None = None) -> OcsfMapping:
    return OcsfMapping(ENTITY_MANAGEMENT, activity_id, ENTITY, kind, activity_name=activity_name)


def _access(
    target: str, activity_id: int, kind: Kind, *privileges: str, name: str | None = None
) -> OcsfMapping:
    return OcsfMapping(
        USER_ACCESS_MANAGEMENT,
        activity_id,
        target,
        kind,
        activity_name=name,
        privileges=privileges,
    )


def _interop(target: str, kind: Kind) -> OcsfMapping:
    return OcsfMapping(API_ACTIVITY, READ, target, kind)


def _with_status(mapping: OcsfMapping, outcome: str | None) -> OcsfMapping:
    """``mapping`` with the status of the row's outcome decision (header rebuilt)."""
    return replace(mapping, status_id=status_for(outcome))


# ---------------------------------------------------------------------------------------
# Google Calendar (Reports API, applicationName=calendar): event name -> mapping.

CALENDAR = Kind("Calendar", uid_parameter="calendar_id", name_parameter="calendar_title")
CALENDAR_EVENT = Kind("Calendar Event", uid_parameter="event_id", name_parameter="event_title")
APPOINTMENT_SCHEDULE = Kind(
    "Appointment Schedule", uid_parameter="event_id", name_parameter="appointment_schedule_title"
)
NOTIFICATION = Kind("Calendar Notification", uid_parameter="notification_message_id")
SUBSCRIPTION = Kind("Calendar Notification Subscription")
EXCHANGE_RESOURCE_LIST = Kind("Exchange Resource List")

_GOOGLE_TABLE: Mapping[str, OcsfMapping] = MappingProxyType(
    {
        # calendar_change: the calendar itself.
        "create_calendar": _entity(CREATE, CALENDAR),
        "delete_calendar": _entity(DELETE, CALENDAR),
        "change_calendar_country": _entity(UPDATE, CALENDAR),
        "change_calendar_description": _entity(UPDATE, CALENDAR),
        "change_calendar_location": _entity(UPDATE, CALENDAR),
        "change_calendar_timezone": _entity(UPDATE, CALENDAR),
        "change_calendar_title": _entity(UPDATE, CALENDAR),
        # Export and print preview read the whole calendar (metadata.event_code tells which).
        "export_calendar": _entity(READ, CALENDAR),
        "print_preview_calendar": _entity(READ, CALENDAR),
        # Assign Privileges, or Revoke Privileges when access_level is "none".
        "change_calendar_acls": _access(ACL, ASSIGN_PRIVILEGES, CALENDAR),
        # notification / subscription_change.
        "notification_triggered": _entity(CREATE, NOTIFICATION),
        "add_subscription": _entity(CREATE, SUBSCRIPTION),
        "delete_subscription": _entity(DELETE, SUBSCRIPTION),
        # appointment_schedule_change.
        "create_appointment_schedule": _entity(CREATE, APPOINTMENT_SCHEDULE),
        "change_appointment_schedule": _entity(UPDATE, APPOINTMENT_SCHEDULE),
        "delete_appointment_schedule": _entity(DELETE, APPOINTMENT_SCHEDULE),
        # event_change.
        "create_event": _entity(CREATE, CALENDAR_EVENT),
        "change_event": _entity(UPDATE, CALENDAR_EVENT),
        "change_event_start_time": _entity(UPDATE, CALENDAR_EVENT),
        "change_event_title": _entity(UPDATE, CALENDAR_EVENT),
        "change_event_guest_response": _entity(UPDATE, CALENDAR_EVENT),
        "change_event_guest_response_auto": _entity(UPDATE, CALENDAR_EVENT),
        "restore_event": _entity(UPDATE, CALENDAR_EVENT),  # out of the trash again
        "delete_event": _entity(DELETE, CALENDAR_EVENT),
        "remove_event_from_trash": _entity(DELETE, CALENDAR_EVENT),  # for good
        "print_preview_event": _entity(READ, CALENDAR_EVENT),
        # A guest can see the event: access granted to / taken from that person.
        "add_event_guest": _access(GUEST, ASSIGN_PRIVILEGES, CALENDAR_EVENT, "guest"),
        "remove_event_guest": _access(GUEST, REVOKE_PRIVILEGES, CALENDAR_EVENT, "guest"),
        # Only offered: activity Other under its own name, not Assign Privileges (the
        # privilege is assigned by transfer_event_completed, if the grantee accepts).
        "transfer_event_requested": _access(
            OWNER_OFFER, OTHER, CALENDAR_EVENT, "owner", name="transfer_event_requested"
        ),
        "transfer_event_completed": _access(
            OWNER_ACCEPT, ASSIGN_PRIVILEGES, CALENDAR_EVENT, "owner"
        ),
        # interop: availability and resource lookups between Google and Exchange (Read).
        "interop_freebusy_lookup_outbound_successful": _interop(INTEROP_OUTBOUND, CALENDAR),
        "interop_freebusy_lookup_outbound_unsuccessful": _interop(INTEROP_OUTBOUND, CALENDAR),
        "interop_freebusy_lookup_inbound_successful": _interop(INTEROP_INBOUND, CALENDAR),
        "interop_freebusy_lookup_inbound_unsuccessful": _interop(INTEROP_INBOUND, CALENDAR),
        "interop_exchange_resource_availability_lookup_successful": _interop(
            INTEROP_OUTBOUND, CALENDAR
        ),
        "interop_exchange_resource_availability_lookup_unsuccessful": _interop(
            INTEROP_OUTBOUND, CALENDAR
        ),
        "interop_exchange_resource_list_lookup_successful": _interop(
            INTEROP_OUTBOUND, EXCHANGE_RESOURCE_LIST
        ),
        "interop_exchange_resource_list_lookup_unsuccessful": _interop(
            INTEROP_OUTBOUND, EXCHANGE_RESOURCE_LIST
        ),
    }
)

GOOGLE_EVENTS: Mapping[str, OcsfMapping] = MappingProxyType(
    {
        name: _with_status(mapping, ECS_GOOGLE_EVENTS[name].ecs.outcome)
        for name, mapping in _GOOGLE_TABLE.items()
    }
)
"""Every documented Google Calendar event name -> its mapping, status from its ECS row."""


def google_generic(name: str, parameters: Mapping[str, Any]) -> OcsfMapping:
    """An event name missing from :data:`GOOGLE_EVENTS`: Entity Management, 99 Other,
    with the status of the ECS row of the name (from its words: ``*_unsuccessful``)."""
    kind = CALENDAR_EVENT if "event_id" in parameters else CALENDAR
    status_id = status_for(google_unknown(name).ecs.outcome)
    return OcsfMapping(ENTITY_MANAGEMENT, OTHER, ENTITY, kind, status_id, name)


# ---------------------------------------------------------------------------------------
# Calendly Activity Log: (namespace, action) -> mapping.


def action_status(action: str) -> int | None:
    """Failure / Success when the action's name says so (``Failed``, ``Salesforce_Error``)."""
    return status_for(outcome_from_name(action))


def _subject(action: str) -> str | None:
    """``SCIM_Token_Created`` -> ``SCIM Token``: the action's name without its verb."""
    subject, _, _verb = action.rpartition("_")
    return subject.replace("_", " ") or None


@dataclass(frozen=True, slots=True)
class CalendlyNamespace:
    """One Calendly namespace: its entity kind, its class, and its known actions."""

    kind: Kind
    target: str
    actions: Mapping[str, OcsfMapping]
    """Class and activity per action, without status: :data:`CALENDLY_EVENTS` adds the
    status of each action's ECS row."""
    name_from_action: bool = False

    def kind_for(self, action: str) -> Kind:
        """The entity kind of ``action`` (named by its subject when the namespace says so)."""
        if not self.name_from_action:
            return self.kind
        subject = _subject(action)
        return Kind(self.kind.label, self.kind.type_id, subject) if subject else self.kind


def _namespace(
    label: str,
    type_id: int = OTHER,
    *,
    name_from_action: bool = False,
    **actions: int | tuple[int, Kind],
) -> CalendlyNamespace:
    """Entity Management namespace: ``Action=activity_id`` or ``(activity_id, Kind)``."""
    base = CalendlyNamespace(Kind(label, type_id), ENTITY, {}, name_from_action)
    mappings: dict[str, OcsfMapping] = {}
    for action, spec in actions.items():
        activity_id, kind = spec if isinstance(spec, tuple) else (spec, base.kind_for(action))
        mappings[action] = _entity(activity_id, kind, action)  # the name, for 99 Other
    return CalendlyNamespace(base.kind, ENTITY, MappingProxyType(mappings), name_from_action)


def _logon(*actions: str) -> CalendlyNamespace:
    kind = Kind("Login")
    mappings = {
        action: OcsfMapping(AUTHENTICATION, LOGON, LOGON_TARGET, kind, activity_name=action)
        for action in actions
    }
    return CalendlyNamespace(kind, LOGON_TARGET, MappingProxyType(mappings))


_INVITATION = Kind("User Invitation")

CALENDLY_NAMESPACES: Mapping[str, CalendlyNamespace] = MappingProxyType(
    {
        "API": _namespace("API Token", Token_Created=CREATE, Token_Revoked=DELETE),
        "Availability": _namespace(
            "Availability Schedule", Updated=UPDATE, Schedule_Created=CREATE
        ),
        "Calendar": _namespace(
            "Calendar Connection", Connected=CREATE, Disconnected=DELETE, Error=OTHER
        ),
        "Compliance": _namespace(
            "Personal Data", Data_Deletion_Completed=DELETE, Data_Deletion_Requested=OTHER
        ),
        "Event_Type": _namespace(
            "Event Type",
            name_from_action=True,
            Collective_Created=CREATE,
            Collective_Updated=UPDATE,
            Collective_Deleted=DELETE,
            Group_Created=CREATE,
            Group_Updated=UPDATE,
            Group_Deleted=DELETE,
            One_On_One_Link_Updated=UPDATE,
            One_Off_Meeting_Created=CREATE,
            One_Off_Meeting_Deleted=DELETE,
            One_Off_Meeting_Canceled=UPDATE,  # its reservations cleared
            One_On_One_Created=CREATE,
            One_On_One_Updated=UPDATE,
            One_On_One_Deleted=DELETE,
            Poll_Created=CREATE,
            Poll_Deleted=DELETE,
            Poll_Bookings_Canceled=UPDATE,
            Poll_Scheduled=UPDATE,
            Poll_Updated=UPDATE,
            Round_Robin_Created=CREATE,
            Round_Robin_Updated=UPDATE,
            Round_Robin_Deleted=DELETE,
        ),
        # Membership and admin changes update the group (who they concern is in details).
        "Groups": _namespace(
            "Group",
            ENTITY_GROUP,
            Admin_Assigned=UPDATE,
            Admin_Removed=UPDATE,
            Created=CREATE,
            Deleted=DELETE,
            Logo_Created=UPDATE,
            Logo_Updated=UPDATE,
            Logo_Deleted=UPDATE,
            Member_Added=UPDATE,
            Member_Removed=UPDATE,
            Updated=UPDATE,
        ),
        "Integrations": _namespace(
            "Integration",
            name_from_action=True,
            GoToMeeting_Connected=CREATE,
            GoToMeeting_Disconnected=DELETE,
            GoToMeeting_Revoked=DISABLE,
            Microsoft_Teams_Disconnected=DELETE,
            Microsoft_Teams_Revoked=DISABLE,
            Salesforce_Connected=CREATE,
            Salesforce_Disconnected=DELETE,
            Salesforce_Error=OTHER,
            Webex_Connected=CREATE,
            Zoom_Connected=CREATE,
            Zoom_Disconnected=DELETE,
            Zoom_Revoked=DISABLE,
        ),
        "Login": _logon("Failed", "Succeeded"),
        "Managed_Events": _namespace(
            "Managed Event Type",
            Assigned=UPDATE,
            Created=CREATE,
            Deleted=DELETE,
            Updated=UPDATE,
            Unassigned=UPDATE,
        ),
        "Permissions": _namespace(
            "Permission",
            ENTITY_POLICY,
            name_from_action=True,
            Event_Types_Updated=UPDATE,
            SMS_Communication_Updated=UPDATE,
            Workflows_Updated=UPDATE,
        ),
        "Routing_Forms": _namespace(
            "Routing Form", Created=CREATE, Deleted=DELETE, Updated=UPDATE, Published=UPDATE
        ),
        "Settings": _namespace(
            "Organization Setting",
            name_from_action=True,
            Branding_Enabled=ENABLE,
            Branding_Disabled=DISABLE,
            Domain_Added=CREATE,
            Domain_Removed=DELETE,
            Domain_Verified=UPDATE,
            Domain_Control_Enabled=ENABLE,
            Domain_Control_Disabled=DISABLE,
            Domain_Control_Updated=UPDATE,
            Email_Audit_Enabled=ENABLE,
            SAML_Configured=UPDATE,
            SAML_Disabled=DISABLE,
            SAML_Enforced=ENABLE,
            SCIM_Removed=DELETE,
            SCIM_Disabled=DISABLE,
            SCIM_Enforced=ENABLE,
            SAML_Updated=UPDATE,
            SCIM_Token_Created=CREATE,
            SCIM_Token_Revoked=DELETE,
        ),
        "Teams": _namespace(
            "Team",
            ENTITY_GROUP,
            Created=CREATE,
            Deleted=DELETE,
            Member_Added=UPDATE,
            Member_Removed=UPDATE,
            Updated=UPDATE,
        ),
        "User_Management": _namespace(
            "User",
            ENTITY_USER,
            Added=CREATE,
            Deactivated=DISABLE,
            Deleted=DELETE,
            Error=OTHER,
            Invitation_Canceled=(DELETE, _INVITATION),
            Invitation_Declined=(UPDATE, _INVITATION),
            Invitation_Resent=(UPDATE, _INVITATION),
            Invitation_Sent=(CREATE, _INVITATION),
            Updated=UPDATE,
            Reactivated=ENABLE,
            Removed=DELETE,
            Role_Changed=UPDATE,
            User_Pending=OTHER,
        ),
        "User_Profile": _namespace(
            "User Profile",
            name_from_action=True,
            URL_Slug_Updated=UPDATE,
            Welcome_Message_Updated=UPDATE,
        ),
        "Workflows": _namespace(
            "Workflow", Assigned=UPDATE, Created=CREATE, Deleted=DELETE, Updated=UPDATE
        ),
    }
)
"""Every Calendly namespace of the catalog -> its kind, class and actions."""

CALENDLY_EVENTS: Mapping[tuple[str, str], OcsfMapping] = MappingProxyType(
    {
        (namespace, action): _with_status(mapping, CALENDLY_ACTIVITIES[namespace, action].outcome)
        for namespace, spec in CALENDLY_NAMESPACES.items()
        for action, mapping in spec.actions.items()
    }
)
"""``(namespace, action)`` -> mapping, for every activity of the catalog; the status is
that of the activity's ECS row."""


def calendly_generic(namespace: str, action: str) -> OcsfMapping:
    """A namespace/action missing from :data:`CALENDLY_EVENTS` (never dropped).

    A known namespace keeps its entity kind (and ``Login`` stays a Logon); an unknown one
    becomes an entity of its own name. The activity is 99 Other with the action as name.
    """
    status_id = status_for(calendly_unknown(namespace, action).outcome)
    spec = CALENDLY_NAMESPACES.get(calendly_namespace(namespace))
    if spec is None:
        kind = Kind(namespace.replace("_", " "))
        return OcsfMapping(ENTITY_MANAGEMENT, OTHER, ENTITY, kind, status_id, action)
    if spec.target == LOGON_TARGET:
        return OcsfMapping(AUTHENTICATION, LOGON, LOGON_TARGET, spec.kind, status_id, action)
    return OcsfMapping(ENTITY_MANAGEMENT, OTHER, ENTITY, spec.kind_for(action), status_id, action)


GOOGLE_ACL_REVOKED = _with_status(
    _access(ACL, REVOKE_PRIVILEGES, CALENDAR),
    ECS_GOOGLE_EVENTS["change_calendar_acls"].ecs.outcome,  # the same row, the same outcome
)
"""``change_calendar_acls`` with ``access_level`` ``none``: the grantee lost access."""
