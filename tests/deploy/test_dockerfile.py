"""The Dockerfile: lints clean, has the runtime contract the chart relies on, and (where a
Docker daemon and an offline base image exist) builds an image that runs as the non-root
user on a read-only root filesystem and drains on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_harness import DOCKERFILE, EXAMPLES, REPO, Helm, config_text

from forwarder import __version__

BASE_IMAGE = os.environ.get("FORWARDER_TEST_BASE_IMAGE", "forwarder-test-base:bookworm")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    pairs = []
    for entry in logical:
        word, _, rest = entry.partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    pairs = instructions()
    last_from = max(i for i, (word, _) in enumerate(pairs) if word == "FROM")
    return pairs[last_from:]


def test_hadolint_is_clean(hadolint: Path) -> None:
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_runtime_contract() -> None:
    pairs = instructions()
    assert sum(word == "FROM" for word, _ in pairs) == 2, "multi-stage: builder + runtime"
    stage = dict(final_stage()[1:])  # last occurrence of each instruction in the final stage
    user = stage["USER"]
    assert all(part.isdigit() and part != "0" for part in user.split(":")), user
    assert stage["STOPSIGNAL"] == "SIGTERM"
    # Exec form: the daemon is PID 1 and gets SIGTERM itself (no shell in between).
    assert json.loads(stage["ENTRYPOINT"]) == ["forwarder"]
    assert json.loads(stage["CMD"]) == ["run", "--config", "/etc/forwarder/config.yaml"]
    assert "/healthz" in stage["HEALTHCHECK"] or "FORWARDER_HEALTH_URL" in stage["HEALTHCHECK"]
    env = " ".join(args for word, args in final_stage() if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "/healthz" in env
    labels = " ".join(args for word, args in final_stage() if word == "LABEL")
    for label in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__
    assert f"ARG VERSION={__version__}" in DOCKERFILE.read_text(encoding="utf-8")


def test_dockerignore_sends_only_the_package() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from excluding everything"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "forwarder", "build/wheelhouse"}


# --- a real image, where this machine can build one -----------------------------------


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI on this machine"
    try:
        info = _docker("info", "--format", "{{.ServerVersion}}", timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return "docker info timed out: no reachable Docker daemon"
    if info.returncode != 0:
        return "no reachable Docker daemon (docker info failed)"
    if _docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        return (
            f"no base image {BASE_IMAGE} (registries are unreachable here): build it with "
            "tests/deploy/make_base_image.sh, or set FORWARDER_TEST_BASE_IMAGE"
        )
    return None


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = _docker_unavailable()
    if reason:
        pytest.skip(reason)
    context = tmp_path_factory.mktemp("docker-context")
    for name in ("pyproject.toml", "README.md", "Dockerfile", ".dockerignore"):
        shutil.copy2(REPO / name, context / name)
    shutil.copytree(
        REPO / "forwarder", context / "forwarder", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheelhouse = context / "build" / "wheelhouse"
    given = os.environ.get("FORWARDER_WHEELHOUSE")
    if given:
        shutil.copytree(given, wheelhouse)
    else:  # the documented offline step, with the host's Python (3.11, like the base image)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse),
             str(context), "setuptools>=68", "wheel"],
            check=True, timeout=600, cwd=context,
        )  # fmt: skip
    tag = f"forwarder-pytest:{uuid.uuid4().hex[:12]}"
    build = _docker(
        "build", "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}", "--build-arg", "PIP_NO_INDEX=1",
        "--build-arg", f"VERSION={__version__}", "-t", tag, str(context),
        timeout=1200, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        yield tag
    finally:
        _docker("image", "rm", "--force", tag, check=False)


def _run_args(state: Path, config: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """What the chart's pod gets: non-root, read-only root, no capabilities, /tmp and state
    volumes, the config file read-only; no network (the demo's simulators are on loopback)."""
    return [
        "--network", "none", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "-v", f"{state}:/var/lib/forwarder", "-v", f"{config}:/etc/forwarder/config.yaml:ro",
        *extra,
    ]  # fmt: skip


def _state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    if os.geteuid() == 0:
        os.chown(state, 10001, 10001)
    else:
        state.chmod(0o777)
    return state


@pytest.mark.slow
def test_image_checks_a_chart_config_as_non_root(image: str, helm: Helm, tmp_path: Path) -> None:
    from forwarder.simulators.google_auth import ServiceAccount

    inspected = json.loads(_docker("image", "inspect", image).stdout)[0]["Config"]
    assert inspected["User"] == "10001:10001" and inspected["StopSignal"] == "SIGTERM"
    assert inspected["Labels"]["org.opencontainers.image.version"] == __version__

    # The Splunk example's config, with its Secrets mounted like the kubelet does (0440,
    # group = fsGroup 10001).
    config = tmp_path / "config.yaml"
    config.write_text(config_text(helm.render((EXAMPLES / "values-http-splunk.yaml",))))
    secrets = tmp_path / "secrets"
    files = {
        "calendly/token": "calendly-token\n",
        "hec/token": "hec-token\n",
    }
    for name, content in files.items():
        (secrets / name).parent.mkdir(parents=True, exist_ok=True)
        (secrets / name).write_text(content)
    (secrets / "google").mkdir()
    ServiceAccount.generate().write_key_file(
        secrets / "google" / "service-account.json", "https://oauth2.googleapis.com/token"
    )
    for path in secrets.rglob("*"):
        if path.is_file():
            if os.geteuid() == 0:
                os.chown(path, 0, 10001)
            path.chmod(0o440 if os.geteuid() == 0 else 0o444)
    mounts: tuple[str, ...] = ()
    for name in ("calendly", "google", "hec"):
        mounts += ("-v", f"{secrets / name}:/run/secrets/{name}:ro")
    result = _docker(
        "run", "--rm", *_run_args(_state_dir(tmp_path), config, mounts), image,
        "check-config", "--config", "/etc/forwarder/config.yaml", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "config OK: 2 source(s)" in result.stdout


@pytest.mark.slow
def test_image_runs_the_demo_and_drains_on_sigterm(image: str, helm: Helm, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text(helm.render((EXAMPLES / "values-demo.yaml",))))
    state = _state_dir(tmp_path)
    name = f"forwarder-pytest-{uuid.uuid4().hex[:8]}"
    _docker("run", "-d", "--name", name, *_run_args(state, config), image)
    try:
        ready = "http://127.0.0.1:9108/readyz"
        probe = [
            "exec", name, "python", "-c",
            f"import urllib.request; urllib.request.urlopen({ready!r}, timeout=2)",
        ]  # fmt: skip
        deadline = time.monotonic() + 90
        while _docker(*probe, check=False).returncode != 0:
            assert time.monotonic() < deadline, _docker("logs", name, check=False).stderr[-3000:]
            time.sleep(1)
        time.sleep(3)  # let it deliver a few pages
        _docker("stop", "--time", "45", name, timeout=90)
        state_info = json.loads(_docker("inspect", name).stdout)[0]["State"]
        logs = _docker("logs", name).stderr
        assert state_info["ExitCode"] == 0, logs[-3000:]
        events = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert any(event.get("event") == "forwarder_stopped" for event in events), logs[-3000:]
        checkpoints = {path.name for path in (state / "checkpoints").iterdir()}
        assert checkpoints == {"calendly.json", "google_calendar.json"}
        first_event = json.loads(_docker("logs", name).stdout.splitlines()[0])
        assert first_event["event"]["provider"] in {"calendly", "google_calendar"}
    finally:
        _docker("rm", "--force", name, check=False)
