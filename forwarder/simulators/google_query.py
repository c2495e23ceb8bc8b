"""Parsing and validation of ``activities.list`` query parameters (Calendar only)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiMapping

from forwarder.simulators.google_data import APPLICATION_NAME
from forwarder.simulators.google_errors import GoogleApiError, invalid_parameter
from forwarder.simulators.timeline import to_micros
from forwarder.timeutil import parse_rfc3339

DEFAULT_MAX_RESULTS = 1000
MAX_RESULTS = 1000
_RFC3339_PATTERN = (
    r"(\d\d\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:(Z)|([-+])(\d\d):(\d\d))"
)
# Parameters that do not define the result set: a page token stays valid across them.
_PAGING_PARAMETERS = frozenset({"maxResults", "pageToken"})
_FILTER = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(==|<>|<=|>=|<|>)\s*(.*?)\s*$")
_ORDERING_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class ParameterFilter:
    """One ``filters`` item: ``name==value``, ``name<>value`` or an integer comparison."""

    name: str
    op: str
    value: str

    def matches(self, activity: Mapping[str, Any]) -> bool:
        """Whether any event of ``activity`` has the parameter satisfying the filter."""
        for event in activity.get("events", []):
            for param in event.get("parameters", []):
                if param.get("name") == self.name and self._test(param):
                    return True
        # ``<>`` also holds when the parameter is absent.
        return self.op == "<>" and not any(
            p.get("name") == self.name for e in activity.get("events", []) for p in e["parameters"]
        )

    def _test(self, param: Mapping[str, Any]) -> bool:
        if "boolValue" in param:
            text = str(param["boolValue"]).lower()
        else:
            text = str(param.get("value", param.get("intValue", "")))
        if self.op == "==":
            return text == self.value
        if self.op == "<>":
            return text != self.value
        try:
            return _ORDERING_OPS[self.op](int(text), int(self.value))
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    """A validated ``activities.list`` query (times in microseconds, end exclusive)."""

    user_key: str
    start_us: int | None
    end_us: int
    max_results: int
    event_name: str | None
    actor_ip: str | None
    filters: tuple[ParameterFilter, ...]
    page_token: str | None
    identity: dict[str, str]


def _time(params: MultiMapping[str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        if not re.fullmatch(_RFC3339_PATTERN, raw):
            raise ValueError(raw)
        return to_micros(parse_rfc3339(raw))
    except ValueError:
        raise invalid_parameter(
            name,
            f"Invalid value '{raw}'. Values must match the following regular expression: "
            f"'{_RFC3339_PATTERN}'",
        ) from None


def parse_activity_query(
    user_key: str, application: str, params: MultiMapping[str], now_us: int
) -> ActivityQuery:
    """Validate the path and query; raise :class:`GoogleApiError` (400) on the first problem."""
    if application != APPLICATION_NAME:
        raise invalid_parameter(
            "applicationName",
            f"Invalid value '{application}'. The simulator serves only '{APPLICATION_NAME}'.",
        )
    if not (user_key == "all" or "@" in user_key or user_key.isdigit()):
        raise invalid_parameter("userKey", f"Invalid value '{user_key}'.")
    start_us = _time(params, "startTime")
    end_us = _time(params, "endTime")
    if start_us is not None and start_us > now_us:
        raise GoogleApiError(400, "Start time occurs after current time", "invalid")
    if end_us is not None and end_us > now_us:
        raise GoogleApiError(400, "End time occurs after current time", "invalid")
    if start_us is not None and end_us is not None and start_us >= end_us:
        raise GoogleApiError(400, "Start time occurs after End time", "invalid")
    raw_max = params.get("maxResults")
    max_results = DEFAULT_MAX_RESULTS
    if raw_max is not None:
        try:
            max_results = int(raw_max)
        except ValueError:
            max_results = 0
        if not 1 <= max_results <= MAX_RESULTS:
            raise invalid_parameter(
                "maxResults",
                f"Invalid value '{raw_max}'. Values must be within the range: [1, {MAX_RESULTS}]",
            )
    filters = []
    for item in filter(None, (params.get("filters") or "").split(",")):
        match = _FILTER.match(item)
        if match is None:
            raise invalid_parameter("filters", f"Invalid value '{item}' for filters.")
        filters.append(ParameterFilter(*match.groups()))
    identity = {key: ",".join(params.getall(key)) for key in set(params) - _PAGING_PARAMETERS}
    identity.update(userKey=user_key, applicationName=application)
    return ActivityQuery(
        user_key=user_key,
        start_us=start_us,
        # Without endTime the window runs up to now, inclusive.
        end_us=end_us if end_us is not None else now_us + 1,
        max_results=max_results,
        event_name=params.get("eventName") or None,
        actor_ip=params.get("actorIpAddress") or None,
        filters=tuple(filters),
        page_token=params.get("pageToken") or None,
        identity=identity,
    )
