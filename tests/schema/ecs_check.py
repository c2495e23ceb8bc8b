"""Checks every ECS document of these tests goes through: the JSON Schema of the output
(``docs/ecs-output.schema.json``) and the field reference (every field documented)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker

from forwarder.schema.field_reference import FIELDS, OPEN_FIELDS

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "ecs-output.schema.json"
SCHEMA: dict[str, Any] = orjson.loads(SCHEMA_PATH.read_bytes())
# FormatChecker: source.ip / related.ip are checked as ipv4/ipv6 ("format" is only an
# annotation in draft 2020-12 unless a checker is given).
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
DOCUMENTED = frozenset(field.name for field in FIELDS)


def field_paths(document: Any, prefix: str = "") -> set[str]:
    """The dotted paths of the leaves of ``document``; free-form subtrees and arrays are
    leaves."""
    paths: set[str] = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        if type(value) is dict and path not in OPEN_FIELDS:
            paths |= field_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


def check_document(document: dict[str, Any]) -> None:
    """Fail unless ``document`` validates against the schema and has only documented
    fields."""
    errors = sorted(VALIDATOR.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.path)) or '<root>'}: {error.message[:300]}" for error in errors
    )
    undocumented = field_paths(document) - DOCUMENTED
    assert not undocumented, f"fields missing from field_reference.FIELDS: {sorted(undocumented)}"
