"""The tenant of an event: which customer's source read it.

ECS has no tenant field (``organization.id`` already holds the Calendly organization /
Google customer id), so the tenant is the custom keyword tag ``labels.tenant``, the place
ECS sets aside for such tags; OCSF carries it as the ``metadata.tags`` pair
``{"name": "tenant", "value": ...}`` (its ``metadata.tenant_uid`` is the provider's own
organization / customer id, like ECS ``organization.id``).
"""

from __future__ import annotations

from typing import Any

from forwarder.events import Event

TENANT_LABEL = "tenant"


def label_tenant(event: Event, tenant: str) -> None:
    """Tag ``event``'s ECS document with ``tenant`` (before it is sealed)."""
    document = event.document
    labels = document.get("labels")
    if type(labels) is dict:
        labels[TENANT_LABEL] = tenant
    else:
        document["labels"] = {TENANT_LABEL: tenant}


def tenant_of(document: dict[str, Any]) -> str | None:
    """The tenant an ECS document was tagged with, if any."""
    labels = document.get("labels")
    if type(labels) is dict:
        tenant = labels.get(TENANT_LABEL)
        if type(tenant) is str:
            return tenant
    return None
