"""The SQLite state store: what a commit changes, what load returns, corrupt or unsafe
state refused (never reset), checkpoints of earlier releases imported once, and a commit
interrupted by ``kill -9`` leaving the previous state."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from disk_harness import small_tmpfs

from forwarder.checkpoint.base import Checkpoint, CheckpointCorruptError
from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.checkpoint.sqlite import (
    DATABASE_FILE,
    SqliteCheckpointStore,
    StateDatabaseCorruptError,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteCheckpointStore]:
    opened = SqliteCheckpointStore(tmp_path / "state")
    yield opened
    opened.close()


def _db(store: SqliteCheckpointStore) -> contextlib.closing[sqlite3.Connection]:
    """A connection of the test's own, as another process would have."""
    return contextlib.closing(sqlite3.connect(store.path))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- what a commit does, what load returns ---------------------------------------------------


async def test_commits_add_keys_expire_old_ones_and_load_returns_cursor_and_seen(
    store: SqliteCheckpointStore,
) -> None:
    assert await store.load("cal") is None
    await store.commit("cal", Checkpoint({"cursor": "c1"}, {"a": 1.0, "b": 2.0}, None))
    assert await store.load("cal") == {"cursor": "c1", "seen": {"a": 1.0, "b": 2.0}}
    # Added keys join the stored ones; keys older than the expiry go, whichever commit
    # added them (this one's too); a key added again takes its new time.
    await store.commit(
        "cal", Checkpoint({"cursor": "c2", "n": 2}, {"c": 3.0, "old": 0.5, "a": 4.0}, 2.5)
    )
    assert await store.load("cal") == {"cursor": "c2", "n": 2, "seen": {"a": 4.0, "c": 3.0}}
    # A commit without keys or expiry moves the cursor only.
    await store.commit("cal", Checkpoint({"cursor": "c3"}))
    assert await store.load("cal") == {"cursor": "c3", "seen": {"a": 4.0, "c": 3.0}}


async def test_str_and_bytes_keys_come_back_as_they_went_in(store: SqliteCheckpointStore) -> None:
    keys: dict[Any, float] = {
        "event-id": 1.0,
        b"event-id": 2.0,  # the same characters as bytes: another key
        b"\x00\xff" * 8: 3.0,
        "dl:0123#1": 4.0,
        "ünïcode ✓": 1e-7,
        b"": 1_800_000_000.123456,
    }
    await store.commit("g", Checkpoint({"w": 1}, keys))
    loaded = await store.load("g")
    assert loaded is not None and loaded["seen"] == keys
    assert {type(key) for key in loaded["seen"]} == {str, bytes}


async def test_sources_are_kept_apart(store: SqliteCheckpointStore) -> None:
    await store.commit("a", Checkpoint({"x": 1}, {"k": 1.0}))
    await store.commit("b", Checkpoint({"x": 2}, {"k": 2.0}, None))
    await store.commit("a", Checkpoint({"x": 3}, {}, 10.0))  # expires a's keys, not b's
    assert await store.load("a") == {"x": 3, "seen": {}}
    assert await store.load("b") == {"x": 2, "seen": {"k": 2.0}}
    assert await store.list_sources() == ["a", "b"]
    assert await store.reset("a") is True
    assert await store.reset("a") is False
    assert await store.load("a") is None
    assert await store.load("b") == {"x": 2, "seen": {"k": 2.0}}
    with _db(store) as db:
        assert db.execute("SELECT count(*) FROM seen WHERE source = 'a'").fetchone()[0] == 0


async def test_a_cursor_field_named_seen_is_refused(store: SqliteCheckpointStore) -> None:
    with pytest.raises(ValueError):
        await store.commit("a", Checkpoint({"seen": 1}))
    assert await store.load("a") is None


async def test_expiry_is_a_range_of_the_primary_key(store: SqliteCheckpointStore) -> None:
    await store.commit("a", Checkpoint({"x": 1}))
    with _db(store) as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN DELETE FROM seen WHERE source = ? AND time < ?", ("a", 1.0)
        ).fetchall()
    assert any("PRIMARY KEY (source=? AND time<?)" in str(step[-1]) for step in plan), plan


def test_a_commit_writes_what_changed_not_everything_seen(
    store: SqliteCheckpointStore,
) -> None:
    """100,000 keys stored; a commit adding ten and expiring ten grows the WAL by a few
    dozen pages, a fraction of a percent of the database (the JSON store rewrote it all)."""
    store.commit_sync("g", Checkpoint({"w": 0}, {f"{n:032x}": float(n) for n in range(100_000)}))
    store._run(lambda: store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    wal = f"{store.path}-wal"
    assert os.path.getsize(wal) == 0
    database = os.path.getsize(store.path)
    assert database > 3_000_000
    added = {f"new-{n}": 200_000.0 + n for n in range(10)}
    store.commit_sync("g", Checkpoint({"w": 1}, added, 10.0))
    assert 0 < os.path.getsize(wal) < database / 100
    loaded = store.load_sync("g")
    assert loaded is not None and len(loaded["seen"]) == 100_000


async def test_commits_are_durable_wal_with_full_sync(store: SqliteCheckpointStore) -> None:
    await store.commit("a", Checkpoint({"x": 1}))
    assert store._run(lambda: store._connection.execute("PRAGMA synchronous").fetchone()[0]) == 2
    with _db(store) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_every_call_runs_on_one_thread_off_the_event_loop(
    store: SqliteCheckpointStore,
) -> None:
    await store.commit("a", Checkpoint({"x": 1}))
    seen_threads = {store._run(threading.get_ident) for _ in range(3)}
    store.load_sync("a")
    seen_threads.add(await store._call(threading.get_ident))
    assert len(seen_threads) == 1
    assert seen_threads != {threading.get_ident()}


def test_loading_many_keys_streams_rows_into_the_dict(tmp_path: Path) -> None:
    """The keys are read row by row into the result: the peak while loading stays close
    to the result itself (a list of every row on the way would add half again)."""
    store = SqliteCheckpointStore(tmp_path)
    keys = {os.urandom(16): float(n) for n in range(200_000)}
    store.commit_sync("g", Checkpoint({"w": 1}, keys))
    store.close()
    store = SqliteCheckpointStore(tmp_path)
    store._run(store._db)  # opened (and checked) before measuring
    tracemalloc.start()
    try:
        loaded = store.load_sync("g")
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        store.close()
    assert loaded is not None and loaded["seen"] == keys
    assert peak < retained * 1.2, (peak, retained)


# -- never a silent reset ------------------------------------------------------------------------


def _corrupt(store: SqliteCheckpointStore, how: str) -> None:
    store.commit_sync("cal", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    store.close()
    path = store.path
    if how == "garbage":
        path.write_bytes(b"this is not a database" * 500)
    elif how == "truncated header":
        path.write_bytes(path.read_bytes()[:50])
    elif how == "damaged pages":
        # The header and schema page intact, every table page overwritten.
        data = path.read_bytes()
        path.write_bytes(data[:4096] + b"\x0d\xff\x13" * ((len(data) - 4096) // 3 + 1))
    elif how == "future schema":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA user_version = 7")
    elif how == "another application":
        path.unlink()
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE notes (text)")
    elif how == "foreign application id":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("PRAGMA application_id = 1234")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("garbage", "file is not a database"),
        ("truncated header", "cannot read the state database"),
        ("damaged pages", "is damaged: *** in database main *** Page"),
        ("future schema", "written by a newer release (schema version 7"),
        ("another application", "not a forwarder state database"),
        ("foreign application id", "not a forwarder state database (application id 1234)"),
    ],
)
def test_an_unreadable_database_is_an_error_naming_it_never_a_reset(
    tmp_path: Path, how: str, says: str
) -> None:
    store = SqliteCheckpointStore(tmp_path)
    _corrupt(store, how)
    before = store.path.read_bytes()
    with pytest.raises(StateDatabaseCorruptError) as caught:
        store.load_sync("cal")
    store.close()
    assert str(store.path) in str(caught.value)
    assert says in str(caught.value)
    assert store.path.read_bytes() == before, "the database was changed"


@pytest.mark.parametrize(
    ("state", "says"),
    [
        ('{"cursor": "x', "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"cursor": "x", "seen": {}}', "is not a JSON object"),
    ],
)
def test_a_cursor_that_is_not_a_json_object_is_an_error(
    store: SqliteCheckpointStore, state: str, says: str
) -> None:
    store.commit_sync("cal", Checkpoint({"cursor": "x"}))
    store.commit_sync("other", Checkpoint({"cursor": "y"}))
    with _db(store) as db, db:
        db.execute("UPDATE cursors SET state = ? WHERE source = 'cal'", (state,))
    with pytest.raises(CheckpointCorruptError) as caught:
        store.load_sync("cal")
    assert not isinstance(caught.value, StateDatabaseCorruptError), "one source, not the file"
    assert "'cal'" in str(caught.value) and str(store.path) in str(caught.value)
    assert says in str(caught.value)
    assert store.load_sync("other") == {"cursor": "y", "seen": {}}


def test_a_failing_write_is_an_os_error_and_changes_nothing(store: SqliteCheckpointStore) -> None:
    """A commit SQLite refuses (here: a read-only connection, as on a read-only volume)
    raises an OSError, which the committer retries like a full disk."""
    store.commit_sync("cal", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    store._run(lambda: store._connection.execute("PRAGMA query_only = ON"))
    with pytest.raises(OSError) as caught:
        store.commit_sync("cal", Checkpoint({"cursor": "y"}, {"b": 2.0}, 5.0))
    assert str(store.path) in str(caught.value)
    store._run(lambda: store._connection.execute("PRAGMA query_only = OFF"))
    assert store.load_sync("cal") == {"cursor": "x", "seen": {"a": 1.0}}


def test_a_full_disk_fails_the_commit_keeps_the_state_and_the_next_commit_works(
    tmp_path: Path,
) -> None:
    """A real ENOSPC in the middle of a commit's transaction: an OSError (the committer
    keeps the checkpoint and retries), the previous state intact, and once there is room
    the same connection commits again."""
    with small_tmpfs(tmp_path / "fs", "2m") as disk:
        store = SqliteCheckpointStore(disk / "state")
        store.commit_sync("g", Checkpoint({"w": 1}, {f"{n:032x}": float(n) for n in range(100)}))
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (free - 64 * 1024))
        big = {os.urandom(16): 5.0 for _ in range(40_000)}
        with pytest.raises(OSError) as caught:
            store.commit_sync("g", Checkpoint({"w": 2}, big, 50.0))
        assert caught.value.errno == errno.ENOSPC, caught.value
        loaded = store.load_sync("g")
        assert loaded is not None and loaded["w"] == 1 and len(loaded["seen"]) == 100
        filler.unlink()
        store.commit_sync("g", Checkpoint({"w": 2}, {b"k": 99.0}, 50.0))
        assert store.load_sync("g") == {
            "w": 2,
            "seen": {b"k": 99.0} | {f"{n:032x}": float(n) for n in range(50, 100)},
        }
        store.close()


# -- state-file safety ----------------------------------------------------------------------------


@pytest.mark.usefixtures("open_umask")
def test_the_database_and_its_side_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    store = SqliteCheckpointStore(tmp_path / "state")
    store.commit_sync("cal", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    assert _mode(tmp_path / "state") == 0o700
    for name in (DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm"):
        assert _mode(tmp_path / "state" / name) == 0o600, name
    store.close()


def test_a_loose_database_of_an_older_release_is_tightened(tmp_path: Path) -> None:
    store = SqliteCheckpointStore(tmp_path)
    store.commit_sync("cal", Checkpoint({"cursor": "x"}))
    store.close()
    store.path.chmod(0o644)
    with structlog.testing.capture_logs() as logs:
        assert store.load_sync("cal") == {"cursor": "x", "seen": {}}
    store.close()
    assert _mode(store.path) == 0o600
    assert any(entry["event"] == "state_permissions_tightened" for entry in logs)


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    return victim


def _link(path: Path, victim: Path) -> None:
    path.symlink_to(victim)


def _foreign(path: Path, victim: Path) -> None:
    path.write_bytes(b"")
    os.chown(path, 12345, 12345)


def _hard_link(path: Path, victim: Path) -> None:
    os.link(victim, path)


def _fifo(path: Path, victim: Path) -> None:
    os.mkfifo(path)  # opened, it would block the daemon


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
@pytest.mark.parametrize(
    ("plant", "says"),
    [
        (_link, "is a symbolic link"),
        (_foreign, "owned by uid 12345"),
        (_hard_link, "2 hard links"),
        (_fifo, "is not a regular file"),
    ],
    ids=["symlink", "foreign file", "hard link", "fifo"],
)
def test_a_planted_database_file_is_refused_before_sqlite_opens_it(
    tmp_path: Path,
    suffix: str,
    plant: Callable[[Path, Path], None],
    says: str,
) -> None:
    state = tmp_path / "state"
    if suffix:
        # A database exists (closed: no side files left), the side file is planted.
        existing = SqliteCheckpointStore(state)
        existing.commit_sync("cal", Checkpoint({"cursor": "x"}))
        existing.close()
    else:
        state.mkdir()
    victim = _victim(tmp_path)
    planted = state / f"{DATABASE_FILE}{suffix}"
    plant(planted, victim)
    store = SqliteCheckpointStore(state)
    with pytest.raises(StateDatabaseCorruptError) as caught:
        store.load_sync("cal")
    assert str(planted) in str(caught.value) and says in str(caught.value)
    with pytest.raises(OSError):
        store.commit_sync("cal", Checkpoint({"cursor": "y"}))
    store.close()
    assert victim.read_bytes() == b"precious\n", "written through the planted file"
    assert os.path.lexists(planted), "the planted file is the operator's to inspect"


# -- checkpoints of earlier releases --------------------------------------------------------------


def _legacy(tmp_path: Path, source: str, state: dict[str, Any]) -> Path:
    """A checkpoint file exactly as earlier releases wrote it (their own writer)."""
    FileCheckpointStore(tmp_path / "state").commit_sync(source, state)
    return tmp_path / "state" / "checkpoints" / f"{source}.json"


@pytest.mark.parametrize(
    "state",
    [
        # Calendly: the cursor, event ids and a dead letter's digest.
        {
            "cursor": "2026-11-27T10:00:00.000001Z",
            "seen": {"0f" * 16: 1_795_600_000.0, "dl:" + "ab" * 16: 1_795_599_990.5},
        },
        # Google, before this release.
        {
            "watermark": 1_795_600_000.0,
            "watermark_time": "2026-11-27T10:00:00Z",
            "final_before": 1_795_589_200.0,
            "seen": {"1e" * 16: 1_795_590_000.25, "2d" * 16: 1_795_599_000},
        },
        # Never delivered anything yet.
        {"cursor": "2026-11-27T10:00:00.000001Z", "seen": {}},
    ],
    ids=["calendly", "google", "empty"],
)
def test_a_checkpoint_of_an_earlier_release_is_imported_once(
    tmp_path: Path, store: SqliteCheckpointStore, state: dict[str, Any]
) -> None:
    legacy = _legacy(tmp_path, "src", state)
    expected = {**state, "seen": {key: float(value) for key, value in state["seen"].items()}}
    with structlog.testing.capture_logs() as logs:
        assert store.load_sync("src") == expected
    assert [entry["event"] for entry in logs] == ["checkpoint_migrated"]
    assert not legacy.exists()
    migrated = legacy.with_name("src.json.migrated")
    assert orjson.loads(migrated.read_bytes())["state"] == state, "the file is kept"
    # From now on the database: the same state, and commits change it.
    store.close()
    assert store.load_sync("src") == expected
    cursor = {key: value for key, value in state.items() if key != "seen"}
    store.commit_sync("src", Checkpoint({**cursor, "moved": 1}, {"new": 9.0}))
    loaded = store.load_sync("src")
    assert loaded is not None and loaded["moved"] == 1
    assert loaded["seen"] == {**expected["seen"], "new": 9.0}
    summary = store.summary_sync("src")
    assert summary is not None and summary["seen_ids"] == len(expected["seen"]) + 1


def test_a_corrupt_checkpoint_of_an_earlier_release_is_an_error_and_kept(
    tmp_path: Path, store: SqliteCheckpointStore
) -> None:
    path = tmp_path / "state" / "checkpoints" / "cal.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"format": 1, "sou')
    with pytest.raises(CheckpointCorruptError) as caught:
        store.load_sync("cal")
    assert str(path) in str(caught.value)
    assert path.read_bytes() == b'{"format": 1, "sou'
    with _db(store) as db:
        assert db.execute("SELECT count(*) FROM cursors").fetchone()[0] == 0


def test_unreadable_seen_ids_of_an_earlier_release_are_an_error(
    tmp_path: Path, store: SqliteCheckpointStore
) -> None:
    path = _legacy(tmp_path, "cal", {"cursor": "x", "seen": {"a": "yesterday"}})
    with pytest.raises(CheckpointCorruptError) as caught:
        store.load_sync("cal")
    assert str(path) in str(caught.value) and path.exists()


def test_a_file_left_by_a_crash_after_its_import_is_set_aside_not_imported_again(
    tmp_path: Path, store: SqliteCheckpointStore
) -> None:
    """The import committed, then the process died before the rename: the database has
    the source (and has moved on since), so the file is renamed, not read."""
    legacy = _legacy(tmp_path, "cal", {"cursor": "old", "seen": {"a": 1.0}})
    store.commit_sync("cal", Checkpoint({"cursor": "newer"}, {"b": 2.0}))
    with structlog.testing.capture_logs() as logs:
        assert store.load_sync("cal") == {"cursor": "newer", "seen": {"b": 2.0}}
    assert "legacy_checkpoint_set_aside" in [entry["event"] for entry in logs]
    assert not legacy.exists() and legacy.with_name("cal.json.migrated").exists()


def test_list_and_reset_cover_checkpoints_not_yet_imported(
    tmp_path: Path, store: SqliteCheckpointStore
) -> None:
    _legacy(tmp_path, "old", {"cursor": "x", "seen": {}})
    store.commit_sync("new", Checkpoint({"cursor": "y"}))
    assert store.list_sources_sync() == ["new", "old"]
    assert store.reset_sync("old") is True
    assert store.load_sync("old") is None, "a reset checkpoint came back from its file"


# -- SQLite's locks -------------------------------------------------------------------------------

_HOLDER = r"""
import os
import sys
from pathlib import Path
from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore

store = SqliteCheckpointStore(Path(sys.argv[1]))
store.commit_sync("a", Checkpoint({"n": 0}, {b"k0": 0.0}))
# What a start does again and again: check the database's files (the connection open).
store._run(store._check_files)
print("ready", flush=True)
sys.stdin.readline()  # the other process has read the database meanwhile
for n in range(1, 50):
    store.commit_sync("a", Checkpoint({"n": n}, {b"k%d" % n: float(n)}))
print("done", flush=True)
os._exit(0)  # as a crash: the commits must be in the database's WAL, durably
"""


def test_checking_the_files_never_drops_sqlites_locks(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it:
    had the store's checks opened the database's files, another process opening the
    database (``forwarder cursors show``) would take it for unused: reset its shared
    memory under the daemon (SIGBUS), or on closing fold the WAL into the database and
    delete it, and the daemon's next commits would go to a deleted file."""
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdin is not None and holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        reader = SqliteCheckpointStore(state)
        assert reader.summary_sync("a") is not None
        reader.close()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "done"
        assert holder.wait(30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    store = SqliteCheckpointStore(state)
    loaded = store.load_sync("a")
    store.close()
    assert loaded is not None and loaded["n"] == 49 and len(loaded["seen"]) == 50


# -- kill -9 inside a commit ---------------------------------------------------------------------

_CHILD = r"""
import os, sys, time
from pathlib import Path
from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore


class Stalling(dict):
    # The keys of the second commit: after most of them are inserted (the transaction
    # open, pages spilled to the WAL), tell the parent and wait to be killed.
    def items(self):
        for number, item in enumerate(super().items()):
            if number == 150_000:
                print("inside", flush=True)
                time.sleep(600)
            yield item


store = SqliteCheckpointStore(Path(sys.argv[1]))
store.commit_sync("g", Checkpoint({"w": 1}, {b"first-%d" % n: float(n) for n in range(1000)}))
print("committed", flush=True)
second = Stalling({b"second-%07d" % n: 5000.0 + n for n in range(200_000)})
store.commit_sync("g", Checkpoint({"w": 2}, second, 500.0))
print("not killed", flush=True)
"""


def test_a_commit_killed_mid_transaction_leaves_the_previous_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(state)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "committed"
        assert child.stdout.readline().strip() == "inside"
        wal = state / f"{DATABASE_FILE}-wal"
        spilled = wal.stat().st_size
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    # The open transaction had written pages to the WAL beyond the first commit's: the
    # kill lands inside a real write, and recovery must ignore them.
    assert spilled > 1_000_000
    store = SqliteCheckpointStore(state)
    try:
        loaded = store.load_sync("g")
        assert loaded == {"w": 1, "seen": {b"first-%d" % n: float(n) for n in range(1000)}}
        store.commit_sync("g", Checkpoint({"w": 3}, {b"after": 1.0}))
        loaded = store.load_sync("g")
        assert loaded is not None and loaded["w"] == 3 and len(loaded["seen"]) == 1001
    finally:
        store.close()
