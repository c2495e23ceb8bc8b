"""The command line as a user runs it (subprocesses)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import orjson
from cli_harness import calendly_config, run_cli

from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.daemon import StateDirectoryLock

GOOGLE_PAGE = {
    "kind": "admin#reports#activities",
    "items": [
        {
            "kind": "admin#reports#activity",
            "id": {
                "time": "2026-11-27T10:00:00.123Z",
                "uniqueQualifier": "-4031291820946411744",
                "applicationName": "calendar",
                "customerId": "C0abc",
            },
            "actor": {"callerType": "USER", "email": "alice@x.com", "profileId": "1"},
            "ipAddress": "203.0.113.9",
            "events": [
                {
                    "type": "calendar_change",
                    "name": "change_calendar_acls",
                    "parameters": [
                        {"name": "grantee_email", "value": "bob@y.com"},
                        {"name": "access_level", "value": "editor"},
                    ],
                },
                {"type": "event_change", "name": "create_event", "parameters": []},
            ],
        }
    ],
}


def test_normalize_a_google_page() -> None:
    result = run_cli("normalize", "--source", "google_calendar", stdin=orjson.dumps(GOOGLE_PAGE))
    assert result.returncode == 0, result.stderr
    documents = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [d["event"]["action"] for d in documents] == ["change_calendar_acls", "create_event"]
    assert documents[0]["message"] == (
        "alice@x.com changed the access level on a calendar for bob@y.com to editor"
    )
    assert documents[0]["source"]["ip"] == "203.0.113.9"
    assert documents[0]["event"]["id"] != documents[1]["event"]["id"]
    again = run_cli("normalize", "--source", "google_calendar", stdin=orjson.dumps(GOOGLE_PAGE))
    assert again.stdout.splitlines()[0].count(documents[0]["event"]["id"].encode()) == 1


def test_normalize_ndjson_reports_bad_lines_and_keeps_the_rest() -> None:
    good = {
        "uri": "https://api.calendly.com/activity_log_entries/A1",
        "occurred_at": "2026-11-27T10:00:00.000001Z",
        "namespace": "API",
        "action": "Token_Created",
        "fully_qualified_name": "API.Token_Created",
        "details": {},
        "organization": "https://api.calendly.com/organizations/O",
        "actor": {"type": "System", "display_name": "Calendly System"},
    }
    stdin = orjson.dumps(good) + b"\n{not json\n" + orjson.dumps({**good, "uri": None}) + b"\n"
    result = run_cli("normalize", "--source", "calendly", stdin=stdin)
    assert result.returncode == 1
    documents = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 1 and documents[0]["event"]["action"] == "API.Token_Created"
    errors = result.stderr.decode().splitlines()
    assert len(errors) == 2
    assert "invalid_json" in errors[0]


def _config(tmp_path: Path) -> Path:
    return calendly_config(tmp_path)


def _store(tmp_path: Path) -> SqliteCheckpointStore:
    return SqliteCheckpointStore(tmp_path / "state")


def _seen_rows(tmp_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "state.sqlite3")) as db:
        return int(db.execute("SELECT count(*) FROM seen").fetchone()[0])


def test_cursors_show_and_reset(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = _store(tmp_path)
    store.commit_sync(
        "cal",
        Checkpoint({"cursor": "2026-11-27T10:00:00.000001Z"}, {"a": 1.0, "b": 2.0, "dl:x": 3.0}),
    )
    store.close()
    shown = run_cli("cursors", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    summary = orjson.loads(shown.stdout)
    assert summary["source"] == "cal" and summary["committed"] is True
    assert summary["cursor"] == "2026-11-27T10:00:00.000001Z"
    assert summary["seen_ids"] == 3
    assert isinstance(summary["committed_at"], float)
    reset = run_cli("cursors", "reset", "--config", str(config), "--source", "cal")
    assert reset.returncode == 0, reset.stderr
    assert b"cursor of cal reset" in reset.stdout
    assert (
        orjson.loads(run_cli("cursors", "show", "--config", str(config)).stdout)["committed"]
        is False
    )
    assert _seen_rows(tmp_path) == 0, "the seen keys of the source were left behind"
    again = run_cli("cursors", "reset", "--config", str(config), "--source", "cal")
    assert again.returncode == 0 and b"cal had no cursor" in again.stdout


def test_cursors_show_reads_a_checkpoint_not_yet_migrated_without_migrating_it(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    FileCheckpointStore(tmp_path / "state").commit_sync(
        "cal", {"cursor": "2026-11-27T10:00:00.000001Z", "seen": {"a": 1.0, "b": 2.0}}
    )
    shown = run_cli("cursors", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    summary = orjson.loads(shown.stdout)
    assert summary["cursor"] == "2026-11-27T10:00:00.000001Z" and summary["seen_ids"] == 2
    assert (tmp_path / "state" / "checkpoints" / "cal.json").exists()
    assert not (tmp_path / "state" / "state.sqlite3").exists(), "show created the database"


def test_cursors_reset_also_removes_a_checkpoint_not_yet_migrated(tmp_path: Path) -> None:
    """Otherwise the next start would import it and the reset would be undone."""
    config = _config(tmp_path)
    FileCheckpointStore(tmp_path / "state").commit_sync("cal", {"cursor": "x", "seen": {}})
    reset = run_cli("cursors", "reset", "--config", str(config), "--source", "cal")
    assert reset.returncode == 0, reset.stderr
    assert not (tmp_path / "state" / "checkpoints" / "cal.json").exists()
    store = _store(tmp_path)
    assert store.load_sync("cal") is None
    store.close()


def test_cursors_reset_refuses_while_a_daemon_holds_the_state(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = _store(tmp_path)
    store.commit_sync("cal", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    lock = StateDirectoryLock(tmp_path / "state")
    lock.acquire()
    try:
        result = run_cli("cursors", "reset", "--config", str(config), "--source", "cal")
    finally:
        lock.release()
    assert result.returncode == 3
    assert b"in use by another forwarder" in result.stderr
    assert store.load_sync("cal") == {"cursor": "x", "seen": {"a": 1.0}}
    store.close()


def test_run_with_a_corrupt_checkpoint_exits_3_and_keeps_the_file(tmp_path: Path) -> None:
    config = _config(tmp_path)
    checkpoint = tmp_path / "state" / "checkpoints" / "cal.json"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b'{"format": 1, "sou')
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 3
    message = result.stderr.decode().strip().splitlines()[-1]
    assert str(checkpoint) in message and "cursors reset --source cal" in message
    assert checkpoint.read_bytes() == b'{"format": 1, "sou'


def _last_line(result) -> str:  # type: ignore[no-untyped-def]
    return result.stderr.decode().strip().splitlines()[-1]


def test_run_with_a_database_that_is_not_one_exits_3_and_keeps_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    database = tmp_path / "state" / "state.sqlite3"
    database.parent.mkdir()
    garbage = b"not a database, but a file some tool overwrote" * 100
    database.write_bytes(garbage)
    database.chmod(0o600)
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 3, result.stderr
    message = _last_line(result)
    assert str(database) in message and "move it away" in message
    assert database.read_bytes() == garbage


def test_run_with_a_cursor_that_is_not_json_exits_3_and_reset_clears_it(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = _store(tmp_path)
    store.commit_sync("cal", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    store.close()
    database = tmp_path / "state" / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE cursors SET state = '{\"cursor\": \"x' WHERE source = 'cal'")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 3, result.stderr
    message = _last_line(result)
    assert "'cal'" in message and str(database) in message and "not valid JSON" in message
    assert "cursors reset --source cal" in message
    shown = orjson.loads(run_cli("cursors", "show", "--config", str(config)).stdout)
    assert "not valid JSON" in shown["error"]
    reset = run_cli("cursors", "reset", "--config", str(config), "--source", "cal")
    assert reset.returncode == 0, reset.stderr
    assert _seen_rows(tmp_path) == 0
    store = _store(tmp_path)
    assert store.load_sync("cal") is None
    store.close()


def test_run_with_a_database_of_a_newer_release_exits_3(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = _store(tmp_path)
    store.commit_sync("cal", Checkpoint({"cursor": "x"}))
    store.close()
    database = tmp_path / "state" / "state.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA user_version = 2")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 3, result.stderr
    assert "written by a newer release (schema version 2" in _last_line(result)
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2, "the file was changed"
