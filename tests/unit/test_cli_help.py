"""The command line explains itself: a description per subcommand, ``--config`` described
wherever it is accepted, exit codes listed, the config's durations accepted by
``simulate``, unknown sources refused, and hints that name the ``--config`` they need."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import orjson
import pytest
from cli_harness import calendly_config, run_cli

from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.cli import _parser
from forwarder.simulators.server import settings_from_args

COMMANDS = ("run", "check-config", "cursors", "normalize", "simulate")


def _help(*command: str) -> str:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_the_top_level_help_lists_every_command_with_a_summary_and_the_exit_codes() -> None:
    text = _help()
    for command in COMMANDS:
        lines = [line for line in text.splitlines() if line.strip().startswith(command)]
        assert lines, command
        # The summary is on the command's line or the next one (a long name wraps).
        after = text.split(lines[0], 1)[1].splitlines()
        assert len(lines[0].split()) > 1 or after[1].strip(), command
    for code in range(6):
        assert f"\n  {code}  " in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description(command: str) -> None:
    text = _help(command)
    description = text.split("\n\n")[1]
    assert not description.startswith(("options:", "positional arguments:")), text
    assert len(description.split()) >= 8, description


@pytest.mark.parametrize("command", ("run", "check-config", "cursors"))
def test_config_is_explained_where_it_is_accepted(command: str) -> None:
    text = " ".join(_help(command).split())
    assert "--config CONFIG, -c CONFIG the YAML config file" in text
    assert "config/reference.yaml" in text


def test_normalize_help_says_it_reads_stdin_and_what_its_exit_codes_mean() -> None:
    text = " ".join(_help("normalize").split())
    assert "standard input" in text and "standard output" in text
    assert "0 every record normalized, 1 some records skipped" in text


def test_simulate_accepts_the_durations_of_the_config() -> None:
    args = _parser().parse_args(
        ["simulate", "--history", "6h", "--google-max-lag", "90s", "--google-late-lag", "5m"]
    )
    settings = settings_from_args(args)
    assert settings.history == 6 * 3600
    assert settings.google_max_lag == 90 and settings.google_late_lag == 300
    assert _parser().parse_args(["simulate", "--history", "7200"]).history == 7200
    refused = run_cli("simulate", "--history", "6 hours")
    assert refused.returncode == 2
    assert b"invalid duration" in refused.stderr


def _config(tmp_path: Path) -> Path:
    return calendly_config(tmp_path, {"cal": "X", "cal2": "Y"})


@pytest.mark.parametrize("action", ("show", "reset"))
def test_cursors_with_an_unknown_source_is_an_error_naming_the_known_ones(
    tmp_path: Path, action: str
) -> None:
    config = _config(tmp_path)
    result = run_cli("cursors", action, "--config", str(config), "--source", "nosuch")
    assert result.returncode == 2
    assert result.stdout == b""
    message = result.stderr.decode()
    assert "'nosuch'" in message and "cal, cal2" in message
    assert not (tmp_path / "state").exists()


def test_the_corrupt_checkpoint_hint_names_the_config_it_needs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = SqliteCheckpointStore(tmp_path / "state")
    store.commit_sync("cal", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "state.sqlite3")) as db, db:
        db.execute("UPDATE cursors SET state = '{' WHERE source = 'cal'")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 3, result.stderr
    hint = result.stderr.decode().strip().splitlines()[-1]
    assert f"`forwarder cursors reset --source cal --config {config}`" in hint
    # The hint as given works.
    reset = run_cli("cursors", "reset", "--source", "cal", "--config", str(config))
    assert reset.returncode == 0, reset.stderr


def test_the_cursor_of_a_source_removed_from_the_config_can_be_shown_and_reset(
    tmp_path: Path,
) -> None:
    # A tenant removed by a reload keeps its state: show lists it, reset forgets it.
    config = _config(tmp_path)
    store = SqliteCheckpointStore(tmp_path / "state")
    store.commit_sync("gone", Checkpoint({"cursor": "x"}, {"a": 1.0}))
    store.commit_sync("cal", Checkpoint({"cursor": "y"}, {}))
    store.close()

    def show(*source: str) -> list[tuple[str, bool, bool]]:
        result = run_cli("cursors", "show", "--config", str(config), *source)
        assert result.returncode == 0, result.stderr
        lines = [orjson.loads(line) for line in result.stdout.splitlines()]
        return [(line["source"], line.get("configured", True), line["committed"]) for line in lines]

    assert show() == [("cal", True, True), ("cal2", True, False), ("gone", False, True)]
    assert show("--source", "gone") == [("gone", False, True)]
    exported = run_cli("cursors", "export", "--config", str(config), "--source", "gone")
    assert exported.returncode == 2 and b"'gone'" in exported.stderr
    reset = run_cli("cursors", "reset", "--config", str(config), "--source", "gone")
    assert reset.returncode == 0, reset.stderr
    assert b"cursor of gone reset" in reset.stdout
    assert show() == [("cal", True, True), ("cal2", True, False)]
    again = run_cli("cursors", "reset", "--config", str(config), "--source", "gone")
    assert again.returncode == 2 and b"no state of it" in again.stderr
