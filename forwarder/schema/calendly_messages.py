"""Human messages for Calendly activities: one English sentence template per activity.

Calendly has no admin-console message formats like Google's, so these are written to
read the same way: ``{actor}`` is the actor's display name (``Calendly System`` for the
System actor) and ``{target}`` the affected user when the entry's ``details`` name one,
else :data:`TARGET_FALLBACK`. The sentences only use those two placeholders: ``details``
is a free object whose shape Calendly does not document, so nothing else can be relied on.
An activity missing from the table gets :data:`GENERIC_TEMPLATE`, where ``{activity}`` is
``Category - Activity words`` (``Event Type - Poll Archived``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

TARGET_FALLBACK = "a user"
"""What ``{target}`` reads when ``details`` name no affected user."""

GENERIC_TEMPLATE = "{actor} performed the Calendly activity {activity}"
"""The message of an activity that is not in :data:`ACTIVITY_TEMPLATES`."""

ACTIVITY_TEMPLATES: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("API", "Token_Created"): "{actor} created an API token",
        ("API", "Token_Revoked"): "{actor} revoked an API token",
        ("Availability", "Updated"): "{actor} updated an availability schedule",
        ("Availability", "Schedule_Created"): "{actor} created an availability schedule",
        ("Calendar", "Connected"): "{actor} connected a calendar",
        ("Calendar", "Disconnected"): "{actor} disconnected a calendar",
        ("Calendar", "Error"): "{actor} reported a calendar connection error",
        ("Compliance", "Data_Deletion_Completed"): "{actor} completed a data deletion",
        ("Compliance", "Data_Deletion_Requested"): "{actor} requested a data deletion",
        ("Event_Type", "Collective_Created"): "{actor} created a collective event type",
        ("Event_Type", "Collective_Updated"): "{actor} updated a collective event type",
        ("Event_Type", "Collective_Deleted"): "{actor} deleted a collective event type",
        ("Event_Type", "Group_Created"): "{actor} created a group event type",
        ("Event_Type", "Group_Updated"): "{actor} updated a group event type",
        ("Event_Type", "Group_Deleted"): "{actor} deleted a group event type",
        ("Event_Type", "One_On_One_Link_Updated"): (
            "{actor} updated the link of a one-on-one event type"
        ),
        ("Event_Type", "One_Off_Meeting_Created"): "{actor} created a one-off meeting",
        ("Event_Type", "One_Off_Meeting_Deleted"): "{actor} deleted a one-off meeting",
        ("Event_Type", "One_Off_Meeting_Canceled"): "{actor} canceled a one-off meeting",
        ("Event_Type", "One_On_One_Created"): "{actor} created a one-on-one event type",
        ("Event_Type", "One_On_One_Updated"): "{actor} updated a one-on-one event type",
        ("Event_Type", "One_On_One_Deleted"): "{actor} deleted a one-on-one event type",
        ("Event_Type", "Poll_Created"): "{actor} created a meeting poll",
        ("Event_Type", "Poll_Deleted"): "{actor} deleted a meeting poll",
        ("Event_Type", "Poll_Bookings_Canceled"): "{actor} canceled the bookings of a meeting poll",
        ("Event_Type", "Poll_Scheduled"): "{actor} scheduled a meeting poll",
        ("Event_Type", "Poll_Updated"): "{actor} updated a meeting poll",
        ("Event_Type", "Round_Robin_Created"): "{actor} created a round robin event type",
        ("Event_Type", "Round_Robin_Updated"): "{actor} updated a round robin event type",
        ("Event_Type", "Round_Robin_Deleted"): "{actor} deleted a round robin event type",
        ("Groups", "Admin_Assigned"): "{actor} made {target} an administrator of a group",
        ("Groups", "Admin_Removed"): "{actor} removed {target} as an administrator of a group",
        ("Groups", "Created"): "{actor} created a group",
        ("Groups", "Deleted"): "{actor} deleted a group",
        ("Groups", "Logo_Created"): "{actor} added a group logo",
        ("Groups", "Logo_Updated"): "{actor} updated a group logo",
        ("Groups", "Logo_Deleted"): "{actor} deleted a group logo",
        ("Groups", "Member_Added"): "{actor} added {target} to a group",
        ("Groups", "Member_Removed"): "{actor} removed {target} from a group",
        ("Groups", "Updated"): "{actor} updated a group",
        ("Integrations", "GoToMeeting_Connected"): "{actor} connected GoToMeeting",
        ("Integrations", "GoToMeeting_Disconnected"): "{actor} disconnected GoToMeeting",
        ("Integrations", "GoToMeeting_Revoked"): "{actor} revoked the GoToMeeting connection",
        ("Integrations", "Microsoft_Teams_Disconnected"): "{actor} disconnected Microsoft Teams",
        ("Integrations", "Microsoft_Teams_Revoked"): (
            "{actor} revoked the Microsoft Teams connection"
        ),
        ("Integrations", "Salesforce_Connected"): "{actor} connected Salesforce",
        ("Integrations", "Salesforce_Disconnected"): "{actor} disconnected Salesforce",
        ("Integrations", "Salesforce_Error"): "{actor} reported a Salesforce integration error",
        ("Integrations", "Webex_Connected"): "{actor} connected Webex",
        ("Integrations", "Zoom_Connected"): "{actor} connected Zoom",
        ("Integrations", "Zoom_Disconnected"): "{actor} disconnected Zoom",
        ("Integrations", "Zoom_Revoked"): "{actor} revoked the Zoom connection",
        ("Login", "Failed"): "{actor} failed to log in",
        ("Login", "Succeeded"): "{actor} logged in",
        ("Managed_Events", "Assigned"): "{actor} assigned a managed event type to {target}",
        ("Managed_Events", "Created"): "{actor} created a managed event type",
        ("Managed_Events", "Deleted"): "{actor} deleted a managed event type",
        ("Managed_Events", "Updated"): "{actor} updated a managed event type",
        ("Managed_Events", "Unassigned"): "{actor} unassigned a managed event type from {target}",
        ("Permissions", "Event_Types_Updated"): "{actor} updated the event type permissions",
        ("Permissions", "SMS_Communication_Updated"): (
            "{actor} updated the SMS communication permissions"
        ),
        ("Permissions", "Workflows_Updated"): "{actor} updated the workflow permissions",
        ("Routing_Forms", "Created"): "{actor} created a routing form",
        ("Routing_Forms", "Deleted"): "{actor} deleted a routing form",
        ("Routing_Forms", "Updated"): "{actor} updated a routing form",
        ("Routing_Forms", "Published"): "{actor} published a routing form",
        ("Settings", "Branding_Enabled"): "{actor} enabled custom branding",
        ("Settings", "Branding_Disabled"): "{actor} disabled custom branding",
        ("Settings", "Domain_Added"): "{actor} added a domain",
        ("Settings", "Domain_Removed"): "{actor} removed a domain",
        ("Settings", "Domain_Verified"): "{actor} verified a domain",
        ("Settings", "Domain_Control_Enabled"): "{actor} enabled domain control",
        ("Settings", "Domain_Control_Disabled"): "{actor} disabled domain control",
        ("Settings", "Domain_Control_Updated"): "{actor} updated the domain control settings",
        ("Settings", "Email_Audit_Enabled"): "{actor} enabled the email audit",
        ("Settings", "SAML_Configured"): "{actor} configured SAML single sign-on",
        ("Settings", "SAML_Disabled"): "{actor} disabled SAML single sign-on",
        ("Settings", "SAML_Enforced"): "{actor} enforced SAML single sign-on",
        ("Settings", "SCIM_Removed"): "{actor} removed SCIM provisioning",
        ("Settings", "SCIM_Disabled"): "{actor} disabled SCIM provisioning",
        ("Settings", "SCIM_Enforced"): "{actor} enforced SCIM provisioning",
        ("Settings", "SAML_Updated"): "{actor} updated the SAML single sign-on settings",
        ("Settings", "SCIM_Token_Created"): "{actor} created a SCIM token",
        ("Settings", "SCIM_Token_Revoked"): "{actor} revoked a SCIM token",
        ("Teams", "Created"): "{actor} created a team",
        ("Teams", "Deleted"): "{actor} deleted a team",
        ("Teams", "Member_Added"): "{actor} added {target} to a team",
        ("Teams", "Member_Removed"): "{actor} removed {target} from a team",
        ("Teams", "Updated"): "{actor} updated a team",
        ("User_Management", "Added"): "{actor} added {target} to the organization",
        ("User_Management", "Deactivated"): "{actor} deactivated {target}",
        ("User_Management", "Deleted"): "{actor} deleted {target}",
        ("User_Management", "Error"): "{actor} reported a user management error for {target}",
        ("User_Management", "Invitation_Canceled"): "{actor} canceled the invitation of {target}",
        ("User_Management", "Invitation_Declined"): (
            "{actor} declined an invitation to join the organization"
        ),
        ("User_Management", "Invitation_Resent"): "{actor} resent the invitation of {target}",
        ("User_Management", "Invitation_Sent"): "{actor} invited {target} to the organization",
        ("User_Management", "Updated"): "{actor} updated {target}",
        ("User_Management", "Reactivated"): "{actor} reactivated {target}",
        ("User_Management", "Removed"): "{actor} removed {target} from the organization",
        ("User_Management", "Role_Changed"): "{actor} changed the role of {target}",
        ("User_Management", "User_Pending"): (
            "{actor} set {target} as pending under domain control"
        ),
        ("User_Profile", "URL_Slug_Updated"): "{actor} updated a profile URL slug",
        ("User_Profile", "Welcome_Message_Updated"): "{actor} updated a profile welcome message",
        ("Workflows", "Assigned"): "{actor} assigned a workflow",
        ("Workflows", "Created"): "{actor} created a workflow",
        ("Workflows", "Deleted"): "{actor} deleted a workflow",
        ("Workflows", "Updated"): "{actor} updated a workflow",
    }
)
"""Calendly ``(namespace, action)`` -> message template, for every catalog activity."""
