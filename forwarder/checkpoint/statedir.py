"""The state directory: created private, trusted only if nobody else can write to it, and
locked by one daemon at a time.

Whoever can write to a directory can plant a link or a file where the daemon will write
(a root daemon has overwritten root-owned files that way), or swap the checkpoints. So
the state directory, the checkpoints directory, the dead-letter directory and the demo
simulators' directory, and every directory above them, must be owned by the daemon's
user or root, not writable by others, and writable by a group only if the daemon's user
is in it (the Kubernetes layout: a volume owned by root, group fsGroup, mode 2775). A
world-writable directory above (``/tmp``) is accepted when it is sticky: nobody can
rename or remove what is not theirs in it.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from forwarder.checkpoint.safefile import (
    DIRECTORY_MODE,
    UnsafeStateFileError,
    check_state_path,
    ensure_private_directory,
    open_state_file,
    write_all,
)
from forwarder.checkpoint.sqlite import DATABASE_FILE, SIDE_SUFFIXES
from forwarder.checkpoint.writable import write_problem
from forwarder.config.model import Config
from forwarder.observability.logging import get_logger

LOCK_FILE = ".lock"
CHECKPOINTS = "checkpoints"
DEAD_LETTER_FILE = "dead-letter.ndjson"
SIMULATORS = "simulators"


class StateError(Exception):
    """The state directory cannot be used (untrusted, locked by another daemon, a link
    where a state file should be, a corrupt checkpoint). The CLI exits 3."""


def _trust_problem(info: os.stat_result, *, ancestor: bool) -> tuple[str, str] | None:
    """What makes a directory unsafe, and the fix (``{path}`` is the directory); ``None``
    if it is safe."""
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory", "point the config at a directory, or move {path} away"
    mode = stat.S_IMODE(info.st_mode)
    euid = os.geteuid()
    # In a sticky directory nobody may rename or remove another user's entries.
    excused = ancestor and bool(mode & stat.S_ISVTX)
    if info.st_uid not in (0, euid):
        return (
            f"is owned by uid {info.st_uid}, not by the forwarder's uid {euid} or root",
            f"chown {euid} {{path}}, or run the forwarder as uid {info.st_uid}",
        )
    if mode & stat.S_IWOTH and not excused:
        return f"is writable by others (mode {mode:04o})", "chmod o-w {path}"
    groups = {os.getegid(), *os.getgroups()}
    if mode & stat.S_IWGRP and info.st_gid not in groups and not excused:
        return (
            f"is writable by group {info.st_gid} (mode {mode:04o}), which the forwarder's "
            "user is not in",
            "chmod g-w {path}, or chgrp it to a group of the forwarder's user",
        )
    return None


def check_trusted_directory(path: Path, role: str) -> None:
    """Raise :class:`StateError` unless ``path`` and every directory above it (as written
    and as resolved through links) is safe; a missing tail is not checked (it is
    created private)."""
    absolute = Path(os.path.abspath(path))
    resolved = Path(os.path.realpath(absolute))
    checked: set[Path] = set()
    for chain in (absolute, resolved):
        for directory in (*reversed(chain.parents), chain):
            if directory in checked:
                continue
            checked.add(directory)
            try:
                info = os.stat(directory)
            except FileNotFoundError:
                break
            except OSError as error:
                raise StateError(f"{role} {path}: cannot inspect {directory}: {error}") from None
            problem = _trust_problem(info, ancestor=directory != chain)
            if problem is None:
                continue
            what, fix = problem
            where = (
                f"{role} {path}"
                if directory == chain
                else f"{role} {path}: the directory {directory} above it"
            )
            raise StateError(
                f"{where} {what}, so another user could plant links or files the forwarder "
                f"would write through; fix: {fix.format(path=directory)}"
            )


def _tighten_own_directory(path: Path) -> None:
    """A directory the forwarder names and creates (``checkpoints``, ``dead-letter``,
    ``simulators``), left looser by an older release: made 0700 if it is the daemon's."""
    info = os.stat(path)
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid() or mode == DIRECTORY_MODE:
        return
    os.chmod(path, DIRECTORY_MODE)
    get_logger("forwarder.state").warning(
        "state_permissions_tightened", path=str(path), mode=f"{mode:04o}", now="0700"
    )


def _prepare_directory(path: Path, role: str, *, own: bool, create: bool) -> None:
    check_trusted_directory(path, role)
    if not os.path.lexists(path):
        if not create:
            return
        try:
            ensure_private_directory(path)
        except OSError as error:
            raise StateError(f"cannot create the {role} {path}: {error.strerror}") from None
        check_trusted_directory(path, role)
    elif own:
        try:
            _tighten_own_directory(path)
        except OSError as error:
            raise StateError(f"cannot set the mode of the {role} {path}: {error}") from None


def _check_existing_file(path: Path, what: str) -> None:
    """A state file already there must be the daemon's own regular file (it is tightened
    to 0600 if it is looser)."""
    if not os.path.lexists(path):
        return
    try:
        os.close(open_state_file(path, os.O_RDONLY))
    except UnsafeStateFileError as error:
        raise StateError(f"{what}: {error.strerror}") from None
    except OSError as error:
        raise StateError(f"{what} {path} cannot be opened: {error.strerror}") from None


def _check_database_file(path: Path) -> None:
    """Like :func:`_check_existing_file`, by path only: SQLite's files are never opened
    outside SQLite (closing a descriptor would drop its locks)."""
    try:
        check_state_path(path)
    except UnsafeStateFileError as error:
        raise StateError(f"state database: {error.strerror}") from None
    except OSError as error:
        raise StateError(f"state database {path} cannot be checked: {error.strerror}") from None


def prepare_state(config: Config, *, create: bool = True, files: bool = True) -> None:
    """Check (and with ``create``, make, mode 0700) the directories the daemon writes
    to, and (with ``files``) the state files already in them. Raises :class:`StateError`
    naming the path and the fix."""
    state = Path(config.state_dir)
    _prepare_directory(state, "state directory", own=False, create=create)
    _prepare_directory(state / CHECKPOINTS, "checkpoints directory", own=True, create=create)
    dead_letter = Path(config.dead_letter_dir)
    # The default dead-letter directory is the forwarder's; a configured one may be
    # shared on purpose (its file is 0600 either way).
    default_dead_letter = config.dead_letter.path is None
    _prepare_directory(dead_letter, "dead-letter directory", own=default_dead_letter, create=create)
    if config.simulators is not None:
        _prepare_directory(state / SIMULATORS, "simulators directory", own=True, create=create)
    if not files:
        return
    _check_existing_file(state / LOCK_FILE, "state lock file")
    for suffix in ("", *SIDE_SUFFIXES):
        _check_database_file(state / f"{DATABASE_FILE}{suffix}")
    _check_existing_file(dead_letter / DEAD_LETTER_FILE, "dead-letter file")
    for source_id in config.sources:
        _check_existing_file(state / CHECKPOINTS / f"{source_id}.json", "checkpoint")


def state_write_problems(config: Config) -> list[str]:
    """What the daemon could not write under the state directory (directories it creates
    files in, state files it opens for writing), found without writing anything; each
    item a sentence naming the path."""
    state = Path(config.state_dir)
    directories = [
        state,
        state / CHECKPOINTS,
        Path(config.dead_letter_dir),
        *([state / SIMULATORS] if config.simulators is not None else []),
    ]
    files = [
        state / LOCK_FILE,
        *(state / f"{DATABASE_FILE}{suffix}" for suffix in ("", *SIDE_SUFFIXES)),
        Path(config.dead_letter_dir) / DEAD_LETTER_FILE,
    ]
    problems = [write_problem(directory, directory=True) for directory in directories]
    # A state file not there yet is created in its directory, already checked.
    problems += [write_problem(file, directory=False) for file in files if os.path.lexists(file)]
    return list(dict.fromkeys(problem for problem in problems if problem is not None))


def check_state_writable(config: Config) -> None:
    """Raise :class:`StateError` (exit 3) naming what cannot be written, before the
    daemon starts anything."""
    problems = state_write_problems(config)
    if problems:
        raise StateError(
            f"{'; '.join(problems)}; fix: give the forwarder's user write access, or point "
            "state_dir (or dead_letter.path) at a writable directory"
        )


class StateDirectoryLock:
    """An exclusive ``flock`` on ``<state_dir>/.lock``: two daemons sharing checkpoints
    would each commit cursors over the other's undelivered events."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_FILE
        self._descriptor: int | None = None

    def acquire(self) -> None:
        try:
            ensure_private_directory(self.path.parent)
            descriptor = open_state_file(self.path, os.O_RDWR, create=True)
        except UnsafeStateFileError as error:
            raise StateError(f"state lock file: {error.strerror}") from None
        except OSError as error:
            raise StateError(f"cannot open the state lock file {self.path}: {error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StateError(
                f"state directory {self.path.parent} is in use by another forwarder process"
            ) from None
        os.ftruncate(descriptor, 0)
        write_all(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
