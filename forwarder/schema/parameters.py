"""Decoding of Google Reports API ``parameters[]`` into a typed dict.

Each parameter carries its value under one key that names its type: ``value`` (string),
``intValue`` (an int64 *as a string*), ``boolValue``, ``multiValue`` (strings),
``multiIntValue`` (int64 strings), ``messageValue`` (``{"parameter": [...]}``, a nested
parameter list) or ``multiMessageValue`` (a list of those). Every parameter is kept,
documented or not (real data carries undocumented ones such as ``secs_in_advance``).

A value that does not match its key's type never fails the record: it is kept as a
string (the original text, or its JSON text when it was not a string) and noted as a
decode problem, so the event is still forwarded and the anomaly is searchable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from forwarder.schema.fields import DecodeProblem, problem

# Problem codes (bounded: they end up as document values that people aggregate on).
INVALID_TYPE = "invalid_type"
INVALID_INTEGER = "invalid_integer"
INVALID_BOOLEAN = "invalid_boolean"
MISSING_NAME = "missing_name"
DUPLICATE_NAME = "duplicate_name"
TOO_DEEP = "too_deep"

# int64, as the API documents; bigger numbers would also not serialize with orjson.
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# ASCII digits only: int() would also accept "1_000", " 12 " and non-ASCII digits.
_INT_TEXT = re.compile(r"-?[0-9]{1,19}")
_SAFE_DIGITS = 18
# Nested messageValue depth well beyond anything Google sends; bounds the recursion.
MAX_DEPTH = 16


def decode_parameters(
    parameters: Any, problems: list[DecodeProblem], path: str = "parameters", depth: int = 0
) -> dict[str, Any]:
    """Decode a ``parameters[]`` list into ``{name: typed value}``.

    Problems are appended to ``problems`` as ``{"field": path, "problem": code}``; nothing
    here raises. A parameter without a name cannot be keyed and is skipped (it stays in
    ``event.original``); of two parameters with the same name the first is kept.
    """
    decoded: dict[str, Any] = {}
    if parameters is None:
        return decoded
    if not isinstance(parameters, list):
        problems.append(problem(path, INVALID_TYPE))
        return decoded
    for index, parameter in enumerate(parameters):
        if type(parameter) is dict:
            # The common case, decoded inline: a new name with a string ``value`` (which
            # _decode_one checks first, so the result is the same).
            name = parameter.get("name")
            value = parameter.get("value")
            if type(name) is str and type(value) is str and name not in decoded:
                decoded[name] = value
                continue
        # type() first: isinstance against the Mapping ABC is several times slower.
        if type(parameter) is not dict and not isinstance(parameter, Mapping):
            problems.append(problem(f"{path}[{index}]", INVALID_TYPE))
            continue
        name = parameter.get("name")
        if type(name) is not str:
            problems.append(problem(f"{path}[{index}]", MISSING_NAME))
            continue
        if name in decoded:
            problems.append(problem(f"{path}.{name}", DUPLICATE_NAME))
            continue
        decoded[name] = _decode_one(parameter, problems, path, name, depth)
    return decoded


def _decode_one(
    parameter: Mapping[str, Any], problems: list[DecodeProblem], path: str, name: str, depth: int
) -> Any:
    # Checked in order of frequency in Calendar data: strings, then integers, then booleans.
    value = parameter.get("value")
    if value is not None:
        if type(value) is str:
            return value
        problems.append(problem(f"{path}.{name}", INVALID_TYPE))
        return _as_text(value)
    value = parameter.get("intValue")
    if value is not None:
        number = _to_int(value)
        if number is None:
            problems.append(problem(f"{path}.{name}", INVALID_INTEGER))
            return _as_text(value)
        return number
    value = parameter.get("boolValue")
    if value is not None:
        if type(value) is bool:
            return value
        problems.append(problem(f"{path}.{name}", INVALID_BOOLEAN))
        return _as_text(value)
    value = parameter.get("multiValue")
    if value is not None:
        return _decode_strings(value, problems, f"{path}.{name}")
    value = parameter.get("multiIntValue")
    if value is not None:
        return _decode_ints(value, problems, f"{path}.{name}")
    value = parameter.get("messageValue")
    if value is not None:
        return _decode_message(value, problems, f"{path}.{name}", depth + 1)
    value = parameter.get("multiMessageValue")
    if value is not None:
        return _decode_messages(value, problems, f"{path}.{name}", depth + 1)
    # No value at all: the API leaves out empty values. null keeps the name searchable.
    return None


def _to_int(value: Any) -> int | None:
    if type(value) is str:
        # Up to 18 ASCII digits is always an int64: no regex, no range check.
        if len(value) <= _SAFE_DIGITS and value.isdigit() and value.isascii():
            return int(value)
        if _INT_TEXT.fullmatch(value) is None:
            return None
        value = int(value)
    elif type(value) is not int:  # bool is an int subclass, and not an integer here
        return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _as_text(value: Any) -> str:
    """A mistyped value kept as a string: itself if it is one, else its JSON text."""
    if type(value) is str:
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # Only reachable for records that are not plain JSON, which encode_original rejects.
        return repr(value)


def _decode_strings(value: Any, problems: list[DecodeProblem], path: str) -> Any:
    if type(value) is not list:
        problems.append(problem(path, INVALID_TYPE))
        return _as_text(value)
    if all(type(item) is str for item in value):
        return value
    problems.append(problem(path, INVALID_TYPE))
    return [_as_text(item) for item in value]


def _decode_ints(value: Any, problems: list[DecodeProblem], path: str) -> Any:
    if type(value) is not list:
        problems.append(problem(path, INVALID_TYPE))
        return _as_text(value)
    numbers = [_to_int(item) for item in value]
    if None not in numbers:
        return numbers
    # One bad element: keep the whole list as strings rather than mix types in one field.
    problems.append(problem(path, INVALID_INTEGER))
    return [_as_text(item) for item in value]


def _decode_message(value: Any, problems: list[DecodeProblem], path: str, depth: int) -> Any:
    if not isinstance(value, Mapping):
        problems.append(problem(path, INVALID_TYPE))
        return _as_text(value)
    if depth > MAX_DEPTH:
        problems.append(problem(path, TOO_DEEP))
        return _as_text(value)
    return decode_parameters(value.get("parameter"), problems, path, depth)


def _decode_messages(value: Any, problems: list[DecodeProblem], path: str, depth: int) -> Any:
    if type(value) is not list:
        problems.append(problem(path, INVALID_TYPE))
        return _as_text(value)
    messages: list[Any] = []
    for index, item in enumerate(value):
        decoded = _decode_message(item, problems, f"{path}[{index}]", depth)
        if isinstance(decoded, dict):
            messages.append(decoded)
        # A mistyped element cannot sit in a list of objects; it stays in event.original.
    return messages
