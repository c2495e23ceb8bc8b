"""Opening and writing state files without following links or trusting the umask.

State files (the lock, checkpoints, dead letters, the demo simulators' keys) hold cursors
and personal data. Each is opened with ``O_NOFOLLOW`` (a symbolic link planted where one
should be is refused, never followed), must be a regular file of the daemon's own user
with a single link (a hard link would make an in-place write land in another file), and
gets mode 0600 whatever the umask. Replacements are written to a fresh temporary file
(``O_CREAT | O_EXCL``), fsynced and renamed over the old one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from forwarder.observability.logging import get_logger

# Owner only: state files carry cursors and raw personal data (dead letters, keys).
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# Never follow a link, never hand the descriptor to a child process, and never block on
# a FIFO planted where a file should be (it is refused once fstat shows what it is).
_SAFE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class UnsafeStateFileError(OSError):
    """A state path is a symbolic link, not a regular file, or not the daemon's own file.

    An ``OSError`` so that a write failing at run time is handled like a full disk (the
    batch is retried and the failure shown in ``/readyz``); at start it is a StateError.
    """

    def __str__(self) -> str:
        return str(self.strerror)  # the message names the path; no "[Errno 40]" prefix


def open_state_file(path: Path, flags: int, *, create: bool = False) -> int:
    """Open ``path`` without following a link; a file the daemon owns with a looser mode
    than 0600 (written by an older release under the umask) is tightened to 0600."""
    path = Path(path)
    if create:
        flags |= os.O_CREAT
    try:
        descriptor = os.open(path, flags | _SAFE_FLAGS, FILE_MODE)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafeStateFileError(
                errno.ELOOP,
                f"{path} is a symbolic link; the forwarder never follows a link where a "
                "state file should be: remove it",
            ) from None
        raise
    try:
        _check_descriptor(descriptor, path)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _check_descriptor(descriptor: int, path: Path) -> None:
    info = os.fstat(descriptor)
    _check_info(info, path)
    if stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.fchmod(descriptor, FILE_MODE)
        _log_tightened(path, info)


def check_state_path(path: Path) -> bool:
    """The checks of :func:`open_state_file` made on the path, without opening the file
    (``False`` when there is none). For the files SQLite keeps open: closing any
    descriptor of a file drops every POSIX lock the process holds on it, SQLite's
    included, and another process could then take the database for unused."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeStateFileError(
            errno.ELOOP,
            f"{path} is a symbolic link; the forwarder never follows a link where a "
            "state file should be: remove it",
        )
    _check_info(info, path)
    if stat.S_IMODE(info.st_mode) != FILE_MODE:
        # Not a link (above) in a directory nobody else can write to (statedir).
        os.chmod(path, FILE_MODE)
        _log_tightened(path, info)
    return True


def _log_tightened(path: Path, info: os.stat_result) -> None:
    get_logger("forwarder.state").warning(
        "state_permissions_tightened",
        path=str(path),
        mode=f"{stat.S_IMODE(info.st_mode):04o}",
        now=f"{FILE_MODE:04o}",
    )


def _check_info(info: os.stat_result, path: Path) -> None:
    """Refuse what is not a regular file of the daemon's own user with a single link."""
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeStateFileError(
            errno.EINVAL,
            f"{path} is not a regular file: move it away, the forwarder owns this path",
        )
    euid = os.geteuid()
    if info.st_uid != euid:
        raise UnsafeStateFileError(
            errno.EPERM,
            f"{path} is owned by uid {info.st_uid}, not by the forwarder's uid {euid}: "
            f"check where it came from, then chown {euid} it or move it away",
        )
    if info.st_nlink > 1:
        raise UnsafeStateFileError(
            errno.EMLINK,
            f"{path} has {info.st_nlink} hard links: a write would change the other names "
            "too; move it away (copy it if you need its content)",
        )


def read_state_file(path: Path) -> bytes:
    """The whole content of a state file (FileNotFoundError when absent)."""
    descriptor = open_state_file(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(descriptor, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def write_all(descriptor: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be partial)."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def replace_state_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically and durably with ``data`` (mode 0600).

    The temporary file is created fresh (``O_EXCL``): a stale one is removed first (a
    link is removed, not followed), and a link planted in between makes the write fail
    instead of writing through it.
    """
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE_FLAGS, FILE_MODE)
    try:
        # The umask may have removed bits from FILE_MODE; set it exactly.
        os.fchmod(descriptor, FILE_MODE)
        write_all(descriptor, data)
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    os.close(descriptor)
    os.replace(temporary, path)
    fsync_directory(path.parent)


def create_state_file(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` (0600) if no file is there yet; ``False`` if one is
    (which is then checked like any state file). Never follows a link."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _SAFE_FLAGS, FILE_MODE)
    except FileExistsError:
        os.close(open_state_file(path, os.O_RDONLY))
        return False
    try:
        os.fchmod(descriptor, FILE_MODE)
        write_all(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    fsync_directory(path.parent)
    return True


def ensure_private_directory(path: Path) -> None:
    """Create ``path`` (and any missing parent) with mode 0700 whatever the umask. An
    existing directory is left as it is (see ``statedir`` for the checks)."""
    path = Path(path)
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            continue  # created concurrently: checked like any existing directory
        # mkdir's mode went through the umask; set it exactly, on the directory just made.
        descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _SAFE_FLAGS)
        try:
            os.fchmod(descriptor, DIRECTORY_MODE)
        finally:
            os.close(descriptor)


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
