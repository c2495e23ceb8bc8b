"""Parsing, validation and ordering for ``GET /activity_log_entries`` query parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

from multidict import MultiMapping

from forwarder.simulators.timeline import to_micros
from forwarder.timeutil import parse_rfc3339

SORT_FIELDS = ("action", "actor.display_name", "actor.uri", "namespace", "occurred_at")
DEFAULT_SORT = "occurred_at:desc"
DEFAULT_COUNT = 20
MAX_COUNT = 1000
MAX_SEARCH_TERM = 300

# Parameters that do not define the result set: a page token stays valid across them.
_PAGING_PARAMETERS = frozenset({"count", "page_token"})


class InvalidArguments(Exception):
    """One or more query parameters are invalid (HTTP 400 ``Invalid Argument``)."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d.get('parameter')}: {d['message']}" for d in details))
        self.details = details


@dataclass(frozen=True, slots=True)
class SortSpec:
    """One ``field:direction`` item of ``sort``."""

    field: str
    descending: bool


@total_ordering
class Descending:
    """Wraps a value so that it sorts in reverse inside a composite key."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Descending) and self.value == other.value

    def __lt__(self, other: Descending) -> bool:
        return bool(other.value < self.value)

    def __hash__(self) -> int:
        return hash(self.value)


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """``search_term`` as an OR of AND-groups of (needle, excluded) over the entry's JSON.

    A simplification of Calendly's operators: ``|`` (or), ``+``/space (and), ``-`` (not),
    ``"..."`` (exact phrase) and ``*`` (prefix, treated as a substring) are understood;
    parentheses are ignored. Matching is a case-insensitive substring test.
    """

    groups: tuple[tuple[tuple[str, bool], ...], ...]

    def matches(self, blob: str) -> bool:
        return any(
            all((needle in blob) != excluded for needle, excluded in group) for group in self.groups
        )


_SEARCH_TOKEN = re.compile(r'-?"[^"]*"|[^\s+]+')


def parse_search(term: str) -> SearchTerm | None:
    groups = []
    for alternative in re.split(r"\||\bOR\b", term.replace("(", " ").replace(")", " ")):
        group = []
        for token in _SEARCH_TOKEN.findall(alternative):
            excluded = token.startswith("-") and len(token) > 1
            needle = token[1:] if excluded else token
            needle = needle.strip('"').replace("*", "").lower()
            if needle:
                group.append((needle, excluded))
        if group:
            groups.append(tuple(group))
    return SearchTerm(tuple(groups)) if groups else None


@dataclass(frozen=True, slots=True)
class CalendlyQuery:
    """A validated Activity Log query."""

    organization: str
    count: int
    sort: tuple[SortSpec, ...]
    min_us: int | None
    max_us: int | None
    namespaces: frozenset[str] | None
    actions: frozenset[str] | None
    actors: frozenset[str] | None
    search: SearchTerm | None
    page_token: str | None
    identity: dict[str, str]
    """The parameters that define the result set, for binding page tokens to the query."""


def _list_parameter(params: MultiMapping[str], name: str) -> frozenset[str] | None:
    values = [item.strip() for raw in params.getall(name, []) for item in raw.split(",")]
    values = [value for value in values if value]
    return frozenset(values) if values else None


def _time_parameter(
    params: MultiMapping[str], name: str, details: list[dict[str, str]]
) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return to_micros(parse_rfc3339(raw))
    except ValueError:
        details.append({"parameter": name, "message": "must be a valid RFC 3339 date-time"})
        return None


def parse_query(params: MultiMapping[str]) -> CalendlyQuery:
    """Validate the query string; raise :class:`InvalidArguments` listing every problem."""
    details: list[dict[str, str]] = []
    organization = params.get("organization", "")
    if not organization:
        details.append({"parameter": "organization", "message": "is required"})

    count = DEFAULT_COUNT
    raw_count = params.get("count")
    if raw_count is not None:
        try:
            count = int(raw_count)
        except ValueError:
            count = -1
        if not 1 <= count <= MAX_COUNT:
            details.append(
                {"parameter": "count", "message": f"must be an integer between 1 and {MAX_COUNT}"}
            )

    sort: list[SortSpec] = []
    for item in (params.get("sort") or DEFAULT_SORT).split(","):
        field, _, direction = item.strip().partition(":")
        if field not in SORT_FIELDS or direction not in ("asc", "desc"):
            details.append(
                {
                    "parameter": "sort",
                    "message": f"{item!r} is not one of {', '.join(SORT_FIELDS)} "
                    "followed by :asc or :desc",
                }
            )
        elif all(spec.field != field for spec in sort):
            sort.append(SortSpec(field, direction == "desc"))

    min_us = _time_parameter(params, "min_occurred_at", details)
    max_us = _time_parameter(params, "max_occurred_at", details)

    search = None
    raw_search = params.get("search_term")
    if raw_search:
        if len(raw_search) > MAX_SEARCH_TERM:
            details.append(
                {
                    "parameter": "search_term",
                    "message": f"must be at most {MAX_SEARCH_TERM} characters",
                }
            )
        search = parse_search(raw_search)

    if details:
        raise InvalidArguments(details)
    identity = {
        key: ",".join(params.getall(key)) for key in sorted(set(params.keys()) - _PAGING_PARAMETERS)
    }
    return CalendlyQuery(
        organization=organization,
        count=count,
        sort=tuple(sort),
        min_us=min_us,
        max_us=max_us,
        namespaces=_list_parameter(params, "namespace"),
        actions=_list_parameter(params, "action"),
        actors=_list_parameter(params, "actor"),
        search=search,
        page_token=params.get("page_token") or None,
        identity=identity,
    )


def sort_value(entry: Mapping[str, Any], time_us: int, field: str) -> int | str:
    """The value an entry sorts by for ``field`` (missing strings sort as empty)."""
    if field == "occurred_at":
        return time_us
    if field.startswith("actor."):
        actor = entry.get("actor") or {}
        return str(actor.get(field.removeprefix("actor."), ""))
    return str(entry.get(field, ""))


def composite_key(values: list[int | str], sort: tuple[SortSpec, ...]) -> tuple[Any, ...]:
    """Orderable key from raw sort values plus the ``uri`` tie-break (last value).

    The uri follows the direction of the first sort field, so ``occurred_at:desc`` is
    exactly the reverse of ``occurred_at:asc``.
    """
    directions = [spec.descending for spec in sort] + [sort[0].descending]
    return tuple(
        Descending(value) if descending else value
        for value, descending in zip(values, directions, strict=True)
    )
