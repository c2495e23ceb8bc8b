"""Golden documents: every documented Calendar event, all its parameters filled with
realistic values, with the exact message and the key ECS fields spelled out."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.sharing import PARTY_PARAMETERS

from .builders import INGESTED, activity, gevent, param

ACTOR = "alice@example.com"
PROFILE_ID = "114511147312345678901"
IP = "198.51.100.23"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)
EWS_URL = "https://mail.partner.example:8443/EWS/Exchange.asmx?realm=fr"

# One realistic value per documented parameter, typed as the API sends it.
VALUES: dict[str, dict[str, Any]] = {
    "access_level": {"value": "editor"},
    "api_kind": {"value": "web"},
    "appointment_schedule_title": {"value": "Office hours"},
    "calendar_country": {"value": "FR"},
    "calendar_description": {"value": "Team on-call rota"},
    "calendar_id": {"value": "alice@example.com"},
    "calendar_location": {"value": "Paris"},
    "calendar_timezone": {"value": "Europe/Paris"},
    "calendar_title": {"value": "On-call"},
    "client_side_encrypted": {"value": "false"},
    "end_time": {"intValue": "63879177600"},
    "event_guest": {"value": "erin@partner.example"},
    "event_id": {"value": "5qm3lq3ptbk1q8c9n6s1m0a2vd"},
    "event_response_status": {"value": "accepted"},
    "event_title": {"value": "Quarterly review"},
    "grantee_email": {"value": "bob@partner.example"},
    "interop_error_code": {"value": "ErrorProxyRequestNotAllowed"},
    "is_recurring": {"boolValue": True},
    "notification_message_id": {"value": "x7Yk2mQ9@google.com"},
    "notification_method": {"value": "email"},
    "notification_type": {"value": "calendar_event_reminder"},
    "old_event_title": {"value": "Quarterly review (draft)"},
    "organizer_calendar_id": {"value": "alice@example.com"},
    "recipient_email": {"value": "carol@example.com"},
    "recurring": {"value": "true"},
    "remote_ews_url": {"value": EWS_URL},
    "requested_period_end": {"intValue": "1743834667"},
    "requested_period_start": {"intValue": "1743748267"},
    "start_time": {"intValue": "63879175800"},
    "subscriber_calendar_id": {"value": "dave@example.com"},
    "user_agent": {"value": USER_AGENT},
}
# The parties the golden values name, classified (forwarder.schema.sharing): added to every
# event with one of these parameters when grantees/guests/subscribers/recipients stopped
# being read as users by default. No internal_domains here, so no `external` flag.
PARTIES: dict[str, dict[str, Any]] = {
    "grantee": {"value": "bob@partner.example", "kind": "user", "email": "bob@partner.example",
                "domain": "partner.example"},
    "guest": {"value": "erin@partner.example", "kind": "user", "email": "erin@partner.example",
              "domain": "partner.example"},
    "recipient": {"value": "carol@example.com", "kind": "user", "email": "carol@example.com",
                  "domain": "example.com"},
    "subscriber": {"value": "dave@example.com", "kind": "user", "email": "dave@example.com",
                   "domain": "example.com"},
}  # fmt: skip
TYPED = {
    name: next(iter(value.values())) if "intValue" not in value else int(value["intValue"])
    for name, value in VALUES.items()
}


class Golden(NamedTuple):
    message: str
    category: list[str]
    type: list[str]
    outcome: str | None
    """None: no event.outcome (and no OCSF status); see ecs_mapping's row reasons."""
    target: str | None = None


_CONF = ["configuration"]
GOLDEN: dict[str, Golden] = {
    "change_calendar_acls": Golden(
        "alice@example.com changed the access level on a calendar for bob@partner.example "
        "to editor",
        ["iam"], ["change"], "success", "bob@partner.example",
    ),
    "change_calendar_country": Golden(
        "alice@example.com changed the country of a calendar to FR", _CONF, ["change"], "success"
    ),
    "create_calendar": Golden(
        "alice@example.com created a new calendar", _CONF, ["creation"], "success"
    ),
    "delete_calendar": Golden(
        "alice@example.com deleted a calendar", _CONF, ["deletion"], "success"
    ),
    "change_calendar_description": Golden(
        "alice@example.com changed the description of a calendar to Team on-call rota",
        _CONF, ["change"], "success",
    ),
    "export_calendar": Golden(
        "alice@example.com exported a calendar", _CONF, ["access"], "success"
    ),
    "change_calendar_location": Golden(
        "alice@example.com changed the location of a calendar to Paris",
        _CONF, ["change"], "success",
    ),
    "print_preview_calendar": Golden(
        "alice@example.com generated a print preview of a calendar", _CONF, ["access"], "success"
    ),
    "change_calendar_timezone": Golden(
        "alice@example.com changed the timezone of a calendar to Europe/Paris",
        _CONF, ["change"], "success",
    ),
    "change_calendar_title": Golden(
        "alice@example.com changed the title of a calendar to On-call",
        _CONF, ["change"], "success",
    ),
    "notification_triggered": Golden(
        "alice@example.com triggered an email notification of type calendar_event_reminder "
        "to carol@example.com",
        # Issue 17: info, so no outcome (was "success").
        _CONF, ["info"], None, "carol@example.com",
    ),
    "add_subscription": Golden(
        "alice@example.com subscribed dave@example.com to calendar_event_reminder "
        "notifications via email for alice@example.com",
        _CONF, ["creation"], "success", "dave@example.com",
    ),
    "delete_subscription": Golden(
        "alice@example.com unsubscribed dave@example.com from calendar_event_reminder "
        "notifications via email for alice@example.com",
        _CONF, ["deletion"], "success", "dave@example.com",
    ),
    "change_appointment_schedule": Golden(
        "alice@example.com modified the appointment schedule Office hours",
        _CONF, ["change"], "success",
    ),
    "create_appointment_schedule": Golden(
        "alice@example.com created a new appointment schedule Office hours",
        _CONF, ["creation"], "success",
    ),
    "delete_appointment_schedule": Golden(
        "alice@example.com deleted the appointment schedule Office hours",
        _CONF, ["deletion"], "success",
    ),
    "create_event": Golden(
        "alice@example.com created a new event Quarterly review", _CONF, ["creation"], "success"
    ),
    "delete_event": Golden(
        "alice@example.com deleted the event Quarterly review", _CONF, ["deletion"], "success"
    ),
    "add_event_guest": Golden(
        "alice@example.com invited erin@partner.example to Quarterly review",
        _CONF, ["change"], "success", "erin@partner.example",
    ),
    "change_event_guest_response_auto": Golden(
        "erin@partner.example auto-responded to the event Quarterly review as accepted",
        _CONF, ["change"], "success", "erin@partner.example",
    ),
    "remove_event_guest": Golden(
        "alice@example.com uninvited erin@partner.example from Quarterly review",
        _CONF, ["change"], "success", "erin@partner.example",
    ),
    "change_event_guest_response": Golden(
        "alice@example.com changed the response of guest erin@partner.example for the event "
        "Quarterly review to accepted",
        _CONF, ["change"], "success", "erin@partner.example",
    ),
    "change_event": Golden(
        "alice@example.com modified Quarterly review", _CONF, ["change"], "success"
    ),
    "print_preview_event": Golden(
        "alice@example.com generated a print preview of event Quarterly review",
        _CONF, ["access"], "success",
    ),
    "remove_event_from_trash": Golden(
        "alice@example.com removed the event Quarterly review from trash",
        _CONF, ["deletion"], "success",
    ),
    "restore_event": Golden(
        "alice@example.com restored the event Quarterly review", _CONF, ["change"], "success"
    ),
    "change_event_start_time": Golden(
        "alice@example.com changed the start time of Quarterly review",
        _CONF, ["change"], "success",
    ),
    "change_event_title": Golden(
        "alice@example.com changed the title of Quarterly review (draft) to Quarterly review",
        _CONF, ["change"], "success",
    ),
    "transfer_event_completed": Golden(
        "alice@example.com accepted ownership of the event Quarterly review",
        ["iam"], ["change"], "success",
    ),
    "transfer_event_requested": Golden(
        "alice@example.com requested transferring ownership of the event Quarterly review "
        "to bob@partner.example",
        # Issue 17: a request, not a change (was change / "unknown").
        ["iam"], ["info"], None, "bob@partner.example",
    ),
    # Issue 17: the EWS / free-busy look-ups are API calls: "api" (was "network").
    "interop_freebusy_lookup_outbound_successful": Golden(
        "alice@example.com successfully fetched availability of Exchange calendar "
        "alice@example.com",
        ["api"], ["access"], "success",
    ),
    "interop_freebusy_lookup_inbound_successful": Golden(
        "Exchange Server at 198.51.100.23 acting as alice@example.com successfully fetched "
        "availability for Google calendar alice@example.com",
        ["api"], ["access"], "success",
    ),
    "interop_exchange_resource_availability_lookup_successful": Golden(
        "alice@example.com successfully attempted to fetch availability of alice@example.com",
        ["api"], ["access"], "success",
    ),
    "interop_exchange_resource_list_lookup_successful": Golden(
        f"alice@example.com successfully fetched Exchange resource list from {EWS_URL}",
        ["api"], ["access"], "success",
    ),
    "interop_freebusy_lookup_outbound_unsuccessful": Golden(
        "alice@example.com unsuccessfully attempted to fetch availability of Exchange "
        "calendar alice@example.com",
        ["api"], ["access"], "failure",
    ),
    "interop_freebusy_lookup_inbound_unsuccessful": Golden(
        "Exchange Server at 198.51.100.23 acting as alice@example.com unsuccessfully "
        "attempted to fetch availability for Google calendar alice@example.com",
        ["api"], ["access"], "failure",
    ),
    "interop_exchange_resource_availability_lookup_unsuccessful": Golden(
        "alice@example.com unsuccessfully attempted to fetch availability of alice@example.com",
        ["api"], ["access"], "failure",
    ),
    "interop_exchange_resource_list_lookup_unsuccessful": Golden(
        f"alice@example.com unsuccessfully fetched Exchange resource list from {EWS_URL}",
        ["api"], ["access"], "failure",
    ),
}  # fmt: skip


def test_golden_table_covers_the_catalog() -> None:
    assert list(GOLDEN) == list(CALENDAR_EVENTS)
    documented = {name for spec in CALENDAR_EVENTS.values() for name in spec.parameters}
    assert documented == set(VALUES)


def _normalized(name: str) -> tuple[Any, dict[str, Any]]:
    spec = CALENDAR_EVENTS[name]
    parameters = [param(p, **VALUES[p]) for p in spec.parameters]
    record = activity(
        gevent(name, *parameters, type=spec.type),
        email=ACTOR,
        profile_id=PROFILE_ID,
        ip=IP,
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    return event, event.document


@pytest.mark.parametrize("name", list(CALENDAR_EVENTS))
def test_golden_event(name: str) -> None:
    spec = CALENDAR_EVENTS[name]
    golden = GOLDEN[name]
    event, doc = _normalized(name)

    assert doc["message"] == golden.message
    assert event.action == doc["event"]["action"] == name
    assert event.mapped is True
    assert doc["event"]["category"] == golden.category
    assert doc["event"]["type"] == golden.type
    assert doc["event"].get("outcome") == golden.outcome
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["created"] == doc["event"]["ingested"] == INGESTED

    expected_user: dict[str, Any] = {
        "email": ACTOR,
        "name": "alice",
        "domain": "example.com",
        "id": PROFILE_ID,
    }
    if golden.target is not None:
        login, _, domain = golden.target.partition("@")
        expected_user["target"] = {"email": golden.target, "name": login, "domain": domain}
    assert doc["user"] == expected_user
    assert doc["source"] == {"ip": IP}
    assert doc["organization"] == {"id": "C03az79cb"}
    assert doc["related"]["ip"] == [IP]
    assert doc["related"]["user"][:2] == [ACTOR, PROFILE_ID]
    if golden.target is not None:
        assert golden.target in doc["related"]["user"]

    if "user_agent" in spec.parameters:
        assert doc["user_agent"] == {"original": USER_AGENT}
    else:
        assert "user_agent" not in doc
    if "remote_ews_url" in spec.parameters:
        assert doc["url"] == {
            "original": EWS_URL,
            "full": EWS_URL,
            "scheme": "https",
            "domain": "mail.partner.example",
            "port": 8443,
            "path": "/EWS/Exchange.asmx",
            "extension": "asmx",  # issue 17
            "query": "realm=fr",
        }
    else:
        assert "url" not in doc
    if golden.outcome == "failure":
        assert doc["error"] == {"code": "ErrorProxyRequestNotAllowed"}
    else:
        assert "error" not in doc

    calendar = doc["google_workspace"]["calendar"]
    assert calendar["event_name"] == name
    assert calendar["event_type"] == spec.type
    # Every documented parameter, typed (intValue -> int, boolValue -> bool).
    assert calendar["parameters"] == {p: TYPED[p] for p in spec.parameters}
    for parameter, party in PARTY_PARAMETERS.items():
        if parameter in spec.parameters:
            assert calendar[party] == PARTIES[party]
        else:
            assert party not in calendar
    if "start_time" in spec.parameters:
        # Rata Die seconds: the meeting starts 27 minutes after the 07:03Z activity.
        assert calendar["event_start"] == "2025-04-01T07:30:00Z"
    else:
        assert "event_start" not in calendar
    if "end_time" in spec.parameters:
        assert calendar["event_end"] == "2025-04-01T08:00:00Z"
    else:
        assert "event_end" not in calendar
    if "requested_period_start" in spec.parameters:
        # Unix seconds, not milliseconds.
        assert calendar["requested_period"] == {
            "start": "2025-04-04T06:31:07Z",
            "end": "2025-04-05T06:31:07Z",
        }
    else:
        assert "requested_period" not in calendar
    assert "decode_problems" not in doc["google_workspace"]


@pytest.mark.parametrize("name", list(CALENDAR_EVENTS))
def test_golden_event_without_parameters_renders_gracefully(name: str) -> None:
    record = activity(gevent(name), email=ACTOR, ip=None)
    [event] = normalize_activity(record, ingested=INGESTED)
    doc = event.document
    expected = CALENDAR_EVENTS[name].message.format_map(
        {"actor": ACTOR, "IP_ADDRESS_IDENTIFIER": "(unknown)"}
        | {p: "(unknown)" for p in CALENDAR_EVENTS[name].parameters}
    )
    assert doc["message"] == expected
    assert "target" not in doc["user"]
    assert not {"user_agent", "url", "error", "source"} & set(doc)


def test_several_events_of_one_activity_each_get_their_own_mapping() -> None:
    record = activity(
        gevent("create_event", param("event_title", value="Kickoff")),
        gevent("add_event_guest", param("event_guest", value="g@y.com")),
        gevent("interop_freebusy_lookup_outbound_unsuccessful", param("api_kind", value="ews")),
        gevent("brand_new_thing"),
    )
    events = normalize_activity(record, ingested=INGESTED)
    assert [(e.document["event"]["type"], e.document["event"].get("outcome")) for e in events] == [
        (["creation"], "success"),
        (["change"], "success"),
        (["access"], "failure"),
        (["info"], None),  # issue 17: an unknown name that says no outcome has none
    ]
    assert [e.mapped for e in events] == [True, True, True, False]
    assert "target" not in events[0].document["user"]
    assert events[1].document["user"]["target"] == {
        "email": "g@y.com",
        "name": "g",
        "domain": "y.com",
    }
    # Documents never share the mapping table's lists.
    events[0].document["event"]["category"].append("web")
    assert events[1].document["event"]["category"] == ["configuration"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1", {"original": "http://[::1"}),
        ("https://ews.x.com:99999/", {"original": "https://ews.x.com:99999/"}),
    ],
)
def test_unparsable_ews_url_is_kept_and_noted(url: str, expected: dict[str, Any]) -> None:
    record = activity(
        gevent(
            "interop_exchange_resource_list_lookup_successful", param("remote_ews_url", value=url)
        )
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    assert event.document["url"] == expected
    assert {
        "field": "events[0].parameters.remote_ews_url",
        "problem": "invalid_url",
    } in event.document["google_workspace"]["decode_problems"]


def test_acl_scope_without_at_sign_is_a_domain_not_a_target() -> None:
    # Changed (sharing scopes): a bare domain is a domain-wide grant, not a user named
    # "example.com"; it is classified and user.target is left out.
    record = activity(gevent("change_calendar_acls", param("grantee_email", value="example.com")))
    [event] = normalize_activity(record, ingested=INGESTED)
    assert "target" not in event.document["user"]
    assert event.document["google_workspace"]["calendar"]["grantee"] == {
        "value": "example.com",
        "kind": "domain",
        "domain": "example.com",
    }


def test_undocumented_parameters_pass_through_typed() -> None:
    record = activity(
        gevent(
            "add_subscription",
            param("secs_in_advance", intValue="600"),
            param("channels", multiValue=["email", "popup"]),
            param("offsets", multiIntValue=["-5", "10"]),
            param("flag", boolValue=False),
            param("meta", messageValue={"parameter": [param("depth", intValue="1")]}),
            param("metas", multiMessageValue=[{"parameter": [param("k", value="v")]}]),
        )
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    assert event.document["google_workspace"]["calendar"]["parameters"] == {
        "secs_in_advance": 600,
        "channels": ["email", "popup"],
        "offsets": [-5, 10],
        "flag": False,
        "meta": {"depth": 1},
        "metas": [{"k": "v"}],
    }
