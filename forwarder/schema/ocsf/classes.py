"""The OCSF 1.7.0 classes, activities and enum captions this mapping uses.

Copied from the official schema JSON (the one pydantic-ocsf bundles) so that runtime code
needs no schema file; ``tests/schema/ocsf/test_classes.py`` compares every value here with
that JSON, so a typo or a schema change fails the tests instead of producing captions that
disagree with the ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

OCSF_VERSION = "1.7.0"

# Generic activity ids every class has (base_event's activity_id enum).
UNKNOWN = 0
OTHER = 99


@dataclass(frozen=True, slots=True)
class OcsfClass:
    """One OCSF event class: ids, captions and its activity_id enum."""

    uid: int
    name: str
    category_uid: int
    category_name: str
    activities: Mapping[int, str]
    """activity_id -> caption, including 0 Unknown and 99 Other."""

    def activity(self, activity_id: int) -> str:
        """The caption of ``activity_id``; raises KeyError for an id the class lacks."""
        return self.activities[activity_id]


def _activities(**named: int) -> Mapping[int, str]:
    captions = {UNKNOWN: "Unknown", OTHER: "Other"}
    captions.update({uid: name.replace("_", " ") for name, uid in named.items()})
    return MappingProxyType(dict(sorted(captions.items())))


IAM = (3, "Identity & Access Management")
APPLICATION = (6, "Application Activity")

AUTHENTICATION = OcsfClass(
    3002,
    "Authentication",
    *IAM,
    _activities(
        Logon=1,
        Logoff=2,
        Authentication_Ticket=3,
        Service_Ticket_Request=4,
        Service_Ticket_Renew=5,
        Preauth=6,
        Account_Switch=7,
    ),
)
ENTITY_MANAGEMENT = OcsfClass(
    3004,
    "Entity Management",
    *IAM,
    _activities(
        Create=1,
        Read=2,
        Update=3,
        Delete=4,
        Move=5,
        Enroll=6,
        Unenroll=7,
        Enable=8,
        Disable=9,
        Activate=10,
        Deactivate=11,
        Suspend=12,
        Resume=13,
    ),
)
USER_ACCESS_MANAGEMENT = OcsfClass(
    3005,
    "User Access Management",
    *IAM,
    _activities(Assign_Privileges=1, Revoke_Privileges=2),
)
API_ACTIVITY = OcsfClass(
    6003, "API Activity", *APPLICATION, _activities(Create=1, Read=2, Update=3, Delete=4)
)

CLASSES: tuple[OcsfClass, ...] = (
    AUTHENTICATION,
    ENTITY_MANAGEMENT,
    USER_ACCESS_MANAGEMENT,
    API_ACTIVITY,
)

# Activity ids by meaning, for the mapping tables (each is checked against its class there).
CREATE, READ, UPDATE, DELETE = 1, 2, 3, 4
ENABLE, DISABLE = 8, 9  # Entity Management
LOGON = 1  # Authentication
ASSIGN_PRIVILEGES, REVOKE_PRIVILEGES = 1, 2  # User Access Management

# severity_id (dictionary enum).
SEVERITY_INFORMATIONAL = 1
SEVERITIES: Mapping[int, str] = MappingProxyType(
    {
        0: "Unknown",
        1: "Informational",
        2: "Low",
        3: "Medium",
        4: "High",
        5: "Critical",
        6: "Fatal",
        99: "Other",
    }
)

# status_id (dictionary enum).
STATUS_UNKNOWN = 0
STATUS_SUCCESS = 1
STATUS_FAILURE = 2
STATUSES: Mapping[int, str] = MappingProxyType(
    {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
)

# user.type_id (user object enum).
USER_TYPES: Mapping[int, str] = MappingProxyType(
    {0: "Unknown", 1: "User", 2: "Admin", 3: "System", 4: "Service", 99: "Other"}
)
USER_TYPE_UNKNOWN, USER_TYPE_USER, USER_TYPE_ADMIN, USER_TYPE_SYSTEM = 0, 1, 2, 3

# managed_entity.type_id (managed_entity enum + the dictionary's 0 Unknown / 99 Other).
ENTITY_TYPES: Mapping[int, str] = MappingProxyType(
    {
        0: "Unknown",
        1: "Device",
        2: "User",
        3: "Group",
        4: "Organization",
        5: "Policy",
        6: "Email",
        7: "Network Zone",
        99: "Other",
    }
)
ENTITY_USER, ENTITY_GROUP, ENTITY_ORGANIZATION, ENTITY_POLICY = 2, 3, 4, 5

# account.type_id (account object enum), for the tenant a user belongs to.
ACCOUNT_GOOGLE_WORKSPACE = 15
ACCOUNT_OTHER = 99
ACCOUNT_TYPES: Mapping[int, str] = MappingProxyType(
    {ACCOUNT_GOOGLE_WORKSPACE: "Google Workspace", ACCOUNT_OTHER: "Other"}
)
