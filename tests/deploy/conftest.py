"""Fixtures for the deployment tests: helm and hadolint, found in their PyPI wheels."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_harness import Helm, ToolMissing, extract_helm, hadolint_path


def _cache_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # pytest's cache (.pytest_cache/, already ignored by git) keeps the extracted binary
    # between runs; without the cache plugin, a temporary directory.
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("deploy-tools"))
    return tmp_path_factory.mktemp("deploy-tools")


@pytest.fixture(scope="session")
def helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    try:
        binary = extract_helm(_cache_dir(request, tmp_path_factory))
    except ToolMissing as error:
        pytest.fail(f"helm is not available: {error}")
    tool = Helm(binary, tmp_path_factory.mktemp("helm-home"))
    version = tool.run("version", "--short")
    assert version.returncode == 0 and version.stdout.startswith("v3."), version.output
    return tool


@pytest.fixture(scope="session")
def hadolint() -> Path:
    try:
        return hadolint_path()
    except ToolMissing as error:
        pytest.fail(f"hadolint is not available: {error}")
