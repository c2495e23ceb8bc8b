"""State faults: checkpoints or dead letters that cannot be written never lose events,
never kill the pipeline, and never reset a cursor silently."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from pipeline_harness import Harness, RecordingSink, ScriptedSource

from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore


class FlakyStore(SqliteCheckpointStore):
    """A checkpoint store whose disk is full until ``healed``."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.healed = False
        self.failures = 0

    def _commit(self, source_id: str, checkpoint: Checkpoint) -> None:
        if not self.healed:
            self.failures += 1
            raise OSError(28, "No space left on device")
        super()._commit(source_id, checkpoint)


def _committed(state_dir: Path) -> dict[str, Any] | None:
    """What is durably committed, read through a connection of its own."""
    store = SqliteCheckpointStore(state_dir)
    try:
        return store.load_sync("scripted")
    finally:
        store.close()


async def test_checkpoint_write_failures_keep_the_pipeline_going(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path)
    sink = RecordingSink("out")
    harness = Harness(tmp_path, ScriptedSource(batches=5, size=3), [sink], 100, store=store)
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    assert sink.received == list(range(15)), "the sink worker died on a checkpoint error"
    assert store.failures == 5
    assert (
        harness.committer.commit_error is not None and "No space" in harness.committer.commit_error
    )
    assert _committed(tmp_path) is None, "nothing was durable"
    errors = harness.metrics.registry.get_sample_value(
        "forwarder_checkpoint_write_errors_total", {"source": "scripted"}
    )
    assert errors == 5
    store.healed = True
    assert await harness.committer.flush() is True
    assert _committed(tmp_path) == {"batch": 4, "seen": {}}
    assert harness.committer.commit_error is None
    await harness.close()


async def test_dead_letter_write_failure_is_retried_not_dropped(tmp_path: Path) -> None:
    sink = RecordingSink("picky")
    sink.reject_n = {1}
    harness = Harness(tmp_path, ScriptedSource(batches=1, size=3), [sink], 100)
    blocker = tmp_path / "dl"
    blocker.write_text("a file where the dead-letter directory should be")
    polling = asyncio.create_task(harness.runner.poll_once())
    await asyncio.sleep(0.1)
    assert harness.committer.pending == 1, "acknowledged before its dead letter was written"
    assert harness.workers[0].failing_since is not None
    blocker.unlink()
    await polling
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    letters = [orjson.loads(line) for line in harness.dead.path.read_bytes().splitlines()]
    assert [(d["reason"], d["payload"]["n"]) for d in letters] == [("too_large", 1)]
    assert _committed(tmp_path) == {"batch": 0, "seen": {}}


async def test_source_dead_letter_failure_fails_the_poll_before_the_cursor(tmp_path: Path) -> None:
    sink = RecordingSink("out")
    harness = Harness(tmp_path, ScriptedSource(batches=3, size=2, bad_record_in=1), [sink], 100)
    (tmp_path / "dl").write_text("not a directory")
    await harness.runner.poll_once()
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    assert harness.runner.failing_since is not None
    assert "dead-letter write failed" in (harness.runner.last_error or "")
    # Batch 0 went through; batch 1 (with the bad record) was not dispatched.
    assert sink.received == [0, 1]
    assert _committed(tmp_path) == {"batch": 0, "seen": {}}
    await harness.close()


def _victim(tmp_path: Path) -> Path:
    """A file the daemon must never write (say, root's /etc/shadow)."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    return victim


async def test_dead_letters_are_private_whatever_the_umask(tmp_path: Path) -> None:
    sink = RecordingSink("picky")
    sink.reject_n = {1}
    previous = os.umask(0)
    try:
        harness = Harness(tmp_path, ScriptedSource(batches=1, size=3), [sink], 100)
        await harness.runner.poll_once()
        await asyncio.wait_for(harness.committer.wait_idle(), 5)
        await harness.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(harness.dead.path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(harness.dead.path).st_mode) == 0o600
    assert len(harness.dead.path.read_bytes().splitlines()) == 1


def _plant_link(path: Path, victim: Path) -> None:
    path.parent.mkdir()
    path.symlink_to(victim)


def _plant_foreign_file(path: Path, victim: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"")
    os.chown(path, 12345, 12345)


def _plant_hard_link(path: Path, victim: Path) -> None:
    path.parent.mkdir()
    os.link(victim, path)


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        (_plant_link, "is a symbolic link"),
        (_plant_foreign_file, "is owned by uid 12345"),
        (_plant_hard_link, "has 2 hard links"),
    ],
    ids=["symlink", "foreign file", "hard link"],
)
async def test_a_planted_dead_letter_file_is_never_written_and_nothing_is_lost(
    tmp_path: Path, plant: Callable[[Path, Path], None], reason: str
) -> None:
    victim = _victim(tmp_path)
    sink = RecordingSink("picky")
    sink.reject_n = {1}
    harness = Harness(tmp_path, ScriptedSource(batches=1, size=3), [sink], 100)
    planted = harness.dead.path
    plant(planted, victim)
    polling = asyncio.create_task(harness.runner.poll_once())
    worker = harness.workers[0]
    for _ in range(500):
        if worker.last_error_type == "dead_letter_write":
            break
        await asyncio.sleep(0.01)
    assert worker.last_error is not None and reason in worker.last_error
    assert str(planted) in worker.last_error
    assert harness.committer.pending == 1, "acknowledged before its dead letter was written"
    assert victim.read_bytes() == b"precious\n", "written through the planted file"
    planted.unlink()
    await polling
    await asyncio.wait_for(harness.committer.wait_idle(), 5)
    await harness.close()
    letters = [orjson.loads(line) for line in planted.read_bytes().splitlines()]
    assert [(d["reason"], d["payload"]["n"]) for d in letters] == [("too_large", 1)]
    assert stat.S_IMODE(os.stat(planted).st_mode) == 0o600
    assert victim.read_bytes() == b"precious\n"
    assert _committed(tmp_path) == {"batch": 0, "seen": {}}
