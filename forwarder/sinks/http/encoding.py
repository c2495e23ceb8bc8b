"""Request bodies: NDJSON, a JSON array, Splunk HEC events or an Elasticsearch ``_bulk``.

Each event becomes one *chunk* of bytes; a request body is its chunks joined. The event's
cached encoding is embedded as is (``orjson.Fragment``), never parsed and dumped again.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import orjson

from forwarder.config.model import HttpSinkConfig
from forwarder.events import Event

CONTENT_TYPES = {
    "ndjson": "application/x-ndjson",
    "json_array": "application/json",
    "splunk_hec": "application/json",
    "elasticsearch_bulk": "application/x-ndjson",
}


class BodyEncoder:
    """Turns events into chunks and chunks into a request body for one encoding."""

    def __init__(self, config: HttpSinkConfig) -> None:
        self.encoding = config.encoding
        self.content_type = CONTENT_TYPES[config.encoding]
        self._format = config.format
        self._config = config
        self._hostname = socket.gethostname()
        self._routes: dict[tuple[str, str, str], str] = {}
        self.chunk: Callable[[Event], bytes] = {
            "ndjson": self._line,
            "json_array": self._element,
            "splunk_hec": self._hec_event,
            "elasticsearch_bulk": self._bulk_item,
        }[config.encoding]

    def body(self, chunks: Sequence[bytes]) -> bytes:
        if self.encoding == "json_array":
            return b"[" + b",".join(chunks) + b"]"
        return b"".join(chunks)

    def _line(self, event: Event) -> bytes:
        return event.encoded(self._format) + b"\n"

    def _element(self, event: Event) -> bytes:
        return event.encoded(self._format)

    def _per_route(self, template: str, event: Event) -> str:
        key = (template, event.provider, event.source)
        value = self._routes.get(key)
        if value is None:
            value = self._routes[key] = template.format(
                provider=event.provider, source=event.source
            )
        return value

    def _hec_event(self, event: Event) -> bytes:
        config = self._config
        envelope = {
            "time": round(event.timestamp, 3),
            "host": self._hostname,
            "source": self._per_route(config.splunk_source, event),
            "sourcetype": config.splunk_sourcetype,
            "event": orjson.Fragment(event.encoded(self._format)),
        }
        if config.splunk_index:
            envelope["index"] = config.splunk_index
        return orjson.dumps(envelope) + b"\n"

    def _bulk_item(self, event: Event) -> bytes:
        # `create` with the deterministic id: a re-sent event is refused as a conflict
        # (409) instead of being indexed twice.
        action = {"create": {"_index": self._per_route(self._config.index, event), "_id": event.id}}
        return orjson.dumps(action) + b"\n" + event.encoded(self._format) + b"\n"
