"""The Sink protocol and the result of one send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from forwarder.events import Event


@dataclass(slots=True)
class SendResult:
    """What a sink did with a batch.

    - ``retry`` set: the events not in ``delivered`` or ``rejected`` are sent again after
      a backoff (at least ``retry_after`` seconds when given), for as long as it takes.
    - otherwise every event is acknowledged except those in ``rejected``.

    ``rejected`` maps indexes to a short reason code: those events can never be delivered
    and go to the dead-letter path. Indexes refer to the list passed to ``send``.
    """

    retry: str | None = None
    retry_after: float | None = None
    rejected: dict[int, str] = field(default_factory=dict)
    delivered: frozenset[int] = frozenset()
    details: dict[int, str] = field(default_factory=dict)
    """Optional human detail per rejected index (e.g. the receiver's response body)."""
    error_type: str | None = None
    """With ``retry``: a short code for the failure (``redirect``, ``response_too_large``,
    ``bad_success_body``, ``http_503``...), the ``error_type`` label of
    ``forwarder_sink_errors_total``; ``None`` counts as ``send_failed``."""

    @classmethod
    def acknowledged(cls) -> SendResult:
        return cls()

    @classmethod
    def retry_later(
        cls, reason: str, retry_after: float | None = None, error_type: str | None = None
    ) -> SendResult:
        """Nothing was delivered; send the whole batch again later."""
        return cls(retry=reason, retry_after=retry_after, error_type=error_type)


@dataclass(frozen=True, slots=True)
class Coalescing:
    """How a sink wants queued batches merged before ``send``: up to ``max_events``
    events, waiting at most ``max_wait`` seconds for more once one batch is in hand."""

    max_events: int
    max_wait: float


class Sink(Protocol):
    """A destination. ``send`` returns only once the events are durably accepted
    (or refused); the pipeline counts an event as delivered by this sink on return."""

    id: str
    format: str
    reads_documents: bool
    """True when the sink reads ``Event.document`` field by field (syslog headers, CEF,
    LEEF) rather than only ``Event.encoded``: the sources then keep the documents of
    queued events instead of releasing them once encoded."""

    async def start(self) -> None: ...

    async def send(self, events: Sequence[Event]) -> SendResult: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Reopenable(Protocol):
    """A sink that keeps a file open: SIGHUP makes it close the file and open its
    configured path again (log rotation)."""

    async def reopen(self) -> None: ...
