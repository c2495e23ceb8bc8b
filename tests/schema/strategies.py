"""Hypothesis strategies for raw API records: well-typed, ill-typed and hostile values."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from forwarder.schema.google_calendar_catalog import CALENDAR_EVENTS

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Text that stresses encoders and renderers: emoji (astral plane), right-to-left text and
# overrides, control characters, NUL, JSON/format syntax; plus arbitrary Unicode.
_TRICKY = st.sampled_from(
    [
        "😀👩🏽‍💻",
        "مرحبا بالعالم",
        "שלום\u202eevil\u202c",
        "\x00\x01\x1b[31m\x7f",
        "line\nbreak\r\ttab",
        "{actor} {access_level} {{}} %s",
        '"quoted" \\ backslash',
        "\ufeff\u200b\u2028\u2029",
        "",
    ]
)
# Huge values: far beyond any real field, to show nothing is quadratic or truncating.
_HUGE = st.sampled_from(["é" * 100_000, "😀" * 30_000 + "\u202e" + "x" * 30_000])
TEXT = st.one_of(_TRICKY, st.text(max_size=40), _HUGE)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# JSON values as orjson.loads produces them (floats finite so records round-trip).
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
INT_TEXT = st.one_of(INT64.map(str), st.integers().map(str), TEXT)


def _parameter_value(parameters: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[Any]:
    """One parameter's value key, with well-typed and ill-typed values mixed."""
    return st.one_of(
        st.fixed_dictionaries({"value": st.one_of(TEXT, JSON_VALUES)}),
        st.fixed_dictionaries({"intValue": st.one_of(INT_TEXT, JSON_VALUES)}),
        st.fixed_dictionaries({"boolValue": st.one_of(st.booleans(), JSON_VALUES)}),
        st.fixed_dictionaries({"multiValue": st.one_of(st.lists(TEXT), JSON_VALUES)}),
        st.fixed_dictionaries({"multiIntValue": st.one_of(st.lists(INT_TEXT), JSON_VALUES)}),
        st.fixed_dictionaries(
            {
                "messageValue": st.one_of(
                    st.fixed_dictionaries({"parameter": parameters}), JSON_VALUES
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "multiMessageValue": st.lists(
                    st.one_of(st.fixed_dictionaries({"parameter": parameters}), JSON_VALUES),
                    max_size=3,
                )
            }
        ),
        st.just({}),
    )


def _parameter(parameters: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[Any]:
    names = st.one_of(
        st.sampled_from(
            [
                "start_time",
                "end_time",
                "requested_period_start",
                "event_title",
                "grantee_email",
                "event_guest",
            ]
        ),
        TEXT,
    )
    named = st.builds(
        lambda name, value: {"name": name, **value}, names, _parameter_value(parameters)
    )
    return st.one_of(named, named, named, JSON_VALUES)


PARAMETER_LISTS = st.recursive(
    st.just([]), lambda inner: st.lists(_parameter(inner), max_size=5), max_leaves=20
)
EVENT_NAMES = st.one_of(st.sampled_from(sorted(CALENDAR_EVENTS)), TEXT.filter(bool))


@st.composite
def activities(draw: st.DrawFn) -> dict[str, Any]:
    """Activities that can be identified, with anything in every other field."""
    events = draw(
        st.lists(
            st.builds(
                lambda name, parameters, type_: {
                    "name": name,
                    "parameters": parameters,
                    "type": type_,
                },
                EVENT_NAMES,
                PARAMETER_LISTS,
                st.one_of(TEXT, JSON_VALUES),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2025-04-01T07:03:12.345Z",
            "uniqueQualifier": draw(st.one_of(INT64.map(str), TEXT.filter(bool))),
            "customerId": draw(st.one_of(TEXT, JSON_VALUES)),
        },
        "actor": draw(
            st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "email": st.one_of(TEXT, JSON_VALUES),
                        "profileId": TEXT,
                        "callerType": TEXT,
                        "key": TEXT,
                        "applicationInfo": JSON_VALUES,
                    },
                ),
                JSON_VALUES,
            )
        ),
        "ipAddress": draw(st.one_of(TEXT, st.ip_addresses().map(str), JSON_VALUES)),
        "networkInfo": draw(JSON_VALUES),
        "resourceDetails": draw(JSON_VALUES),
        "events": events,
    }


# Anything at all where an activity is expected, including unserializable integers.
ANY_RECORDS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "id",
                        "events",
                        "time",
                        "uniqueQualifier",
                        "name",
                        "parameters",
                        "actor",
                        "uri",
                        "occurred_at",
                        "namespace",
                        "action",
                        "details",
                    ]
                ),
                TEXT,
            ),
            inner,
            max_size=6,
        ),
    ),
    max_leaves=25,
)
