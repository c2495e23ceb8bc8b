"""Opaque keyset page tokens, bound to the query that produced them.

A token carries the sort key of the row the page stopped at (keyset pagination: rows
arriving meanwhile neither shift nor duplicate the next page) and a hash of the query, so
replaying it with other filters is refused like the real APIs do. An HMAC keeps it
opaque: a client cannot forge or edit one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson

_MAC_BYTES = 12


class PageTokenError(ValueError):
    """The token is malformed, forged, or belongs to another query."""


class PageTokenCodec:
    """Encodes and checks page tokens with a per-simulator secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def query_hash(params: Mapping[str, str]) -> str:
        """A short digest of the query parameters that define the result set."""
        canonical = orjson.dumps(sorted(params.items()))
        return hashlib.sha256(canonical).hexdigest()[:16]

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, query_hash: str, payload: Mapping[str, Any]) -> str:
        body = orjson.dumps({"q": query_hash, **payload})
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def decode(self, token: str, query_hash: str) -> dict[str, Any]:
        """The payload of ``token``; ``PageTokenError`` unless it is genuine and ours."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise PageTokenError("page token is not valid base64") from None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(body)):
            raise PageTokenError("page token is invalid")
        payload = orjson.loads(body)
        if payload.get("q") != query_hash:
            raise PageTokenError("page token belongs to a different query")
        return payload
