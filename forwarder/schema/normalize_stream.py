"""Normalize a byte stream of raw records: what ``forwarder normalize --source ...`` reads.

The input is either one API response page as the API returned it (Calendly
``{"collection": [...], "pagination": ...}``, Google ``{"kind": "admin#reports#activities",
"items": [...]}``), a JSON array of raw records, or NDJSON with one raw record per line
(blank lines ignored). A record that fails, including a line that is not JSON, is
returned with its error rather than raised, so one bad line never hides the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from types import MappingProxyType
from typing import Any

import orjson

from forwarder.events import Event
from forwarder.schema import calendly, google_calendar
from forwarder.schema.errors import INVALID_JSON, INVALID_TYPE, MalformedRecordError
from forwarder.schema.sharing import InternalDomains
from forwarder.schema.tenant import label_tenant

Failure = tuple[Any, MalformedRecordError]
"""A record that could not be normalized (the parsed record, or the line's text) and why."""

# A parsed record, or what stands for it with the reason it could not be parsed.
_Item = tuple[Any, MalformedRecordError | None]


def _calendly(record: Any, ingested: str) -> list[Event]:
    return [calendly.normalize_entry(record, ingested=ingested)]


def _google(
    record: Any, ingested: str, internal_domains: InternalDomains | None = None
) -> list[Event]:
    return google_calendar.normalize_activity(
        record, ingested=ingested, internal_domains=internal_domains
    )


@dataclass(frozen=True, slots=True)
class _Format:
    normalize: Callable[[Any, str], list[Event]]
    page_key: str
    """The key of the records list in a response page."""
    page_kind: str | None
    """The page's ``kind``: Google leaves ``items`` out of a page without results."""


_FORMATS: Mapping[str, _Format] = MappingProxyType(
    {
        calendly.PROVIDER: _Format(_calendly, "collection", None),
        google_calendar.PROVIDER: _Format(_google, "items", "admin#reports#activities"),
    }
)
PROVIDERS = tuple(_FORMATS)
"""The provider names ``normalize_payload`` accepts."""

_UTF8_BOM = b"\xef\xbb\xbf"


def normalize_payload(
    provider: str,
    data: bytes,
    *,
    ingested: str,
    seal_formats: tuple[str, ...] | None = None,
    internal_domains: InternalDomains | None = None,
    tenant: str | None = None,
) -> tuple[list[Event], list[Failure]]:
    """Normalize every raw record in ``data`` (a response page, a JSON array or NDJSON).

    Returns the events in input order and the records that failed with their
    :class:`MalformedRecordError` (a line that is not JSON fails with ``invalid_json`` and
    is returned as text). With ``seal_formats`` every event is sealed in those formats
    right after its record is normalized, as the sources do (:meth:`Event.seal`).
    ``internal_domains`` flags external grantees and guests of Google records (as a
    source's ``internal_domains`` does); Calendly records have none. ``tenant`` tags every
    event as a source's ``tenant`` does (ECS ``labels.tenant``). Raises
    ``ValueError`` only for an unknown ``provider``.
    """
    try:
        fmt = _FORMATS[provider]
    except KeyError:
        raise ValueError(
            f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
        ) from None
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    events: list[Event] = []
    failures: list[Failure] = []
    try:
        whole = orjson.loads(data)
    except orjson.JSONDecodeError:
        # Not one JSON document: NDJSON (or garbage, which then fails line by line).
        records: Iterable[_Item] = _ndjson_records(data)
    else:
        records = _document_records(whole, fmt)
    normalize = fmt.normalize
    if internal_domains is not None and fmt.normalize is _google:
        normalize = partial(_google, internal_domains=internal_domains)
    for record, error in records:
        if error is None:
            try:
                normalized = normalize(record, ingested)
            except MalformedRecordError as exc:
                error = exc
            else:
                if tenant is not None:
                    for event in normalized:
                        label_tenant(event, tenant)
                if seal_formats is not None:
                    for event in normalized:
                        event.seal(seal_formats)
                events.extend(normalized)
        if error is not None:
            failures.append((record, error))
    return events, failures


def _document_records(whole: Any, fmt: _Format) -> Iterable[_Item]:
    """The records of one JSON document: a page's list, an array, or a single record."""
    page_key = fmt.page_key
    if type(whole) is dict and (
        page_key in whole or (fmt.page_kind is not None and whole.get("kind") == fmt.page_kind)
    ):
        whole = whole.get(page_key)
        if whole is None:
            return []
        if type(whole) is not list:
            error = MalformedRecordError(INVALID_TYPE, f"page {page_key} is not a list")
            return [(whole, error)]
    elif type(whole) is not list:
        # Anything else is one record (a one-line NDJSON input parses as a whole document);
        # the normalizer says whether it is a valid one.
        return [(whole, None)]
    # A page of up to 1000 records: pair them lazily rather than build a list of pairs.
    return zip(whole, repeat(None))


def _ndjson_records(data: bytes) -> Iterator[_Item]:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line), None
        except orjson.JSONDecodeError as exc:
            text = line.decode("utf-8", "backslashreplace")
            yield text, MalformedRecordError(INVALID_JSON, f"line {number}: {exc}")
