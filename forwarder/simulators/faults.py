"""Fault injection shared by both simulators (a test helper, not part of the real APIs).

A test pushes faults onto a FIFO plan; the next API responses (never the OAuth token
endpoint, never the ``/_sim/`` routes) get them, one per response:

* status faults (``http_500``, ``http_503``, ``http_429``, ``rate_limit_403``, ``reset``)
  replace the next response whatever the request was;
* body faults (``truncated_json``, ``missing_field``, ``wrong_type``, ``bad_record``) spoil
  the next *successful* page (``bad_record`` the next page holding at least one record),
  because spoiling an error response would test nothing.

* ``page_token_rejected`` answers the next request that carries a page token with the
  API's "invalid page token" error (a token the API let expire);
* ``page_token_loop`` makes the next successful page requested *with* a page token hand
  that same token out again as its next token, so a client that follows it reads the same
  page again: pushed with a large ``count``, a pagination that never ends (a real API bug
  seen in the wild, and what a hostile peer does).

The plan is strictly FIFO: a body fault at the head of the queue holds back the status
faults behind it until a successful page comes along.

``reset`` drops the connection without a response. aiohttp's client retries an idempotent
request once after such a disconnect, so an aiohttp-based consumer only notices two resets
in a row (push ``count=2``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class FaultKind(StrEnum):
    """What can go wrong with one API response."""

    HTTP_500 = "http_500"
    HTTP_503 = "http_503"
    HTTP_429 = "http_429"
    RATE_LIMIT_403 = "rate_limit_403"
    TRUNCATED_JSON = "truncated_json"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_RECORD = "bad_record"
    RESET = "reset"
    INVALID_UTF8 = "invalid_utf8"
    SLOW = "slow"
    RESET_MID_BODY = "reset_mid_body"
    HTML_200 = "html_200"
    PAGE_TOKEN_REJECTED = "page_token_rejected"
    PAGE_TOKEN_LOOP = "page_token_loop"


STATUS_FAULTS = frozenset(
    {
        FaultKind.HTTP_500,
        FaultKind.HTTP_503,
        FaultKind.HTTP_429,
        FaultKind.RATE_LIMIT_403,
        FaultKind.RESET,
        FaultKind.SLOW,
        FaultKind.RESET_MID_BODY,
        FaultKind.HTML_200,
    }
)
# Faults of the connection itself, served the same way by every simulator.
TRANSPORT_FAULTS = frozenset({FaultKind.SLOW, FaultKind.RESET_MID_BODY, FaultKind.HTML_200})
BODY_FAULTS = frozenset(
    {
        FaultKind.TRUNCATED_JSON,
        FaultKind.MISSING_FIELD,
        FaultKind.WRONG_TYPE,
        FaultKind.BAD_RECORD,
        FaultKind.INVALID_UTF8,
    }
)
# Served only to a request that carries a page token (e.g. one the API let expire).
PAGE_TOKEN_FAULTS = frozenset({FaultKind.PAGE_TOKEN_REJECTED})


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """A fault that was served, with what it did (e.g. which record ``bad_record`` broke)."""

    kind: FaultKind
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "detail": self.detail}


class FaultPlan:
    """The queue of faults still to serve, and the log of those already served."""

    def __init__(self, supported: Iterable[FaultKind]) -> None:
        self.supported = frozenset(supported)
        self._queue: deque[FaultKind] = deque()
        self.applied: list[AppliedFault] = []

    def push(self, kind: FaultKind | str, count: int = 1) -> None:
        """Queue ``count`` responses with fault ``kind``; ``ValueError`` if unsupported."""
        try:
            fault = FaultKind(kind)
        except ValueError:
            raise ValueError(f"unknown fault kind {kind!r}") from None
        if fault not in self.supported:
            raise ValueError(f"fault kind {fault} is not supported by this simulator")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        self._queue.extend([fault] * count)

    def clear(self) -> None:
        """Forget every fault not served yet."""
        self._queue.clear()

    @property
    def pending(self) -> list[str]:
        """Faults not served yet, in the order they will be."""
        return [str(kind) for kind in self._queue]

    def take_status_fault(self) -> FaultKind | None:
        """Pop the head of the queue if it is a status fault."""
        if self._queue and self._queue[0] in STATUS_FAULTS:
            return self._queue.popleft()
        return None

    def take_page_token_fault(self, *, has_page_token: bool) -> FaultKind | None:
        """Pop the head of the queue if it rejects the page token of this request."""
        if has_page_token and self._queue and self._queue[0] in PAGE_TOKEN_FAULTS:
            return self._queue.popleft()
        return None

    def take_loop_fault(self, *, has_page_token: bool) -> bool:
        """Pop the head of the queue if it loops the pagination of this (successful) page."""
        if has_page_token and self._queue and self._queue[0] is FaultKind.PAGE_TOKEN_LOOP:
            self._queue.popleft()
            return True
        return False

    def take_body_fault(self, *, has_records: bool) -> FaultKind | None:
        """Pop the head of the queue if it is a body fault that applies to this page."""
        if not self._queue or self._queue[0] not in BODY_FAULTS:
            return None
        if self._queue[0] in (FaultKind.BAD_RECORD, FaultKind.INVALID_UTF8) and not has_records:
            return None
        return self._queue.popleft()

    def record(self, kind: FaultKind, **detail: Any) -> None:
        """Log a served fault so tests can see exactly what was spoiled."""
        self.applied.append(AppliedFault(kind, detail))

    def as_json(self) -> dict[str, Any]:
        return {
            "supported": sorted(str(kind) for kind in self.supported),
            "pending": self.pending,
            "applied": [fault.as_json() for fault in self.applied],
        }


INVALID_UTF8_MARKER = "@@sim-invalid-utf8@@"


def spoil_body(
    kind: FaultKind,
    payload: dict[str, Any],
    *,
    list_key: str,
    break_record: Callable[[dict[str, Any]], dict[str, Any]],
    drop_with_list: tuple[str, ...] = (),
) -> tuple[bytes, dict[str, Any]]:
    """Apply body fault ``kind`` to a successful ``payload``; return the body and a detail.

    ``bad_record`` breaks the middle record only (``break_record`` returns the broken copy),
    so the records before and after it stay intact. ``drop_with_list`` names other
    top-level keys ``missing_field`` removes along with the list.
    """
    if kind is FaultKind.TRUNCATED_JSON:
        full = orjson.dumps(payload)
        return full[: len(full) // 2], {"full_length": len(full)}
    spoiled = dict(payload)
    detail: dict[str, Any] = {}
    if kind is FaultKind.MISSING_FIELD:
        for key in (list_key, *drop_with_list):
            spoiled.pop(key, None)
    elif kind is FaultKind.WRONG_TYPE:
        spoiled[list_key] = "this should have been a list"
    elif kind is FaultKind.BAD_RECORD:
        records = list(spoiled[list_key])
        index = len(records) // 2
        records[index] = break_record(records[index])
        spoiled[list_key] = records
        detail = {"index": index, "original": payload[list_key][index]}
    elif kind is FaultKind.INVALID_UTF8:
        # One record gains a field whose bytes are Latin-1, not UTF-8: the page is no
        # longer valid UTF-8, though everything else in it is fine.
        records = list(spoiled[list_key])
        index = len(records) // 2
        records[index] = {**records[index], "sim_note": INVALID_UTF8_MARKER}
        spoiled[list_key] = records
        body = orjson.dumps(spoiled).replace(INVALID_UTF8_MARKER.encode(), b"caf\xe9")
        return body, {"index": index}
    else:
        raise ValueError(f"{kind} is not a body fault")
    return orjson.dumps(spoiled), detail
