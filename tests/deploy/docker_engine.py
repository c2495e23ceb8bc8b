"""A Docker engine for the image test: the one already reachable, or a private one.

CI machines (and the developers' machines of this project) run no Docker engine: only a
docker CLI. Where no engine answers and this process may start one (root, with
Debian's ``docker.io`` installed: ``make system-deps`` installs it), :func:`connect_or_start`
starts a private ``dockerd`` for the image tests:

- storage driver ``vfs``: plain directory copies, so it works on any filesystem (no
  overlay mount on top of the machine's own root filesystem);
- no bridge and no iptables rules: the machine's network is left as it was. Containers
  run with ``--network none`` (the demo's simulators are on the container's loopback),
  builds with ``--network host`` (an offline build needs no network at all);
- its socket, data and state in a new temporary directory, removed by :meth:`stop`, which
  stops the daemon by its PID.

It is driven with the docker CLI of the same package (``/usr/bin/docker`` beside
``/usr/sbin/dockerd``), which builds with BuildKit without the buildx plugin: about six
times faster than the legacy builder on vfs, which copies the whole root filesystem for
every Dockerfile instruction.

Anything that makes starting an engine impossible raises :class:`EngineUnavailable`, whose
message says what was tried and what failed: the image test skips with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# Where Debian puts the daemons and debootstrap: a non-login root shell may lack sbin.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_STARTUP_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class EngineUnavailable(Exception):
    """No Docker engine is reachable and none can be started here (the message says why)."""


@dataclass
class DockerEngine:
    """A reachable Docker engine and the CLI (with its environment) that talks to it."""

    cli: str
    env: dict[str, str]
    description: str
    build_options: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    root: Path | None = None
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def docker(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``docker ARGS`` against this engine, output captured as text."""
        return subprocess.run(
            [self.cli, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env=self.env,
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the private daemon's log ('' for an engine found running)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stops a daemon started here (SIGTERM to its PID, SIGKILL after 30 s) and removes
        its directory. An engine that was already running is left alone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=_STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
        if self.root is not None:
            _unmount_below(self.root)
            shutil.rmtree(self.root, ignore_errors=True)


def _search_path() -> str:
    parts = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join([*parts, *(d for d in _SBIN if d not in parts)])


def which(program: str) -> str | None:
    """``program`` on PATH or in an sbin directory."""
    return shutil.which(program, path=_search_path())


def _info_error(cli: str, env: dict[str, str]) -> str | None:
    """None when the CLI reaches an engine, else the reason in one line. (``docker version``
    rather than ``docker info``: every CLI release says plainly on stderr why it cannot.)"""
    try:
        probe = subprocess.run(
            [cli, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return f"`{cli} version` timed out"
    if probe.returncode == 0 and probe.stdout.strip():
        return None
    lines = [line for line in probe.stderr.splitlines() if line.strip()]
    return f"{cli} reaches no engine: {lines[-1] if lines else f'exit {probe.returncode}'}"


def _buildkit_env(cli: str, env: dict[str, str]) -> dict[str, str]:
    """DOCKER_BUILDKIT for this CLI: 1 where it builds with BuildKit itself (a 20.x/21.x
    CLI, or any CLI with the buildx plugin); 0 (the legacy builder) for a newer CLI without
    buildx, which would otherwise refuse to build."""
    version = subprocess.run(
        [cli, "version", "--format", "{{.Client.Version}}"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env=env,
    ).stdout.strip()
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 23:
        return {**env, "DOCKER_BUILDKIT": "1"}
    buildx = subprocess.run(
        [cli, "buildx", "version"], capture_output=True, timeout=20, check=False, env=env
    )
    return {**env, "DOCKER_BUILDKIT": "1" if buildx.returncode == 0 else "0"}


def connect_or_start() -> DockerEngine:
    """The engine ``docker`` already reaches, else a private ``dockerd`` started here."""
    cli = which("docker")
    tried: list[str] = []
    if cli is None:
        tried.append("no docker CLI on PATH")
    else:
        error = _info_error(cli, dict(os.environ))
        if error is None:
            return DockerEngine(cli, dict(os.environ), f"the running engine ({cli})")
        tried.append(error)
    dockerd = which("dockerd")
    if dockerd is None:
        raise EngineUnavailable(
            "; ".join([*tried, "no dockerd to start (Debian's docker.io; `make system-deps`)"])
        )
    if os.geteuid() != 0:
        raise EngineUnavailable(
            "; ".join([*tried, f"starting {dockerd} needs root (running as uid {os.geteuid()})"])
        )
    return _start_private(dockerd, cli, tried)


def _start_private(dockerd: str, path_cli: str | None, tried: list[str]) -> DockerEngine:
    # The CLI of dockerd's own package (same release): it builds with BuildKit without
    # buildx. mkdtemp under /tmp keeps the socket path far below the 108-byte limit.
    package_cli = Path(dockerd).parent.parent / "bin" / "docker"
    cli = str(package_cli) if package_cli.is_file() else path_cli
    if cli is None:
        raise EngineUnavailable("; ".join([*tried, f"no docker CLI to drive {dockerd}"]))
    root = Path(tempfile.mkdtemp(prefix="fwd-dockerd-"))
    socket = root / "docker.sock"
    log_path = root / "dockerd.log"
    log = log_path.open("wb")
    env = {**os.environ, "PATH": _search_path(), "DOCKER_HOST": f"unix://{socket}"}
    command = [
        dockerd,
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{socket}",
    ]
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    engine = DockerEngine(
        cli,
        env,
        f"a private dockerd (pid {process.pid}, vfs, {root})",
        build_options=("--network", "host"),
        process=process,
        root=root,
        log_path=log_path,
        _log=log,
    )
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    error = _info_error(cli, env)
    while error is not None:
        if process.poll() is not None or time.monotonic() > deadline:
            state = (
                f"exited with status {process.returncode}"
                if process.poll() is not None
                else f"not answering after {_STARTUP_TIMEOUT:.0f} s ({error})"
            )
            tail = engine.log_tail(8)
            engine.stop()
            raise EngineUnavailable(
                "; ".join([*tried, f"started `{' '.join(command)}`: it {state}; log:\n{tail}"])
            )
        time.sleep(0.5)
        error = _info_error(cli, env)
    engine.env = _buildkit_env(cli, env)
    return engine


def _unmount_below(root: Path) -> None:
    """Lazily unmounts whatever the daemon left mounted under ``root`` (a container's
    network namespace file, say), deepest first, so that the directory can be removed."""
    prefix = str(root.resolve())
    mounts: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split(" ")[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def ensure_base_image(engine: DockerEngine, tag: str, script: Path) -> str:
    """Makes the offline base image ``tag`` with ``script`` (debootstrap + docker import)
    unless the engine has it; returns how it was found, for the test's report."""
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        return f"base image {tag} was already there"
    debootstrap = which("debootstrap")
    if debootstrap is None or os.geteuid() != 0:
        raise EngineUnavailable(
            f"the engine has no base image {tag}, and making it with {script.name} needs "
            f"root and debootstrap (uid {os.geteuid()}, debootstrap: {debootstrap}); or set "
            "FORWARDER_TEST_BASE_IMAGE to a local Debian bookworm image with python3"
        )
    started = time.monotonic()
    made = subprocess.run(
        ["bash", str(script), tag],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**engine.env, "DOCKER": engine.cli},
    )
    # Not a skip: with an engine and debootstrap here, a failure is the test's to report.
    assert made.returncode == 0, (
        f"{script.name} failed:\n{made.stdout[-2000:]}{made.stderr[-3000:]}"
    )
    return f"base image {tag} made in {time.monotonic() - started:.0f} s"
