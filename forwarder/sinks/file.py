"""The file sink: NDJSON appended to a local file, fsynced before acknowledging."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

from forwarder.checkpoint.safefile import fsync_directory
from forwarder.config.loader import ConfigError
from forwarder.config.model import FileSinkConfig
from forwarder.events import Event
from forwarder.observability.logging import get_logger
from forwarder.sinks.base import SendResult

# Append only; never follow a link planted at the path, never hand the descriptor to a
# child process, never block opening a FIFO planted there (refused once fstat shows it).
WRITE_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
# Bytes read at a time when looking backwards for the last complete line at start.
TAIL_CHUNK = 65_536


class UnsafeSinkFileError(OSError):
    """The sink's path is a symbolic link, not a regular file, or a file with other hard
    links: writing to it would write somewhere else than the configured file."""


class FileSink:
    """Appends one encoded event per line.

    The file is opened with ``O_NOFOLLOW``: a symbolic link at the path is refused, never
    written through; so are anything but a regular file and a file with other hard links.
    A file the sink creates gets ``mode`` (default 0600) whatever the umask; an existing
    file keeps its mode.

    The sink remembers where its last acknowledged write ended. A write that fails part
    way (disk full, file size limit, I/O error) may leave part of the batch in the file:
    it is cut back to that end at once, and again before the retry if the cut failed, so a
    torn record is never left glued to the next line. On start a torn last line (left by a
    crash in the middle of a write) is cut off: it was never acknowledged, so the pipeline
    sends those events again. The sink owns the file: another writer appending to it would
    lose a torn tail of its own to a cut.

    Rotation (logrotate's rename, then SIGHUP): :meth:`reopen` closes the file and opens
    the configured path again, creating it if it is gone. Without a signal the sink still
    notices: before each batch it compares the path's device and inode with the open
    file's, and reopens when the file was renamed, deleted or replaced. Either way the
    switch happens between two batches, under the same lock as the writes, so a batch
    lands whole in one file: every acknowledged event is in the old file (fsynced before
    its batch was acknowledged) or in the new one, once.
    """

    def __init__(self, sink_id: str, config: FileSinkConfig) -> None:
        self.id = sink_id
        self.format = config.format
        self.reads_documents = False
        self.path = Path(config.path)
        self._fsync = config.fsync
        self._mode = int(config.mode, 8)
        self._descriptor: int | None = None
        self._end = 0
        """Offset just past the last acknowledged write: the file is whole up to here."""
        self._torn = False
        """A failed write may have left bytes past ``_end`` that are not cut off yet."""
        self._identity: tuple[int, int] | None = None
        """``(st_dev, st_ino)`` of the open file: the path naming another file (or none)
        means it was rotated."""
        # Reopen requests come from the event loop (SIGHUP), the writes run in a worker
        # thread: a counter, not a flag, so that a request made during a reopen is not
        # lost by that reopen clearing it.
        self._reopen_requests = 0
        self._reopens_handled = 0
        self._reopened: list[str] = []
        """Reasons of the reopens done in the worker thread, logged back on the loop."""
        # Writes, reopens and the close run in worker threads, one at a time: a batch is
        # never split across two files, and a cancelled send (shutdown) cannot have its
        # descriptor closed under a write still running in its thread.
        self._io = threading.Lock()
        self._log = get_logger("forwarder.sink", sink=sink_id)

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._open)
        except UnsafeSinkFileError as error:
            raise ConfigError(f"sinks.{self.id}.path", str(error.strerror)) from None

    def _open(self) -> None:
        self._make_directory()
        descriptor, created = self._open_descriptor()
        try:
            info = os.fstat(descriptor)
            keep = self._end_of_complete_lines(descriptor, info.st_size)
            if keep != info.st_size:
                os.ftruncate(descriptor, keep)
                os.fsync(descriptor)
            if created and self._fsync:
                # The new name must survive a crash too, not only the lines under it.
                fsync_directory(self.path.parent)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor, self._end, self._torn = descriptor, keep, False
        self._identity = (info.st_dev, info.st_ino)

    def _make_directory(self) -> None:
        directory = self.path.parent
        if directory.is_dir():
            return
        # Owner only, plus search for whom the file mode lets read it.
        mode = 0o700 | (0o050 if self._mode & 0o040 else 0) | (0o005 if self._mode & 0o004 else 0)
        directory.mkdir(parents=True, exist_ok=True, mode=mode)
        directory.chmod(mode)  # the umask may have removed bits

    def _open_descriptor(self) -> tuple[int, bool]:
        """The checked descriptor, and whether the file was created by this call."""
        path = self.path
        try:
            try:
                descriptor = os.open(path, WRITE_FLAGS | os.O_CREAT | os.O_EXCL, self._mode)
                created = True
            except FileExistsError:  # also a link, dangling or not: refused below
                descriptor = os.open(path, WRITE_FLAGS)
                created = False
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise UnsafeSinkFileError(
                    errno.ELOOP,
                    f"{path} is a symbolic link: the file sink never writes through one "
                    "(remove it, or set path to the file itself)",
                ) from None
            if error.errno == errno.ENXIO:  # a FIFO nobody reads
                raise _not_regular(path) from None
            raise
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise _not_regular(path)
            if info.st_nlink > 1:
                raise UnsafeSinkFileError(
                    errno.EMLINK,
                    f"{path} has {info.st_nlink} hard links: events would land in the other "
                    "names too; move it away",
                )
            if created:
                os.fchmod(descriptor, self._mode)  # the umask may have removed bits
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor, created

    def _end_of_complete_lines(self, descriptor: int, size: int) -> int:
        """Offset just past the last newline of the file open as ``descriptor`` (read
        through a second, read-only descriptor of the same file)."""
        if size == 0:
            return 0
        reader = os.open(self.path, READ_FLAGS)
        try:
            ours, theirs = os.fstat(descriptor), os.fstat(reader)
            if (ours.st_dev, ours.st_ino) != (theirs.st_dev, theirs.st_ino):
                raise UnsafeSinkFileError(errno.EAGAIN, f"{self.path} was replaced while opened")
            return _end_of_last_complete_line(reader, size)
        finally:
            os.close(reader)

    async def send(self, events: Sequence[Event]) -> SendResult:
        fmt = self.format
        data = b"\n".join([event.encoded(fmt) for event in events]) + b"\n"
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as error:
            return SendResult.retry_later(
                f"write to {self.path} failed: {error.strerror or error}",
                error_type="unsafe_path" if isinstance(error, UnsafeSinkFileError) else None,
            )
        finally:
            self._log_reopened()
        return SendResult.acknowledged()

    async def reopen(self) -> None:
        """Close the file and open the configured path again (SIGHUP, after a rotation).

        Done at once, between two batches. If the path cannot be opened (a link planted
        there, a full disk), nothing more is written to the old file: the next batch
        tries again and waits, failing, until it can.
        """
        self._reopen_requests += 1
        try:
            await asyncio.to_thread(self._reopen_if_open)
        except OSError as error:
            self._log.error(
                "file_reopen_failed",
                path=str(self.path),
                reason="sighup",
                error=str(error.strerror or error),
                note="retried before the next batch; nothing is written until it works",
            )
        finally:
            self._log_reopened()

    def _reopen_if_open(self) -> None:
        with self._io:
            if self._descriptor is None:  # not started, or closed: nothing to reopen
                self._reopens_handled = self._reopen_requests
                return
            self._follow_path()

    def _follow_path(self) -> None:
        """Open the file if it is not; reopen it if asked to, or if the path no longer
        names it. Called before every batch, with ``_io`` held."""
        if self._descriptor is None:
            self._open()
            return
        requested = self._reopen_requests
        reason = "sighup" if requested != self._reopens_handled else self._rotation()
        if reason is None:
            return
        old = self._descriptor
        if self._torn:
            self._cut()  # the old file is left whole too, or not left at all
        self._open()  # on failure the old descriptor stays, unused: the next batch retries
        os.close(old)
        self._reopens_handled = requested
        self._reopened.append(reason)

    def _rotation(self) -> str | None:
        """Why the open file is no longer the one at the path, or ``None`` if it is.

        One ``lstat`` per batch: negligible next to the batch's write and fsync."""
        descriptor = self._descriptor
        assert descriptor is not None
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return "deleted" if os.fstat(descriptor).st_nlink == 0 else "renamed"
        except OSError:
            return None  # cannot tell (say a directory made unreadable): keep our file
        if (info.st_dev, info.st_ino) != self._identity:
            return "replaced"
        return None

    def _log_reopened(self) -> None:
        while self._reopened:
            self._log.info("file_reopened", path=str(self.path), reason=self._reopened.pop(0))

    def _write(self, data: bytes) -> None:
        with self._io:
            self._follow_path()
            self._append(data)

    def _append(self, data: bytes) -> None:
        descriptor = self._descriptor
        assert descriptor is not None
        if self._torn:
            self._cut()
        try:
            _write_all(descriptor, data)
            if self._fsync:
                os.fsync(descriptor)
        except OSError:
            # Whatever part of the batch reached the file goes: the batch is sent again.
            self._torn = True
            with contextlib.suppress(OSError):
                self._cut()
            raise
        # O_APPEND: the offset is where this write ended (even if the file was cut by
        # someone else since, e.g. logrotate's copytruncate).
        self._end = os.lseek(descriptor, 0, os.SEEK_CUR)

    def _cut(self) -> None:
        """Cut the file back to the end of the last acknowledged write."""
        descriptor = self._descriptor
        assert descriptor is not None
        if os.fstat(descriptor).st_size > self._end:
            os.ftruncate(descriptor, self._end)
            if self._fsync:
                os.fsync(descriptor)
        self._torn = False

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._io:  # after a write still running in its thread (cancelled send)
            descriptor, self._descriptor = self._descriptor, None
            if descriptor is not None:
                os.close(descriptor)


def _not_regular(path: Path) -> UnsafeSinkFileError:
    return UnsafeSinkFileError(
        errno.EINVAL, f"{path} is not a regular file: the file sink only appends to one"
    )


def _write_all(descriptor: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a write may be partial)."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


def _end_of_last_complete_line(descriptor: int, size: int) -> int:
    """Offset just past the last newline (0 if there is none), scanning backwards."""
    position = size
    while position > 0:
        start = max(0, position - TAIL_CHUNK)
        chunk = os.pread(descriptor, position - start, start)
        if position == size and chunk.endswith(b"\n"):
            return size
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        position = start
    return 0
