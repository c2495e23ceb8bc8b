"""``forwarder cursors export`` / ``import`` and ``require_state``: a source's whole state
moves between state directories exactly (cursor, every seen key of either type, its
commit time); an import is all or nothing; a source that must have state refuses to
start without it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest
from cli_harness import calendly_config, run_cli

from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.cli import main
from forwarder.daemon import StateDirectoryLock
from forwarder.shard import owner


def _replica(tmp_path: Path, name: str, *, require_state: bool = False) -> Path:
    """A config of two Calendly sources (``cal``, ``cal2``) with its own state directory."""
    directory = tmp_path / name
    directory.mkdir()
    config = calendly_config(directory, {"cal": "X", "cal2": "Y"})
    if require_state:
        text = config.read_text().replace(
            'base_url: "http://127.0.0.1:9"}',
            ('base_url: "http://127.0.0.1:9", require_state: true}'),
        )
        config.write_text(text)
    return config


def _state_dir(config: Path) -> Path:
    return config.parent / "state"


def _commit_history(config: Path) -> None:
    """Two commits per source, text ids and binary digests, some keys expired."""
    store = SqliteCheckpointStore(_state_dir(config))
    try:
        store.commit_sync(
            "cal",
            Checkpoint({"cursor": "2026-11-27T10:00:00Z", "n": 1}, {"a": 1.0, "b": 2.5}),
        )
        store.commit_sync(
            "cal",
            Checkpoint(
                {"cursor": "2026-11-27T11:00:00Z", "n": 2},
                {"c": 3.25, b"\x00\xffdigest": 4.0, "d": 1700000000.123456},
                seen_expire_before=2.0,
            ),
        )
        store.commit_sync("cal2", Checkpoint({"cursor": "2026-11-28T00:00:00Z"}, {b"\x01": 9.0}))
    finally:
        store.close()


def _load(config: Path, source: str) -> dict[str, object] | None:
    store = SqliteCheckpointStore(_state_dir(config))
    try:
        return store.load_sync(source)
    finally:
        store.close()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _export(capsys: pytest.CaptureFixture[str], config: Path, output: Path) -> list[dict]:
    code, _, err = _cli(capsys, "cursors", "export", "-c", str(config), "-o", str(output))
    assert code == 0, err
    return [orjson.loads(line) for line in output.read_bytes().splitlines()]


def test_export_then_import_into_an_empty_state_directory_restores_every_source_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = _replica(tmp_path, "old"), _replica(tmp_path, "new")
    _commit_history(old)
    exported = tmp_path / "cursors.ndjson"
    lines = _export(capsys, old, exported)

    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    assert [line["source"] for line in lines] == ["cal", "cal2"]
    assert {line["type"] for line in lines} == {"calendly"}
    assert lines[0]["cursor"] == {"cursor": "2026-11-27T11:00:00Z", "n": 2}
    # "a" expired; the digest travels as base64 apart from the text ids.
    assert sorted(key for key, _ in lines[0]["seen"]) == ["b", "c", "d"]
    assert len(lines[0]["seen_digests"]) == 1

    code, out, err = _cli(capsys, "cursors", "import", "-c", str(new), "-i", str(exported))
    assert code == 0, err
    assert "imported 2 source(s)" in out

    for source in ("cal", "cal2"):
        assert _load(new, source) == _load(old, source)
    assert _load(new, "cal")["seen"][b"\x00\xffdigest"] == 4.0  # type: ignore[index]
    _, shown_old, _ = _cli(capsys, "cursors", "show", "-c", str(old))
    _, shown_new, _ = _cli(capsys, "cursors", "show", "-c", str(new))
    assert shown_new == shown_old  # committed_at included
    assert shown_new.count("\n") == 2


def test_export_to_stdout_of_chosen_sources_and_refusal_of_a_source_without_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _replica(tmp_path, "old")
    store = SqliteCheckpointStore(_state_dir(old))
    store.commit_sync("cal2", Checkpoint({"cursor": "x"}, {"k": 1.0}))
    store.close()

    code, out, _ = _cli(capsys, "cursors", "export", "-c", str(old), "--source", "cal2")
    assert code == 0
    assert [orjson.loads(line)["source"] for line in out.splitlines()] == ["cal2"]
    # By default only sources that have state.
    code, out, _ = _cli(capsys, "cursors", "export", "-c", str(old))
    assert code == 0 and len(out.splitlines()) == 1
    code, out, err = _cli(capsys, "cursors", "export", "-c", str(old), "--source", "cal")
    assert code == 3 and out == ""
    assert "'cal' has no committed state" in err
    code, _, err = _cli(capsys, "cursors", "export", "-c", str(old), "--source", "nope")
    assert code == 2 and "no source 'nope'" in err


@pytest.fixture
def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    old = _replica(tmp_path, "old")
    _commit_history(old)
    path = tmp_path / "cursors.ndjson"
    _export(capsys, old, path)
    return path


def _rewrite_line(path: Path, number: int, change: dict[str, object]) -> Path:
    lines = path.read_bytes().splitlines()
    document = orjson.loads(lines[number - 1])
    document.update(change)
    lines[number - 1] = orjson.dumps(document)
    out = path.with_name(f"changed-{number}.ndjson")
    out.write_bytes(b"\n".join(lines) + b"\n")
    return out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"source": "other"}, "line 2: source 'other' is not in the config"),
        ({"type": "google_calendar"}, "is a google_calendar source in the export but a calendly"),
        ({"version": 99}, "line 2: format version 99"),
        ({"seen": [["k"]]}, "line 2: 'seen' has an entry that is not [key, time]"),
        ({"seen_digests": [["not base64!", 1.0]]}, "line 2: 'seen_digests' has a key"),
        ({"cursor": {"seen": 1}}, "line 2: 'cursor' is not an object"),
        ({"source": "cal"}, "line 2: source 'cal' is already on line 1"),
    ],
)
def test_a_bad_line_refuses_the_whole_import(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    exported: Path,
    change: dict[str, object],
    expected: str,
) -> None:
    new = _replica(tmp_path, "new")
    bad = _rewrite_line(exported, 2, change)
    code, _, err = _cli(capsys, "cursors", "import", "-c", str(new), "-i", str(bad))
    assert code == 2
    assert expected in err and "nothing was imported" in err
    # Line 1 was good: not imported either.
    assert _load(new, "cal") is None


def test_a_line_that_is_not_json_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: Path
) -> None:
    new = _replica(tmp_path, "new")
    bad = tmp_path / "bad.ndjson"
    bad.write_bytes(exported.read_bytes() + b"\n{not json\n")
    code, _, err = _cli(capsys, "cursors", "import", "-c", str(new), "-i", str(bad))
    assert code == 2 and "line 4: not valid JSON" in err
    assert _load(new, "cal") is None and _load(new, "cal2") is None


def test_import_refuses_a_source_with_state_unless_replace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: Path
) -> None:
    new = _replica(tmp_path, "new")
    store = SqliteCheckpointStore(_state_dir(new))
    store.commit_sync("cal2", Checkpoint({"cursor": "mine"}, {"stale": 100.0}))
    store.close()

    code, _, err = _cli(capsys, "cursors", "import", "-c", str(new), "-i", str(exported))
    assert code == 3
    assert "cal2 already has state" in err and "--replace" in err
    assert _load(new, "cal") is None  # nothing imported, not even the free source
    assert _load(new, "cal2") == {"cursor": "mine", "seen": {"stale": 100.0}}

    code, _, err = _cli(
        capsys, "cursors", "import", "-c", str(new), "-i", str(exported), "--replace"
    )
    assert code == 0, err
    assert _load(new, "cal2") == {"cursor": "2026-11-28T00:00:00Z", "seen": {b"\x01": 9.0}}


def test_import_refuses_while_a_daemon_holds_the_state_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: Path
) -> None:
    new = _replica(tmp_path, "new")
    _state_dir(new).mkdir(mode=0o700)
    lock = StateDirectoryLock(_state_dir(new))
    lock.acquire()
    try:
        code, _, err = _cli(capsys, "cursors", "import", "-c", str(new), "-i", str(exported))
    finally:
        lock.release()
    assert code == 3 and "stop it before importing" in err
    assert _load(new, "cal") is None


def test_import_reads_standard_input_and_needs_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: Path
) -> None:
    new = _replica(tmp_path, "new")
    code, _, err = _cli(capsys, "cursors", "import", "-c", str(new))
    assert code == 2 and "needs --input" in err
    result = run_cli("cursors", "import", "-c", str(new), "-i", "-", stdin=exported.read_bytes())
    assert result.returncode == 0, result.stderr
    assert _load(new, "cal2") == {"cursor": "2026-11-28T00:00:00Z", "seen": {b"\x01": 9.0}}


def test_require_state_refuses_to_start_a_source_without_state(tmp_path: Path) -> None:
    config = _replica(tmp_path, "new", require_state=True)
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.decode().splitlines() if "state error" in line]
    assert len(errors) == 1
    assert "source 'cal' has no committed state" in errors[0]
    assert "forwarder cursors import" in errors[0]
    assert (
        not (config.parent / "out.ndjson").exists()
        or not (config.parent / "out.ndjson").read_bytes()
    )


def test_cursors_help_describes_export_and_import() -> None:
    result = run_cli("cursors", "--help")
    text = " ".join(result.stdout.decode().split())
    assert "export: write each source's whole state" in text
    assert "import: write the sources of an export" in text
    assert "--replace" in text


def _sharded(tmp_path: Path, name: str, index: int) -> Path:
    config = _replica(tmp_path, name)
    config.write_text(config.read_text() + f"shard: {{count: 2, index: {index}}}\n")
    return config


def test_resharding_each_new_replica_imports_only_the_sources_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], exported: Path
) -> None:
    owners = {source: owner(source, 2) for source in ("cal", "cal2")}
    assert set(owners.values()) == {0, 1}, "the test needs one source on each shard"
    for index in (0, 1):
        new = _sharded(tmp_path, f"new{index}", index)
        code, out, err = _cli(capsys, "cursors", "import", "-c", str(new), "-i", str(exported))
        assert code == 0, err
        for source, shard in owners.items():
            if shard == index:
                assert _load(new, source) is not None and source in out
            else:
                assert _load(new, source) is None
                assert f"skipped {source}: another replica runs it" in err
        # Its export (by default) is what it runs, ready for the next resharding: not the
        # stale state of a source it ran before an earlier resharding.
        store = SqliteCheckpointStore(_state_dir(new))
        for source, shard in owners.items():
            if shard != index:
                store.commit_sync(source, Checkpoint({"cursor": "stale"}))
        store.close()
        code, out, _ = _cli(capsys, "cursors", "export", "-c", str(new))
        assert code == 0
        assert [orjson.loads(line)["source"] for line in out.splitlines()] == [
            source for source, shard in owners.items() if shard == index
        ]
