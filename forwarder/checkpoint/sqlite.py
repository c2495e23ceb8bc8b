"""Every source's cursor and seen keys in one SQLite database, written by what changed.

``<state_dir>/state.sqlite3`` (WAL, ``synchronous=FULL``) holds two tables:

- ``cursors(source PRIMARY KEY, state, committed_at)``: each source's cursor as JSON;
- ``seen(source, time, key, PRIMARY KEY(source, time, key)) WITHOUT ROWID``: the keys of
  the records each source delivered, ordered by the time that decides when they expire.
  A key is ``str`` or ``bytes`` and comes back as it went in.

A commit (:class:`~forwarder.checkpoint.base.Checkpoint`) is one transaction: upsert the
cursor, insert the batch's keys, delete the keys whose time is before its expiry (a range
at the start of the primary key). It returns once the WAL is fsynced, so its cost follows
what the batch changed, not the size of everything seen: a million keys are never
rewritten to add a thousand. Because rows are ordered by time, a batch's keys (records of
the same minutes) land on a few neighbouring pages whatever the keys look like (random
digests in key order would cost about one page each).

The database is checked like every state file (0600, never a link, a hard-linked file or
another user's file), and so are its ``-wal``, ``-shm`` and ``-journal`` files, before
SQLite opens any of them; SQLite creates the side files with the database's mode. They
are checked by path, never opened outside SQLite: closing a descriptor of a file drops
the process's POSIX locks on it, SQLite's included. A
database SQLite cannot read, a cursor that is not a JSON object or a schema from a newer
release raises :class:`CheckpointCorruptError` on load, naming the file: never a reset.

Checkpoints of earlier releases (``<state_dir>/checkpoints/<source>.json``) are imported
by the first ``load`` of their source, in one transaction, and the file is then renamed
``<source>.json.migrated`` (kept for the operator).

SQLite calls block, so they run on one worker thread that owns the connection (sqlite3's
``check_same_thread`` holds): the event loop never waits on a disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from forwarder.checkpoint.base import Checkpoint, CheckpointCorruptError, SeenKey
from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.checkpoint.safefile import (
    UnsafeStateFileError,
    check_state_path,
    create_state_file,
    ensure_private_directory,
    fsync_directory,
)
from forwarder.observability.logging import get_logger

DATABASE_FILE = "state.sqlite3"
# Files SQLite keeps next to the database: checked like it before it is opened.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
SCHEMA_VERSION = 1
# PRAGMA application_id: marks the file as the forwarder's ("FWDS").
APPLICATION_ID = 0x46574453
# Waiting for another connection's lock (`forwarder cursors show` reading while the
# daemon commits) rather than failing at once.
BUSY_TIMEOUT_SECONDS = 30.0
# The WAL file is reused after each checkpoint; one large commit (a migration) must not
# leave it at its size forever.
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024
# Page cache while a checkpoint file of an earlier release is imported (KiB), and
# SQLite's default (negative: KiB) the connection goes back to.
IMPORT_CACHE_KIB = 65536
DEFAULT_CACHE_PAGES = -2000

_SCHEMA = (
    "CREATE TABLE cursors ("
    " source TEXT PRIMARY KEY NOT NULL, state TEXT NOT NULL, committed_at REAL NOT NULL)",
    # Ordered by time first: a batch's keys (records of the same minutes) and the expired
    # ones are each a few neighbouring pages, not one page per key as random digests in
    # key order would be. A key comes back with one time (its record's).
    "CREATE TABLE seen ("
    " source TEXT NOT NULL, time REAL NOT NULL, key BLOB NOT NULL,"
    " PRIMARY KEY (source, time, key)) WITHOUT ROWID",
)
_UPSERT_CURSOR = (
    "INSERT INTO cursors (source, state, committed_at) VALUES (?, ?, ?) "
    "ON CONFLICT (source) DO UPDATE SET state = excluded.state, "
    "committed_at = excluded.committed_at"
)
_INSERT_SEEN = "INSERT OR IGNORE INTO seen (source, key, time) VALUES (?, ?, ?)"

_Result = TypeVar("_Result")


@dataclass(frozen=True, slots=True)
class ExportedState:
    """One source's whole committed state, as ``forwarder cursors export`` writes it and
    ``import`` reads it back: the cursor, every live seen key with its time, and when it
    was committed."""

    source: str
    cursor: dict[str, Any]
    seen: dict[SeenKey, float]
    committed_at: float


class StateDatabaseCorruptError(CheckpointCorruptError):
    """The whole database cannot be read (not a database, damaged, from a newer release,
    an unsafe file): resetting one cursor cannot help, the operator moves it away or
    restores it."""


class StateDatabaseError(OSError):
    """The state database cannot be opened, read or written. An ``OSError``: a commit
    that fails is retried like one on a full disk; ``load`` turns it into a
    :class:`CheckpointCorruptError`."""

    def __str__(self) -> str:
        return str(self.strerror)


_ERRNO_BY_SQLITE_CODE = {
    "SQLITE_FULL": errno.ENOSPC,
    "SQLITE_IOERR": errno.EIO,
    "SQLITE_READONLY": errno.EROFS,
    "SQLITE_CANTOPEN": errno.EACCES,
    "SQLITE_PERM": errno.EACCES,
    "SQLITE_BUSY": errno.EBUSY,
    "SQLITE_LOCKED": errno.EBUSY,
}


def _database_error(path: Path, doing: str, error: sqlite3.Error) -> StateDatabaseError:
    name = getattr(error, "sqlite_errorname", "") or ""
    code = next(
        (number for prefix, number in _ERRNO_BY_SQLITE_CODE.items() if name.startswith(prefix)),
        errno.EINVAL,
    )
    return StateDatabaseError(code, f"cannot {doing} the state database {path}: {error}")


class SqliteCheckpointStore:
    """The default :class:`~forwarder.checkpoint.base.CheckpointStore`: one SQLite
    database for every source (see the module docstring).

    The ``async`` methods are the daemon's; the ``*_sync`` ones (``forwarder cursors``,
    tests) run the same code on the same worker thread. :meth:`close` closes the
    connection (SQLite then folds the WAL into the database)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / DATABASE_FILE
        # Earlier releases' checkpoints, imported on first load.
        self.legacy = FileCheckpointStore(self.state_dir)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        # Used only on the executor's thread.
        self._connection: sqlite3.Connection | None = None
        self._log = get_logger("forwarder.state")

    # -- the CheckpointStore protocol -----------------------------------------------------

    async def load(self, source_id: str) -> dict[str, Any] | None:
        return await self._call(self._load, source_id)

    async def commit(self, source_id: str, checkpoint: Checkpoint) -> None:
        await self._call(self._commit, source_id, checkpoint)

    async def reset(self, source_id: str) -> bool:
        return await self._call(self._reset, source_id)

    async def list_sources(self) -> list[str]:
        return await self._call(self._list_sources)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # -- the same, blocking -------------------------------------------------------------

    def load_sync(self, source_id: str) -> dict[str, Any] | None:
        return self._run(self._load, source_id)

    def commit_sync(self, source_id: str, checkpoint: Checkpoint) -> None:
        self._run(self._commit, source_id, checkpoint)

    def reset_sync(self, source_id: str) -> bool:
        return self._run(self._reset, source_id)

    def list_sources_sync(self) -> list[str]:
        return self._run(self._list_sources)

    def stored_sources_sync(self) -> list[str]:
        """The sources with committed state, read as :meth:`summary_sync` reads (changes
        nothing): ``cursors show`` lists those a config no longer names."""
        return self._run(self._list_sources, True)

    def summary_sync(self, source_id: str) -> dict[str, Any] | None:
        """What ``forwarder cursors show`` prints: the cursor's fields, ``seen_ids`` (how
        many keys) and ``committed_at``; a checkpoint not yet migrated is read from its
        JSON file. Changes nothing (not even a migration); ``None`` if there is none.
        Raises :class:`CheckpointCorruptError`."""
        return self._run(self._summary, source_id)

    def export_sync(self, source_id: str) -> ExportedState | None:
        """Everything needed to resume ``source_id`` exactly (``forwarder cursors
        export``): its cursor, every seen key with its time and ``committed_at``, read in
        one read transaction (a consistent snapshot while the daemon commits). Changes
        nothing; ``None`` if there is no state. Raises :class:`CheckpointCorruptError`."""
        return self._run(self._export, source_id)

    def has_state_sync(self, source_id: str) -> bool:
        """Whether ``source_id`` has committed state (in the database or a checkpoint of
        an earlier release not yet imported)."""
        return self._run(self._has_state, source_id)

    def import_sync(self, states: list[ExportedState], *, replace: bool) -> None:
        """Write every state of ``states`` (``forwarder cursors import``) in ONE
        transaction: all of them or, on any error, none. ``replace`` first removes what
        the database holds of each source; without it the caller has checked there is
        nothing (:meth:`has_state_sync`). Raises :class:`StateDatabaseError`."""
        self._run(self._import, states, replace)

    def close(self) -> None:
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.submit(self._close_connection).result()
        executor.shutdown(wait=True)

    # -- the worker thread ----------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="forwarder-state")
            return self._executor

    async def _call(self, function: Callable[..., _Result], *args: Any) -> _Result:
        return await asyncio.wrap_future(self._pool().submit(function, *args))

    def _run(self, function: Callable[..., _Result], *args: Any) -> _Result:
        return self._pool().submit(function, *args).result()

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    # -- opening --------------------------------------------------------------------------

    def _check_files(self) -> None:
        """The database and its side files, where they exist: regular files of the
        daemon's own user with one link, made 0600. Checked before SQLite opens them (it
        follows links), by path: a descriptor of them opened and closed here would drop
        SQLite's locks (see ``safefile.check_state_path``)."""
        for path in (self.path, *(Path(f"{self.path}{suffix}") for suffix in SIDE_SUFFIXES)):
            check_state_path(path)

    def _db(self, *, create: bool = True) -> sqlite3.Connection | None:
        """The open connection; opened (and with ``create``, the database created) on
        first use. ``None`` when there is no database and ``create`` is false."""
        if self._connection is not None:
            return self._connection
        if not os.path.lexists(self.path):
            if not create:
                return None
            ensure_private_directory(self.state_dir)
            # 0600 from the start (SQLite would create it under the umask), and the
            # directory entry fsynced.
            create_state_file(self.path, b"")
        self._check_files()
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # transactions are explicit (BEGIN / COMMIT)
            )
        except sqlite3.Error as error:
            raise _database_error(self.path, "open", error) from None
        try:
            self._prepare(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        path = self.path
        try:
            # Reading the header first: a file that is not a database fails here.
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            application = connection.execute("PRAGMA application_id").fetchone()[0]
            if application not in (0, APPLICATION_ID):
                raise StateDatabaseError(
                    errno.EINVAL,
                    f"{path} is not a forwarder state database (application id {application})",
                )
            if version > SCHEMA_VERSION:
                raise StateDatabaseError(
                    errno.EINVAL,
                    f"the state database {path} was written by a newer release (schema "
                    f"version {version}; this release reads {SCHEMA_VERSION}): run that "
                    "release, or move the file away to start every source afresh",
                )
            # Nothing is changed in a file that is not ours (not even its journal mode).
            if version == 0 and self._has_tables(connection):
                raise StateDatabaseError(
                    errno.EINVAL,
                    f"{path} is not a forwarder state database (it has tables of another "
                    "application): move it away",
                )
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateDatabaseError(
                    errno.EINVAL, f"the state database {path} cannot use WAL mode ({mode})"
                )
            # FULL: the WAL is fsynced at every commit, so a commit that returned survives
            # a power cut (NORMAL would only keep the database consistent).
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            # No temporary files: the root filesystem may be read-only (the chart's).
            connection.execute("PRAGMA temp_store=MEMORY")
            if version == 0:
                self._create_schema(connection)
            # Corruption shows up now (exit 3 at start) rather than in a later commit;
            # a few tenths of a second for a million keys.
            problem = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                problem = " ".join(str(problem).split())  # one line
                raise StateDatabaseError(
                    errno.EINVAL, f"the state database {path} is damaged: {problem}"
                )
        except sqlite3.Error as error:
            raise _database_error(path, "read", error) from None
        # SQLite created the WAL (it fsyncs the directory at the WAL's first sync):
        # check what it made.
        self._check_files()

    @staticmethod
    def _has_tables(connection: sqlite3.Connection) -> bool:
        return bool(connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])

    def _create_schema(self, connection: sqlite3.Connection) -> None:
        with self._transaction(connection):
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self, connection: sqlite3.Connection) -> Iterator[None]:
        """One write transaction: committed (durably) at the end of the block, rolled
        back if the block or the commit fails (the connection is then ready for the next
        attempt, with nothing of this one applied)."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                # The error being raised is the one that matters.
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            raise

    def _inspecting_db(self) -> sqlite3.Connection | None:
        """For ``cursors show``: a read-only connection that creates no file and changes
        nothing (no journal mode, no schema, no migration); ``None`` without a database.

        A WAL database needs its ``-shm`` file, which SQLite would create. Without a
        ``-wal`` file no daemon has the database open (it keeps its WAL while open), so
        ``immutable`` reads it as it is; with one (a daemon running) both files exist and
        read-only mode uses them."""
        if self._connection is not None:
            return self._connection
        if not os.path.lexists(self.path):
            return None
        self._check_files()
        query = "mode=ro" if os.path.lexists(f"{self.path}-wal") else "mode=ro&immutable=1"
        uri = f"{Path(os.path.abspath(self.path)).as_uri()}?{query}"
        try:
            connection = sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            application = connection.execute("PRAGMA application_id").fetchone()[0]
            version = connection.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as error:
            raise _database_error(self.path, "read", error) from None
        if application not in (0, APPLICATION_ID) or version != SCHEMA_VERSION:
            connection.close()
            if version == 0 and application == 0:
                return None  # created, never written
            raise StateDatabaseError(
                errno.EINVAL,
                f"{self.path} is not a state database of this release (application id "
                f"{application}, schema version {version})",
            )
        self._connection = connection
        return connection

    def _readable_db(self, *, create: bool = True) -> sqlite3.Connection | None:
        """:meth:`_db` for reading: any problem is a :class:`CheckpointCorruptError`."""
        try:
            return self._db(create=create)
        except UnsafeStateFileError as error:
            raise StateDatabaseCorruptError(f"cannot read the state database: {error}") from None
        except StateDatabaseError as error:
            raise StateDatabaseCorruptError(str(error)) from None
        except OSError as error:
            raise StateDatabaseCorruptError(
                f"cannot read the state database {self.path}: {error.strerror or error}"
            ) from None

    # -- operations (on the worker thread) ------------------------------------------------

    def _load(self, source_id: str) -> dict[str, Any] | None:
        connection = self._readable_db()
        assert connection is not None
        try:
            cursor = self._cursor(connection, source_id)
            if cursor is None:
                return self._migrate(connection, source_id)
            # Streamed row by row into the dict: no list of a million tuples on the way.
            rows = connection.execute("SELECT key, time FROM seen WHERE source = ?", (source_id,))
            seen: dict[SeenKey, float] = dict(rows)
        except sqlite3.Error as error:
            raise self._unreadable(error) from None
        self._retire_legacy(source_id)
        return {**cursor, "seen": seen}

    def _cursor(self, connection: sqlite3.Connection, source_id: str) -> dict[str, Any] | None:
        stored = self._stored(connection, source_id)
        return None if stored is None else stored[0]

    def _stored(
        self, connection: sqlite3.Connection, source_id: str
    ) -> tuple[dict[str, Any], float] | None:
        """``source_id``'s cursor and when it was committed, or ``None`` without one."""
        row = connection.execute(
            "SELECT state, committed_at FROM cursors WHERE source = ?", (source_id,)
        ).fetchone()
        if row is None:
            return None
        try:
            cursor = orjson.loads(row[0])
        except (orjson.JSONDecodeError, TypeError) as error:
            raise CheckpointCorruptError(
                f"the cursor of source {source_id!r} in {self.path} is not valid JSON ({error})"
            ) from None
        if not isinstance(cursor, dict) or "seen" in cursor:
            raise CheckpointCorruptError(
                f"the cursor of source {source_id!r} in {self.path} is not a JSON object "
                "of cursor fields"
            )
        return cursor, float(row[1])

    def _commit(self, source_id: str, checkpoint: Checkpoint) -> None:
        cursor = checkpoint.cursor
        if "seen" in cursor:
            raise ValueError("a cursor field cannot be named 'seen' (load adds the keys as it)")
        state = orjson.dumps(cursor).decode()
        connection = self._db()
        assert connection is not None
        expire_before = checkpoint.seen_expire_before
        try:
            with self._transaction(connection):
                connection.execute(_UPSERT_CURSOR, (source_id, state, time.time()))
                if checkpoint.seen_added:
                    connection.executemany(
                        _INSERT_SEEN,
                        ((source_id, key, when) for key, when in checkpoint.seen_added.items()),
                    )
                if expire_before is not None:
                    # A range at the start of the primary key: only expired keys are visited.
                    connection.execute(
                        "DELETE FROM seen WHERE source = ? AND time < ?",
                        (source_id, expire_before),
                    )
        except sqlite3.Error as error:
            raise _database_error(self.path, "write", error) from None

    def _reset(self, source_id: str) -> bool:
        removed = False
        connection = self._db(create=False)
        if connection is not None:
            try:
                with self._transaction(connection):
                    removed = (
                        connection.execute(
                            "DELETE FROM cursors WHERE source = ?", (source_id,)
                        ).rowcount
                        > 0
                    )
                    connection.execute("DELETE FROM seen WHERE source = ?", (source_id,))
            except sqlite3.Error as error:
                raise _database_error(self.path, "write", error) from None
        # A checkpoint of an earlier release not yet imported would otherwise come back
        # on the next load. (A link is removed, not followed.)
        legacy = self.legacy.path(source_id)
        try:
            legacy.unlink()
        except FileNotFoundError:
            pass
        else:
            fsync_directory(legacy.parent)
            removed = True
        return removed

    def _unreadable(self, error: sqlite3.Error) -> StateDatabaseCorruptError:
        """A read that SQLite refused: the database is reported, never reset (exit 3)."""
        return StateDatabaseCorruptError(str(_database_error(self.path, "read", error)))

    def _inspected_db(self) -> sqlite3.Connection | None:
        """The read-only connection of ``cursors show/export`` (``None``: no database),
        any failure to open it reported as an unreadable database."""
        try:
            return self._inspecting_db()
        except (StateDatabaseError, UnsafeStateFileError, OSError) as error:
            raise StateDatabaseCorruptError(f"cannot read the state database: {error}") from None

    def _list_sources(self, inspect: bool = False) -> list[str]:
        sources = set(self.legacy.list_sources_sync())
        connection = self._inspected_db() if inspect else self._readable_db(create=False)
        if connection is not None:
            try:
                rows = connection.execute("SELECT source FROM cursors").fetchall()
            except sqlite3.Error as error:
                raise self._unreadable(error) from None
            sources.update(row[0] for row in rows)
        return sorted(sources)

    def _summary(self, source_id: str) -> dict[str, Any] | None:
        connection = self._inspected_db()
        if connection is not None:
            try:
                stored = self._stored(connection, source_id)
                if stored is not None:
                    cursor, committed_at = stored
                    count = connection.execute(
                        "SELECT count(*) FROM seen WHERE source = ?", (source_id,)
                    ).fetchone()[0]
                    return {**cursor, "seen_ids": count, "committed_at": committed_at}
            except sqlite3.Error as error:
                raise self._unreadable(error) from None
        envelope = self.legacy.envelope_sync(source_id)
        if envelope is None:
            return None
        state = dict(envelope["state"])
        seen = state.pop("seen", None)
        return {
            **state,
            "seen_ids": len(seen) if isinstance(seen, dict) else 0,
            "committed_at": envelope.get("committed_at"),
        }

    def _export(self, source_id: str) -> ExportedState | None:
        connection = self._inspected_db()
        if connection is not None:
            try:
                # One read transaction: the cursor and the keys of the same commit, however
                # many commits the daemon makes meanwhile (WAL readers see a snapshot).
                connection.execute("BEGIN")
                try:
                    stored = self._stored(connection, source_id)
                    if stored is not None:
                        cursor, committed_at = stored
                        rows = connection.execute(
                            "SELECT key, time FROM seen WHERE source = ? ORDER BY time, key",
                            (source_id,),
                        )
                        seen: dict[SeenKey, float] = dict(rows)
                        return ExportedState(source_id, cursor, seen, committed_at)
                finally:
                    connection.execute("COMMIT")
            except sqlite3.Error as error:
                raise self._unreadable(error) from None
        envelope = self.legacy.envelope_sync(source_id)
        if envelope is None:
            return None
        state = dict(envelope["state"])
        raw_seen = state.pop("seen", {})
        if not isinstance(raw_seen, dict):
            raise CheckpointCorruptError(f"checkpoint of {source_id!r} has unreadable seen ids")
        committed_at = envelope.get("committed_at")
        return ExportedState(
            source_id,
            state,
            {str(key): float(value) for key, value in raw_seen.items()},
            float(committed_at) if isinstance(committed_at, int | float) else time.time(),
        )

    def _has_state(self, source_id: str) -> bool:
        if os.path.lexists(self.legacy.path(source_id)):
            return True
        connection = self._readable_db(create=False)
        if connection is None:
            return False
        try:
            row = connection.execute(
                "SELECT 1 FROM cursors WHERE source = ?", (source_id,)
            ).fetchone()
        except sqlite3.Error as error:
            raise self._unreadable(error) from None
        return row is not None

    def _import(self, states: list[ExportedState], replace: bool) -> None:
        connection = self._db()
        assert connection is not None
        try:
            with self._transaction(connection):
                for state in states:
                    if replace:
                        connection.execute("DELETE FROM seen WHERE source = ?", (state.source,))
                    connection.execute(
                        _UPSERT_CURSOR,
                        (state.source, orjson.dumps(state.cursor).decode(), state.committed_at),
                    )
                    connection.executemany(
                        _INSERT_SEEN,
                        ((state.source, key, when) for key, when in state.seen.items()),
                    )
        except sqlite3.Error as error:
            raise _database_error(self.path, "write", error) from None
        if replace:
            # An earlier release's checkpoint of a replaced source must not come back.
            for state in states:
                self._retire_legacy(state.source)

    # -- checkpoints of earlier releases ----------------------------------------------------

    def _migrate(self, connection: sqlite3.Connection, source_id: str) -> dict[str, Any] | None:
        """Import ``checkpoints/<source>.json`` (cursor and seen ids) in one transaction,
        then rename it ``.json.migrated``. A crash in between leaves the file, which the
        next load renames (the database has the source by then)."""
        path = self.legacy.path(source_id)
        envelope = self.legacy.envelope_sync(source_id)  # CheckpointCorruptError
        if envelope is None:
            return None
        state = dict(envelope["state"])
        raw_seen = state.pop("seen", {})
        try:
            if not isinstance(raw_seen, dict):
                raise TypeError(f"'seen' is a {type(raw_seen).__name__}, not an object")
            seen: dict[SeenKey, float] = {str(key): float(value) for key, value in raw_seen.items()}
        except (TypeError, ValueError) as error:
            raise CheckpointCorruptError(
                f"checkpoint {path} has unreadable seen ids ({error})"
            ) from None
        committed_at = envelope.get("committed_at")
        if not isinstance(committed_at, int | float):
            committed_at = time.time()
        try:
            # A million keys in random order: a larger page cache for this one
            # transaction halves the import (it goes back to SQLite's default after).
            connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
            try:
                with self._transaction(connection):
                    connection.execute(
                        _UPSERT_CURSOR, (source_id, orjson.dumps(state).decode(), committed_at)
                    )
                    connection.executemany(
                        _INSERT_SEEN, ((source_id, key, when) for key, when in seen.items())
                    )
            finally:
                connection.execute(f"PRAGMA cache_size={DEFAULT_CACHE_PAGES}")
        except sqlite3.Error as error:
            raise CheckpointCorruptError(
                f"cannot import checkpoint {path}: {_database_error(self.path, 'write', error)}"
            ) from None
        self._rename_migrated(path)
        self._log.info("checkpoint_migrated", source=source_id, path=str(path), seen=len(seen))
        return {**state, "seen": seen}

    def _retire_legacy(self, source_id: str) -> None:
        """A JSON checkpoint next to a source the database has: left by a crash right
        after its import (or written by an earlier release run since). The database is
        what was committed last by this release; the file is renamed, not read."""
        path = self.legacy.path(source_id)
        if not os.path.lexists(path):
            return
        self._rename_migrated(path)
        self._log.warning(
            "legacy_checkpoint_set_aside",
            source=source_id,
            path=str(path),
            note="the state database already has this source; the file was not imported",
        )

    def _rename_migrated(self, path: Path) -> None:
        try:
            os.replace(path, path.with_name(path.name + ".migrated"))
            fsync_directory(path.parent)
        except OSError as error:
            # The import is committed: the next load uses the database either way.
            self._log.warning("legacy_checkpoint_not_renamed", path=str(path), error=str(error))
