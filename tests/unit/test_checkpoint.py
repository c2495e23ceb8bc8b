from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import orjson
import pytest

from forwarder.checkpoint.base import CheckpointCorruptError
from forwarder.checkpoint.file import FileCheckpointStore


async def test_commit_then_load_round_trips(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    assert await store.load("cal") is None
    await store.commit("cal", {"cursor": "2026-11-27T10:00:00.000001Z", "seen": {"a": 1.5}})
    assert await store.load("cal") == {"cursor": "2026-11-27T10:00:00.000001Z", "seen": {"a": 1.5}}
    await store.commit("cal", {"cursor": "later", "seen": {}})
    assert (await store.load("cal"))["cursor"] == "later"
    assert await store.list_sources() == ["cal"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp")), "temporary file left behind"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"format": 1, "source": "cal", "st',
        b"[]",
        b'{"format": 99, "source": "cal", "state": {}}',
        b'{"format": 1, "source": "other", "state": {}}',
    ],
)
async def test_corrupt_checkpoint_is_an_error_not_a_reset(tmp_path: Path, content: bytes) -> None:
    store = FileCheckpointStore(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    path = tmp_path / "checkpoints" / "cal.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointCorruptError) as caught:
        await store.load("cal")
    assert str(path) in str(caught.value)
    assert path.read_bytes() == content, "a corrupt checkpoint must be left for the operator"


async def test_unreadable_checkpoint_is_an_error(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    # A directory where the file should be: unreadable even for root.
    (tmp_path / "checkpoints" / "cal.json").mkdir(parents=True)
    with pytest.raises(CheckpointCorruptError) as caught:
        await store.load("cal")
    assert "cannot read checkpoint" in str(caught.value)


async def test_reset_removes_only_that_source(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    await store.commit("a", {"x": 1})
    await store.commit("b", {"x": 2})
    assert await store.reset("a") is True
    assert await store.reset("a") is False
    assert await store.load("a") is None
    assert await store.load("b") == {"x": 2}


async def test_file_is_an_envelope_with_the_source(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    await store.commit("cal", {"x": 1})
    envelope = orjson.loads((tmp_path / "checkpoints" / "cal.json").read_bytes())
    assert envelope["format"] == 1 and envelope["source"] == "cal" and envelope["state"] == {"x": 1}


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.usefixtures("open_umask")
async def test_checkpoints_are_private_whatever_the_umask(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "state")
    await store.commit("cal", {"cursor": "x"})
    assert _mode(tmp_path / "state") == 0o700
    assert _mode(tmp_path / "state" / "checkpoints") == 0o700
    assert _mode(tmp_path / "state" / "checkpoints" / "cal.json") == 0o600
    await store.commit("cal", {"cursor": "y"})
    assert _mode(tmp_path / "state" / "checkpoints" / "cal.json") == 0o600


def _victim(tmp_path: Path) -> Path:
    """A file the daemon must never write (say, root's /etc/shadow)."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    return victim


async def test_a_link_as_the_checkpoint_is_refused_on_load_and_replaced_on_commit(
    tmp_path: Path,
) -> None:
    store = FileCheckpointStore(tmp_path)
    victim = _victim(tmp_path)
    store.directory.mkdir()
    link = store.directory / "cal.json"
    link.symlink_to(victim)
    with pytest.raises(CheckpointCorruptError) as caught:
        await store.load("cal")
    assert str(link) in str(caught.value) and "symbolic link" in str(caught.value)
    await store.commit("cal", {"cursor": "x"})
    assert victim.read_bytes() == b"precious\n", "written through the link"
    assert not link.is_symlink() and await store.load("cal") == {"cursor": "x"}


async def test_a_link_planted_as_the_temporary_file_is_removed_not_followed(
    tmp_path: Path,
) -> None:
    store = FileCheckpointStore(tmp_path)
    victim = _victim(tmp_path)
    store.directory.mkdir()
    (store.directory / "cal.json.tmp").symlink_to(victim)
    await store.commit("cal", {"cursor": "x"})
    assert victim.read_bytes() == b"precious\n", "written through the temporary file's link"
    assert await store.load("cal") == {"cursor": "x"}
    assert not (store.directory / "cal.json.tmp").is_symlink()
    assert not (store.directory / "cal.json.tmp").exists()


async def test_a_stale_temporary_file_is_replaced(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    store.directory.mkdir()
    stale = store.directory / "cal.json.tmp"
    stale.write_bytes(b'{"half a checkp')
    stale.chmod(0o666)
    await store.commit("cal", {"cursor": "x"})
    assert await store.load("cal") == {"cursor": "x"}
    assert _mode(store.directory / "cal.json") == 0o600


async def test_a_checkpoint_of_another_user_is_refused(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    await store.commit("cal", {"cursor": "x"})
    os.chown(store.directory / "cal.json", 12345, 12345)
    with pytest.raises(CheckpointCorruptError) as caught:
        await store.load("cal")
    assert "owned by uid 12345" in str(caught.value)


async def test_a_hard_linked_checkpoint_is_refused(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    await store.commit("cal", {"cursor": "x"})
    os.link(store.directory / "cal.json", tmp_path / "elsewhere")
    with pytest.raises(CheckpointCorruptError) as caught:
        await store.load("cal")
    assert "2 hard links" in str(caught.value)


async def test_a_loose_checkpoint_is_tightened_when_read(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    await store.commit("cal", {"cursor": "x"})
    (store.directory / "cal.json").chmod(0o644)  # as written by an older release
    assert await store.load("cal") == {"cursor": "x"}
    assert _mode(store.directory / "cal.json") == 0o600


async def test_a_fifo_as_the_checkpoint_is_refused_without_blocking(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    store.directory.mkdir()
    os.mkfifo(store.directory / "cal.json")
    with pytest.raises(CheckpointCorruptError) as caught:
        await asyncio.wait_for(store.load("cal"), 10)
    assert "not a regular file" in str(caught.value)
