from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import Simulators, finite_simulators


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[Simulators]:
    """A finite dataset (the last 6 hours, nothing live), no Google lag."""
    sims = finite_simulators(tmp_path / "sim", seed=7, hours=6, rate=4)
    yield sims
    sims.stop()
