"""``forwarder check-config`` (offline) and the start-up errors it must foresee, run as a
user runs them (subprocesses): every problem shown naming its key, no regex in a message,
no secret echoed, nothing created, and ``run`` refusing the same configs with the
documented exit codes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cli_harness import run_cli

from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.simulators.google_auth import ServiceAccount

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, body: str, name: str = "config.yaml") -> Path:
    token = tmp_path / "token"
    token.write_text("calendly-secret-value\n")
    path = tmp_path / name
    metrics = "" if "metrics:" in body else "metrics: {enabled: false}\n"
    text = body.replace("TOKEN", str(token)).replace("TMP", str(tmp_path))
    path.write_text(f"state_dir: {tmp_path / 'state'}\n{metrics}{text}")
    return path


CALENDLY = """
sources:
  cal: {type: calendly, organization: https://api.calendly.com/organizations/X,
        token_file: TOKEN, base_url: "http://127.0.0.1:9"}
"""


def _errors(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return result.stderr.decode().strip().splitlines()


def _tree(directory: Path) -> list[tuple[str, int, int, int]]:
    """Every path under ``directory`` with its size, mode and mtime (ns)."""
    found = []
    for root, directories, files in os.walk(directory):
        for name in [*directories, *files]:
            info = os.lstat(os.path.join(root, name))
            found.append((os.path.join(root, name), info.st_size, info.st_mode, info.st_mtime_ns))
    info = os.lstat(directory)
    return sorted([*found, (str(directory), info.st_size, info.st_mode, info.st_mtime_ns)])


def test_every_problem_is_shown_each_naming_its_key_without_regex(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
sources:
  cal: {type: calendly, organization: https://api.calendly.com/organizations/X,
        token: "12345", page_size: 5000}
  gcal: {type: google_calendar, credentials_file: TMP/key.json, delegated_admin: nobody}
sinks:
  out: {type: file, path: TMP/out.ndjson, mode: "999"}
  web: {type: http, url: "ftp://receiver"}
  sys: {type: syslog, host: h, sd_id: "bad id"}
metrics: {listen: "127.0.0.1:99999"}
""",
    )
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stderr
    lines = _errors(result)
    keys = [
        "sources.cal.page_size",
        "sources.gcal.delegated_admin",
        "sinks.out.mode",
        "sinks.web.url",
        "sinks.sys.sd_id",
        "metrics.listen",
    ]
    assert len(lines) == len(keys), lines
    for key in keys:
        assert sum(line.startswith(f"forwarder: config error: {key}: ") for line in lines) == 1
    text = result.stderr.decode()
    assert "more problem" not in text
    assert "pattern" not in text and "^" not in text and "\\" not in text
    assert "email address" in text and "http:// or https://" in text
    assert "port 99999 is out of range" in text


def test_a_bad_metrics_port_is_a_config_error_for_run_too(tmp_path: Path) -> None:
    config = _write(tmp_path, CALENDLY + "sinks: {out: {type: stdout}}\nmetrics:\n"
                    "  listen: 127.0.0.1:99999\n")  # fmt: skip
    for command in ("check-config", "run"):
        result = run_cli(command, "--config", str(config))
        assert result.returncode == 2, (command, result.stderr)
        assert _errors(result) == [
            "forwarder: config error: metrics.listen: port 99999 is out of range (0-65535) "
            "(got '127.0.0.1:99999')"
        ]
    assert not (tmp_path / "state").exists()


def test_two_file_sinks_or_the_dead_letter_file_on_one_path_are_refused(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        CALENDLY
        + """
sinks:
  first: {type: file, path: TMP/out.ndjson}
  second: {type: file, path: TMP/./out.ndjson}
  third: {type: file, path: TMP/dl/dead-letter.ndjson}
dead_letter: {path: TMP/dl}
""",
    )
    for command in ("check-config", "run"):
        result = run_cli(command, "--config", str(config))
        assert result.returncode == 2, result.stderr
        lines = _errors(result)
        assert len(lines) == 2, lines
        assert "sinks.second.path: writes the same file as sinks.first.path" in lines[0]
        assert "dead_letter.path: writes the same file as sinks.third.path" in lines[1]
    assert not (tmp_path / "out.ndjson").exists()


def test_a_corrupt_google_key_is_a_config_error_without_key_material(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    ServiceAccount.generate().write_key_file(key_file, "http://127.0.0.1:9/token")
    key = orjson.loads(key_file.read_bytes())
    body = key["private_key"].splitlines()
    # A few characters of the base64 body changed: still PEM-shaped, no longer a key.
    body[5] = body[5][:10] + "AAAAAAAAAAAA" + body[5][22:]
    key["private_key"] = "\n".join(body) + "\n"
    key_file.write_bytes(orjson.dumps(key))
    config = _write(
        tmp_path,
        """
sources:
  gcal: {type: google_calendar, credentials_file: TMP/key.json,
         delegated_admin: admin@example.com, base_url: "http://127.0.0.1:9"}
sinks: {out: {type: stdout}}
""",
    )
    for command in ("check-config", "run"):
        result = run_cli(command, "--config", str(config))
        assert result.returncode == 2, (command, result.stderr)
        lines = _errors(result)
        assert len(lines) == 1, lines
        assert lines[0].startswith("forwarder: config error: sources.gcal.credentials_file: ")
        assert "private_key" in lines[0] and "new JSON key" in lines[0]
        for line in body[1:-1]:
            assert line[:16] not in result.stderr.decode()


def test_a_missing_tls_file_is_named_by_key_and_path(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        CALENDLY
        + """
sinks:
  sys: {type: syslog, host: 127.0.0.1, transport: tls, tls: {ca_file: TMP/missing-ca.pem}}
  web: {type: http, url: "https://127.0.0.1:9/in",
        tls: {cert_file: TMP/client.pem, key_file: TMP/client.key}}
""",
    )
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert _errors(result) == [
        f"forwarder: config error: sinks.sys.tls.ca_file: cannot read {tmp_path}/missing-ca.pem:"
        " No such file or directory",
        f"forwarder: config error: sinks.web.tls.cert_file: cannot read {tmp_path}/client.pem:"
        " No such file or directory",
    ]


def test_secrets_are_never_echoed(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        """
sources:
  cal: {type: calendly, organization: https://api.calendly.com/organizations/X,
        token: "s3cr3t-inline-token", page_size: many}
sinks:
  web: {type: http, url: "http://127.0.0.1:9/in", auth: {strategy: bearer, token: 12345678}}
""",
    )
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2
    assert "sources.cal.page_size" in result.stderr.decode()
    assert "s3cr3t" not in result.stderr.decode() and "12345678" not in result.stderr.decode()


@contextlib.contextmanager
def _immutable(directory: Path) -> Iterator[None]:
    """``directory`` made unwritable for the forwarder's user (root too: immutable)."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)]).returncode != 0:
        pytest.skip("cannot make a directory unwritable for root here (no chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


def test_an_unwritable_state_dir_exits_3_in_run_and_is_reported_by_check_config(
    tmp_path: Path,
) -> None:
    config = _write(tmp_path, CALENDLY + "sinks: {out: {type: stdout}}\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "checkpoints").mkdir(mode=0o700)
    with _immutable(state):
        before = _tree(tmp_path)
        checked = run_cli("check-config", "--config", str(config))
        assert _tree(tmp_path) == before, "check-config wrote something"
        ran = run_cli("run", "--config", str(config))
    assert checked.returncode == 3, checked.stderr
    assert ran.returncode == 3, ran.stderr
    for result in (checked, ran):
        lines = _errors(result)
        assert len(lines) == 1, lines
        assert lines[0].startswith("forwarder: state error: ")
        assert str(state) in lines[0]
        assert "not writable" in lines[0] or "Operation not permitted" in lines[0]
        assert "Traceback" not in result.stderr.decode()
    assert f"the directory {state} is not writable" in _errors(checked)[0]


def test_an_unwritable_file_sink_directory_is_a_config_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    config = _write(tmp_path, CALENDLY + "sinks: {events: {type: file, path: TMP/out/e.ndjson}}\n")
    with _immutable(out):
        result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert _errors(result) == [
        f"forwarder: config error: sinks.events.path: {out}/e.ndjson does not exist and cannot"
        f" be created: {out} is not writable by uid {os.geteuid()}"
    ]


def test_check_config_on_the_demo_config_creates_nothing(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config" / "demo.yaml", tmp_path / "demo.yaml")
    before = _tree(tmp_path)
    checked = run_cli("check-config", "--config", "demo.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert b"config OK: 2 source(s)" in checked.stdout
    assert b"generated by the demo simulators" in checked.stdout
    shown = run_cli("cursors", "show", "--config", "demo.yaml", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert [orjson.loads(line)["committed"] for line in shown.stdout.splitlines()] == [
        False,
        False,
    ]
    assert _tree(tmp_path) == before


def test_cursors_show_on_an_existing_state_database_changes_nothing(tmp_path: Path) -> None:
    config = _write(tmp_path, CALENDLY + "sinks: {out: {type: stdout}}\n")
    store = SqliteCheckpointStore(tmp_path / "state")
    store.commit_sync("cal", Checkpoint({"cursor": "2026-11-27T10:00:00.000001Z"}, {"a": 1.0}))
    store.close()
    before = _tree(tmp_path)
    for command in (("cursors", "show"), ("check-config",)):
        result = run_cli(*command, "--config", str(config))
        assert result.returncode == 0, result.stderr
    assert _tree(tmp_path) == before
    shown = run_cli("cursors", "show", "--config", str(config))
    assert orjson.loads(shown.stdout)["cursor"] == "2026-11-27T10:00:00.000001Z"
