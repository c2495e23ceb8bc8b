"""The systemd unit for a plain VM (``deploy/systemd/``): systemd accepts it, it is
hardened, it never restarts into an error a restart cannot fix, and the example config it
ships with passes ``forwarder check-config`` reading its secrets the way the unit hands
them over (``LoadCredential=`` -> ``$CREDENTIALS_DIRECTORY``).

``systemd-analyze verify`` refuses a unit whose ``ExecStart`` binary does not exist, and
the unit names the install path ``/opt/forwarder/bin/forwarder``. ``--root`` does not help
(it wants a whole OS tree: ``sysinit.target``, ``/bin/kill``), so the test verifies a
temporary copy whose ``/opt/forwarder/bin/forwarder`` is rewritten to this venv's
``forwarder``: every other line is checked exactly as shipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from forwarder.cli import EXIT_CONFIG, EXIT_STATE
from forwarder.config.durations import parse_duration
from forwarder.simulators.google_auth import ServiceAccount

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"
UNIT = SYSTEMD / "forwarder.service"
CONFIG = SYSTEMD / "config.yaml"
SYSUSERS = SYSTEMD / "forwarder.sysusers"
INSTALLED_BINARY = "/opt/forwarder/bin/forwarder"
VENV_BINARY = Path(sys.executable).parent / "forwarder"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or (
    "/usr/bin/systemd-analyze" if Path("/usr/bin/systemd-analyze").exists() else None
)
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)"
)
# systemd-analyze security's exposure scale is 0.0 (locked down) .. 10.0 (unprotected);
# --threshold takes it times ten. 2.0 and below is "OK" in systemd's words.
MAX_EXPOSURE = 20


def unit_entries(text: str) -> dict[str, dict[str, list[str]]]:
    """``{section: {key: [values in order]}}``; a key may repeat (LoadCredential=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


SERVICE = unit_entries(UNIT.read_text(encoding="utf-8"))["Service"]


def one(key: str) -> str:
    values = SERVICE.get(key)
    assert values, f"[Service] has no {key}="
    assert len(values) == 1, f"{key}= is set {len(values)} times"
    return values[0]


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # No user manager or D-Bus is needed (or wanted) for offline checks.
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )


def copy_for_verify(directory: Path, text: str | None = None) -> Path:
    """The unit with the install path of the binary replaced by this venv's."""
    assert VENV_BINARY.exists(), f"{VENV_BINARY} missing: install the project (make install)"
    source = UNIT.read_text(encoding="utf-8") if text is None else text
    assert INSTALLED_BINARY in source
    copy = directory / "forwarder.service"
    copy.write_text(source.replace(INSTALLED_BINARY, str(VENV_BINARY)), encoding="utf-8")
    return copy


def verify_problems(unit: Path) -> list[str]:
    """Every complaint of ``systemd-analyze verify`` (it exits 0 on unknown keys and bad
    values it ignores, so its output counts too)."""
    result = analyze("verify", str(unit))
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode != 0 and not problems:
        problems.append(f"exit status {result.returncode}")
    return problems


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    assert verify_problems(copy_for_verify(tmp_path)) == []


@needs_systemd_analyze
def test_verify_check_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad value are reported."""
    broken = (
        UNIT.read_text(encoding="utf-8")
        .replace("ProtectSystem=strict", "ProtectSystem=strikt")
        .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    )
    problems = verify_problems(copy_for_verify(tmp_path, broken))
    assert any("ProtectSystem" in line or "protect system" in line for line in problems), problems
    assert any("NoNewPrivilege" in line for line in problems), problems


@needs_systemd_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    result = analyze(
        "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}", str(copy_for_verify(tmp_path))
    )
    overall = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert overall, result.stdout + result.stderr
    assert result.returncode == 0, f"exposure {overall.group(1)} above {MAX_EXPOSURE / 10}"


def test_unit_is_hardened() -> None:
    assert one("User") == "forwarder" and one("Group") == "forwarder"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictSUIDSGID": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "UMask": "0077",
    }.items():
        assert one(key) == value, f"{key}={one(key)!r}, expected {value!r}"
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert SERVICE["SystemCallFilter"][0] == "@system-service"
    # ProtectSystem=strict makes everything read-only: the state directory is the one
    # writable path, and it is systemd's own (created, owned by the user, 0700).
    assert one("StateDirectory") == "forwarder"
    assert one("StateDirectoryMode") == "0700"
    assert one("ConfigurationDirectory") == "forwarder"
    assert "ReadWritePaths" not in SERVICE


def test_restart_policy_never_loops_on_errors_a_restart_cannot_fix() -> None:
    assert one("Restart") == "on-failure"
    prevented = {int(code) for code in one("RestartPreventExitStatus").split()}
    assert prevented == {EXIT_CONFIG, EXIT_STATE}
    assert one("KillSignal") == "SIGTERM"
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one("ExecStart") == f"{INSTALLED_BINARY} run --config /etc/forwarder/config.yaml"


def test_stop_timeout_covers_the_drain_grace() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    grace = parse_duration(config["pipeline"]["shutdown_grace"])
    timeout = parse_duration(one("TimeoutStopSec"))
    # The chart leaves 15 s after the grace for closing the sinks and the last commits.
    assert timeout >= grace + 15, f"TimeoutStopSec {timeout}s vs shutdown_grace {grace}s"


def test_example_config_matches_the_unit() -> None:
    """The config's state_dir is the unit's StateDirectory and each secret it reads is a
    credential the unit loads, under the same name."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["state_dir"] == "/var/lib/" + one("StateDirectory")
    loaded = {entry.split(":", 1)[0] for entry in SERVICE["LoadCredential"]}
    prefix = "${CREDENTIALS_DIRECTORY:-/etc/forwarder/credentials}/"
    named = {
        value.removeprefix(prefix)
        for source in config["sources"].values()
        for key, value in source.items()
        if key.endswith("_file")
    }
    assert named == loaded
    for entry in SERVICE["LoadCredential"]:
        name, path = entry.split(":", 1)
        assert path == f"/etc/forwarder/credentials/{name}"


def test_sysusers_entry_creates_the_units_user() -> None:
    lines = [
        line.split()
        for line in SYSUSERS.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [fields[:2] for fields in lines] == [["u", one("User")]]


def check_config(config: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BINARY), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )


def test_file_sinks_write_where_protect_system_strict_allows() -> None:
    """ProtectSystem=strict leaves only the StateDirectory writable."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    state = Path("/var/lib") / one("StateDirectory")
    for sink in config["sinks"].values():
        if sink["type"] == "file":
            assert state in Path(sink["path"]).parents, sink["path"]


def test_example_config_passes_check_config_with_the_units_credentials(tmp_path: Path) -> None:
    """check-config, as the unit's user would run it, reads the secrets through
    ``${CREDENTIALS_DIRECTORY}`` as LoadCredential= provides them. check-config also
    checks that the state directory and the file sink's path are writable by whoever runs
    it: /var/lib/forwarder (created by systemd for the forwarder user) becomes a private
    directory of this test's user in a copy of the config."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.read_text(encoding="utf-8").replace("/var/lib/forwarder", str(state)),
        encoding="utf-8",
    )
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    (credentials / "calendly-token").write_text("calendly-test-token\n", encoding="utf-8")
    ServiceAccount.generate().write_key_file(
        credentials / "google-service-account.json", "https://oauth2.googleapis.com/token"
    )
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(credentials)}
    result = check_config(config, env)
    assert result.returncode == 0, result.stderr
    assert "config OK: 2 source(s)" in result.stdout
    # Without the secret the same config is a config error naming the key (exit 2), so
    # the unit does not restart into it.
    (credentials / "calendly-token").unlink()
    result = check_config(config, env)
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    assert "sources.calendly.token_file" in result.stderr
