"""Google ``parameters[]`` decoding: every value kind, typed; bad values kept and noted."""

from __future__ import annotations

from typing import Any

import pytest

from forwarder.schema.google_calendar import normalize_activity
from forwarder.schema.parameters import MAX_DEPTH, decode_parameters

from .builders import INGESTED, activity, gevent, param


def _decode(*parameters: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    problems: list[dict[str, str]] = []
    return decode_parameters(list(parameters), problems), problems


def test_every_value_kind_is_typed() -> None:
    decoded, problems = _decode(
        param("calendar_id", value="alice@x.com"),
        param("secs_in_advance", intValue="600"),
        param("negative", intValue="-4961328429713306829"),
        param("int64_max", intValue=str(2**63 - 1)),
        param("is_recurring", boolValue=True),
        param("client_side_encrypted_flag", boolValue=False),
        param("attendees", multiValue=["a@x.com", "b@y.com"]),
        param("offsets", multiIntValue=["1", "-2", "30"]),
        param(
            "conference",
            messageValue={
                "parameter": [
                    param("kind", value="meet"),
                    param("seats", intValue="10"),
                    param("inner", messageValue={"parameter": [param("deep", boolValue=True)]}),
                ]
            },
        ),
        param(
            "reminders",
            multiMessageValue=[
                {"parameter": [param("method", value="email"), param("minutes", intValue="10")]},
                {"parameter": [param("method", value="popup"), param("minutes", intValue="0")]},
                {},
            ],
        ),
        param("empty_list", multiValue=[]),
        param("no_value_at_all"),
    )
    assert problems == []
    assert decoded == {
        "calendar_id": "alice@x.com",
        "secs_in_advance": 600,
        "negative": -4961328429713306829,
        "int64_max": 2**63 - 1,
        "is_recurring": True,
        "client_side_encrypted_flag": False,
        "attendees": ["a@x.com", "b@y.com"],
        "offsets": [1, -2, 30],
        "conference": {"kind": "meet", "seats": 10, "inner": {"deep": True}},
        "reminders": [
            {"method": "email", "minutes": 10},
            {"method": "popup", "minutes": 0},
            {},
        ],
        "empty_list": [],
        "no_value_at_all": None,
    }
    # Types, not just equal values (True == 1 in Python).
    assert type(decoded["is_recurring"]) is bool
    assert type(decoded["secs_in_advance"]) is int


@pytest.mark.parametrize(
    ("parameter", "kept", "code"),
    [
        (param("n", intValue="12abc"), "12abc", "invalid_integer"),
        (param("n", intValue=""), "", "invalid_integer"),
        (param("n", intValue="1_000"), "1_000", "invalid_integer"),
        (param("n", intValue=" 12"), " 12", "invalid_integer"),
        (param("n", intValue="١٢"), "١٢", "invalid_integer"),  # Arabic-Indic digits
        (param("n", intValue="1.5"), "1.5", "invalid_integer"),
        (param("n", intValue=str(2**63)), str(2**63), "invalid_integer"),
        (param("n", intValue=True), "true", "invalid_integer"),
        (param("n", intValue=1.5), "1.5", "invalid_integer"),
        (param("n", value=12), "12", "invalid_type"),
        (param("n", value={"a": 1}), '{"a":1}', "invalid_type"),
        (param("n", boolValue="true"), "true", "invalid_boolean"),
        (param("n", boolValue=1), "1", "invalid_boolean"),
        (param("n", multiValue="a"), "a", "invalid_type"),
        (param("n", multiValue=["a", 1]), ["a", "1"], "invalid_type"),
        (param("n", multiIntValue=["1", "x"]), ["1", "x"], "invalid_integer"),
        (param("n", multiIntValue="1"), "1", "invalid_type"),
        (param("n", messageValue=[1]), "[1]", "invalid_type"),
        (param("n", messageValue={"parameter": "x"}), {}, "invalid_type"),
        (param("n", multiMessageValue={"parameter": []}), '{"parameter":[]}', "invalid_type"),
        (param("n", multiMessageValue=[{"parameter": []}, 3]), [{}], "invalid_type"),
    ],
)
def test_bad_values_are_kept_and_noted(parameter: dict[str, Any], kept: Any, code: str) -> None:
    decoded, problems = _decode(param("ok", value="fine"), parameter)
    assert decoded == {"ok": "fine", "n": kept}
    assert len(problems) == 1
    assert problems[0]["problem"] == code
    assert problems[0]["field"].startswith("parameters.n")


def test_unnamed_duplicate_and_non_object_parameters() -> None:
    decoded, problems = _decode(
        {"value": "no name"},
        {"name": 3, "value": "numeric name"},
        "not an object",
        param("x", value="first"),
        param("x", value="second"),
    )
    assert decoded == {"x": "first"}
    assert problems == [
        {"field": "parameters[0]", "problem": "missing_name"},
        {"field": "parameters[1]", "problem": "missing_name"},
        {"field": "parameters[2]", "problem": "invalid_type"},
        {"field": "parameters.x", "problem": "duplicate_name"},
    ]


def test_parameters_not_a_list() -> None:
    problems: list[dict[str, str]] = []
    assert decode_parameters({"name": "x"}, problems) == {}
    assert problems == [{"field": "parameters", "problem": "invalid_type"}]
    assert decode_parameters(None, problems) == {}


def test_nested_problem_paths() -> None:
    _, problems = _decode(
        param(
            "outer",
            multiMessageValue=[
                {"parameter": [param("ok", intValue="1")]},
                {"parameter": [param("inner", intValue="x")]},
            ],
        )
    )
    assert problems == [{"field": "parameters.outer[1].inner", "problem": "invalid_integer"}]


def test_nesting_is_bounded() -> None:
    nested: dict[str, Any] = param("leaf", value="x")
    for level in range(MAX_DEPTH + 5):
        nested = param(f"level{level}", messageValue={"parameter": [nested]})
    decoded, problems = _decode(nested)
    assert [p["problem"] for p in problems] == ["too_deep"]
    # MAX_DEPTH nested messages are decoded; below that the subtree is kept as JSON text.
    depth, value = 0, decoded
    while isinstance(value, dict):
        (value,) = value.values()
        depth += 1
    assert depth == 1 + MAX_DEPTH  # the parameters dict itself, then the messages
    assert isinstance(value, str) and '"leaf"' in value


def test_bad_parameter_does_not_fail_the_record() -> None:
    record = activity(
        gevent(
            "create_event",
            param("event_title", value="Sync"),
            param("start_time", intValue="soon"),
            param("end_time", intValue="63879177600"),
        )
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    gw = event.document["google_workspace"]
    assert gw["calendar"]["parameters"]["start_time"] == "soon"
    assert "event_start" not in gw["calendar"]
    assert gw["calendar"]["event_end"] == "2025-04-01T08:00:00Z"
    assert gw["decode_problems"] == [
        {"field": "events[0].parameters.start_time", "problem": "invalid_integer"}
    ]
    assert event.document["message"] == "alice@x.com created a new event Sync"


def test_parameter_values_render_in_messages() -> None:
    record = activity(
        gevent(
            "add_event_guest",
            param("event_guest", multiValue=["a@x.com", "b@y.com"]),
            param("event_title", intValue="42"),
        )
    )
    [event] = normalize_activity(record, ingested=INGESTED)
    assert event.document["message"] == "alice@x.com invited a@x.com, b@y.com to 42"
