"""ECS ``url.*`` fields from a URL string, parsed once with :func:`urllib.parse.urlsplit`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def url_fields(text: str) -> dict[str, Any] | None:
    """``url.original`` plus the parts present: ``full``, ``scheme``, ``domain``, ``port``,
    ``path``, ``extension``, ``query``, ``fragment``; ``None`` when ``text`` is not a
    parsable URL.

    ``url.full`` is only set for an absolute URL (scheme and host). User information is
    never split out: ``url.password`` would copy a secret into a searchable field.
    """
    try:
        parts = urlsplit(text)
        # Both raise ValueError: an unbalanced IPv6 bracket, a port that is not a number
        # or is out of range.
        hostname = parts.hostname
        port = parts.port
    except ValueError:
        return None
    url: dict[str, Any] = {"original": text}
    if parts.scheme and hostname:
        url["full"] = text
    if parts.scheme:
        url["scheme"] = parts.scheme
    if hostname:
        url["domain"] = hostname
    if port is not None:
        url["port"] = port
    if parts.path:
        url["path"] = parts.path
        # The last segment's extension without the dot (``asmx`` of Exchange.asmx).
        stem, dot, extension = parts.path.rpartition("/")[2].rpartition(".")
        if dot and stem and extension:
            url["extension"] = extension
    if parts.query:
        url["query"] = parts.query
    if parts.fragment:
        url["fragment"] = parts.fragment
    return url
