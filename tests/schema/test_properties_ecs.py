"""Property tests of the ECS output: messages render faithfully whatever the values
(Unicode, control characters, format syntax, huge strings), ECS fields follow the
mapping, every document validates (see conftest), and unidentifiable records reach the
dead-letter path with their reason."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import assume, given
from hypothesis import strategies as st

from forwarder.schema.calendly import TARGET_KEYS, normalize_entry
from forwarder.schema.calendly_messages import ACTIVITY_TEMPLATES, TARGET_FALLBACK
from forwarder.schema.ecs_mapping import (
    CALENDLY_ACTIVITIES,
    CALENDLY_NAMESPACE_CATEGORIES,
    GOOGLE_EVENTS,
    calendly_namespace,
    outcome_from_name,
)
from forwarder.schema.errors import REASONS, MalformedRecordError
from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS
from forwarder.schema.messages import UNKNOWN, safe_message
from forwarder.schema.normalize_stream import normalize_payload
from forwarder.schema.sharing import classify

from .builders import INGESTED, activity, calendly_entry, user_actor
from .strategies import ANY_RECORDS, INT64, JSON_VALUES, PROPERTY_SETTINGS, TEXT, activities

NON_EMPTY = TEXT.filter(bool)
CALENDLY_KEYS = sorted(ACTIVITY_TEMPLATES)


def _typed_value(kind: str) -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
    """A documented parameter of ``kind``: (its API value key, its decoded value)."""
    if kind == "integer":
        return INT64.map(lambda n: ({"intValue": str(n)}, n))
    if kind == "boolean":
        return st.booleans().map(lambda b: ({"boolValue": b}, b))
    return TEXT.map(lambda text: ({"value": text}, text))


@st.composite
def catalog_events(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A catalog event with any subset of its documented parameters, hostile values."""
    name = draw(st.sampled_from(sorted(CALENDAR_EVENTS)))
    decoded: dict[str, Any] = {}
    parameters = []
    for parameter, kind in CALENDAR_EVENTS[name].parameters.items():
        if draw(st.booleans()):
            api_value, value = draw(_typed_value(kind))
            parameters.append({"name": parameter, **api_value})
            decoded[parameter] = value
    extra = draw(st.dictionaries(NON_EMPTY, JSON_VALUES, max_size=3))
    for extra_name, value in extra.items():
        if extra_name not in decoded:
            parameters.append({"name": extra_name, "value": value})
    return name, {"name": name, "parameters": parameters}, decoded


@PROPERTY_SETTINGS
@given(catalog_events(), NON_EMPTY, st.one_of(st.none(), st.ip_addresses().map(str)))
def test_google_messages_render_faithfully(
    case: tuple[str, dict[str, Any], dict[str, Any]], email: str, ip: str | None
) -> None:
    name, event, decoded = case
    [normalized] = normalize_activity(activity(event, email=email, ip=ip), ingested=INGESTED)
    doc = normalized.document
    spec = CALENDAR_EVENTS[name]

    # Values are inserted verbatim (braces and all), then control and bidi characters are
    # escaped (issue 17): the message is the template filled, made safe.
    placeholders = {"actor": email, "IP_ADDRESS_IDENTIFIER": ip if ip is not None else UNKNOWN}
    for parameter in spec.parameters:
        value = decoded.get(parameter)
        placeholders[parameter] = UNKNOWN if value is None else str(value)
    assert doc["message"] == safe_message(spec.message.format_map(placeholders))

    row = GOOGLE_EVENTS[name]
    assert (doc["event"]["category"], doc["event"]["type"], doc["event"].get("outcome")) == (
        list(row.ecs.category),
        list(row.ecs.type),
        row.ecs.outcome,
    )
    target = decoded.get(row.target) if row.target else None
    # Sharing scopes: only a party classified as a user is a target (a domain, the public,
    # a group or a calendar id is not), and it is named by its address.
    principal = classify(target) if type(target) is str and target else None
    is_user = principal is not None and principal.kind == "user"
    assert (doc["user"].get("target") is not None) == is_user
    if principal is not None and is_user:
        assert doc["user"]["target"]["email"] == principal.email
    user_agent = decoded.get("user_agent")
    assert doc.get("user_agent") == ({"original": user_agent} if user_agent else None)
    if decoded.get("remote_ews_url"):
        assert doc["url"]["original"] == decoded["remote_ews_url"]
    assert normalized.mapped is True


@PROPERTY_SETTINGS
@given(activities())
def test_google_unknown_names_are_generic_and_unmapped(record: dict[str, Any]) -> None:
    for event, source in zip(
        normalize_activity(record, ingested=INGESTED), record["events"], strict=True
    ):
        doc = event.document
        assert event.mapped is (source["name"] in CALENDAR_EVENTS)
        if not event.mapped:
            # Issue 17: the outcome comes from the name alone (none when it says none).
            assert doc["event"].get("outcome") == outcome_from_name(source["name"])
            assert doc["event"]["type"] == ["info"]
            assert doc["message"].endswith(
                " performed the Calendar action " + safe_message(source["name"])
            )


_TARGETS = st.one_of(
    st.none(),
    NON_EMPTY.map(lambda text: ("user", text)),
    st.fixed_dictionaries({"email": NON_EMPTY}).map(lambda obj: ("member", obj)),
    st.fixed_dictionaries({"name": NON_EMPTY, "uri": NON_EMPTY}).map(lambda obj: ("user", obj)),
    JSON_VALUES.map(lambda value: ("invitee", value)),
)


def _expected_label(target: Any) -> str:
    if target is None:
        return TARGET_FALLBACK
    _key, value = target
    if type(value) is str:
        return value or TARGET_FALLBACK
    if type(value) is dict:
        name, email, uri = value.get("name"), value.get("email"), value.get("uri")
        for candidate in (name, email, uri):
            if type(candidate) is str and candidate:
                return candidate
    return TARGET_FALLBACK


@PROPERTY_SETTINGS
@given(
    st.sampled_from(CALENDLY_KEYS),
    NON_EMPTY,
    st.sampled_from(["User", "System"]),
    _TARGETS,
    st.dictionaries(TEXT, JSON_VALUES, max_size=3),
)
def test_calendly_messages_render_faithfully(
    key: tuple[str, str], display_name: str, actor_type: str, target: Any, extra: dict
) -> None:
    namespace, action = key
    actor = user_actor()
    actor["display_name"] = display_name
    actor["type"] = actor_type
    details = {k: v for k, v in extra.items() if k not in TARGET_KEYS}
    if target is not None:
        details[target[0]] = target[1]
    entry = calendly_entry(namespace, action, actor=actor, details=details)
    event = normalize_entry(entry, ingested=INGESTED)
    doc = event.document

    template = ACTIVITY_TEMPLATES[key]
    label = _expected_label(target)
    assert doc["message"] == safe_message(template.format(actor=display_name, target=label))
    ecs = CALENDLY_ACTIVITIES[key]
    assert doc["event"]["category"] == list(ecs.category)
    assert doc["event"]["type"] == list(ecs.type)
    assert doc["event"].get("outcome") == ecs.outcome
    assert doc["calendly"]["details"] == details
    assert event.mapped is True
    if actor_type == "System":
        assert set(doc.get("user", {})) <= {"target"}


@PROPERTY_SETTINGS
@given(NON_EMPTY, NON_EMPTY)
def test_calendly_unknown_activities_are_unmapped(namespace: str, action: str) -> None:
    assume((namespace, action) not in CALENDLY_ACTIVITIES)
    event = normalize_entry(calendly_entry(namespace, action), ingested=INGESTED)
    assert event.mapped is False
    # Issue 17: the outcome comes from the action's name alone (none when it says none); a
    # login attempt that says how it ended is a start, like Login.Failed.
    outcome = outcome_from_name(action)
    assert event.document["event"].get("outcome") == outcome
    login = calendly_namespace(namespace) == "Login" and outcome is not None
    assert event.document["event"]["type"] == (["start"] if login else ["info"])
    namespace = calendly_namespace(namespace)
    category = CALENDLY_NAMESPACE_CATEGORIES.get(namespace, ("configuration",))
    assert event.document["event"]["category"] == list(category)


def _good_records(provider: str) -> st.SearchStrategy[Any]:
    if provider == "google_calendar":
        return activities()
    return st.builds(
        lambda namespace, action, uri: calendly_entry(namespace, action, uri=uri),
        st.sampled_from([ns for ns, _ in CALENDLY_KEYS] + ["New_Namespace"]),
        st.sampled_from([action for _, action in CALENDLY_KEYS]),
        NON_EMPTY,
    )


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, list[Any]]:
    provider = draw(st.sampled_from(["google_calendar", "calendly"]))
    records = draw(st.lists(st.one_of(_good_records(provider), ANY_RECORDS), max_size=6))
    return provider, records


@PROPERTY_SETTINGS
@given(payloads())
def test_payload_failures_are_the_unidentifiable_records_with_their_reason(
    case: tuple[str, list[Any]],
) -> None:
    provider, records = case
    try:
        data = orjson.dumps(records)
    except TypeError:
        assume(False)  # not JSON at all (an integer beyond 64 bits): no API sends it
    # The records as the normalizer sees them (NaN became null on the way).
    parsed = orjson.loads(data)
    expected_events: list[str] = []
    expected_failures: list[tuple[Any, str]] = []
    for record in parsed:
        try:
            if provider == "google_calendar":
                expected_events += [e.id for e in normalize_activity(record, ingested=INGESTED)]
            else:
                expected_events.append(normalize_entry(record, ingested=INGESTED).id)
        except MalformedRecordError as error:
            expected_failures.append((record, error.reason))

    events, failures = normalize_payload(provider, data, ingested=INGESTED)
    assert [event.id for event in events] == expected_events
    assert [(record, error.reason) for record, error in failures] == expected_failures
    for _record, error in failures:
        assert isinstance(error, MalformedRecordError)
        assert error.reason in REASONS and error.detail
