"""The records that flow through the pipeline: normalized events, batches and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class Event:
    """One normalized audit event, shared by every sink it fans out to.

    ``document`` is the ECS document; ``raw`` is the record exactly as the API returned it.
    Encodings are cached per format so that several sinks with the same format serialize
    the event once.
    """

    id: str
    timestamp: float
    provider: str
    action: str
    document: dict[str, Any]
    raw: Mapping[str, Any]
    mapped: bool = True
    """False when the event name / namespace is not in the catalog and was mapped
    generically (forwarded all the same, and counted)."""
    source: str = ""
    """Id of the configured source that read it (set by the source)."""
    _encoded: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def encoded(self, fmt: str) -> bytes:
        """The event serialized as ``ecs`` (normalized JSON), ``ocsf`` (OCSF 1.7) or
        ``raw`` (the API record)."""
        cached = self._encoded.get(fmt)
        if cached is None:
            if fmt == "ecs":
                cached = orjson.dumps(self.document)
            elif fmt == "raw":
                cached = orjson.dumps(self.raw)
            elif fmt == "ocsf":
                # Imported here: the schema package imports this module.
                from forwarder.schema.ocsf import to_ocsf

                cached = orjson.dumps(to_ocsf(self))
            else:
                raise ValueError(f"unknown event format {fmt!r}")
            self._encoded[fmt] = cached
        return cached


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

    ``checkpoint`` is the source's whole state to persist once this batch and every batch
    before it have been acknowledged by every sink; ``None`` leaves the cursor where it is.
    ``dead_letters`` are malformed records from the same page: they are written to the
    dead-letter path before the checkpoint can move past them.
    """

    source: str
    events: list[Event]
    checkpoint: dict[str, Any] | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)
    cursor_time: float | None = None
    """Event time the checkpoint stands for (everything before it is read), for metrics."""
