"""The Source protocol and the error taxonomy every source raises."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from forwarder.events import Batch


class SourceError(Exception):
    """A poll failed; the pipeline backs off and polls again from the last yielded batch."""

    error_type = "error"


class TransientSourceError(SourceError):
    """Network trouble, 5xx, rate limits: worth retrying after ``retry_after`` seconds.

    ``rate_limited``: the API asked this client to slow down (429, a quota error), so
    every request of the source should wait, not only the one refused.
    """

    error_type = "transient"

    def __init__(
        self, message: str, retry_after: float | None = None, *, rate_limited: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class MalformedResponseError(TransientSourceError):
    """The API answered 200 with a body that is not the documented shape (truncated JSON...)."""

    error_type = "malformed_response"


class CredentialsError(SourceError):
    """The API refused the credentials (401/403): needs an operator, retried slowly."""

    error_type = "credentials"


class Source(Protocol):
    """A poller over one audit-log API.

    ``restore`` sets the position from the committed checkpoint (``None``: first start).
    ``poll`` runs one polling cycle and yields every batch that is available now, in
    source order, each carrying the checkpoint to commit after it. The pipeline awaits
    between batches, which is how backpressure reaches the API calls. When ``poll`` raises,
    the source's in-memory position is the one after the last batch it yielded.

    A source far behind may read several time windows concurrently
    (:mod:`forwarder.sources.backfill`), but it still yields batches in source order, and
    reads ahead only into a bounded buffer that stops filling while the pipeline waits.
    """

    id: str
    provider: str
    poll_interval: float
    seal_formats: tuple[str, ...] | None
    """The formats to encode every new event in as soon as it is normalized, releasing its
    document (:meth:`Event.seal`); ``None`` keeps the documents (set by the daemon from
    its sinks)."""
    warnings: dict[str, str]
    """Conditions an operator should see that do not stop delivery (a capped clock offset,
    future-dated records...), by a short key; shown in ``/readyz``."""

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None: ...

    def poll(self) -> AsyncIterator[Batch]: ...

    async def aclose(self) -> None: ...
