"""The file sink: NDJSON appended to a local file, fsynced before acknowledging."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from forwarder.config.loader import ConfigError
from forwarder.config.model import FileSinkConfig
from forwarder.events import Event
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

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._open)
        except UnsafeSinkFileError as error:
            raise ConfigError(f"sinks.{self.id}.path", str(error.strerror)) from None

    def _open(self) -> None:
        self._make_directory()
        descriptor = self._open_descriptor()
        try:
            size = os.fstat(descriptor).st_size
            keep = self._end_of_complete_lines(descriptor, size)
            if keep != size:
                os.ftruncate(descriptor, keep)
                os.fsync(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor, self._end, self._torn = descriptor, keep, False

    def _make_directory(self) -> None:
        directory = self.path.parent
        if directory.is_dir():
            return
        # Owner only, plus search for whom the file mode lets read it.
        mode = 0o700 | (0o050 if self._mode & 0o040 else 0) | (0o005 if self._mode & 0o004 else 0)
        directory.mkdir(parents=True, exist_ok=True, mode=mode)
        directory.chmod(mode)  # the umask may have removed bits

    def _open_descriptor(self) -> int:
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
        return descriptor

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
        return SendResult.acknowledged()

    def _write(self, data: bytes) -> None:
        if self._descriptor is None:
            self._open()
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
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            await asyncio.to_thread(os.close, descriptor)


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
