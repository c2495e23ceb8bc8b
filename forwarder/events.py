"""The records that flow through the pipeline: normalized events, batches and dead letters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from forwarder.checkpoint.base import Checkpoint


class Event:
    """One normalized audit event, shared by every sink it fans out to.

    ``document`` is the ECS document; ``raw`` is the record exactly as the API returned it.
    Encodings are cached per format so that several sinks with the same format serialize
    the event once.

    Once :meth:`seal` has encoded the formats the sinks need, the event lets go of its
    document: a queued event then holds one ``bytes`` per format instead of a tree of a few
    dozen dicts and lists, which the garbage collector no longer walks and the allocator
    frees while it is still in cache. ``document`` is decoded again from the ECS encoding
    if anything asks for it later (a dead letter, a format nobody announced).

    ``mapped`` is False when the event name / namespace is not in the catalog and was
    mapped generically (forwarded all the same, and counted); ``source`` is the id of the
    configured source that read it (set by the source).
    """

    __slots__ = (
        "_document",
        "_ecs",
        "_encoded",
        "_raw",
        "action",
        "id",
        "mapped",
        "provider",
        "source",
        "timestamp",
    )

    def __init__(
        self,
        id: str,
        timestamp: float,
        provider: str,
        action: str,
        document: dict[str, Any],
        raw: Mapping[str, Any],
        mapped: bool = True,
        source: str = "",
    ) -> None:
        self.id = id
        self.timestamp = timestamp
        self.provider = provider
        self.action = action
        self._document: dict[str, Any] | None = document
        self._raw: Mapping[str, Any] | None = raw
        self.mapped = mapped
        self.source = source
        # The ECS encoding has a slot of its own: it is the one nearly every sink uses.
        self._ecs: bytes | None = None
        self._encoded: dict[str, bytes] | None = None

    @property
    def document(self) -> dict[str, Any]:
        """The ECS document (decoded again from the ECS encoding once sealed)."""
        document = self._document
        if document is None:
            # Sealed: the ECS encoding is always kept, so this is the same document.
            document = self._document = orjson.loads(self._ecs)  # type: ignore[arg-type]
        return document

    @document.setter
    def document(self, document: dict[str, Any]) -> None:
        # A new document: the encodings made from the old one are stale.
        self._document = document
        self._ecs = self._encoded = None

    @property
    def sealed(self) -> bool:
        """Whether :meth:`seal` has released the document."""
        return self._document is None

    @property
    def raw(self) -> Mapping[str, Any]:
        """The API record (decoded again from ECS ``event.original`` once sealed)."""
        raw = self._raw
        if raw is None:
            original = self.document["event"]["original"]
            raw = self._raw = orjson.loads(original)
        return raw

    def seal(self, formats: Iterable[str] = ()) -> None:
        """Encode ECS and every one of ``formats`` now, then release the document and,
        when ``event.original`` holds it, the record. ECS is encoded even when no sink
        wants it: it is what the document is decoded from if anything asks for it."""
        document = self._document
        if document is None:
            return
        try:
            if self._ecs is None:
                self._ecs = orjson.dumps(document)
            for fmt in formats:
                if fmt != "ecs":
                    self.encoded(fmt)
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            # Left as it is: the sink that cannot encode it dead-letters it as
            # ``unencodable``, as for any event; a source must not fail on it.
            return
        self._document = None
        event = document.get("event")
        if type(event) is dict and type(event.get("original")) is str:
            self._raw = None

    def encoded(self, fmt: str) -> bytes:
        """The event serialized as ``ecs`` (normalized JSON), ``ocsf`` (OCSF 1.7) or
        ``raw`` (the API record)."""
        if fmt == "ecs":
            cached = self._ecs
            if cached is None:
                cached = self._ecs = orjson.dumps(self._document)
            return cached
        encodings = self._encoded
        if encodings is None:
            encodings = self._encoded = {}
        cached = encodings.get(fmt)
        if cached is None:
            if fmt == "raw":
                cached = orjson.dumps(self.raw)
            elif fmt == "ocsf":
                # Imported here: the schema package imports this module.
                from forwarder.schema.ocsf import to_ocsf

                cached = orjson.dumps(to_ocsf(self))
            else:
                raise ValueError(f"unknown event format {fmt!r}")
            encodings[fmt] = cached
        return cached

    def __repr__(self) -> str:
        return (
            f"Event(id={self.id!r}, provider={self.provider!r}, action={self.action!r}, "
            f"timestamp={self.timestamp!r}, source={self.source!r})"
        )


@dataclass(slots=True)
class DeadLetter:
    """Something that can never be delivered, with the reason, kept for a human to look at.

    ``stage`` is ``source`` (a malformed API record) or ``sink`` (a sink refused it for good).
    """

    stage: str
    reason: str
    source: str
    payload: Any
    sink: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class Batch:
    """Events read from one source in source order, and the cursor to commit after them.

    ``checkpoint`` is what this batch changes in the source's state (its cursor, the keys
    of the records it delivered, the keys that expire), committed once this batch and
    every batch before it have been acknowledged by every sink; ``None`` leaves the state
    where it is. ``dead_letters`` are malformed records from the same page: they are
    written to the dead-letter path before the checkpoint can move past them.
    """

    source: str
    events: list[Event]
    checkpoint: Checkpoint | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    cursor_time: float | None = None
    """Event time the checkpoint stands for (everything before it is read), for metrics."""
