"""Sharing scopes in OCSF: a domain-wide, public or group grant is a ``user`` of type Other
saying so, never one person's; the classification and ``external`` flag ride along in
``unmapped`` like the ECS vendor fields. Every document validates against OCSF 1.7.0."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.ocsf.validate import OcsfSchema
from forwarder.schema.sharing import InternalDomains

from ..builders import INGESTED, activity, gevent, param
from .ocsf_check import valid_ocsf

ORG = InternalDomains(["example.com"])
DOMAIN_SCOPE = "example.com@allusers.d.calendar.google.com"
PUBLIC = "__public_principal__@public.calendar.google.com"


def _ocsf(
    name: str,
    parameter: str,
    value: str,
    schema: OcsfSchema,
    internal: InternalDomains | None = ORG,
) -> dict[str, Any]:
    record = activity(
        gevent(name, param("access_level", value="read"), param(parameter, value=value)),
        email="alice@example.com",
    )
    [event] = normalize_activity(record, ingested=INGESTED, internal_domains=internal)
    return valid_ocsf(event, schema)


@pytest.mark.parametrize(
    ("grantee", "user", "party"),
    [
        (
            "bob@partner.example",
            {"name": "bob@partner.example", "email_addr": "bob@partner.example"},
            {"kind": "user", "email": "bob@partner.example", "domain": "partner.example",
             "external": True},
        ),
        (
            "bob@example.com",
            {"name": "bob@example.com", "email_addr": "bob@example.com"},
            {"kind": "user", "email": "bob@example.com", "domain": "example.com",
             "external": False},
        ),
        (
            "group:team@partner.example",
            {"name": "team@partner.example", "type_id": 99, "type": "Group",
             "domain": "partner.example"},
            {"kind": "group", "email": "team@partner.example", "domain": "partner.example",
             "external": True},
        ),
        (
            DOMAIN_SCOPE,
            {"name": DOMAIN_SCOPE, "type_id": 99, "type": "Domain", "domain": "example.com"},
            {"kind": "domain", "domain": "example.com", "external": False},
        ),
        (
            PUBLIC,
            {"name": PUBLIC, "type_id": 99, "type": "Public"},
            {"kind": "public", "external": True},
        ),
    ],
)  # fmt: skip
def test_acl_grantee_kinds(
    grantee: str, user: dict[str, Any], party: dict[str, Any], ocsf_schema: OcsfSchema
) -> None:
    doc = _ocsf("change_calendar_acls", "grantee_email", grantee, ocsf_schema)
    assert (doc["class_uid"], doc["activity_id"]) == (3005, 1)
    assert doc["user"] == user
    assert doc["privileges"] == ["read"]
    assert doc["unmapped"]["grantee"] == {"value": grantee, **party}
    # Mapped once: the raw value is in user.name, not also in unmapped.parameters.
    assert "grantee_email" not in doc["unmapped"].get("parameters", {})


def test_external_is_left_out_without_internal_domains(ocsf_schema: OcsfSchema) -> None:
    doc = _ocsf("change_calendar_acls", "grantee_email", DOMAIN_SCOPE, ocsf_schema, None)
    assert doc["unmapped"]["grantee"] == {
        "value": DOMAIN_SCOPE,
        "kind": "domain",
        "domain": "example.com",
    }


def test_guest_and_subscriber_carry_their_classification(ocsf_schema: OcsfSchema) -> None:
    guest = _ocsf("add_event_guest", "event_guest", "erin@partner.example", ocsf_schema)
    assert guest["user"]["email_addr"] == "erin@partner.example"
    assert guest["unmapped"]["guest"]["external"] is True
    subscriber = _ocsf(
        "add_subscription", "subscriber_calendar_id", "abc@group.calendar.google.com", ocsf_schema
    )
    assert subscriber["unmapped"]["subscriber"] == {
        "value": "abc@group.calendar.google.com",
        "kind": "calendar",
    }
