"""The file sink: NDJSON appended to a local file, fsynced before acknowledging."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from forwarder.config.model import FileSinkConfig
from forwarder.events import Event
from forwarder.sinks.base import SendResult


class FileSink:
    """Appends one encoded event per line.

    On start a torn last line (left by a crash in the middle of a write) is cut off: it
    was never acknowledged, so the pipeline sends those events again.
    """

    def __init__(self, sink_id: str, config: FileSinkConfig) -> None:
        self.id = sink_id
        self.format = config.format
        self.reads_documents = False
        self.path = Path(config.path)
        self._fsync = config.fsync
        self._handle: BinaryIO | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+b")  # noqa: SIM115 - kept open for the sink's lifetime
        size = handle.seek(0, os.SEEK_END)
        keep = _end_of_last_complete_line(handle, size)
        if keep != size:
            handle.truncate(keep)
            os.fsync(handle.fileno())
        self._handle = handle

    async def send(self, events: Sequence[Event]) -> SendResult:
        fmt = self.format
        data = b"\n".join([event.encoded(fmt) for event in events]) + b"\n"
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as error:
            return SendResult.retry_later(f"write to {self.path} failed: {error.strerror}")
        return SendResult.acknowledged()

    def _write(self, data: bytes) -> None:
        if self._handle is None:
            self._open()
        assert self._handle is not None
        self._handle.write(data)
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())

    async def aclose(self) -> None:
        if self._handle is not None:
            await asyncio.to_thread(self._handle.close)
            self._handle = None


def _end_of_last_complete_line(handle: BinaryIO, size: int) -> int:
    """Offset just past the last newline (0 if there is none), scanning backwards."""
    position = size
    while position > 0:
        start = max(0, position - 65536)
        handle.seek(start)
        chunk = handle.read(position - start)
        if position == size and chunk.endswith(b"\n"):
            return size
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        position = start
    return 0
