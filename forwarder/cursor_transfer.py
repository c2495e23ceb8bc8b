"""``forwarder cursors export`` and ``forwarder cursors import``: moving sources' state
between state directories (resharding, a replica replaced) without losing or repeating
an event. The line format is :mod:`forwarder.checkpoint.transfer`.

Export only reads (safe while the daemon runs: each source is one read transaction).
Import validates the whole input first, then writes every source in one transaction, and
refuses while a daemon holds the state directory: it is all or nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from forwarder.checkpoint.base import CheckpointCorruptError
from forwarder.checkpoint.sqlite import ExportedState, SqliteCheckpointStore
from forwarder.checkpoint.statedir import (
    CHECKPOINTS,
    StateDirectoryLock,
    StateError,
    check_trusted_directory,
    prepare_state,
)
from forwarder.checkpoint.transfer import TransferFormatError, decode_lines, encode_state
from forwarder.config.loader import ConfigError
from forwarder.config.model import Config
from forwarder.shard import resolve_shard

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_STATE = 3
# An export holds cursors: state, readable by the daemon's user only.
EXPORT_FILE_MODE = 0o600


def _say(message: str) -> None:
    print(f"forwarder: {message}", file=sys.stderr)


def _owned_sources(config: Config) -> list[str]:
    """The sources this replica runs (all of them without sharding). Raises ConfigError
    when the shard index cannot be told."""
    if config.shard.count <= 1:
        return list(config.sources)
    return resolve_shard(config.shard).owned(config.sources)


def export_cursors(config: Config, requested: Sequence[str] | None, output: str) -> int:
    """Write one line per source with state to ``output`` (``-``: stdout). ``requested``
    sources must each have state; by default every source this replica runs that has
    state is written. Nothing is written unless every source could be read."""
    try:
        check_trusted_directory(Path(config.state_dir), "state directory")
        check_trusted_directory(Path(config.state_dir) / CHECKPOINTS, "checkpoints directory")
    except StateError as error:
        _say(f"state error: {error}")
        return EXIT_STATE
    try:
        source_ids = list(requested) if requested else _owned_sources(config)
    except ConfigError as error:
        for line in error.lines():
            _say(f"config error: {line}")
        return EXIT_CONFIG
    store = SqliteCheckpointStore(config.state_dir)
    states: list[ExportedState] = []
    try:
        for source_id in source_ids:
            state = store.export_sync(source_id)
            if state is None:
                if requested:
                    _say(f"state error: source {source_id!r} has no committed state to export")
                    return EXIT_STATE
                continue
            states.append(state)
    except CheckpointCorruptError as error:
        _say(f"state error: {error}")
        return EXIT_STATE
    finally:
        store.close()
    data = b"".join(
        encode_state(state, config.sources[state.source].type) + b"\n" for state in states
    )
    try:
        _write_output(output, data)
    except OSError as error:
        _say(f"cannot write {output}: {error.strerror or error}")
        return EXIT_STATE
    names = ", ".join(state.source for state in states) or "none had state"
    _say(f"exported {len(states)} source(s) ({names})")
    return EXIT_OK


def _write_output(output: str, data: bytes) -> None:
    if output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    # Never through a link; an existing file is made 0600 before anything is written.
    descriptor = os.open(
        output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, EXPORT_FILE_MODE
    )
    try:
        os.fchmod(descriptor, EXPORT_FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def import_cursors(config: Config, source: str, *, replace: bool) -> int:
    """Import an export (``source``: a file, or ``-`` for stdin) into the config's state
    directory: every line checked first (exit 2 naming the line), then the daemon's lock
    taken (exit 3 if one runs), then every source written in one transaction. With
    sharding, lines of sources another replica runs are skipped."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as error:
        _say(f"cannot read {source}: {error.strerror or error}")
        return EXIT_CONFIG
    types = {source_id: source_config.type for source_id, source_config in config.sources.items()}
    try:
        decoded = decode_lines(data.splitlines(), types)
    except TransferFormatError as error:
        _say(f"{source}: {error}; nothing was imported")
        return EXIT_CONFIG
    if not decoded:
        _say(f"{source} holds no source (an empty export?); nothing was imported")
        return EXIT_CONFIG
    try:
        owned = set(_owned_sources(config))
    except ConfigError as error:
        for line in error.lines():
            _say(f"config error: {line}")
        return EXIT_CONFIG
    states = [state for state, _ in decoded if state.source in owned]
    for state, _ in decoded:
        if state.source not in owned:
            _say(f"skipped {state.source}: another replica runs it (shard assignment)")
    if not states:
        _say("no source of the input runs on this replica; nothing was imported")
        return EXIT_OK
    try:
        prepare_state(config, create=True, files=True)
    except StateError as error:
        _say(f"state error: {error}")
        return EXIT_STATE
    lock = StateDirectoryLock(config.state_dir)
    try:
        lock.acquire()
    except StateError as error:
        _say(f"{error}; stop it before importing cursors")
        return EXIT_STATE
    store = SqliteCheckpointStore(config.state_dir)
    try:
        if not replace:
            present = [state.source for state in states if store.has_state_sync(state.source)]
            if present:
                _say(
                    f"state error: {', '.join(present)} already ha"
                    f"{'s' if len(present) == 1 else 've'} state in {config.state_dir}; "
                    "add --replace to overwrite it; nothing was imported"
                )
                return EXIT_STATE
        store.import_sync(states, replace=replace)
    except CheckpointCorruptError as error:
        _say(f"state error: {error}; nothing was imported")
        return EXIT_STATE
    except OSError as error:
        _say(f"state error: {error}; nothing was imported")
        return EXIT_STATE
    finally:
        store.close()
        lock.release()
    print(
        f"imported {len(states)} source(s): "
        + ", ".join(f"{state.source} ({len(state.seen)} seen keys)" for state in states)
    )
    return EXIT_OK
