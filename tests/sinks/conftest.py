"""Fixtures for the sink tests: a real broker per test, stopped by PID; a scriptable
HTTP receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from http_harness import Receiver, start_receiver
from kafka_harness import Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker()
    yield running
    running.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    runner = await start_receiver(running)
    yield running
    await runner.cleanup()
