"""Checkpoints as one JSON file per source, replaced atomically and durably: the store of
releases before the SQLite one (:mod:`forwarder.checkpoint.sqlite`), which imports these
files on first start. Kept as the reader of that format (and its writer, for tests)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from forwarder.checkpoint.base import CheckpointCorruptError
from forwarder.checkpoint.safefile import (
    UnsafeStateFileError,
    ensure_private_directory,
    fsync_directory,
    read_state_file,
    replace_state_file,
)

FORMAT_VERSION = 1


class FileCheckpointStore:
    """Stores ``<state_dir>/checkpoints/<source>.json``.

    A commit writes a temporary file, fsyncs it, renames it over the old one and fsyncs
    the directory, so after a crash the file holds either the old or the new checkpoint,
    never a mix. A file that cannot be read raises :class:`CheckpointCorruptError`: a
    silent reset would either lose or duplicate a whole retention period of events.

    Files are 0600 in a 0700 directory, opened without following links (a link where a
    checkpoint should be is refused, see ``safefile``).

    Its ``commit`` takes a source's whole state, as earlier releases did (every commit
    rewrote everything seen): it is no longer a ``CheckpointStore``, whose commits are
    :class:`~forwarder.checkpoint.base.Checkpoint` changes.
    """

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "checkpoints"

    def path(self, source_id: str) -> Path:
        """Where the checkpoint of ``source_id`` is (or was) kept."""
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
        envelope = self.envelope_sync(source_id)
        return None if envelope is None else envelope["state"]

    def envelope_sync(self, source_id: str) -> dict[str, Any] | None:
        """The stored envelope (state and commit time; ``forwarder cursors show``)."""
        path = self.path(source_id)
        try:
            data = read_state_file(path)
        except FileNotFoundError:
            return None
        except UnsafeStateFileError as error:
            raise CheckpointCorruptError(f"cannot read checkpoint: {error.strerror}") from None
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
        return envelope

    def commit_sync(self, source_id: str, state: dict[str, Any]) -> None:
        ensure_private_directory(self.directory)
        envelope = {
            "format": FORMAT_VERSION,
            "source": source_id,
            "committed_at": time.time(),
            "state": state,
        }
        replace_state_file(self.path(source_id), orjson.dumps(envelope))

    def reset_sync(self, source_id: str) -> bool:
        try:
            self.path(source_id).unlink()
        except FileNotFoundError:
            return False
        fsync_directory(self.directory)
        return True

    def list_sources_sync(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(path.stem for path in self.directory.glob("*.json"))
