from __future__ import annotations

import io

import orjson

from forwarder.config.model import StdoutSinkConfig
from forwarder.events import Event
from forwarder.sinks.stdout import StdoutSink


async def test_writes_one_json_line_per_event() -> None:
    stream = io.BytesIO()
    sink = StdoutSink("out", StdoutSinkConfig(type="stdout"), stream=stream)
    await sink.start()
    events = [Event(f"id{n}", float(n), "p", "a", {"n": n, "text": "é\n"}, {}) for n in range(3)]
    result = await sink.send(events)
    assert result.retry is None
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line) for line in lines] == [{"n": n, "text": "é\n"} for n in range(3)]


async def test_closed_stream_asks_for_a_retry() -> None:
    stream = io.BytesIO()
    stream.close()
    sink = StdoutSink("out", StdoutSinkConfig(type="stdout"), stream=stream)
    result = await sink.send([Event("x", 0.0, "p", "a", {}, {})])
    assert result.retry is not None
