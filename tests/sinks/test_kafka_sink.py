"""The Kafka sink against a real Kafka-protocol broker (tansu) on 127.0.0.1.

The broker's idempotent-producer handshake does not match aiokafka's (see infra notes),
so these tests run with ``enable_idempotence: false``; the product default stays on.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from http_harness import SinkPipeline, StubSource
from kafka_harness import Broker, Stunnel, TcpProxy, consume, free_port, make_certificates

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import Checkpoint
from forwarder.config.model import KafkaSinkConfig
from forwarder.events import Batch, Event
from forwarder.sinks.kafka import KafkaSink


def _event(n: int, provider: str = "calendly", size: int = 0) -> Event:
    event = Event(
        id=f"{n:032x}",
        timestamp=1_800_000_000.0 + n,
        provider=provider,
        action="API.Token_Created",
        document={"event": {"id": f"{n:032x}"}, "n": n, "pad": "x" * size, "text": "é ✓"},
        raw={"n": n},
    )
    event.source = f"src-{provider}"
    return event


def _sink(bootstrap: str, **options: Any) -> KafkaSink:
    settings: dict[str, Any] = {
        "type": "kafka",
        "bootstrap_servers": [bootstrap],
        "enable_idempotence": False,
        "topic": "audit.{provider}",
        "request_timeout": 5,
    }
    settings.update(options)
    return KafkaSink("kafka", KafkaSinkConfig(**settings))


@pytest.mark.parametrize("codec", ["none", "gzip", "lz4", "zstd", "snappy"])
async def test_every_event_arrives_once_with_key_and_headers(broker: Broker, codec: str) -> None:
    sink = _sink(broker.bootstrap, compression=codec)
    await sink.start()
    events = [_event(n) for n in range(300)]
    try:
        for start in range(0, 300, 100):
            result = await sink.send(events[start : start + 100])
            assert result.retry is None and not result.rejected
    finally:
        await sink.aclose()
    records = await consume(broker.bootstrap, "audit.calendly", 300)
    assert len(records) == 300
    by_key = {record.key.decode(): record for record in records}
    assert len(by_key) == 300, "an event arrived twice"
    for event in events:
        record = by_key[event.id]
        assert record.value == event.encoded("ecs")
        assert dict(record.headers) == {
            "source": b"src-calendly",
            "provider": b"calendly",
            "format": b"ecs",
            "content-type": b"application/json",
        }
    # Per partition, events keep the order they were sent in.
    for partition in {record.partition for record in records}:
        numbers = [orjson.loads(r.value)["n"] for r in records if r.partition == partition]
        assert numbers == sorted(numbers)


async def test_topic_template_routes_by_provider_and_static_headers(broker: Broker) -> None:
    sink = _sink(broker.bootstrap, topic="siem.{provider}.{source}", headers={"env": "test"})
    await sink.start()
    try:
        result = await sink.send([_event(1, "calendly"), _event(2, "google_calendar")])
        assert result.retry is None
    finally:
        await sink.aclose()
    calendly = await consume(broker.bootstrap, "siem.calendly.src-calendly", 1)
    google = await consume(broker.bootstrap, "siem.google_calendar.src-google_calendar", 1)
    assert [r.key for r in calendly] == [_event(1).id.encode()]
    assert [r.key for r in google] == [_event(2).id.encode()]
    assert dict(google[0].headers)["env"] == b"test"


class ScriptedSource(StubSource):
    def __init__(self, batches: int, size: int, big: set[int] = frozenset()) -> None:
        self.id = "scripted"
        self.batches, self.size, self.big = batches, size, big
        self.produced = 0
        self.halfway = asyncio.Event()

    async def poll(self) -> AsyncIterator[Batch]:
        for b in range(self.batches):
            numbers = range(b * self.size, (b + 1) * self.size)
            events = [_event(n, size=200_000 if n in self.big else 0) for n in numbers]
            self.produced += len(events)
            if b >= self.batches // 6:
                self.halfway.set()
            yield Batch(self.id, events, Checkpoint({"batch": b}))


def _pipeline(
    tmp_path: Path, sink: KafkaSink, source: ScriptedSource, capacity: int
) -> SinkPipeline:
    """One source, the Kafka sink and the real worker, committer and dead-letter queue."""
    return SinkPipeline(tmp_path, sink, source, capacity=capacity, backoff=Backoff(0.1, 0.5))


async def test_oversized_event_is_dead_lettered_and_the_rest_flows(
    broker: Broker, tmp_path
) -> None:
    sink = _sink(broker.bootstrap, max_request_bytes=100_000)
    await sink.start()
    source = ScriptedSource(batches=3, size=10, big={13})
    async with _pipeline(tmp_path, sink, source, capacity=100) as pipeline:
        await pipeline.runner.poll_once()
        await asyncio.wait_for(pipeline.committer.wait_idle(), 30)
    await sink.aclose()
    records = await consume(broker.bootstrap, "audit.calendly", 29)
    assert sorted(orjson.loads(r.value)["n"] for r in records) == [n for n in range(30) if n != 13]
    letters = [orjson.loads(line) for line in pipeline.dead.path.read_bytes().splitlines()]
    assert [(d["reason"], d["payload"]["n"], d["sink"]) for d in letters] == [
        ("message_too_large", 13, "kafka")
    ]
    assert await pipeline.store.load("scripted") == {"batch": 2, "seen": {}}


async def test_outage_holds_the_cursor_bounds_memory_and_loses_nothing(tmp_path) -> None:
    proxy_port = free_port()
    broker = Broker(advertised_port=proxy_port)
    proxy = TcpProxy(proxy_port, broker.port)
    await proxy.start()
    sink = _sink(broker.bootstrap, request_timeout=2)
    await sink.start()
    source = ScriptedSource(batches=60, size=50)
    try:
        async with _pipeline(tmp_path, sink, source, capacity=200) as pipeline:
            polling = asyncio.create_task(pipeline.runner.poll_once())
            await asyncio.wait_for(source.halfway.wait(), 30)
            await proxy.cut()
            await asyncio.sleep(3)  # in-flight requests time out; nothing more is acknowledged
            committed = await pipeline.store.load("scripted")
            produced = source.produced
            await asyncio.sleep(4)
            assert await pipeline.store.load("scripted") == committed, "cursor moved in outage"
            assert source.produced == produced, "the poller kept reading during the outage"
            # Bounded: the queue's 200 events plus the batch being sent and the one waiting.
            assert pipeline.queue.size <= 200
            assert produced - (committed or {"batch": -1})["batch"] * 50 <= 200 + 50 + 100
            errors = pipeline.metrics.registry.get_sample_value(
                "forwarder_sink_errors_total", {"sink": "kafka", "error_type": "send_failed"}
            )
            assert errors and errors >= 1
            await proxy.restore()
            await asyncio.wait_for(polling, 60)
            await asyncio.wait_for(pipeline.committer.wait_idle(), 60)
        assert await pipeline.store.load("scripted") == {"batch": 59, "seen": {}}
        records = await consume(broker.bootstrap, "audit.calendly", 3000, within=30)
        numbers = {orjson.loads(r.value)["n"] for r in records}
        assert numbers == set(range(3000)), "events lost across the outage"
    finally:
        await sink.aclose()
        await proxy.cut()
        broker.stop()


async def test_tls_through_a_terminating_proxy_verifies_the_ca(tmp_path) -> None:
    certificates = make_certificates(tmp_path / "pki")
    tls_port = free_port()
    broker = Broker(advertised_port=tls_port)
    stunnel = Stunnel(tmp_path, tls_port, broker.port, certificates["cert"], certificates["key"])
    try:
        sink = _sink(
            f"localhost:{tls_port}", security_protocol="SSL", tls={"ca_file": certificates["ca"]}
        )
        await sink.start()
        try:
            result = await sink.send([_event(n) for n in range(20)])
        finally:
            await sink.aclose()
        assert result.retry is None
        other = make_certificates(tmp_path / "other-pki")
        untrusting = _sink(
            f"localhost:{tls_port}",
            security_protocol="SSL",
            tls={"ca_file": other["ca"]},
            request_timeout=2,
        )
        refused = await untrusting.send([_event(99)])
        await untrusting.aclose()
        assert refused.retry is not None, "a server certificate from an unknown CA was accepted"
        context = ssl.create_default_context(cafile=str(certificates["ca"]))
        records = await consume(
            f"localhost:{tls_port}",
            "audit.calendly",
            20,
            security_protocol="SSL",
            ssl_context=context,
        )
        assert sorted(orjson.loads(r.value)["n"] for r in records) == list(range(20))
    finally:
        stunnel.stop()
        broker.stop()
