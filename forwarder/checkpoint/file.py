"""Checkpoints as one small JSON file per source, replaced atomically and durably."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson

from forwarder.checkpoint.base import CheckpointCorruptError

FORMAT_VERSION = 1


class FileCheckpointStore:
    """Stores ``<state_dir>/checkpoints/<source>.json``.

    A commit writes a temporary file, fsyncs it, renames it over the old one and fsyncs
    the directory, so after a crash the file holds either the old or the new checkpoint,
    never a mix. A file that cannot be read raises :class:`CheckpointCorruptError`: a
    silent reset would either lose or duplicate a whole retention period of events.
    """

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "checkpoints"

    def _path(self, source_id: str) -> Path:
        return self.directory / f"{source_id}.json"

    async def load(self, source_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.load_sync, source_id)

    async def commit(self, source_id: str, state: dict[str, Any]) -> None:
        await asyncio.to_thread(self.commit_sync, source_id, state)

    async def reset(self, source_id: str) -> bool:
        return await asyncio.to_thread(self.reset_sync, source_id)

    async def list_sources(self) -> list[str]:
        return await asyncio.to_thread(self.list_sources_sync)

    def load_sync(self, source_id: str) -> dict[str, Any] | None:
        path = self._path(source_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CheckpointCorruptError(
                f"cannot read checkpoint {path}: {error.strerror}"
            ) from None
        try:
            envelope = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise CheckpointCorruptError(f"checkpoint {path} is not valid JSON ({error})") from None
        if (
            not isinstance(envelope, dict)
            or envelope.get("format") != FORMAT_VERSION
            or envelope.get("source") != source_id
            or not isinstance(envelope.get("state"), dict)
        ):
            raise CheckpointCorruptError(
                f"checkpoint {path} does not have the expected format {FORMAT_VERSION} "
                f"envelope for source {source_id!r}"
            )
        return envelope["state"]

    def commit_sync(self, source_id: str, state: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(source_id)
        temporary = path.with_suffix(".json.tmp")
        envelope = {
            "format": FORMAT_VERSION,
            "source": source_id,
            "committed_at": time.time(),
            "state": state,
        }
        data = orjson.dumps(envelope)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(self.directory)

    def reset_sync(self, source_id: str) -> bool:
        try:
            self._path(source_id).unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(self.directory)
        return True

    def list_sources_sync(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(path.stem for path in self.directory.glob("*.json"))

    def envelope_sync(self, source_id: str) -> dict[str, Any] | None:
        """The stored envelope with its commit time, for ``forwarder cursors show``."""
        if self.load_sync(source_id) is None:
            return None
        return orjson.loads(self._path(source_id).read_bytes())


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
