"""The stdout sink: NDJSON on standard output (for piping and debugging)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import BinaryIO

from forwarder.config.model import StdoutSinkConfig
from forwarder.events import Event
from forwarder.sinks.base import SendResult


class StdoutSink:
    """Writes one encoded event per line and flushes before acknowledging."""

    def __init__(self, sink_id: str, config: StdoutSinkConfig, stream: BinaryIO | None = None):
        self.id = sink_id
        self.format = config.format
        self.reads_documents = False
        self._stream = stream if stream is not None else sys.stdout.buffer

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Event]) -> SendResult:
        fmt = self.format
        data = b"\n".join([event.encoded(fmt) for event in events]) + b"\n"
        try:
            await asyncio.to_thread(self._write, data)
        except (OSError, ValueError) as error:
            return SendResult.retry_later(f"write to stdout failed: {error}")
        return SendResult.acknowledged()

    def _write(self, data: bytes) -> None:
        self._stream.write(data)
        self._stream.flush()

    async def aclose(self) -> None:
        return None
