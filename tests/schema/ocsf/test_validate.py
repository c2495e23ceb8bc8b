"""The validator itself: it can fail, and it says where."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from forwarder.schema.ocsf import to_ocsf
from forwarder.schema.ocsf.validate import (
    OcsfSchema,
    SchemaNotFoundError,
    compile_schema,
    load_schema,
    schema_path,
    validate_ocsf,
)

from .ocsf_check import calendly_event, google_event


@pytest.fixture
def good(ocsf_schema: OcsfSchema) -> dict[str, Any]:
    document = to_ocsf(calendly_event("API", "Token_Created"))
    assert validate_ocsf(document, ocsf_schema, allow_deprecated=False) == []
    return copy.deepcopy(document)


def _paths(problems: list[str]) -> set[str]:
    return {problem.split(":", 1)[0] for problem in problems}


@pytest.mark.parametrize(
    ("path", "problem_path"),
    [
        (("time",), "time"),
        (("metadata",), "metadata"),
        (("metadata", "version"), "metadata.version"),
        (("metadata", "product"), "metadata.product"),
        (("entity",), "entity"),
        (("severity_id",), "severity_id"),
        (("type_uid",), "type_uid"),
    ],
)
def test_missing_required_attribute(
    good: dict[str, Any], path: tuple[str, ...], problem_path: str, ocsf_schema: OcsfSchema
) -> None:
    parent = good
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    problems = validate_ocsf(good, ocsf_schema)
    assert problem_path in _paths(problems), problems
    assert any("missing" in problem for problem in problems)


def test_missing_required_attribute_in_an_array_of_objects(ocsf_schema: OcsfSchema) -> None:
    document = to_ocsf(google_event("add_event_guest", *_guest()))
    del document["resources"][0]["uid"], document["resources"][0]["name"]
    problems = validate_ocsf(document, ocsf_schema)
    assert problems == ["resources[0]: Resource Details needs one of name, uid"]


def _guest() -> list[dict[str, Any]]:
    from ..builders import param

    return [
        param("event_guest", value="bob@y.com"),
        param("event_id", value="e1"),
        param("event_title", value="T"),
    ]


@pytest.mark.parametrize(
    ("attribute", "value", "problem_path"),
    [
        ("activity_id", 42, "activity_id"),
        ("severity_id", 7, "severity_id"),
        ("status_id", 5, "status_id"),
        ("category_uid", 6, "category_uid"),
    ],
)
def test_invalid_enum_value(
    good: dict[str, Any], attribute: str, value: int, problem_path: str, ocsf_schema: OcsfSchema
) -> None:
    good[attribute] = value
    problems = validate_ocsf(good, ocsf_schema)
    assert problem_path in _paths(problems), problems
    assert any("is not one of" in problem for problem in problems)


def test_invalid_nested_enum_value(good: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    good["actor"]["user"]["type_id"] = 12
    assert validate_ocsf(good, ocsf_schema) == [
        "actor.user.type_id: 12 is not one of 0, 1, 2, 3, 4, 99"
    ]


def test_caption_must_match_its_id(good: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    good["activity_name"] = "Delete"
    good["class_name"] = "API Activity"
    good["type_name"] = "Entity Management: Delete"
    assert _paths(validate_ocsf(good, ocsf_schema)) == {
        "activity_name",
        "class_name",
        "type_name",
    }


def test_other_carries_the_source_label(good: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    good.update(activity_id=99, activity_name="Token_Rotated", type_uid=300499)
    good["type_name"] = "Entity Management: Other"
    assert validate_ocsf(good, ocsf_schema) == []


def test_type_uid_must_follow_the_activity(good: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    good["activity_id"] = 3  # type_uid still says Create
    problems = validate_ocsf(good, ocsf_schema)
    assert any(problem.startswith("type_uid: 300401 is not") for problem in problems)


def test_unknown_class(ocsf_schema: OcsfSchema) -> None:
    assert validate_ocsf({"class_uid": 3999}, ocsf_schema) == [
        "class_uid: 3999 is not an event class of OCSF 1.7.0"
    ]
    assert validate_ocsf([], ocsf_schema) == ["event: expected an object, got list"]


def test_invented_attributes(good: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    good["calendar"] = {"id": "x"}
    good["metadata"]["vendor"] = "Calendly"
    good["unmapped"]["anything"] = {"goes": ["here"]}
    assert _paths(validate_ocsf(good, ocsf_schema)) == {"calendar", "metadata.vendor"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("time",), "2026-03-20T10:11:12Z"),  # timestamp_t is an integer
        (("time",), 1.5),
        (("severity_id",), True),  # bool is not an integer
        (("message",), 12),
        (("metadata", "product", "name"), ["Calendly"]),
        (("actor", "user", "email_addr"), "alice@@x"),
        (("actor", "user", "groups"), {"name": "Sales"}),  # an array
        (("entity",), "API Token"),  # an object
    ],
)
def test_wrong_types(
    good: dict[str, Any], path: tuple[str, ...], value: Any, ocsf_schema: OcsfSchema
) -> None:
    parent = good
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    problems = validate_ocsf(good, ocsf_schema)
    assert ".".join(path) in _paths(problems), problems


def test_ip_pattern_and_length(good: dict[str, Any], ocsf_schema: OcsfSchema) -> None:
    good["src_endpoint"] = {"ip": "203.0.113.500"}
    assert _paths(validate_ocsf(good, ocsf_schema)) == {"src_endpoint.ip"}
    good["src_endpoint"] = {"ip": "2001:db8::1"}
    assert validate_ocsf(good, ocsf_schema) == []


def test_deprecated_attributes_are_reported_on_request(
    good: dict[str, Any], ocsf_schema: OcsfSchema
) -> None:
    good["actor"]["invoked_by"] = "cron"
    assert validate_ocsf(good, ocsf_schema) == []
    assert validate_ocsf(good, ocsf_schema, allow_deprecated=False) == [
        "actor.invoked_by: deprecated attribute"
    ]


def test_schema_not_found(tmp_path: Path) -> None:
    with pytest.raises(SchemaNotFoundError, match=r"OCSF schema 0\.9\.9 not found"):
        schema_path("0.9.9")
    with pytest.raises(SchemaNotFoundError, match="does not exist"):
        load_schema(tmp_path / "missing.json")


def test_schema_is_found_in_the_installed_package() -> None:
    path = schema_path()
    assert path.name == "v1_7_0.json"
    assert path.parent.name == "schemas"


def test_compiled_export_spelling_is_understood() -> None:
    # The server's export spells object references as object_t + object_type.
    schema = compile_schema(
        {
            "version": "9.9.9",
            "categories_meta": {"attributes": {"iam": {"uid": 3, "caption": "IAM"}}},
            "dictionary": {
                "attributes": {
                    "thing": {"type": "object_t", "object_type": "widget"},
                    "size": {"type": "integer_t"},
                    "class_uid": {"type": "integer_t"},
                },
                "types": {"attributes": {"integer_t": {}}},
            },
            "objects": {"widget": {"caption": "Widget", "attributes": {"size": {}}}},
            "events": {
                "probe": {
                    "uid": 1,
                    "caption": "Probe",
                    "category": "iam",
                    "attributes": {"class_uid": {}, "thing": {"requirement": "required"}},
                }
            },
        }
    )
    assert validate_ocsf({"class_uid": 3001, "thing": {"size": 1}}, schema) == []
    assert validate_ocsf({"class_uid": 3001, "thing": {"size": "1"}}, schema) == [
        "thing.size: expected integer_t (integer_t), got str"
    ]
