"""The Source protocol and the error taxonomy every source raises."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from forwarder.events import Batch


class SourceError(Exception):
    """A poll failed; the pipeline backs off and polls again from the last batch handed on."""

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
        self.exhausted = False
        """Set once ``max_attempts`` were spent on it: not retried again by an outer loop."""


class MalformedResponseError(TransientSourceError):
    """The API answered 200 with a body that is not the documented shape (truncated JSON...)."""

    error_type = "malformed_response"


class CredentialsError(SourceError):
    """The API refused the credentials (401/403): needs an operator, retried slowly."""

    error_type = "credentials"


class ResponseTooLargeError(TransientSourceError):
    """A response body grew past ``max_response_bytes`` once decompressed (a runaway or
    hostile peer, a gzip bomb, a body that never ends): retried, then the poll fails."""

    error_type = "response_too_large"


class OversizedPageError(MalformedResponseError):
    """A page holds more records than the page size asked for: refused before any of its
    records is normalized (a peer must not decide how much one batch holds)."""

    error_type = "oversized_page"


class PaginationLoopError(SourceError):
    """The API's pagination does not end: a page token repeated within one window, a page
    identical to the one before, or more than ``max_pages_per_window`` pages. Not retried
    within the poll: the poll fails and the next one starts again from the position of
    the last batch handed on, after the pipeline's backoff."""

    error_type = "pagination_loop"


class DeadLetterWriteError(SourceError):
    """Malformed records of a page could not be written to the dead-letter path (disk
    full, read-only volume): the batch is not handed on and the poll is retried."""

    error_type = "dead_letter_write"


class Source(Protocol):
    """A poller over one audit-log API.

    ``restore`` sets the position from what the store loaded: ``{**cursor, "seen":
    {key: time}}`` (every live key), or ``None`` on first start; a checkpoint file of an
    earlier release has the same shape. ``poll`` runs one polling cycle and yields every
    batch that is available now, in source order, each carrying its
    :class:`~forwarder.checkpoint.base.Checkpoint`: what the batch changes (the cursor,
    the keys of the records it delivered, the keys that expire), never the whole ``seen``
    map. The pipeline awaits between batches, which is how backpressure reaches the API
    calls.

    **A source applies a batch's change only after the ``yield`` of that batch returns.**
    It builds the batch (and its checkpoint) without touching its cursor or ``seen``, and
    applies the change to them once the consumer asks for the next batch: that request is
    what says the batch was handed on. When a batch cannot be handed on (a dead-letter
    write fails, shutdown, a bug) the pipeline stops iterating and closes the poll, so the
    generator ends at that ``yield`` and the change is never applied; the next poll, after
    a backoff, starts from the last batch handed on. So no record of a batch that was not
    handed on can be skipped as "already seen", and the pipeline never needs to restore a
    source. (A source may offer ``checkpoint()``, its whole in-memory state in the shape
    ``restore`` takes, for tests; the pipeline does not use it.)

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
    future-dated records, a rate-limit hold...), by a short key, while they hold; shown in
    ``/readyz``. Read-only for the pipeline (a source may compute it on each read)."""

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None: ...

    def poll(self) -> AsyncIterator[Batch]: ...

    async def aclose(self) -> None: ...
