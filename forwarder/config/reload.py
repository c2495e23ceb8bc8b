"""What a reload changes: the source set of a new config against the running one.

A reload applies the source set (``sources`` and ``sources_dir``) and the Google project
budgets (``google_quota``): sources added are started, sources removed are drained and
stopped (their cursors stay), sources whose settings or secret files changed are drained
and started again with the new ones, and the others are not touched. Every other section
(sinks, pipeline, state, shard, ...) takes effect at the next restart, and a reload that
changes one says so.

A source's secret files (``token_file``, ``credentials_file``) count as its settings: a
rotated token or key, written in place or by a Secret update, is picked up by a reload.
Only a digest of their contents is kept, never the contents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from forwarder.config.model import Config, SourceConfig
from forwarder.config.sources_dir import source_files

# The settings of a source that name a file holding its secret.
SECRET_FILE_KEYS = ("token_file", "credentials_file")
# The sections a reload applies; any other change needs a restart.
RELOADED_SECTIONS = frozenset({"sources", "sources_dir", "google_quota"})


def secrets_digest(config: SourceConfig) -> bytes:
    """A digest of the contents of ``config``'s secret files (an unreadable file digests
    as its error, so that it compares unequal to any content and to a later repair)."""
    digest = hashlib.blake2b(digest_size=16)
    for key in SECRET_FILE_KEYS:
        path = getattr(config, key, None)
        if path is None:
            continue
        digest.update(key.encode() + b"\0")
        try:
            digest.update(Path(path).read_bytes())
        except OSError as error:
            digest.update(f"\0unreadable:{error.errno}".encode())
        digest.update(b"\0")
    return digest.digest()


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What decides whether a running source must restart: its settings and a digest of
    its secret files."""

    config: SourceConfig
    secrets: bytes

    @classmethod
    def of(cls, config: SourceConfig) -> SourceSpec:
        return cls(config, secrets_digest(config))


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The sources a reload adds, removes, restarts with new settings, and leaves alone
    (ids in config order), and the sections whose change waits for a restart."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    restart_needed: tuple[str, ...]

    @property
    def changes_sources(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def plan_reload(
    running: Mapping[str, SourceSpec],
    wanted: Mapping[str, SourceSpec],
    old: Config,
    new: Config,
) -> ReloadPlan:
    """The plan that takes the ``running`` sources to the ``wanted`` ones (both: the
    sources this replica owns, by id)."""
    added = tuple(source_id for source_id in wanted if source_id not in running)
    removed = tuple(source_id for source_id in running if source_id not in wanted)
    kept = [source_id for source_id in wanted if source_id in running]
    changed = tuple(source_id for source_id in kept if running[source_id] != wanted[source_id])
    unchanged = tuple(source_id for source_id in kept if running[source_id] == wanted[source_id])
    return ReloadPlan(added, removed, changed, unchanged, tuple(sections_changed(old, new)))


def sections_changed(old: Config, new: Config) -> list[str]:
    """The top-level sections other than the source set that differ between two configs."""
    return [
        name
        for name in type(old).model_fields
        if name not in RELOADED_SECTIONS and getattr(old, name) != getattr(new, name)
    ]


def watched_files_digest(config_path: Path, config: Config) -> bytes:
    """A digest of every file a reload would read: the config file, the YAML files of its
    ``sources_dir`` (names and contents) and every source's secret files. The watch
    reloads when it changes."""
    digest = hashlib.blake2b(digest_size=16)
    _add_file(digest, config_path)
    if config.sources_dir is not None:
        try:
            files: Iterable[Path] = source_files(Path(config.sources_dir).expanduser())
        except OSError as error:
            digest.update(f"\0sources_dir unreadable:{error.errno}".encode())
            files = ()
        for file in files:
            digest.update(file.name.encode() + b"\0")
            _add_file(digest, file)
    for source_id, source in config.sources.items():
        digest.update(source_id.encode() + b"\0" + secrets_digest(source))
    return digest.digest()


def _add_file(digest: hashlib._Hash, path: Path) -> None:
    try:
        digest.update(path.read_bytes())
    except OSError as error:
        digest.update(f"\0unreadable:{error.errno}".encode())
    digest.update(b"\0")
