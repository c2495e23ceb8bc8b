"""Sharing scopes are not users: grantees, guests, subscribers and recipients are
classified (user, group, domain, public, resource, calendar), only a user fills
``user.target``, and ``internal_domains`` (never guessed) flags the external ones.

Every document built here is also checked against docs/ecs-output.schema.json and the
field reference (tests/schema/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from forwarder.config.model import GoogleCalendarSourceConfig
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.normalize_stream import normalize_payload
from forwarder.schema.sharing import InternalDomains, Principal, classify

from .builders import INGESTED, activity, gevent, param

ORG = InternalDomains(["example.com"])
DOMAIN_SCOPE = "example.com@allusers.d.calendar.google.com"
PARTNER_SCOPE = "partner.example@allusers.d.calendar.google.com"
PUBLIC = "__public_principal__@public.calendar.google.com"


def _grant(grantee: str, internal: InternalDomains | None = None, **record: Any) -> dict[str, Any]:
    event = gevent(
        "change_calendar_acls",
        param("access_level", value="read"),
        param("calendar_id", value="alice@example.com"),
        param("grantee_email", value=grantee),
    )
    record.setdefault("email", "alice@example.com")
    [normalized] = normalize_activity(
        activity(event, **record), ingested=INGESTED, internal_domains=internal
    )
    return normalized.document


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bob@example.com", Principal("user", "bob@example.com", "example.com")),
        ("Bob@Example.COM", Principal("user", "Bob@Example.COM", "example.com")),
        ("user:bob@example.com", Principal("user", "bob@example.com", "example.com")),
        ("group:team@example.com", Principal("group", "team@example.com", "example.com")),
        (DOMAIN_SCOPE, Principal("domain", domain="example.com")),
        ("domain:Example.com", Principal("domain", domain="example.com")),
        ("example.com", Principal("domain", domain="example.com")),
        (PUBLIC, Principal("public")),
        ("default", Principal("public")),
        ("c_1882@resource.calendar.google.com", Principal("resource")),
        ("abc123@group.calendar.google.com", Principal("calendar")),
        ("en.french#holiday@group.v.calendar.google.com", Principal("calendar")),
        ("x@import.calendar.google.com", Principal("calendar")),
        ("someone", Principal("unknown")),
        ("a@b@c", Principal("unknown")),
        ("group:not-an-address", Principal("unknown")),
    ],
)
def test_classification(value: str, expected: Principal) -> None:
    assert classify(value) == expected


def test_grant_to_a_user_is_a_target_user() -> None:
    doc = _grant("bob@partner.example")
    assert doc["user"]["target"] == {
        "email": "bob@partner.example",
        "name": "bob",
        "domain": "partner.example",
    }
    assert doc["google_workspace"]["calendar"]["grantee"] == {
        "value": "bob@partner.example",
        "kind": "user",
        "email": "bob@partner.example",
        "domain": "partner.example",
    }
    assert "bob@partner.example" in doc["related"]["user"]


def test_grant_to_a_group_is_classified_and_not_a_target_user() -> None:
    doc = _grant("group:team@example.com", ORG)
    assert "target" not in doc["user"]
    assert doc["google_workspace"]["calendar"]["grantee"] == {
        "value": "group:team@example.com",
        "kind": "group",
        "email": "team@example.com",
        "domain": "example.com",
        "external": False,
    }
    # The group's address is still an identifier a search for it should find.
    assert "team@example.com" in doc["related"]["user"]


def test_grant_to_the_whole_domain_is_a_domain_not_a_user() -> None:
    doc = _grant(DOMAIN_SCOPE)
    assert "target" not in doc["user"]
    assert doc["user"]["email"] == "alice@example.com"  # the actor is untouched
    assert doc["google_workspace"]["calendar"]["grantee"] == {
        "value": DOMAIN_SCOPE,
        "kind": "domain",
        "domain": "example.com",
    }
    assert doc["related"]["user"] == ["alice@example.com", "114511147312345678901"]
    # The raw value stays where it was.
    assert doc["google_workspace"]["calendar"]["parameters"]["grantee_email"] == DOMAIN_SCOPE


def test_grant_to_the_public_is_always_external() -> None:
    for internal in (None, ORG):
        doc = _grant(PUBLIC, internal)
        assert "target" not in doc["user"]
        assert doc["google_workspace"]["calendar"]["grantee"] == {
            "value": PUBLIC,
            "kind": "public",
            "external": True,
        }
        assert PUBLIC not in doc["related"]["user"]


@pytest.mark.parametrize(
    ("grantee", "external"),
    [
        ("bob@example.com", False),
        ("bob@EXAMPLE.com", False),
        ("bob@partner.example", True),
        (DOMAIN_SCOPE, False),
        (PARTNER_SCOPE, True),
        ("bob@sales.example.com", True),  # subdomains only with "*.example.com"
        ("bob@notexample.com", True),
    ],
)
def test_internal_domains_flag_external_grantees(grantee: str, external: bool) -> None:
    grantee_doc = _grant(grantee, ORG)["google_workspace"]["calendar"]["grantee"]
    assert grantee_doc["external"] is external


@pytest.mark.parametrize(
    "grantee", ["bob@example.com", "bob@partner.example", DOMAIN_SCOPE, PARTNER_SCOPE]
)
def test_without_internal_domains_external_is_unknown(grantee: str) -> None:
    # Never guessed from the actor's domain (alice@example.com here).
    assert "external" not in _grant(grantee)["google_workspace"]["calendar"]["grantee"]


def test_resources_and_calendars_are_never_flagged() -> None:
    grantee = _grant("c_1882@resource.calendar.google.com", ORG)["google_workspace"]["calendar"][
        "grantee"
    ]
    assert grantee == {"value": "c_1882@resource.calendar.google.com", "kind": "resource"}


def test_subdomains_count_only_when_listed_with_a_wildcard() -> None:
    domains = InternalDomains(["example.com", "*.example.com"])
    assert "example.com" in domains
    assert "sales.example.com" in domains
    assert "a.b.example.com" in domains
    assert "badexample.com" not in domains
    only_subdomains = InternalDomains(["*.example.com"])
    assert "example.com" not in only_subdomains
    assert "Sales.Example.com." in only_subdomains
    doc = _grant("bob@sales.example.com", domains)
    assert doc["google_workspace"]["calendar"]["grantee"]["external"] is False


@pytest.mark.parametrize("entries", [[], ["not a domain"], ["*"], ["bob@example.com"], ["*.*.x"]])
def test_bad_internal_domains_are_refused(entries: list[str]) -> None:
    with pytest.raises(ValueError, match="domain"):
        InternalDomains(entries)


def test_config_key_is_validated() -> None:
    base = {
        "type": "google_calendar",
        "credentials_file": "/run/secrets/key.json",
        "delegated_admin": "admin@example.com",
    }
    assert GoogleCalendarSourceConfig(**base).internal_domains is None
    config = GoogleCalendarSourceConfig(**base, internal_domains=["example.com", "*.example.org"])
    assert config.internal_domains == ["example.com", "*.example.org"]
    for bad in ([], ["exa mple.com"]):
        with pytest.raises(ValidationError, match="internal_domains"):
            GoogleCalendarSourceConfig(**base, internal_domains=bad)


def test_guests_are_classified_like_grantees() -> None:
    record = activity(
        gevent("add_event_guest", param("event_guest", value="erin@partner.example")),
        gevent("add_event_guest", param("event_guest", value="carol@example.com")),
        gevent("remove_event_guest", param("event_guest", value="group:team@partner.example")),
        gevent("add_event_guest", param("event_guest", value="c_1@resource.calendar.google.com")),
        email="alice@example.com",
    )
    events = normalize_activity(record, ingested=INGESTED, internal_domains=ORG)
    guests = [event.document["google_workspace"]["calendar"]["guest"] for event in events]
    assert [(guest["kind"], guest.get("external")) for guest in guests] == [
        ("user", True),
        ("user", False),
        ("group", True),
        ("resource", None),
    ]
    targets = [event.document["user"].get("target") for event in events]
    assert targets == [
        {"email": "erin@partner.example", "name": "erin", "domain": "partner.example"},
        {"email": "carol@example.com", "name": "carol", "domain": "example.com"},
        None,
        None,
    ]


def test_subscribers_are_classified_like_grantees() -> None:
    record = activity(
        gevent("add_subscription", param("subscriber_calendar_id", value="dave@partner.example")),
        gevent(
            "delete_subscription",
            param("subscriber_calendar_id", value="abc@group.calendar.google.com"),
        ),
        email="alice@example.com",
    )
    person, calendar = (event.document for event in normalize_activity(record, ingested=INGESTED))
    assert person["google_workspace"]["calendar"]["subscriber"] == {
        "value": "dave@partner.example",
        "kind": "user",
        "email": "dave@partner.example",
        "domain": "partner.example",
    }
    assert person["user"]["target"]["email"] == "dave@partner.example"
    # A calendar id subscribes a calendar, not a person: no user.target, no related.user.
    assert calendar["google_workspace"]["calendar"]["subscriber"] == {
        "value": "abc@group.calendar.google.com",
        "kind": "calendar",
    }
    assert "target" not in calendar["user"]
    assert "abc@group.calendar.google.com" not in calendar["related"]["user"]
    external = normalize_activity(record, ingested=INGESTED, internal_domains=ORG)
    assert external[0].document["google_workspace"]["calendar"]["subscriber"]["external"] is True


def test_recipients_are_classified() -> None:
    record = activity(
        gevent("notification_triggered", param("recipient_email", value="eve@partner.example")),
        email="alice@example.com",
    )
    [event] = normalize_activity(record, ingested=INGESTED, internal_domains=ORG)
    recipient = event.document["google_workspace"]["calendar"]["recipient"]
    assert (recipient["kind"], recipient["external"]) == ("user", True)


def test_normalize_payload_passes_internal_domains() -> None:
    page = orjson.dumps(
        [activity(gevent("change_calendar_acls", param("grantee_email", value=PARTNER_SCOPE)))]
    )
    [flagged], _ = normalize_payload(
        "google_calendar", page, ingested=INGESTED, internal_domains=ORG
    )
    [unknown], _ = normalize_payload("google_calendar", page, ingested=INGESTED)
    assert flagged.document["google_workspace"]["calendar"]["grantee"]["external"] is True
    assert "external" not in unknown.document["google_workspace"]["calendar"]["grantee"]


def test_normalize_command_takes_internal_domains() -> None:
    page = orjson.dumps(
        [
            activity(gevent("change_calendar_acls", param("grantee_email", value=DOMAIN_SCOPE))),
            activity(
                gevent("add_event_guest", param("event_guest", value="erin@partner.example")),
                unique_qualifier="42",
            ),
        ]
    )
    command = [sys.executable, "-m", "forwarder", "normalize", "--source", "google_calendar"]
    result = subprocess.run(
        [*command, "--internal-domain", "example.com", "--internal-domain", "*.example.com"],
        input=page,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    grant, guest = (orjson.loads(line) for line in result.stdout.splitlines())
    assert grant["google_workspace"]["calendar"]["grantee"]["external"] is False
    assert guest["google_workspace"]["calendar"]["guest"]["external"] is True
    bad = subprocess.run(
        [*command, "--internal-domain", "not a domain"],
        input=page,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert bad.returncode == 2
    assert b"--internal-domain" in bad.stderr
    assert bad.stdout == b""
