"""The HTTP sink against a real ClickHouse server and a scriptable local receiver."""

from __future__ import annotations

import gzip
import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from http_harness import (
    ClickHouse,
    Receiver,
    ScriptedSource,
    hec_success,
    http_sink,
    make_event,
    run_pipeline,
)

from forwarder.clock import ManualClock
from forwarder.config.model import HttpSinkConfig
from forwarder.observability.metrics import Metrics
from forwarder.sinks.http.concurrency import AdaptiveConcurrency


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouse]:
    server = ClickHouse(tmp_path / "clickhouse")
    server.query(
        "CREATE TABLE audit (`@timestamp` String, `event.id` String, message String)"
        " ENGINE = MergeTree ORDER BY `event.id`"
    )
    yield server
    server.stop()


async def test_clickhouse_every_event_lands_once(clickhouse: ClickHouse, tmp_path: Path) -> None:
    sink = http_sink(
        clickhouse.insert_url("audit"),
        auth={"strategy": "basic", "username": ClickHouse.USER, "password": ClickHouse.PASSWORD},
        batch={"max_events": 300},
    )
    await sink.start()
    try:
        store, dead, _ = await run_pipeline(tmp_path, sink, ScriptedSource(batches=10, size=100))
    finally:
        await sink.aclose()
    rows = clickhouse.rows("SELECT `event.id` AS id, message FROM audit")
    assert len(rows) == 1000
    assert {row["id"] for row in rows} == {f"{n:032x}" for n in range(1000)}
    assert {row["message"] for row in rows if row["id"] == f"{7:032x}"} == {"event 7 é ✓"}
    assert not dead.path.exists()
    assert await store.load("cal") == {"b": 9, "seen": {}}


async def test_clickhouse_key_from_header_files_full_batches(
    clickhouse: ClickHouse, tmp_path: Path
) -> None:
    # ClickHouse's own header authentication: the user in `headers`, the password in a
    # file named under `header_files`. Default batch (500); ClickHouse answers 200 with
    # an empty body, which counts.
    key = tmp_path / "ch-key"
    key.write_text(ClickHouse.PASSWORD + "\n")
    sink = http_sink(
        clickhouse.insert_url("audit"),
        headers={"X-ClickHouse-User": ClickHouse.USER},
        header_files={"X-ClickHouse-Key": str(key)},
    )
    await sink.start()
    try:
        store, dead, _ = await run_pipeline(tmp_path, sink, ScriptedSource(batches=10, size=100))
    finally:
        await sink.aclose()
    rows = clickhouse.rows("SELECT `event.id` AS id FROM audit")
    assert sorted(row["id"] for row in rows) == sorted(f"{n:032x}" for n in range(1000))
    assert not dead.path.exists()
    assert await store.load("cal") == {"b": 9, "seen": {}}


async def test_clickhouse_wrong_password_is_reported_clearly(clickhouse: ClickHouse) -> None:
    sink = http_sink(
        clickhouse.insert_url("audit"),
        auth={"strategy": "basic", "username": ClickHouse.USER, "password": "wrong"},
    )
    await sink.start()
    try:
        result = await sink.send([make_event(1)])
    finally:
        await sink.aclose()
    assert result.retry is not None, "credentials problems are retried, not dead-lettered"
    assert "HTTP 401" in result.retry and "Wrong password" in result.retry
    assert "wrong" not in result.retry.replace("Wrong", "")
    assert clickhouse.query("SELECT count() FROM audit").strip() == b"0"


async def test_splunk_hec_body_and_headers_byte_exact(receiver: Receiver) -> None:
    receiver.fallback = hec_success
    sink = http_sink(
        receiver.url,
        encoding="splunk_hec",
        auth={"strategy": "splunk", "token": "hec-token"},
        splunk_index="audit",
        splunk_sourcetype="forwarder:ecs",
    )
    await sink.start()
    try:
        result = await sink.send([make_event(1), make_event(2)])
    finally:
        await sink.aclose()
    assert result.retry is None and not result.rejected
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Splunk hec-token"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    expected_key = hashlib.blake2b(f"{1:032x}\n{2:032x}\n".encode(), digest_size=16).hexdigest()
    assert request.headers["Idempotency-Key"] == expected_key
    host = socket.gethostname()
    expected = b"".join(
        orjson.dumps(
            {
                "time": round(make_event(n).timestamp, 3),
                "host": host,
                "source": "forwarder:calendly",
                "sourcetype": "forwarder:ecs",
                "event": make_event(n).document,
                "index": "audit",
            }
        )
        + b"\n"
        for n in (1, 2)
    )
    assert request.body == expected


def _bulk_response(statuses: list[int]) -> bytes:
    items = []
    for status in statuses:
        item: dict[str, Any] = {"_index": "audit-calendly", "status": status}
        if status >= 400:
            item["error"] = {"type": "mapper_parsing_exception", "reason": "failed to parse [n]"}
        items.append({"create": item})
    return orjson.dumps({"took": 3, "errors": any(s >= 300 for s in statuses), "items": items})


async def test_elasticsearch_bulk_body_and_per_item_failures(receiver: Receiver, tmp_path) -> None:
    # First request: item 1 refused for good, item 2 throttled, item 3 already created.
    receiver.script = [
        lambda lines: (200, {}, _bulk_response([201, 400, 429, 409, 201])),
        lambda lines: (200, {}, _bulk_response([201])),
    ]
    sink = http_sink(
        receiver.url, encoding="elasticsearch_bulk", compression="none", batch={"max_events": 5}
    )
    await sink.start()
    try:
        store, dead, _ = await run_pipeline(tmp_path, sink, ScriptedSource(1, 5))
    finally:
        await sink.aclose()
    first = receiver.requests[0].body
    expected = b"".join(
        orjson.dumps({"create": {"_index": "audit-calendly", "_id": f"{n:032x}"}})
        + b"\n"
        + orjson.dumps(make_event(n).document)
        + b"\n"
        for n in range(5)
    )
    assert first == expected
    assert receiver.requests[0].headers["Content-Type"] == "application/x-ndjson"
    # Only the throttled item is sent again.
    assert len(receiver.requests) == 2
    assert receiver.requests[1].body.splitlines()[0] == orjson.dumps(
        {"create": {"_index": "audit-calendly", "_id": f"{2:032x}"}}
    )
    letters = [orjson.loads(line) for line in dead.path.read_bytes().splitlines()]
    assert [(d["reason"], d["payload"]["n"]) for d in letters] == [("bulk_item_400", 1)]
    assert "mapper_parsing_exception" in letters[0]["detail"]
    assert await store.load("cal") == {"b": 0, "seen": {}}


async def test_retry_after_is_honoured(receiver: Receiver, tmp_path) -> None:
    receiver.script = [lambda lines: (429, {"Retry-After": "7"}, b"slow down")]
    sink = http_sink(receiver.url)
    await sink.start()
    clock = ManualClock(0)
    try:
        await run_pipeline(tmp_path, sink, ScriptedSource(1, 3), clock=clock)
    finally:
        await sink.aclose()
    assert len(receiver.requests) == 2
    assert clock.now() >= 7.0, "the retry came before Retry-After"
    assert len(receiver.accepted) == 3


async def test_503_storm_is_ridden_out_with_nothing_lost(receiver: Receiver, tmp_path) -> None:
    receiver.script = [lambda lines: (503, {}, b"busy")] * 25
    sink = http_sink(receiver.url, batch={"max_events": 50})
    await sink.start()
    try:
        store, dead, _ = await run_pipeline(tmp_path, sink, ScriptedSource(10, 40))
    finally:
        await sink.aclose()
    ids = [orjson.loads(line)["event"]["id"] for line in receiver.accepted]
    assert sorted(ids) == sorted(f"{n:032x}" for n in range(400))
    assert len(ids) == len(set(ids)), "503 answers must not lead to duplicates"
    assert not dead.path.exists()
    assert await store.load("cal") == {"b": 9, "seen": {}}


async def test_client_errors_are_dead_lettered_with_the_body(receiver: Receiver, tmp_path) -> None:
    receiver.script = [lambda lines: (400, {}, b'{"error":"field n must be a string"}')]
    sink = http_sink(receiver.url, batch={"max_events": 2})
    await sink.start()
    try:
        _, dead, _ = await run_pipeline(tmp_path, sink, ScriptedSource(1, 4))
    finally:
        await sink.aclose()
    letters = [orjson.loads(line) for line in dead.path.read_bytes().splitlines()]
    assert len(letters) == 2 and {d["reason"] for d in letters} == {"http_400"}
    assert "must be a string" in letters[0]["detail"]
    assert len(receiver.accepted) == 2


async def test_adaptive_concurrency_grows_then_shrinks(receiver: Receiver) -> None:
    receiver.latency = 0.05
    metrics = Metrics()
    sink = http_sink(receiver.url, metrics, batch={"max_events": 1}, concurrency={"max": 8})
    await sink.start()
    try:
        assert sink.limiter.limit == 1
        result = await sink.send([make_event(n) for n in range(120)])
        assert result.retry is None
        grown = sink.limiter.limit
        assert grown >= 4, f"limit stayed at {grown} with steady latency"
        assert receiver.max_in_flight >= 4
        receiver.fallback = lambda lines: (503, {}, b"overloaded")
        result = await sink.send([make_event(n) for n in range(200, 230)])
        assert result.retry is not None
        assert sink.limiter.limit < grown
    finally:
        await sink.aclose()
    gauge = metrics.registry.get_sample_value("forwarder_sink_concurrency_limit", {"sink": "http"})
    assert gauge == sink.limiter.limit


async def test_concurrency_limit_rules() -> None:
    limiter = AdaptiveConcurrency(maximum=3, adaptive=True)
    await limiter.acquire()
    await limiter.release(0.1, overloaded=False)
    assert limiter.limit == 2, "saturated at 1 with steady latency: grow"
    await limiter.acquire()
    await limiter.release(0.1, overloaded=False)
    assert limiter.limit == 2, "not saturated: stay"
    for _ in range(2):
        await limiter.acquire()
    await limiter.release(0.1, overloaded=False)
    await limiter.release(0.1, overloaded=False)
    assert limiter.limit == 3
    await limiter.acquire()
    await limiter.release(1.0, overloaded=False)
    assert limiter.limit == 2, "latency spike: shrink"
    await limiter.acquire()
    await limiter.release(0.1, overloaded=True)
    assert limiter.limit == 1
    fixed = AdaptiveConcurrency(maximum=5, adaptive=False)
    assert fixed.limit == 5


def test_gzip_is_the_default(receiver: Receiver) -> None:
    config = HttpSinkConfig(type="http", url="http://127.0.0.1:1/x")
    assert config.compression == "gzip"
    assert gzip.decompress(gzip.compress(b"x")) == b"x"
