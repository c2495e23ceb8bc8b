"""Reading a receiver's answer and deciding what it means for the request's events.

A receiver is not trusted to be what the configuration says it is: a proxy may answer
200 with a login page, a load balancer may redirect, a Splunk HEC may answer 200 with an
error code, an Elasticsearch cluster may refuse some items of a bulk request. Only an
answer that the encoding's receiver gives on success counts as delivered:

- ``splunk_hec``: a JSON object with ``"code": 0`` (``{"text":"Success","code":0}``).
- ``elasticsearch_bulk``: a JSON object whose ``items`` has one ``create`` result per
  action, in order (same ``_id`` when given), each judged by its ``status``.
- ``ndjson`` / ``json_array``: any body (ClickHouse answers an empty one) except an HTML
  page: a ``text/html`` / ``application/xhtml+xml`` type or a body opening with
  ``<!doctype html`` or ``<html`` is a proxy's or login page's, not the receiver's.

Anything else is a retried failure with ``error_type`` ``bad_success_body``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import aiohttp
import orjson
from yarl import URL

# Characters of a receiver's answer kept as a dead letter's detail or in a retry reason.
MAX_ERROR_BODY = 2048
# Characters of an unexpected success body quoted in the retry reason: enough to tell a
# login page from a HEC error, short enough for a log line.
SUCCESS_EXCERPT = 200
# Bytes read of a non-2xx answer: only its excerpt is used (the status decides), so a
# larger body is not worth reading.
ERROR_BODY_READ = 65_536
READ_CHUNK = 65_536
# Bytes at the start of a success body looked at for an HTML page.
HTML_SNIFF = 512
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_START = re.compile(rb"\s*<(?:!doctype\s+html|html)[\s>/]", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

BAD_SUCCESS_BODY = "bad_success_body"
RESPONSE_TOO_LARGE = "response_too_large"
REDIRECT = "redirect"


@dataclass(slots=True)
class Outcome:
    """What one request did with its events (indexes into the ``send`` list)."""

    delivered: set[int] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)
    details: dict[int, str] = field(default_factory=dict)
    retry: str | None = None
    retry_after: float | None = None
    error_type: str | None = None

    def merge(self, other: Outcome) -> None:
        self.delivered |= other.delivered
        self.rejected.update(other.rejected)
        self.details.update(other.details)
        if other.retry is not None and self.retry is None:
            self.retry = other.retry
            self.error_type = other.error_type
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)


def failure(reason: str, error_type: str, retry_after: float | None = None) -> Outcome:
    """Nothing of the request was delivered: all of it is sent again."""
    return Outcome(retry=reason, retry_after=retry_after, error_type=error_type)


async def read_body(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """The whole (decompressed) body and True, or its first ``limit`` bytes and False when
    it is longer. Reads until the end, however many writes the receiver makes."""
    length = response.content_length
    if length is not None and length > limit and response.headers.get("Content-Encoding") is None:
        return b"", False
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(READ_CHUNK):
        room = limit - size
        if len(chunk) > room:
            parts.append(chunk[:room])
            return b"".join(parts), False
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), True


def excerpt(body: bytes, limit: int) -> str:
    """The start of ``body`` as one line of text."""
    text = body[: limit * 4].decode("utf-8", "replace")
    return _CONTROL.sub(" ", text).strip()[:limit]


def origin(location: str | None, base: str) -> str:
    """``scheme://host:port`` of a redirect target (never its path, query or user info:
    they may carry credentials), resolved against the request ``base``."""
    if not location:
        return "no Location"
    try:
        target = URL(base).join(URL(location.strip()))
        host = target.raw_host
        if not target.scheme or not host:
            return "an unusable Location"
    except (ValueError, TypeError):
        return "an unusable Location"
    host = _CONTROL.sub("", host)[:255]
    if ":" in host:
        host = f"[{host}]"
    return f"{target.scheme}://{host}:{target.port}"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` for
    anything else (negative, fractional, garbage)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def hec_outcome(body: bytes, indexes: Sequence[int]) -> Outcome:
    """Splunk HEC: delivered only on ``{"code": 0, ...}``."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _bad("HEC answer is not JSON", body)
    code = answer.get("code") if isinstance(answer, dict) else None
    if type(code) is not int or code != 0:
        return _bad("HEC answer does not say success (code 0)", body)
    return Outcome(delivered=set(indexes))


def plain_outcome(body: bytes, content_type: str, indexes: Sequence[int]) -> Outcome:
    """NDJSON and JSON arrays: any 2xx body but an HTML page."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type in HTML_TYPES or _HTML_START.match(body[:HTML_SNIFF]):
        return _bad(f"the answer is an HTML page ({media_type or 'no content type'})", body)
    return Outcome(delivered=set(indexes))


def bulk_outcome(body: bytes, indexes: Sequence[int], ids: Sequence[str]) -> Outcome:
    """Per-item results of an Elasticsearch ``_bulk`` response, in request order: 2xx and
    409 (created by an earlier attempt) delivered, 429 and 5xx retried, other statuses
    refused for good. ``ids`` are the ``_id`` of each action."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _bad("bulk answer is not JSON", body)
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        return _bad("bulk answer has no items", body)
    if len(items) != len(indexes):
        return _bad(f"bulk answer has {len(items)} items for {len(indexes)} actions", body)
    outcome = Outcome()
    for position, (index, item) in enumerate(zip(indexes, items, strict=True)):
        result = item.get("create") if isinstance(item, dict) and len(item) == 1 else None
        status = result.get("status") if isinstance(result, dict) else None
        if result is None or type(status) is not int:
            return _bad(f"bulk item {position} is not a create result with a status", body)
        item_id = result.get("_id")
        if item_id is not None and item_id != ids[position]:
            return _bad(f"bulk item {position} answers for another _id", body)
        if 200 <= status < 300 or status == 409:
            outcome.delivered.add(index)
        elif status == 429 or status >= 500:
            if outcome.retry is None:
                outcome.retry = f"bulk item HTTP {status}"
                outcome.error_type = f"bulk_item_{status}"
        else:
            error = result.get("error") or {}
            outcome.rejected[index] = f"bulk_item_{status}"
            outcome.details[index] = (
                f"{error.get('type', '')}: {error.get('reason', '')}"
                if isinstance(error, dict)
                else str(error)
            )[:MAX_ERROR_BODY]
    return outcome


def _bad(problem: str, body: bytes) -> Outcome:
    quoted = excerpt(body, SUCCESS_EXCERPT) or "(empty)"
    return failure(f"{problem}: {quoted}", BAD_SUCCESS_BODY)
