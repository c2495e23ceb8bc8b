"""Log rotation of the file sink and the dead-letter file, on real files: a rename, a
deletion or a replacement of the path is noticed before the next batch, SIGHUP's
``reopen`` switches at once, and no batch is split, lost or written twice."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from event_harness import numbered_event
from structlog.testing import capture_logs

from forwarder.clock import ManualClock
from forwarder.config.model import FileSinkConfig
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import DeadLetter
from forwarder.observability.metrics import Metrics
from forwarder.sinks.file import FileSink


def _numbers(path: Path) -> list[int]:
    return [orjson.loads(line)["n"] for line in path.read_bytes().splitlines()]


def _reopened(logs: Sequence[dict[str, Any]]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "file_reopened"]


async def _sink(path: Path) -> FileSink:
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    return sink


async def test_a_renamed_file_is_noticed_and_the_next_batch_goes_to_a_new_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.ndjson"
    with capture_logs() as logs:
        sink = await _sink(path)
        await sink.send([numbered_event(1), numbered_event(2)])
        path.rename(tmp_path / "events.ndjson.1")
        result = await sink.send([numbered_event(3), numbered_event(4)])
        await sink.send([numbered_event(5)])
        await sink.aclose()
    assert result.retry is None
    assert _numbers(tmp_path / "events.ndjson.1") == [1, 2]
    assert _numbers(path) == [3, 4, 5]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _reopened(logs) == ["renamed"]


async def test_a_deleted_file_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    with capture_logs() as logs:
        sink = await _sink(path)
        await sink.send([numbered_event(1)])
        path.unlink()
        await sink.send([numbered_event(2)])
        await sink.aclose()
    assert _numbers(path) == [2]
    assert _reopened(logs) == ["deleted"]


async def test_a_file_created_in_place_of_the_rotated_one_is_used(tmp_path: Path) -> None:
    """logrotate's ``create``: a new empty file at the path before the signal."""
    path = tmp_path / "events.ndjson"
    with capture_logs() as logs:
        sink = await _sink(path)
        await sink.send([numbered_event(1)])
        path.rename(tmp_path / "events.ndjson.1")
        path.write_bytes(b"")
        await sink.send([numbered_event(2)])
        await sink.aclose()
    assert _numbers(path) == [2]
    assert _numbers(tmp_path / "events.ndjson.1") == [1]
    assert _reopened(logs) == ["replaced"]


async def test_reopen_switches_at_once_even_without_a_batch(tmp_path: Path) -> None:
    """SIGHUP: the old file is let go at once (the new one exists before any event)."""
    path = tmp_path / "events.ndjson"
    with capture_logs() as logs:
        sink = await _sink(path)
        await sink.send([numbered_event(1)])
        path.rename(tmp_path / "events.ndjson.1")
        await sink.reopen()
        assert path.exists() and path.read_bytes() == b""
        await sink.send([numbered_event(2)])
        await sink.aclose()
    assert _numbers(path) == [2]
    assert _numbers(tmp_path / "events.ndjson.1") == [1]
    assert _reopened(logs) == ["sighup"]


async def test_reopen_of_a_file_still_in_place_keeps_appending(tmp_path: Path) -> None:
    """SIGHUP without a rotation (or twice): nothing lost, nothing repeated."""
    path = tmp_path / "events.ndjson"
    sink = await _sink(path)
    await sink.send([numbered_event(1)])
    await sink.reopen()
    await sink.reopen()
    await sink.send([numbered_event(2)])
    await sink.aclose()
    assert _numbers(path) == [1, 2]


async def test_reopen_after_close_does_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    sink = await _sink(path)
    await sink.aclose()
    path.unlink()
    await sink.reopen()
    assert not path.exists()


async def test_a_link_planted_after_a_rotation_is_refused_and_the_old_file_left_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.ndjson"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"")
    with capture_logs() as logs:
        sink = await _sink(path)
        await sink.send([numbered_event(1)])
        path.rename(tmp_path / "events.ndjson.1")
        path.symlink_to(elsewhere)
        refused = await sink.send([numbered_event(2)])
        await sink.reopen()  # SIGHUP while the link is there: refused too
        path.unlink()
        accepted = await sink.send([numbered_event(2)])
        await sink.aclose()
    assert refused.retry is not None and refused.error_type == "unsafe_path"
    assert accepted.retry is None
    assert elsewhere.read_bytes() == b"", "written through the link"
    assert _numbers(tmp_path / "events.ndjson.1") == [1], "kept writing to the rotated file"
    assert _numbers(path) == [2]
    assert [entry["event"] for entry in logs if entry["event"].startswith("file_reopen")] == [
        "file_reopen_failed",
        "file_reopened",
    ]


async def test_a_torn_tail_of_the_rotated_file_is_cut_before_it_is_let_go(
    tmp_path: Path,
) -> None:
    """A failed write (here: a file size limit) leaves part of a batch: the sink cuts it
    from the old file before switching, and the batch lands whole in the new file."""
    path = tmp_path / "events.ndjson"
    sink = await _sink(path)
    await sink.send([numbered_event(1)])
    sink._torn = True  # what a failed write whose cut also failed leaves behind
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(descriptor, b'{"n": 2, "tr')
    os.close(descriptor)
    path.rename(tmp_path / "events.ndjson.1")
    await sink.send([numbered_event(2)])
    await sink.aclose()
    assert (tmp_path / "events.ndjson.1").read_bytes().endswith(b"}\n")
    assert _numbers(tmp_path / "events.ndjson.1") == [1]
    assert _numbers(path) == [2]


def _letter(n: int) -> DeadLetter:
    return DeadLetter(
        stage="sink", reason="rejected", source="s", sink="k", payload={"n": n}, detail=None
    )


async def test_dead_letters_follow_a_rotation_without_a_signal(tmp_path: Path) -> None:
    """The dead-letter file is opened for each write: after a rename or a deletion the
    next letters go to a new file at the configured path, 0600."""
    queue = FileDeadLetterQueue(tmp_path / "dl", Metrics(), ManualClock(0.0))
    await queue.write([_letter(1)])
    queue.path.rename(queue.path.with_name("dead-letter.ndjson.1"))
    await queue.write([_letter(2)])
    rotated = queue.path.with_name("dead-letter.ndjson.1")
    assert [orjson.loads(line)["payload"]["n"] for line in rotated.read_bytes().splitlines()] == [1]
    assert [
        orjson.loads(line)["payload"]["n"] for line in queue.path.read_bytes().splitlines()
    ] == [2]
    assert stat.S_IMODE(os.stat(queue.path).st_mode) == 0o600
    queue.path.unlink()
    await queue.write([_letter(3)])
    assert [
        orjson.loads(line)["payload"]["n"] for line in queue.path.read_bytes().splitlines()
    ] == [3]
