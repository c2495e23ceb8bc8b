"""Sources split across replicas: which shard owns a source, and which shard this is.

Ownership is rendezvous (highest random weight) hashing of the source id: each shard gets
a weight from a stable hash of ``(source id, shard)`` and the highest weight owns the
source. Every replica computes the same answer from its config alone (no coordination),
and going from ``n`` to ``n + 1`` shards moves only the sources the new shard now wins,
about ``1/(n + 1)`` of them; none move between the old shards (their cursors stay put).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from forwarder.config.loader import ConfigError
from forwarder.config.model import ShardConfig

# A StatefulSet pod is named `<statefulset>-<ordinal>`, and that is its hostname.
_ORDINAL = re.compile(r"-(\d+)$")


def weight(source_id: str, shard: int) -> int:
    """The stable weight of ``shard`` for ``source_id`` (the same in every process and
    Python version, unlike ``hash()``, which is salted per process)."""
    digest = hashlib.blake2b(f"{source_id}\0{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(source_id: str, count: int) -> int:
    """The shard (``0 .. count - 1``) that runs ``source_id``."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, not {count}")
    if count == 1:
        return 0
    # Ties (a 64-bit collision) go to the lower shard: max() keeps the first maximum.
    return max(range(count), key=lambda shard: weight(source_id, shard))


@dataclass(frozen=True)
class Shard:
    """This replica's shard: ``index`` of ``count``."""

    index: int
    count: int

    def owns(self, source_id: str) -> bool:
        return owner(source_id, self.count) == self.index

    def owned(self, source_ids: Iterable[str]) -> list[str]:
        """The ids of ``source_ids`` this shard runs, in their order."""
        return [source_id for source_id in source_ids if self.owns(source_id)]


def hostname_ordinal(hostname: str) -> int | None:
    """The trailing ``-<n>`` of a StatefulSet pod's name, or ``None``."""
    match = _ORDINAL.search(hostname.split(".", 1)[0])
    return int(match.group(1)) if match else None


def resolve_shard(
    config: ShardConfig,
    environ: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> Shard:
    """This replica's shard from ``shard`` in the config; without ``index``, the ordinal of
    the hostname (``HOSTNAME`` first, then the system's name). Raises ConfigError naming
    ``shard.index`` when it cannot be known or is out of range."""
    if config.count == 1:
        return Shard(0, 1)
    if config.index is not None:
        return Shard(config.index, config.count)
    environ = os.environ if environ is None else environ
    name = environ.get("HOSTNAME") or hostname or socket.gethostname()
    ordinal = hostname_ordinal(name)
    if ordinal is None:
        raise ConfigError(
            "shard.index",
            f"not set, and the hostname {name!r} does not end in -<ordinal> (a StatefulSet "
            f"pod's name): set it to this replica's index (0..{config.count - 1})",
        )
    if ordinal >= config.count:
        raise ConfigError(
            "shard.index",
            f"the hostname {name!r} gives index {ordinal}, not below shard.count "
            f"({config.count}): set shard.count to the number of replicas",
        )
    return Shard(ordinal, config.count)
