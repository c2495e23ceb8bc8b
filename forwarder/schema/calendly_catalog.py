"""The Calendly Activity Log catalog: 16 categories and their activities.

From Calendly's help article on the organization Activity Log. In the API a category is
the entry's ``namespace`` and an activity its ``action`` (``fully_qualified_name`` is
``Namespace.Action``, e.g. ``API.Token_Created``, ``Compliance.Data_Deletion_Completed``).
Only those two identifiers are confirmed by the API reference; the others follow the same
``Words_Joined_By_Underscores`` convention and are best-effort. The normalizer maps any
namespace or action, listed here or not (unknown ones generically), so a spelling
difference never drops an event.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CalendlyCategory:
    """One Activity Log category (API ``namespace``) and its activities (API ``action``)."""

    namespace: str
    title: str
    actions: tuple[str, ...]


CALENDLY_CATEGORIES: dict[str, CalendlyCategory] = {
    category.namespace: category
    for category in (
        CalendlyCategory("API", "API", ("Token_Created", "Token_Revoked")),
        CalendlyCategory("Availability", "Availability", ("Updated", "Schedule_Created")),
        CalendlyCategory("Calendar", "Calendar", ("Connected", "Disconnected", "Error")),
        CalendlyCategory(
            "Compliance", "Compliance", ("Data_Deletion_Completed", "Data_Deletion_Requested")
        ),
        CalendlyCategory(
            "Event_Type",
            "Event Type",
            (
                "Collective_Created",
                "Collective_Updated",
                "Collective_Deleted",
                "Group_Created",
                "Group_Updated",
                "Group_Deleted",
                "One_On_One_Link_Updated",
                "One_Off_Meeting_Created",
                "One_Off_Meeting_Deleted",
                "One_Off_Meeting_Canceled",
                "One_On_One_Created",
                "One_On_One_Updated",
                "One_On_One_Deleted",
                "Poll_Created",
                "Poll_Deleted",
                "Poll_Bookings_Canceled",
                "Poll_Scheduled",
                "Poll_Updated",
                "Round_Robin_Created",
                "Round_Robin_Updated",
                "Round_Robin_Deleted",
            ),
        ),
        CalendlyCategory(
            "Groups",
            "Groups",
            (
                "Admin_Assigned",
                "Admin_Removed",
                "Created",
                "Deleted",
                "Logo_Created",
                "Logo_Updated",
                "Logo_Deleted",
                "Member_Added",
                "Member_Removed",
                "Updated",
            ),
        ),
        CalendlyCategory(
            "Integrations",
            "Integrations",
            (
                "GoToMeeting_Connected",
                "GoToMeeting_Disconnected",
                "GoToMeeting_Revoked",
                "Microsoft_Teams_Disconnected",
                "Microsoft_Teams_Revoked",
                "Salesforce_Connected",
                "Salesforce_Disconnected",
                "Salesforce_Error",
                "Webex_Connected",
                "Zoom_Connected",
                "Zoom_Disconnected",
                "Zoom_Revoked",
            ),
        ),
        CalendlyCategory("Login", "Login", ("Failed", "Succeeded")),
        CalendlyCategory(
            "Managed_Events",
            "Managed Events",
            ("Assigned", "Created", "Deleted", "Updated", "Unassigned"),
        ),
        CalendlyCategory(
            "Permissions",
            "Permissions",
            ("Event_Types_Updated", "SMS_Communication_Updated", "Workflows_Updated"),
        ),
        CalendlyCategory(
            "Routing_Forms", "Routing Forms", ("Created", "Deleted", "Updated", "Published")
        ),
        CalendlyCategory(
            "Settings",
            "Settings",
            (
                "Branding_Enabled",
                "Branding_Disabled",
                "Domain_Added",
                "Domain_Removed",
                "Domain_Verified",
                "Domain_Control_Enabled",
                "Domain_Control_Disabled",
                "Domain_Control_Updated",
                "Email_Audit_Enabled",
                "SAML_Configured",
                "SAML_Disabled",
                "SAML_Enforced",
                "SCIM_Removed",
                "SCIM_Disabled",
                "SCIM_Enforced",
                "SAML_Updated",
                "SCIM_Token_Created",
                "SCIM_Token_Revoked",
            ),
        ),
        CalendlyCategory(
            "Teams", "Teams", ("Created", "Deleted", "Member_Added", "Member_Removed", "Updated")
        ),
        CalendlyCategory(
            "User_Management",
            "User Management",
            (
                "Added",
                "Deactivated",
                "Deleted",
                "Error",
                "Invitation_Canceled",
                "Invitation_Declined",
                "Invitation_Resent",
                "Invitation_Sent",
                "Updated",
                "Reactivated",
                "Removed",
                "Role_Changed",
                "User_Pending",
            ),
        ),
        CalendlyCategory(
            "User_Profile", "User Profile", ("URL_Slug_Updated", "Welcome_Message_Updated")
        ),
        CalendlyCategory("Workflows", "Workflows", ("Assigned", "Created", "Deleted", "Updated")),
    )
}
