"""Field access shared by the normalizers: required identity fields and the raw record."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import orjson

from forwarder import __version__
from forwarder.schema.errors import (
    INVALID_TYPE,
    INVALID_VALUE,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    UNSERIALIZABLE,
    MalformedRecordError,
)

# The ECS version the documents follow (``ecs.version``).
ECS_VERSION = "8.11.0"

# ECS ``agent.*``: which shipper produced a document, so a SIEM that receives several
# can tell this forwarder's documents (and its version) apart.
AGENT_TYPE = "forwarder"
AGENT_VERSION = __version__


def agent_fields() -> dict[str, str]:
    """A fresh ``agent`` object (``type``, ``version``) for one document."""
    return {"type": AGENT_TYPE, "version": AGENT_VERSION}


DecodeProblem = dict[str, str]
"""``{"field": <path in the record>, "problem": <short code>}``, kept in the document."""


def problem(field: str, code: str) -> DecodeProblem:
    """A decode problem: ``field`` of the record could not be mapped as documented."""
    return {"field": field, "problem": code}


def mistyped(problems: list[DecodeProblem], path: str) -> None:
    """Note that the optional field ``path`` has the wrong type; returns ``None``, the value
    that stands for it. The inline form of :func:`optional_str` on hot paths::

        email = actor.get("email")
        if email is not None and type(email) is not str:
            email = mistyped(problems, "actor.email")
    """
    problems.append(problem(path, INVALID_TYPE))


def require_object(record: Any, what: str) -> Mapping[str, Any]:
    """``record`` itself, or ``not_an_object`` when it is not a JSON object."""
    if type(record) is not dict and not isinstance(record, Mapping):
        raise MalformedRecordError(NOT_AN_OBJECT, f"{what} is a {type(record).__name__}")
    return record


def require_str(record: Mapping[str, Any], key: str, path: str) -> str:
    """A required, non-empty string field; raises ``missing_field``/``invalid_type``/..."""
    value = record.get(key)
    if type(value) is str and value:
        return value
    if value is None:
        raise MalformedRecordError(MISSING_FIELD, f"{path} is missing")
    if isinstance(value, str):
        raise MalformedRecordError(INVALID_VALUE, f"{path} is empty")
    raise MalformedRecordError(INVALID_TYPE, f"{path} is not a string")


def optional_str(
    record: Mapping[str, Any], key: str, path: str, problems: list[DecodeProblem]
) -> str | None:
    """An optional string field; a value of another type is noted in ``problems`` and dropped.

    Dropping keeps the document's field types stable for the SIEM's index mapping; the
    value is still in ``event.original``.
    """
    value = record.get(key)
    if value is None or type(value) is str:
        return value
    problems.append(problem(path, INVALID_TYPE))
    return None


def optional_object(
    record: Mapping[str, Any], key: str, path: str, problems: list[DecodeProblem]
) -> Mapping[str, Any] | None:
    """An optional object field; anything else is noted in ``problems`` and dropped."""
    value = record.get(key)
    # type() first: isinstance against the Mapping ABC is several times slower.
    if value is None or type(value) is dict or isinstance(value, Mapping):
        return value
    problems.append(problem(path, INVALID_TYPE))
    return None


def encode_original(record: Mapping[str, Any], what: str) -> str:
    """The raw record as a JSON string (ECS ``event.original`` is a string).

    This is also the gate that proves the record is plain JSON (no lone surrogates, no
    integers beyond 64 bits, no non-JSON objects): every string of the document is taken
    from it, so a record that passes here yields a document that serializes too.
    """
    try:
        return orjson.dumps(record).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise MalformedRecordError(UNSERIALIZABLE, f"{what} is not plain JSON: {exc}") from None


def user_from_email(email: str) -> dict[str, Any]:
    """ECS ``user`` fields for an email address: ``email``, ``name`` (login part), ``domain``.

    ECS ``user.name`` is the short login name, so the address is split the way the common
    Workspace integrations do it; the full address stays in ``user.email``.
    """
    name, at, domain = email.partition("@")
    if not at or not name:
        return {"email": email, "name": email}
    if not domain:
        return {"email": email, "name": name}
    return {"email": email, "name": name, "domain": domain}


def target_user(identifier: str) -> dict[str, Any]:
    """ECS ``user.target`` fields for the identifier of an affected user.

    An address (``bob@y.com``) is split like :func:`user_from_email`; anything else (an ACL
    scope such as a bare domain, a calendar id without ``@``) can only be a name.
    """
    if "@" in identifier:
        return user_from_email(identifier)
    return {"name": identifier}


# The usual address forms, checked without building an ipaddress object (which costs
# microseconds): dotted-quad IPv4 as ipaddress accepts it (no leading zeros), and IPv6 as
# hextets with at most one "::". Only accepting: anything else (scoped or IPv4-suffixed
# IPv6, or not an address) is left to ipaddress, so the answer is always the library's.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_HEXTETS = re.compile(r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,7}")
_IPV6_HEXTETS = 8


def _is_plain_ipv6(text: str) -> bool:
    head, compressed, tail = text.partition("::")
    if not compressed:
        return text.count(":") == _IPV6_HEXTETS - 1 and _HEXTETS.fullmatch(text) is not None
    groups = 0
    for side in (head, tail):
        if side:
            if _HEXTETS.fullmatch(side) is None:
                return False
            groups += side.count(":") + 1
    # "::" stands for at least one zero hextet.
    return groups < _IPV6_HEXTETS


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (as :func:`ipaddress.ip_address` says).

    ``source.ip`` is an ``ip`` field in ECS: a value that is not an address would make the
    SIEM reject the whole document, so it is checked before it goes there.
    """
    if _IPV4.fullmatch(text) is not None or _is_plain_ipv6(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
