from __future__ import annotations

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
