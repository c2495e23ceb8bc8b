"""What a state commit costs with a Google-sized ``seen`` set: the SQLite store against
the JSON checkpoint file of earlier releases (which rewrote everything on every commit).

    .venv/bin/python bench/state_store.py [--keys 1000000] [--batch 1000] [--commits 40]

Steady state: ``--keys`` keys stored; each commit adds ``--batch`` new ones and expires
as many old ones (a settle window sliding on). Reported per store and key shape:

- ``disk_bytes_per_commit``: bytes the process wrote to disk per commit
  (``/proc/self/io`` ``write_bytes``: the WAL, and SQLite's checkpoints of it into the
  database, amortized), and for SQLite ``wal_bytes_per_commit``, the WAL appended by one
  commit (checkpoints off);
- commit latency (median, p95, max; each commit is fsynced);
- for SQLite, ``load_seconds`` (open, check and load every key into a dict) and the RSS
  the load added, and ``migrate_seconds`` (importing the JSON file of the same state).

Key shapes: ``digest`` (16 random bytes, as the Google source's activity keys and the
event ids are), ``time_prefixed`` (the activity's time, big-endian, then 8 bytes of
digest). The store orders keys by their time first, so both cost the same; with keys in
key order, random digests cost about one page written per key (15.9 MB per commit here,
against 0.33 MB time-prefixed).
Runs on the directory given by ``--directory`` (default: a temporary directory under the
current one; use a real disk, not tmpfs, or ``write_bytes`` is 0).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from forwarder.checkpoint.base import Checkpoint, SeenKey
from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.checkpoint.sqlite import SqliteCheckpointStore

SOURCE = "gcal"
# One key per 3.6 ms: a million keys are the three hours of a 100 events/s domain.
SPACING = 0.0036
T0 = 1_800_000_000.0


def _write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _keys(shape: str, rng: random.Random) -> Callable[[float], SeenKey]:
    if shape == "digest":
        return lambda when: rng.randbytes(16)
    if shape == "time_prefixed":
        return lambda when: int(when * 1_000_000).to_bytes(8, "big") + rng.randbytes(8)
    if shape == "hex_ids":  # what the JSON files held: event ids as 32 hex digits
        return lambda when: rng.randbytes(16).hex()
    raise ValueError(shape)


def _stream(shape: str, start: int) -> Iterator[tuple[SeenKey, float]]:
    rng = random.Random(start)
    make = _keys(shape, rng)
    n = start
    while True:
        when = T0 + n * SPACING
        yield make(when), when
        n += 1


def _take(stream: Iterator[tuple[SeenKey, float]], count: int) -> dict[SeenKey, float]:
    return dict(next(stream) for _ in range(count))


def _latencies(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "commit_ms_median": round(statistics.median(ordered) * 1000, 2),
        "commit_ms_p95": round(ordered[int(len(ordered) * 0.95)] * 1000, 2),
        "commit_ms_max": round(ordered[-1] * 1000, 2),
    }


def bench_sqlite(
    directory: Path, shape: str, keys: int, batch: int, commits: int
) -> dict[str, Any]:
    store = SqliteCheckpointStore(directory)
    stream = _stream(shape, 0)
    initial = _take(stream, keys)
    newest = max(initial.values())
    store.commit_sync(SOURCE, Checkpoint({"head": newest}, initial))
    del initial
    connection = lambda: store._connection  # noqa: E731 - the store's own, on its thread
    store._run(lambda: connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    database_bytes = os.path.getsize(store.path)
    wal = Path(f"{store.path}-wal")

    def commit_round(count: int) -> list[float]:
        nonlocal newest
        samples = []
        for _ in range(count):
            added = _take(stream, batch)
            newest = max(added.values())
            expire = newest - keys * SPACING  # keeps `keys` keys stored
            checkpoint = Checkpoint({"head": newest}, added, expire)
            started = time.perf_counter()
            store.commit_sync(SOURCE, checkpoint)
            samples.append(time.perf_counter() - started)
        return samples

    # The WAL one commit appends (no checkpoint in between).
    store._run(lambda: connection().execute("PRAGMA wal_autocheckpoint=0").fetchall())
    wal_before = wal.stat().st_size
    commit_round(5)
    wal_per_commit = (wal.stat().st_size - wal_before) / 5
    store._run(lambda: connection().execute("PRAGMA wal_autocheckpoint=1000").fetchall())
    store._run(lambda: connection().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    # Everything written to disk, checkpoints included, in the steady state.
    written = _write_bytes()
    samples = commit_round(commits)
    disk_per_commit = (_write_bytes() - written) / commits
    store.close()

    rss = _rss_mb()
    started = time.perf_counter()
    loaded = SqliteCheckpointStore(directory)
    state = loaded.load_sync(SOURCE)
    load_seconds = time.perf_counter() - started
    assert state is not None and len(state["seen"]) >= keys - batch
    load_rss = _rss_mb() - rss
    stored = len(state["seen"])
    del state
    loaded.close()
    return {
        "store": "sqlite",
        "keys": shape,
        "keys_stored": stored,
        "batch_keys": batch,
        "database_mb": round(database_bytes / 1e6, 1),
        "wal_bytes_per_commit": int(wal_per_commit),
        "disk_bytes_per_commit": int(disk_per_commit),
        **_latencies(samples),
        "load_seconds": round(load_seconds, 2),
        "load_rss_mb": round(load_rss, 1),
    }


def bench_json(directory: Path, keys: int, batch: int, commits: int) -> dict[str, Any]:
    """The file store of earlier releases: the source kept the whole state and every
    commit wrote all of it (temporary file, fsync, rename, fsync of the directory)."""
    store = FileCheckpointStore(directory)
    stream = _stream("hex_ids", 0)
    seen = _take(stream, keys)
    samples = []
    written = _write_bytes()
    for _ in range(commits):
        added = _take(stream, batch)
        seen.update(added)
        horizon = max(added.values()) - keys * SPACING
        seen = {key: when for key, when in seen.items() if when >= horizon}
        state = {"watermark": horizon, "seen": seen}
        started = time.perf_counter()
        store.commit_sync(SOURCE, state)
        samples.append(time.perf_counter() - started)
    disk_per_commit = (_write_bytes() - written) / commits
    return {
        "store": "json",
        "keys": "hex_ids",
        "keys_stored": len(seen),
        "batch_keys": batch,
        "file_mb": round(store.path(SOURCE).stat().st_size / 1e6, 1),
        "disk_bytes_per_commit": int(disk_per_commit),
        **_latencies(samples),
    }


def bench_migration(directory: Path) -> dict[str, Any]:
    """Import the JSON file ``bench_json`` left (its last state) into a new database."""
    started = time.perf_counter()
    store = SqliteCheckpointStore(directory)
    state = store.load_sync(SOURCE)
    seconds = time.perf_counter() - started
    store.close()
    assert state is not None
    return {"migrate_keys": len(state["seen"]), "migrate_seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--commits", type=int, default=40)
    parser.add_argument("--directory", type=Path, default=Path.cwd())
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="forwarder-state-bench-", dir=args.directory))
    results: list[dict[str, Any]] = []
    try:
        for shape in ("digest", "time_prefixed"):
            results.append(bench_sqlite(base / shape, shape, args.keys, args.batch, args.commits))
            print(json.dumps(results[-1]), flush=True)
        legacy = base / "json"
        results.append(bench_json(legacy, args.keys, args.batch, max(3, args.commits // 8)))
        print(json.dumps(results[-1]), flush=True)
        results.append(bench_migration(legacy))
        print(json.dumps(results[-1]), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
