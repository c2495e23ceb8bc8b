"""Dead letters as NDJSON files, fsynced before the pipeline moves past them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from forwarder.checkpoint.safefile import ensure_private_directory, open_state_file, write_all
from forwarder.clock import Clock
from forwarder.events import DeadLetter
from forwarder.observability.metrics import Metrics
from forwarder.observability.redact import Redactor
from forwarder.timeutil import format_rfc3339


class FileDeadLetterQueue:
    """Appends one JSON object per dead letter to ``<directory>/dead-letter.ndjson``.

    Each line says when, at which stage (``source`` or ``sink``), why (a short reason code
    plus detail) and carries the record itself, so it can be inspected and replayed.
    """

    def __init__(
        self, directory: Path, metrics: Metrics, clock: Clock, redactor: Redactor | None = None
    ) -> None:
        self.path = Path(directory) / "dead-letter.ndjson"
        self._metrics = metrics
        self._clock = clock
        # A detail is often a peer's answer, which may echo a credential.
        self._redactor = redactor
        self._lock = asyncio.Lock()

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        when = format_rfc3339(self._clock.now())
        lines = b"".join(
            orjson.dumps(
                {
                    "time": when,
                    "stage": letter.stage,
                    "reason": letter.reason,
                    "detail": letter.detail,
                    "source": letter.source,
                    "sink": letter.sink,
                    "payload": letter.payload,
                },
                default=repr,
            )
            + b"\n"
            for letter in letters
        )
        if self._redactor is not None:
            lines = self._redactor.redact_bytes(lines)
        async with self._lock:
            await asyncio.to_thread(self._append, lines)
        for letter in letters:
            self._metrics.dead_letters.labels(letter.stage, letter.reason).inc()

    def _append(self, data: bytes) -> None:
        # Raw personal data: a 0600 file in a 0700 directory, never written through a
        # link or into a file planted by another user (an UnsafeStateFileError, handled
        # like a full disk: the batch waits and /readyz says why).
        ensure_private_directory(self.path.parent)
        descriptor = open_state_file(self.path, os.O_WRONLY | os.O_APPEND, create=True)
        try:
            write_all(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
