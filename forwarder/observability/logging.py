"""Structured JSON logs (structlog), one event per line on stderr, secrets redacted.

The standard library's loggers (aiokafka, asyncio, aiohttp...) go through the same
processors as the daemon's own: the same JSON shape, the same redaction, and a rate limit
so that a library retrying a dead broker every 100 ms does not flood the log.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import orjson
import structlog

from forwarder.observability.redact import REDACTED, Redactor

_SECRET_KEYS = re.compile(r"token|secret|password|passwd|authorization|private_key|assertion", re.I)
# A library logger repeating the same message is shown at most once per this many
# seconds; the next line says how many were held back.
LIBRARY_REPEAT_SECONDS = 60.0

Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]


def secret_redactor(redactor: Redactor) -> Processor:
    """A structlog processor: drop the value of any field whose name looks secret, and
    replace every known secret and credential-shaped string in the others."""

    def redact_secrets(
        _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if value is None:
                continue
            if _SECRET_KEYS.search(key):
                event[key] = REDACTED
            elif isinstance(value, str):
                event[key] = redactor.redact(value)
            elif isinstance(value, dict | list | tuple):
                event[key] = redactor.redact_value(value)
            elif not isinstance(value, int | float | bool):
                event[key] = redactor.redact(str(value))
        return event

    return redact_secrets


class RepeatLimiter(logging.Filter):
    """Lets a library logger's message through once per ``interval`` per (logger,
    message template); counts what it held back and says so on the next line."""

    def __init__(self, interval: float, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._now = now
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = self._now()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if len(self._last) > 1000:  # bounded: forget the oldest templates
            self._last.clear()
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.repeated = held  # shown as `repeated` (lines held back since)
        return True


def _library_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    record = event.get("_record")
    if record is not None:
        event.setdefault("logger", record.name)
        repeated = getattr(record, "repeated", None)
        if repeated:
            event["repeated"] = repeated
    return event


def configure_logging(
    level: str = "info", fmt: str = "json", redactor: Redactor | None = None
) -> Redactor:
    """Route structlog and the standard library's logging to stderr, through one chain
    of processors ending in ``redactor`` (a new one when not given, returned)."""
    redactor = redactor if redactor is not None else Redactor()
    numeric = logging.getLevelName(level.upper())
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
    redact = secret_redactor(redactor)
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _library_fields, structlog.processors.format_exc_info],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact,
                renderer,
            ],
        )
    )
    handler.addFilter(RepeatLimiter(LIBRARY_REPEAT_SECONDS))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    # Libraries speak from warning up (aiokafka's info lines are per connection).
    root.setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
    return redactor


def get_logger(name: str, **context: Any) -> Any:
    """A structlog logger whose lines carry ``logger=name`` and the given context."""
    return structlog.get_logger().bind(logger=name, **context)


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()
