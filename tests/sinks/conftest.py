"""Fixtures for the sink tests: a real broker per test, stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_harness import Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker()
    yield running
    running.stop()
