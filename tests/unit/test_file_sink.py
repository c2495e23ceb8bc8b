from __future__ import annotations

from pathlib import Path

import orjson

from forwarder.config.model import FileSinkConfig
from forwarder.events import Event
from forwarder.sinks.file import FileSink


def _event(n: int) -> Event:
    return Event(
        id=f"id{n}",
        timestamp=float(n),
        provider="test",
        action="a",
        document={"event": {"id": f"id{n}"}, "n": n},
        raw={"raw": n},
    )


async def test_appends_one_line_per_event_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.ndjson"
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    result = await sink.send([_event(1), _event(2)])
    assert result.retry is None and not result.rejected
    await sink.send([_event(3)])
    await sink.aclose()
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line)["n"] for line in lines] == [1, 2, 3]


async def test_raw_format_writes_the_api_record(tmp_path: Path) -> None:
    path = tmp_path / "raw.ndjson"
    sink = FileSink("f", FileSinkConfig(type="file", path=path, format="raw"))
    await sink.start()
    await sink.send([_event(7)])
    await sink.aclose()
    assert orjson.loads(path.read_bytes()) == {"raw": 7}


async def test_torn_last_line_from_a_crash_is_cut_on_start(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"n":1}\n{"n":2}\n{"n":3, "partial')
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.send([_event(4)])
    await sink.aclose()
    assert [orjson.loads(line)["n"] for line in path.read_bytes().splitlines()] == [1, 2, 4]


async def test_torn_file_without_any_newline_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"x" * 70000)
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.aclose()
    assert path.read_bytes() == b""


async def test_write_failure_asks_for_a_retry(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    sink = FileSink("f", FileSinkConfig(type="file", path=path))
    await sink.start()
    await sink.aclose()
    path.unlink()
    path.mkdir()  # the sink cannot reopen a directory as a file
    result = await sink.send([_event(1)])
    assert result.retry is not None and "events.ndjson" in result.retry
