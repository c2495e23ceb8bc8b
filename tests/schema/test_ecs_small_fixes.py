"""Issue 17 (S3), the small ones: the organizer in ``related.user``, EWS look-ups as ECS
``api``, ``url.extension``, ``agent.*`` on every document, and messages that never carry
control or bidirectional characters from user-supplied values."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

import forwarder
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.calendly_catalog import CALENDLY_CATEGORIES
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.messages import UNSAFE_CHARACTERS, safe_message
from forwarder.schema.urls import url_fields

from .builders import INGESTED, activity, calendly_entry, gevent, param, user_actor
from .ecs_check import check_document
from .strategies import PROPERTY_SETTINGS, TEXT

# The characters the issue names, and their neighbours: C0, DEL, C1, bidi marks,
# embeddings, overrides and isolates, line/paragraph separators.
UNSAFE = (
    [chr(code) for code in range(0x20)]
    + [chr(code) for code in range(0x7F, 0xA0)]
    + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029"]
    + [chr(code) for code in range(0x202A, 0x202F)]
    + [chr(code) for code in range(0x2066, 0x206A)]
)
HOSTILE = (
    st.lists(st.one_of(st.sampled_from(UNSAFE), st.text(max_size=5)), min_size=1, max_size=12)
    .map("".join)
    .filter(bool)
)
GOOGLE_TITLED = [
    name
    for name, spec in CALENDAR_EVENTS.items()
    if any(p.endswith(("_title", "_description", "_location")) for p in spec.parameters)
]


def _google(name: str, *parameters: dict[str, Any], **record: Any) -> dict[str, Any]:
    [event] = normalize_activity(activity(gevent(name, *parameters), **record), ingested=INGESTED)
    return event.document


def test_the_organizer_is_a_related_user() -> None:
    doc = _google(
        "change_event",
        param("organizer_calendar_id", value="olga@x.com"),
        param("event_title", value="Board"),
    )
    assert doc["related"]["user"] == ["alice@x.com", "114511147312345678901", "olga@x.com"]


def test_a_calendar_id_organizer_is_not_a_user_nor_repeated() -> None:
    group = _google(
        "change_event", param("organizer_calendar_id", value="c_123@group.calendar.google.com")
    )
    assert "c_123@group.calendar.google.com" not in group["related"]["user"]
    same = _google("change_event", param("organizer_calendar_id", value="alice@x.com"))
    assert same["related"]["user"] == ["alice@x.com", "114511147312345678901"]


def test_ews_lookups_are_api_access() -> None:
    for name, spec in CALENDAR_EVENTS.items():
        if spec.type == "interop":
            doc = _google(name)
            assert (doc["event"]["category"], doc["event"]["type"]) == (["api"], ["access"])
            check_document(doc)


def test_url_extension() -> None:
    doc = _google(
        "interop_exchange_resource_list_lookup_unsuccessful",
        param("remote_ews_url", value="https://mail.x.com/EWS/Exchange.asmx"),
    )
    assert doc["url"]["extension"] == "asmx"
    check_document(doc)
    assert url_fields("https://mail.x.com/EWS/")["path"] == "/EWS/"
    assert "extension" not in url_fields("https://mail.x.com/EWS/")
    assert "extension" not in url_fields("https://mail.x.com/.hidden")
    assert "extension" not in url_fields("https://mail.x.com/a.b/c")
    assert url_fields("https://x.com/a.tar.gz?x=1.2")["extension"] == "gz"


def test_every_document_names_the_forwarder() -> None:
    agent = {"type": "forwarder", "version": forwarder.__version__}
    documents = [_google(name) for name in CALENDAR_EVENTS]
    documents += [_google("brand_new_thing")]
    documents += [
        normalize_entry(calendly_entry(namespace, action), ingested=INGESTED).document
        for namespace, category in CALENDLY_CATEGORIES.items()
        for action in category.actions
    ]
    documents += [normalize_entry(calendly_entry("New", "Thing"), ingested=INGESTED).document]
    for doc in documents:
        assert doc["agent"] == agent
        check_document(doc)
    # Fresh per document: a consumer editing one never edits another.
    documents[0]["agent"]["version"] = "x"
    assert documents[1]["agent"]["version"] == forwarder.__version__


def test_safe_message_escapes_visibly() -> None:
    assert safe_message("a\nb") == "a\\nb"
    assert safe_message("evil\u202eexe.txt") == "evil\\u202eexe.txt"
    assert safe_message("\x1b[31mred") == "\\x1b[31mred"
    assert safe_message("été 😀 مرحبا") == "été 😀 مرحبا"  # only the unsafe ones


def test_a_forged_line_stays_in_the_raw_value() -> None:
    title = "Lunch\n2025-04-01 admin logged in\u202e"
    doc = _google("create_event", param("event_title", value=title))
    assert "\n" not in doc["message"] and "\u202e" not in doc["message"]
    assert (
        doc["message"]
        == "alice@x.com created a new event Lunch\\n2025-04-01 admin logged in\\u202e"
    )
    assert doc["google_workspace"]["calendar"]["parameters"]["event_title"] == title
    assert title in orjson.loads(doc["event"]["original"])["events"][0]["parameters"][0]["value"]


@PROPERTY_SETTINGS
@given(st.sampled_from(GOOGLE_TITLED), HOSTILE, st.one_of(HOSTILE, TEXT))
def test_no_google_message_carries_unsafe_characters(name: str, value: str, actor: str) -> None:
    parameters = [
        param(p, value=value)
        for p, kind in CALENDAR_EVENTS[name].parameters.items()
        if kind == "string"
    ]
    [event] = normalize_activity(
        activity(gevent(name, *parameters), email=actor or None), ingested=INGESTED
    )
    assert UNSAFE_CHARACTERS.search(event.document["message"]) is None
    [unknown] = normalize_activity(activity(gevent(value or "x")), ingested=INGESTED)
    assert UNSAFE_CHARACTERS.search(unknown.document["message"]) is None


@PROPERTY_SETTINGS
@given(
    st.sampled_from(
        [
            (ns, action)
            for ns, category in CALENDLY_CATEGORIES.items()
            for action in category.actions
        ]
    ),
    HOSTILE,
    HOSTILE,
)
def test_no_calendly_message_carries_unsafe_characters(
    key: tuple[str, str], display_name: str, target: str
) -> None:
    actor = user_actor()
    actor["display_name"] = display_name
    entry = calendly_entry(*key, actor=actor, details={"user": {"name": target}})
    doc = normalize_entry(entry, ingested=INGESTED).document
    assert UNSAFE_CHARACTERS.search(doc["message"]) is None
    # An unknown activity's message quotes the namespace and action: escaped too.
    unknown = normalize_entry(calendly_entry(display_name, target, actor=actor), ingested=INGESTED)
    assert UNSAFE_CHARACTERS.search(unknown.document["message"]) is None
