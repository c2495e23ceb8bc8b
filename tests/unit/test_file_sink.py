from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from disk_harness import small_tmpfs
from event_harness import numbered_event
from http_harness import StubSource, run_pipeline

from forwarder.checkpoint.base import Checkpoint
from forwarder.config.loader import ConfigError
from forwarder.config.model import FileSinkConfig
from forwarder.events import Batch, Event
from forwarder.sinks.base import SendResult
from forwarder.sinks.file import FileSink


async def test_appends_one_line_per_event_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.ndjson"
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    result = await sink.send([numbered_event(1), numbered_event(2)])
    assert result.retry is None and not result.rejected
    await sink.send([numbered_event(3)])
    await sink.aclose()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["n"] for line in lines] == [1, 2, 3]


async def test_raw_format_writes_the_api_record(tmp_path: Path) -> None:
    path = tmp_path / "raw.ndjson"
    sink = FileSink("f", FileSinkConfig(type="file", path=path, format="raw"))
    await sink.start()
    await sink.send([numbered_event(7)])
    await sink.aclose()
    assert orjson.loads(path.read_bytes()) == {"raw": 7}


async def test_torn_last_line_from_a_crash_is_cut_on_start(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"n":1}\n{"n":2}\n{"n":3, "partial')
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.send([numbered_event(4)])
    await sink.aclose()
    assert [orjson.loads(line)["n"] for line in path.read_bytes().splitlines()] == [1, 2, 4]


async def test_torn_file_without_any_newline_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"x" * 70000)
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.aclose()
    assert path.read_bytes() == b""


async def test_write_failure_asks_for_a_retry(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.aclose()
    path.unlink()
    path.mkdir()  # the sink cannot reopen a directory as a file
    result = await sink.send([numbered_event(1)])
    assert result.retry is not None and "events.ndjson" in result.retry


# -- a failed write never leaves a torn record ----------------------------------------------


def _padded(n: int) -> Event:
    return Event(
        id=f"id{n:06d}",
        timestamp=float(n),
        provider="test",
        action="a",
        document={"event": {"id": f"id{n:06d}"}, "n": n, "pad": "x" * 230},
        raw={},
    )


class PaddedSource(StubSource):
    """``pages`` pages of ``size`` events of ~290 bytes each."""

    provider = "test"

    def __init__(self, pages: int, size: int) -> None:
        self.id = "src"
        self.pages, self.size = pages, size

    async def poll(self) -> AsyncIterator[Batch]:
        for page in range(self.pages):
            events = [_padded(page * self.size + i) for i in range(self.size)]
            yield Batch(self.id, events, Checkpoint({"page": page}))


def _whole_lines(data: bytes) -> list[int]:
    """The ``n`` of every line; fails on a torn or glued line."""
    assert data == b"" or data.endswith(b"\n"), data[-80:]
    return [orjson.loads(line)["n"] for line in data.splitlines()]


async def test_disk_full_mid_batch_is_cut_back_then_retried(tmp_path: Path) -> None:
    """A real ENOSPC: a 256 KiB tmpfs, 216 KiB of it taken, 8 pages of 40 events
    (~11.6 KB each). The 4th page fills the disk half way; the space comes back."""
    with small_tmpfs(tmp_path / "fs", "256k") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (54 * 4096))
        path = disk / "events.ndjson"
        sink = FileSink("f", FileSinkConfig(type="file", path=path))
        await sink.start()
        seen: list[bytes] = []
        send = sink.send

        async def send_then_make_room(events: Sequence[Event]) -> SendResult:
            result = await send(events)
            if result.retry is not None and not seen:
                # What the file holds right after the failure, before any retry; then the
                # operator makes room.
                seen.append(path.read_bytes())
                filler.unlink()
            return result

        sink.send = send_then_make_room  # type: ignore[method-assign]
        try:
            store, _, metrics = await run_pipeline(
                tmp_path / "state", sink, PaddedSource(8, 40), within=30
            )
        finally:
            await sink.aclose()
        final = path.read_bytes()
    [at_failure] = seen
    errors = metrics.registry.get_sample_value(
        "forwarder_sink_errors_total", {"sink": "f", "error_type": "send_failed"}
    )
    assert errors == 1
    written = _whole_lines(at_failure)
    assert 0 < len(written) < 320 and written == list(range(len(written)))
    assert _whole_lines(final) == list(range(320)), "an event missing, doubled or torn"
    assert await store.load("src") == {"page": 7, "seen": {}}
    print(orjson.dumps({"bytes_at_failure": len(at_failure), "final": len(final)}).decode())


EFBIG_SCRIPT = r"""
import asyncio, json, resource, signal, sys
from forwarder.config.model import FileSinkConfig
from forwarder.events import Event
from forwarder.sinks.file import FileSink

def event(n):
    document = {"event": {"id": f"id{n:06d}"}, "n": n, "pad": "x" * 230}
    return Event(f"id{n:06d}", float(n), "test", "a", document, {})

async def main(path, limit):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    failures = []
    for page in range(10):
        batch = [event(page * 25 + i) for i in range(25)]
        while (result := await sink.send(batch)).retry is not None:
            with open(path, "rb") as written:
                failures.append({"reason": result.retry, "content": written.read().decode()})
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again
    await sink.aclose()
    print(json.dumps(failures))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_file_size_limit_mid_batch_is_cut_back_then_retried(tmp_path: Path) -> None:
    """EFBIG from RLIMIT_FSIZE (in a child process, the limit is per process): 20,000
    bytes, reached in the middle of the 3rd batch of 25 events."""
    path = tmp_path / "events.ndjson"
    child = subprocess.run(
        [sys.executable, "-c", EFBIG_SCRIPT, str(path), "20000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    failures = orjson.loads(child.stdout.splitlines()[-1])
    assert len(failures) == 1 and "File too large" in failures[0]["reason"]
    at_failure = _whole_lines(failures[0]["content"].encode())
    assert at_failure == list(range(50)), "the torn part of the 3rd batch is still there"
    assert _whole_lines(path.read_bytes()) == list(range(250))


# -- permissions and links --------------------------------------------------------------------


async def test_created_file_gets_the_configured_mode_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        default = FileSink("f", FileSinkConfig(type="file", path=tmp_path / "a" / "e.ndjson"))
        await default.start()
        await default.aclose()
        os.umask(0o077)
        shared = tmp_path / "b" / "e.ndjson"
        readable = FileSink("f", FileSinkConfig(type="file", path=shared, mode="0640"))
        await readable.start()
        await readable.aclose()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a" / "e.ndjson").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    assert stat.S_IMODE(shared.parent.stat().st_mode) == 0o750


async def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"n":0}\n')
    path.chmod(0o644)
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.send([numbered_event(1)])
    await sink.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert _whole_lines(path.read_bytes()) == [0, 1]


@pytest.mark.parametrize("target", ["file", "dangling"])
async def test_a_symlink_at_the_path_is_refused(tmp_path: Path, target: str) -> None:
    victim = tmp_path / "victim"
    if target == "file":
        victim.write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    path = tmp_path / "events.ndjson"
    path.symlink_to(victim)
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    with pytest.raises(ConfigError) as raised:
        await sink.start()
    assert raised.value.key == "sinks.f.path" and "symbolic link" in raised.value.problem
    result = await sink.send([numbered_event(1)])
    assert result.retry is not None and "symbolic link" in result.retry
    assert result.error_type == "unsafe_path"
    await sink.aclose()
    if target == "file":
        assert victim.read_bytes() == b"root:x:0:0:root:/root:/bin/sh\n"
    else:
        assert not victim.exists()


async def test_hard_links_and_fifos_are_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"x\n")
    linked = tmp_path / "linked.ndjson"
    os.link(victim, linked)
    fifo = tmp_path / "fifo.ndjson"
    os.mkfifo(fifo)
    for path, problem in ((linked, "hard links"), (fifo, "not a regular file")):
        sink = FileSink("f", FileSinkConfig(type="file", path=path))
        with pytest.raises(ConfigError, match=problem):
            await sink.start()  # never blocks on the FIFO
    assert victim.read_bytes() == b"x\n"
