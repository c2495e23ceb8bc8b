"""The Dockerfile: lints clean, has the runtime contract the chart relies on, and builds an
image that runs as the non-root user on a read-only root filesystem, delivers the demo's
events to a mounted file and drains on SIGTERM. The image is built by the Docker engine
already running, or by a private one started here (docker_engine.py), on an offline base
image made with debootstrap (make_base_image.sh)."""

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
import yaml
from deploy_harness import DOCKERFILE, EXAMPLES, REPO, Helm, config_text
from docker_engine import DockerEngine, EngineUnavailable, connect_or_start, ensure_base_image

from forwarder import __version__

BASE_IMAGE = os.environ.get("FORWARDER_TEST_BASE_IMAGE", "forwarder-test-base:bookworm")
MAKE_BASE_IMAGE = Path(__file__).with_name("make_base_image.sh")
# Where the demo's file sink writes inside the container: a bind-mounted host directory.
EVENTS_MOUNT = "/srv/forwarder-events"
PROVIDERS = {"calendly", "google_calendar"}


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


# --- a real image, built and run by a Docker engine -------------------------------------
#
# The engine already running, or a private dockerd started for this module where none is
# reachable and this process may start one (docker_engine.py): root, Debian's docker.io.
# Skipped only where no engine can be had, with the reason (what was tried, what failed).


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    try:
        found = connect_or_start()
    except EngineUnavailable as error:
        pytest.skip(f"no Docker engine: {error}")
    try:
        try:
            how = ensure_base_image(found, BASE_IMAGE, MAKE_BASE_IMAGE)
        except EngineUnavailable as error:
            pytest.skip(str(error))
        # A daemon can start where containers cannot (no cgroup or namespace rights, in an
        # unprivileged container, say): that is a machine without an engine too.
        smoke = found.docker("run", "--rm", "--network", "none", BASE_IMAGE, "true", check=False)
        if smoke.returncode != 0:
            pytest.skip(f"{found.description} cannot run a container: {smoke.stderr.strip()}")
        # The report says which engine ran the image tests (pytest -rA shows it).
        print(f"docker engine: {found.description}; {how}")
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def image(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
        build_backend = _build_requires()
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse),
             str(context), *build_backend, "wheel"],
            check=True, timeout=600, cwd=context,
        )  # fmt: skip
    tag = f"forwarder-pytest:{uuid.uuid4().hex[:12]}"
    build = engine.docker(
        "build", *engine.build_options, "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}",
        "--build-arg", "PIP_NO_INDEX=1", "--build-arg", f"VERSION={__version__}",
        "-t", tag, str(context),
        timeout=1200, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    try:
        yield tag
    finally:
        engine.docker("image", "rm", "--force", tag, check=False)


def _build_requires() -> list[str]:
    """pyproject's build-system requirements: the wheelhouse must hold the build backend."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return list(pyproject["build-system"]["requires"])


def _run_args(state: Path, config: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """What the chart's pod gets: non-root, read-only root, no capabilities, /tmp and state
    volumes, the config file read-only; no network (the demo's simulators are on loopback)."""
    return [
        "--network", "none", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "-v", f"{state}:/var/lib/forwarder", "-v", f"{config}:/etc/forwarder/config.yaml:ro",
        *extra,
    ]  # fmt: skip


def _owned_dir(tmp_path: Path, name: str) -> Path:
    """A directory the image's user (10001) can write: a bind-mounted volume."""
    directory = tmp_path / name
    directory.mkdir()
    if os.geteuid() == 0:
        os.chown(directory, 10001, 10001)
    else:
        directory.chmod(0o777)
    return directory


@pytest.mark.slow
def test_image_checks_a_chart_config_as_non_root(
    engine: DockerEngine, image: str, helm: Helm, tmp_path: Path
) -> None:
    from forwarder.simulators.google_auth import ServiceAccount

    inspected = json.loads(engine.docker("image", "inspect", image).stdout)[0]["Config"]
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
    result = engine.docker(
        "run", "--rm", *_run_args(_owned_dir(tmp_path, "state"), config, mounts), image,
        "check-config", "--config", "/etc/forwarder/config.yaml", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "config OK: 2 source(s)" in result.stdout


def _demo_config(helm: Helm) -> str:
    """The chart's demo config, its stdout sink swapped for a file on a mounted volume."""
    config = yaml.safe_load(config_text(helm.render((EXAMPLES / "values-demo.yaml",))))
    config["sinks"] = {
        "events_file": {"type": "file", "path": f"{EVENTS_MOUNT}/events.ndjson", "mode": "0644"}
    }
    return yaml.safe_dump(config)


def _providers(events_file: Path) -> dict[str, int]:
    """Events per provider in the file sink's output (complete lines only)."""
    counts: dict[str, int] = {}
    if not events_file.exists():
        return counts
    for line in events_file.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n"):
            provider = json.loads(line)["event"]["provider"]
            counts[provider] = counts.get(provider, 0) + 1
    return counts


@pytest.mark.slow
def test_image_runs_the_demo_to_a_mounted_file_and_drains_on_sigterm(
    engine: DockerEngine, image: str, helm: Helm, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(_demo_config(helm))
    state = _owned_dir(tmp_path, "state")
    events = _owned_dir(tmp_path, "events")
    events_file = events / "events.ndjson"
    args = _run_args(state, config, ("-v", f"{events}:{EVENTS_MOUNT}"))
    name = f"forwarder-pytest-{uuid.uuid4().hex[:8]}"
    engine.docker("run", "-d", "--name", name, *args, image)
    try:
        # The embedded simulators start with 6 h of history: both sources deliver pages of
        # it at once. Waiting for them is bounded, never a timing assertion.
        deadline = time.monotonic() + 120
        while set(_providers(events_file)) != PROVIDERS:
            running = json.loads(engine.docker("inspect", name).stdout)[0]["State"]["Running"]
            logs = engine.docker("logs", name, check=False)
            assert running and time.monotonic() < deadline, logs.stdout + logs.stderr[-3000:]
            time.sleep(1)

        # `docker stop` sends the image's STOPSIGNAL (SIGTERM) to PID 1, the daemon.
        engine.docker("stop", "--time", "45", name, timeout=90)
        state_info = json.loads(engine.docker("inspect", name).stdout)[0]["State"]
        logs = engine.docker("logs", name).stderr
        assert state_info["ExitCode"] == 0, logs[-3000:]
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        said = [line.get("event") for line in lines]
        assert "forwarder_stopping" in said, logs[-3000:]  # SIGTERM reached the daemon
        stopped = [line for line in lines if line.get("event") == "forwarder_stopped"]
        assert stopped and stopped[-1].get("undelivered_batches") == 0, logs[-3000:]
    finally:
        engine.docker("rm", "--force", name, check=False)

    # The drain left whole lines only, every one an ECS event of a demo source.
    text = events_file.read_text(encoding="utf-8")
    assert text.endswith("\n")
    delivered = _providers(events_file)
    assert set(delivered) == PROVIDERS and all(delivered.values()), delivered

    # Both cursors were committed: the image's own `cursors show` reads them back.
    shown = engine.docker(
        "run", "--rm", *args, image, "cursors", "show", "--config", "/etc/forwarder/config.yaml",
        check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    cursors = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
    assert {cursor["source"] for cursor in cursors if cursor["committed"]} == PROVIDERS, (
        shown.stdout
    )
