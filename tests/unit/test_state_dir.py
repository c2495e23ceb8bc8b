"""The state directory: private whatever the umask, refused when another user could write
to it, accepted in the Kubernetes layout (a volume root:fsGroup 2775, the daemon uid and
gid 10001), and never written through a link or a planted file.

The tests run as root and act as other users by switching the effective uid (the
interpreter lives under /root, which other uids cannot reach, so no subprocess; for the
same reason every module the daemon imports lazily is imported before)."""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - imported before switching uid (see below)
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from cli_harness import run_cli

from forwarder.checkpoint.file import FileCheckpointStore
from forwarder.checkpoint.safefile import UnsafeStateFileError
from forwarder.checkpoint.statedir import StateDirectoryLock, StateError, prepare_state
from forwarder.config.loader import parse_config
from forwarder.config.model import Config
from forwarder.daemon import Daemon
from forwarder.simulators.embedded import prepare_simulator_files

# The chart's pod: runAsUser / runAsGroup / fsGroup (deploy/helm/forwarder/values.yaml).
POD_UID = POD_GID = FS_GROUP = 10001
STRANGER = 12345


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _config_text(state: Path, token: Path, extra: str = "") -> str:
    return f"""
state_dir: {state}
sources:
  cal: {{type: calendly, organization: https://api.calendly.com/organizations/X,
         token_file: {token}, base_url: "http://127.0.0.1:9"}}
sinks:
  out: {{type: file, path: {state}/out.ndjson}}
metrics: {{enabled: false}}
{extra}
"""


def _config(state: Path, token: Path, extra: str = "") -> Config:
    return parse_config(_config_text(state, token, extra), environ={})


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("t")
    return path


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A directory other uids can reach (pytest's own is root's 0700)."""
    base = Path(tempfile.mkdtemp(prefix="forwarder-state-test-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def as_user(uid: int, gid: int, groups: list[int]) -> Iterator[None]:
    """Run the block with this effective uid, gid and supplementary groups."""
    saved_groups = os.getgroups()
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved_groups)


# -- private whatever the umask ----------------------------------------------------------


def test_directories_are_0700_and_the_lock_0600_whatever_the_umask(
    tmp_path: Path, token: Path
) -> None:
    state = tmp_path / "var" / "state"
    config = _config(state, token, "simulators: {}")
    previous = os.umask(0)
    try:
        prepare_state(config)
        lock = StateDirectoryLock(state)
        lock.acquire()
        lock.release()
    finally:
        os.umask(previous)
    for directory in (tmp_path / "var", state, *(state / d for d in ("checkpoints",
                      "dead-letter", "simulators"))):  # fmt: skip
        assert _mode(directory) == 0o700, directory
    assert _mode(state / ".lock") == 0o600


def test_demo_simulator_files_are_private_and_never_written_through_a_link(
    tmp_path: Path, token: Path
) -> None:
    config = _config(tmp_path / "state", token, "simulators: {}")
    previous = os.umask(0)
    try:
        prepare_simulator_files(config)
    finally:
        os.umask(previous)
    directory = tmp_path / "state" / "simulators"
    assert _mode(directory) == 0o700
    assert sorted(path.name for path in directory.iterdir()) == [
        "calendly-token",
        "google-service-account.json",
    ]
    assert {_mode(path) for path in directory.iterdir()} == {0o600}
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (directory / "calendly-token").unlink()
    (directory / "calendly-token").symlink_to(victim)
    with pytest.raises(UnsafeStateFileError, match="symbolic link"):
        prepare_simulator_files(config)
    assert victim.read_text() == "precious"


def test_loose_state_of_an_older_release_is_tightened(tmp_path: Path, token: Path) -> None:
    """Files and directories the daemon owns and names get 0600/0700 at start; the state
    directory itself and a configured dead-letter directory keep their mode (the
    operator's, e.g. a volume root), their files are 0600 either way."""
    state = tmp_path / "state"
    shared = tmp_path / "shared-dead-letters"
    for directory in (state / "checkpoints", state / "dead-letter", shared):
        directory.mkdir(parents=True, mode=0o755)
        directory.chmod(0o755)
    for path in (
        state / ".lock",
        state / "checkpoints" / "cal.json",
        shared / "dead-letter.ndjson",
    ):
        path.write_bytes(b"")
        path.chmod(0o644)
    FileCheckpointStore(state).commit_sync("cal", {"cursor": "x"})
    (state / "checkpoints" / "cal.json").chmod(0o644)
    config = _config(state, token, f"dead_letter: {{path: {shared}}}")
    with structlog.testing.capture_logs() as logs:
        prepare_state(config)
    tightened = {entry["path"] for entry in logs if entry["event"] == "state_permissions_tightened"}
    assert tightened == {
        str(state / "checkpoints"),
        str(state / ".lock"),
        str(state / "checkpoints" / "cal.json"),
        str(shared / "dead-letter.ndjson"),
    }
    assert _mode(state / "checkpoints") == 0o700
    assert _mode(state / "checkpoints" / "cal.json") == 0o600
    assert _mode(state / ".lock") == 0o600
    assert _mode(shared / "dead-letter.ndjson") == 0o600
    assert _mode(state) == 0o755 and _mode(shared) == 0o755
    assert FileCheckpointStore(state).load_sync("cal") == {"cursor": "x"}


# -- untrusted directories are refused ------------------------------------------------------


def _owned_by_stranger(path: Path) -> None:
    path.mkdir(mode=0o700)
    os.chown(path, STRANGER, STRANGER)


def _world_writable(path: Path) -> None:
    path.mkdir()
    path.chmod(0o777)


def _foreign_group_writable(path: Path) -> None:
    path.mkdir()
    os.chown(path, 0, STRANGER)
    path.chmod(0o770)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_owned_by_stranger, f"is owned by uid {STRANGER}, not by the forwarder's uid 0"),
        (_world_writable, "is writable by others (mode 0777)"),
        (_foreign_group_writable, f"is writable by group {STRANGER} (mode 0770)"),
    ],
    ids=["other owner", "o+w", "foreign g+w"],
)
@pytest.mark.parametrize("which", ["state", "checkpoints", "dead-letter"])
def test_a_directory_another_user_can_write_is_refused(
    tmp_path: Path, token: Path, make, problem: str, which: str
) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    roles = {"state": "state directory", "checkpoints": "checkpoints directory"}
    if which == "state":
        make(state)
    else:
        state.mkdir()
        make(state / which)
    with pytest.raises(StateError) as caught:
        prepare_state(_config(state, token))
    message = str(caught.value)
    target = state if which == "state" else state / which
    assert message.startswith(f"{roles.get(which, 'dead-letter directory')} {target} {problem}")
    assert "fix: " in message and "\n" not in message


def test_a_writable_directory_above_is_refused_unless_sticky(tmp_path: Path, token: Path) -> None:
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o777)
    state = parent / "state"
    with pytest.raises(StateError) as caught:
        prepare_state(_config(state, token))
    assert f"the directory {parent} above it is writable by others" in str(caught.value)
    assert not state.exists(), "created inside an untrusted directory"
    parent.chmod(0o1777)  # like /tmp: nobody can rename or remove another user's entries
    prepare_state(_config(state, token))
    assert _mode(state) == 0o700


def test_a_state_directory_reached_through_a_link_is_checked_where_it_leads(
    tmp_path: Path, token: Path
) -> None:
    untrusted = tmp_path / "untrusted"
    untrusted.mkdir()
    untrusted.chmod(0o777)
    (untrusted / "real").mkdir()
    link = tmp_path / "state"
    link.symlink_to(untrusted / "real")
    with pytest.raises(StateError) as caught:
        prepare_state(_config(link, token))
    assert f"the directory {untrusted} above it is writable by others" in str(caught.value)


def test_a_configured_dead_letter_directory_elsewhere_is_checked(
    tmp_path: Path, token: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    _owned_by_stranger(elsewhere)
    config = _config(tmp_path / "state", token, f"dead_letter: {{path: {elsewhere}}}")
    with pytest.raises(StateError, match=f"dead-letter directory {elsewhere} is owned by uid"):
        prepare_state(config)


# -- the Kubernetes layout ---------------------------------------------------------------------


def _volume(base: Path) -> Path:
    """A PVC as the kubelet mounts it with fsGroup: root:fsGroup, setgid, 2775."""
    volume = base / "var-lib-forwarder"
    volume.mkdir()
    os.chown(volume, 0, FS_GROUP)
    volume.chmod(0o2775)
    return volume


def _readable_token(base: Path) -> Path:
    token = base / "token"
    token.write_text("t")
    token.chmod(0o644)
    return token


async def test_the_kubernetes_volume_layout_is_accepted_and_used(shared_base: Path) -> None:
    volume = _volume(shared_base)
    config = _config(volume, _readable_token(shared_base))
    with as_user(POD_UID, POD_GID, [FS_GROUP]):
        daemon = Daemon(config)
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        started = asyncio.create_task(daemon.started.wait())
        await asyncio.wait([started, running], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()  # the daemon stopped: its error
        assert daemon.started.is_set()
        # The state database is open (the source's checkpoint was loaded): it and the
        # files SQLite keeps next to it are the pod user's, 0600.
        for name in ("state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"):
            path = volume / name
            assert (os.stat(path).st_uid, _mode(path)) == (POD_UID, 0o600), path
        stop.set()
        await asyncio.wait_for(running, 60)
    info = os.stat(volume)
    assert (info.st_uid, info.st_gid, _mode(volume)) == (0, FS_GROUP, 0o2775), "volume changed"
    for path, mode in (
        (volume / ".lock", 0o600),
        (volume / "checkpoints", 0o700),
        (volume / "state.sqlite3", 0o600),
        (volume / "dead-letter", 0o700),
    ):
        assert (os.stat(path).st_uid, _mode(path)) == (POD_UID, mode), path


def test_the_kubernetes_layout_is_refused_to_a_user_outside_the_group(shared_base: Path) -> None:
    volume = _volume(shared_base)
    config = _config(volume, _readable_token(shared_base))
    with as_user(10002, 10002, [10002]), pytest.raises(StateError) as caught:
        prepare_state(config)
    assert f"state directory {volume} is writable by group {FS_GROUP} (mode 2775)" in str(
        caught.value
    )


def test_a_directory_of_another_pod_user_is_refused(shared_base: Path) -> None:
    state = shared_base / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 10002, 10002)
    config = _config(state, _readable_token(shared_base))
    with as_user(POD_UID, POD_GID, [FS_GROUP]), pytest.raises(StateError) as caught:
        prepare_state(config)
    assert f"state directory {state} is owned by uid 10002, not by the forwarder's uid" in str(
        caught.value
    )


# -- the command line: exit 3, one line naming the path, nothing written through a link ----------


def _cli_config(tmp_path: Path, state: Path) -> Path:
    token = tmp_path / "token"
    token.write_text("t")
    path = tmp_path / "config.yaml"
    path.write_text(_config_text(state, token))
    return path


def _last_line(result) -> str:  # type: ignore[no-untyped-def]
    return result.stderr.decode().strip().splitlines()[-1]


@pytest.mark.parametrize(
    "where",
    [
        ".lock",
        "dead-letter/dead-letter.ndjson",
        "checkpoints/cal.json",
        "state.sqlite3",
        "state.sqlite3-wal",
        "state.sqlite3-shm",
    ],
)
def test_run_refuses_a_link_where_a_state_file_should_be(tmp_path: Path, where: str) -> None:
    state = tmp_path / "state"
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    link = state / where
    link.parent.mkdir(parents=True)
    link.symlink_to(victim)
    result = run_cli("run", "--config", str(_cli_config(tmp_path, state)))
    assert result.returncode == 3, result.stderr
    message = _last_line(result)
    assert message.startswith("forwarder: state error: ")
    assert f"{link} is a symbolic link" in message
    assert victim.read_bytes() == b"precious\n"
    assert link.is_symlink(), "the link is the operator's to inspect"


def test_run_refuses_a_state_directory_of_another_user(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _owned_by_stranger(state)
    result = run_cli("run", "--config", str(_cli_config(tmp_path, state)))
    assert result.returncode == 3
    assert _last_line(result) == (
        f"forwarder: state error: state directory {state} is owned by uid {STRANGER}, not by "
        "the forwarder's uid 0 or root, so another user could plant links or files the "
        f"forwarder would write through; fix: chown 0 {state}, or run the forwarder as uid "
        f"{STRANGER}"
    )
    assert not (state / "checkpoints").exists()


@pytest.mark.parametrize("action", [["show"], ["reset", "--source", "cal"]])
def test_cursors_refuse_an_untrusted_state_directory(tmp_path: Path, action: list[str]) -> None:
    state = tmp_path / "state"
    FileCheckpointStore(state).commit_sync("cal", {"cursor": "x"})
    state.chmod(0o777)
    result = run_cli("cursors", *action, "--config", str(_cli_config(tmp_path, state)))
    assert result.returncode == 3
    assert f"state directory {state} is writable by others" in _last_line(result)
    assert FileCheckpointStore(state).load_sync("cal") == {"cursor": "x"}


def test_cursors_show_reports_and_reset_removes_a_linked_checkpoint(tmp_path: Path) -> None:
    state = tmp_path / "state"
    victim = tmp_path / "victim"
    victim.write_bytes(b'{"format": 1, "source": "cal", "state": {"cursor": "planted"}}')
    (state / "checkpoints").mkdir(parents=True)
    link = state / "checkpoints" / "cal.json"
    link.symlink_to(victim)
    config = _cli_config(tmp_path, state)
    shown = run_cli("cursors", "show", "--config", str(config))
    assert shown.returncode == 0
    assert b"symbolic link" in shown.stdout and b"planted" not in shown.stdout
    reset = run_cli("cursors", "reset", "--config", str(config), "--source", "cal")
    assert reset.returncode == 0, reset.stderr
    assert not link.is_symlink() and victim.exists()
