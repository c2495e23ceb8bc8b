"""The Sink protocol and the result of one send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from forwarder.events import Event


@dataclass(slots=True)
class SendResult:
    """What a sink did with a batch.

    - ``retry`` set: nothing in the batch counts as delivered; the pipeline sends the same
      batch again after a backoff (at least ``retry_after`` seconds when given).
    - otherwise every event is acknowledged except those in ``rejected`` (index -> reason),
      which can never be delivered and go to the dead-letter path.
    """

    retry: str | None = None
    retry_after: float | None = None
    rejected: dict[int, str] = field(default_factory=dict)

    @classmethod
    def acknowledged(cls) -> SendResult:
        return cls()

    @classmethod
    def retry_later(cls, reason: str, retry_after: float | None = None) -> SendResult:
        return cls(retry=reason, retry_after=retry_after)


class Sink(Protocol):
    """A destination. ``send`` returns only once the events are durably accepted
    (or refused); the pipeline counts an event as delivered by this sink on return."""

    id: str
    format: str

    async def start(self) -> None: ...

    async def send(self, events: Sequence[Event]) -> SendResult: ...

    async def aclose(self) -> None: ...
