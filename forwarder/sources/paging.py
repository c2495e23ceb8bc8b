"""Pagination that does not end: a guard over the pages of one time window.

An API hands out the next page token, so an API that keeps handing one out keeps a
reader going forever: the same token again (1,337 requests in 12 s against a looping
peer, and RSS past 1 GB for Google's larger pages), the same records under a new token,
or simply no end. :class:`PageGuard` sees every page of one window and raises
:class:`PaginationLoopError` on

- a page token that was already handed out in this window (a token is a position: the
  same position twice is a cycle);
- a page whose records are those of the page before (a new token over the same records:
  no progress; compared by their count and the records at both ends). Empty pages are
  not compared: APIs legitimately return an empty page with a token (Google does) and
  the page budget bounds those;
- a window that would need more than ``max_pages`` pages (``max_pages_per_window``):
  whatever the peer does, one window costs a bounded number of requests.

The error is not retried within the poll; the poll fails, is counted and shown, and the
next poll starts from the position of the last batch handed on, after the pipeline's
backoff. Tokens are remembered as digests, so a peer sending huge tokens cannot grow the
guard's memory beyond 32 bytes a page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from forwarder.sources.base import MalformedResponseError, PaginationLoopError

# Real page tokens are a few hundred characters (Calendly's and Google's are ~100-300).
# A token goes into the next request's URL: one of megabytes would be sent back as is.
MAX_PAGE_TOKEN_LENGTH = 16_384


class PageGuard:
    """Checks the pages of one window as they arrive (one guard per window read)."""

    __slots__ = ("_previous", "_tokens", "max_pages", "pages", "what")

    def __init__(self, max_pages: int, what: str) -> None:
        self.max_pages = max(1, max_pages)
        self.what = what
        """The window, for the error message."""
        self.pages = 0
        self._tokens: set[bytes] = set()
        self._previous: bytes | None = None

    def check(self, records: Sequence[Any], next_token: str | None) -> None:
        """Account for one page with ``records`` and the ``next_token`` it hands out
        (``None``: the last page); raises before the page is used."""
        self.pages += 1
        if records:
            # Count and both ends identify a page for this purpose, at a fraction of the
            # cost of hashing every record (a page of 1,000 Google activities is ~1 MB).
            ends = (len(records), records[0], records[-1])
            digest = hashlib.sha256(orjson.dumps(ends, default=repr)).digest()
            if digest == self._previous:
                raise PaginationLoopError(
                    f"page {self.pages} of {self.what} repeats the records of the page "
                    "before it: the API's pagination is looping"
                )
            self._previous = digest
        else:
            self._previous = None
        if not next_token:
            return
        if len(next_token) > MAX_PAGE_TOKEN_LENGTH:
            raise MalformedResponseError(
                f"page token of {len(next_token)} characters (more than "
                f"{MAX_PAGE_TOKEN_LENGTH}) in {self.what}"
            )
        token = hashlib.sha256(next_token.encode("utf-8", "replace")).digest()
        if token in self._tokens:
            raise PaginationLoopError(
                f"page {self.pages} of {self.what} hands out a page token already followed "
                "in this window: the API's pagination is looping"
            )
        self._tokens.add(token)
        if self.pages >= self.max_pages:
            raise PaginationLoopError(
                f"{self.what} has more than {self.max_pages} pages (max_pages_per_window): "
                "the API's pagination does not end"
            )
