"""Structured JSON logs (structlog), one event per line on stderr, secrets redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

_SECRET_KEYS = re.compile(r"token|secret|password|passwd|authorization|private_key|assertion", re.I)
_BEARER = re.compile(r"(Bearer|Basic|Splunk)\s+[A-Za-z0-9._~+/=-]+", re.I)
_QUERY_SECRET = re.compile(
    r"([?&;\s](?:access_token|token|key|password|secret|assertion|sig)=)[^&\s\"']+", re.I
)
REDACTED = "[REDACTED]"


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop the value of any field whose name looks secret, and any credential that slipped
    into a message, so no token reaches a log line."""
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value is not None:
            event[key] = REDACTED
        elif isinstance(value, str) and ("=" in value or " " in value):
            value = _BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", value)
            event[key] = _QUERY_SECRET.sub(lambda match: match.group(1) + REDACTED, value)
    return event


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route structlog (and the standard library's logging) to stderr."""
    numeric = logging.getLevelName(level.upper())
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(message)s"
    )


def get_logger(name: str, **context: Any) -> Any:
    """A structlog logger whose lines carry ``logger=name`` and the given context."""
    return structlog.get_logger().bind(logger=name, **context)


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()
