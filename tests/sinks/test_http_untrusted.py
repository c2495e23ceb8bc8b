"""The HTTP sink against receivers that misbehave, each a server on 127.0.0.1: full-size
Elasticsearch bulk answers written in several pieces, redirects, 2xx answers that do not
mean success, a Retry-After of centuries, oversized and gzip-bomb answers. Default
settings (500 events per request) unless a test says otherwise; every test checks what
the receiver stored against what was sent: nothing lost, nothing doubled."""

from __future__ import annotations

import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from http_harness import (
    FakeElasticsearch,
    Receiver,
    ScriptedSource,
    hec_success,
    http_sink,
    make_event,
    run_pipeline,
    start_app,
    write_in_pieces,
)

from forwarder.clock import ManualClock
from forwarder.config.loader import ConfigError, load_config
from forwarder.config.model import HttpSinkConfig
from forwarder.observability.metrics import Metrics

DEFAULT_BATCH = HttpSinkConfig(type="http", url="http://x").batch.max_events


def _ids(count: int) -> set[str]:
    return {f"{n:032x}" for n in range(count)}


def _errors(metrics: Metrics, error_type: str) -> float:
    value = metrics.registry.get_sample_value(
        "forwarder_sink_errors_total", {"sink": "http", "error_type": error_type}
    )
    return value or 0.0


# -- Elasticsearch bulk answers, read whole --------------------------------------------------

BULK_CASES: dict[str, dict[str, Any]] = {
    # 1,000 events: two requests of 500, each answered with ~95 KB in 8 writes.
    "errors_false": {"events": 1000, "pieces": 8},
    # The same answers gzip-compressed (Elasticsearch's http.compression), in 4 writes.
    "gzip_answers": {"events": 1000, "pieces": 4, "gzip_answers": True},
    # errors true: refused (400), throttled once (429), created earlier (409), created.
    "errors_true_mixed": {"events": 1000, "pieces": 8, "mixed": True},
    # 60 events: an ~11 KB answer in two writes.
    "11kb_in_two_writes": {"events": 60, "pieces": 2},
}


@pytest.mark.parametrize("case", list(BULK_CASES))
async def test_full_size_bulk_answers_in_pieces_are_read_whole(case: str, tmp_path: Path) -> None:
    settings = BULK_CASES[case]
    count = settings["events"]
    ids = sorted(_ids(count))
    refuse = throttle = frozenset[str]()
    earlier: set[str] = set()
    if settings.get("mixed"):
        refuse = frozenset(ids[7::97])
        throttle = frozenset(ids[3::13]) - refuse
        earlier = set(ids[5::50]) - refuse - throttle
    es = FakeElasticsearch(
        refuse=refuse,
        throttle_once=throttle,
        pieces=settings["pieces"],
        gzip_answers=settings.get("gzip_answers", False),
    )
    for doc_id in earlier:
        es.index[doc_id] = b"{}"  # created by an earlier attempt: answered 409
    runner, url = await start_app({"/_bulk": es.handle}, "/_bulk")
    sink = http_sink(url, encoding="elasticsearch_bulk")
    await sink.start()
    pages = max(1, count // 100)
    try:
        store, dead, _ = await run_pipeline(
            tmp_path, sink, ScriptedSource(pages, count // pages), within=30
        )
    finally:
        await sink.aclose()
        await runner.cleanup()
    assert set(es.index) == set(ids) - refuse, "events missing from the index"
    assert all(es.index[doc_id] == b"{}" for doc_id in earlier), "a 409 overwrote a document"
    letters = [orjson.loads(line) for line in dead.path.read_bytes().splitlines()] if refuse else []
    assert sorted(letter["payload"]["event"]["id"] for letter in letters) == sorted(refuse)
    assert {letter["reason"] for letter in letters} <= {"bulk_item_400"}
    assert await store.load("cal") == {"b": pages - 1, "seen": {}}
    requests = -(-count // DEFAULT_BATCH)
    # Only the throttled items are sent again (one more request); nothing else twice.
    assert es.requests == requests + (1 if throttle else 0)
    if count >= DEFAULT_BATCH:
        assert min(es.answer_sizes[:requests]) >= 85_000, es.answer_sizes
    else:
        assert es.answer_sizes[0] >= 11_000
    print(orjson.dumps({"case": case, "answer_bytes": es.answer_sizes}).decode())


# -- redirects -------------------------------------------------------------------------------


class Recorder:
    """Any method on any path: records it and answers 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        return web.Response(text="ok")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_refused_and_retried_never_followed(
    status: int, tmp_path: Path
) -> None:
    elsewhere = Recorder()
    elsewhere_runner, elsewhere_url = await start_app({"/{tail:.*}": elsewhere.handle}, "/")
    origin = elsewhere_url.rstrip("/")
    secret_file = tmp_path / "ch-key"
    secret_file.write_text("ch-secret-key\n")
    redirects = 3
    stored: list[bytes] = []
    answered: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        lines = (await request.read()).splitlines()
        if len(answered) < redirects:
            answered.append(status)
            # A Location carrying credentials: none of it may be repeated anywhere.
            location = origin.replace("http://", "http://admin:pw@") + "/collect?token=t0k3n"
            return web.Response(status=status, headers={"Location": location})
        answered.append(200)
        stored.extend(lines)
        return web.Response(status=200)

    runner, url = await start_app({"/ingest": handle}, "/ingest")
    metrics = Metrics()
    sink = http_sink(
        url,
        header_files={"X-ClickHouse-Key": str(secret_file)},
        auth={"strategy": "bearer", "token": "bearer-secret"},
    )
    await sink.start()
    try:
        result = await sink.send([make_event(n) for n in range(10)])
        assert result.retry is not None and not result.delivered and not result.rejected
        assert result.error_type == "redirect"
        assert f"HTTP {status}" in result.retry and origin in result.retry
        for leaked in ("admin", "pw@", "t0k3n", "/collect"):
            assert leaked not in result.retry
        store, _, metrics = await run_pipeline(
            tmp_path, sink, ScriptedSource(10, 100), metrics=metrics
        )
    finally:
        await sink.aclose()
        await runner.cleanup()
        await elsewhere_runner.cleanup()
    assert elsewhere.requests == [], "a redirect was followed"
    ids = [orjson.loads(line)["event"]["id"] for line in stored]
    assert sorted(ids) == sorted(_ids(1000)) and len(ids) == len(set(ids))
    assert await store.load("cal") == {"b": 9, "seen": {}}
    # One redirect for the direct send, two for the pipeline's first attempt (two requests
    # of 500), then the two requests again, answered 200.
    assert answered == [status] * redirects + [200, 200]
    assert _errors(metrics, "redirect") == 1


# -- what a 2xx must say ----------------------------------------------------------------------

LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in - Corporate Proxy</title></head>"
    b"<body><form action=/login method=post><input name=user></form></body></html>"
)
HEC_BAD_ANSWERS = {
    "code_6": ({"Content-Type": "application/json"}, b'{"text":"Invalid data format","code":6}'),
    "login_page": ({"Content-Type": "text/html"}, LOGIN_PAGE),
    "empty": ({}, b""),
    "plain_success": ({"Content-Type": "text/plain"}, b"Success"),
    "string_code": ({"Content-Type": "application/json"}, b'{"text":"Success","code":"0"}'),
    "true_code": ({"Content-Type": "application/json"}, b'{"text":"Success","code":false}'),
}


@pytest.mark.parametrize("answer", list(HEC_BAD_ANSWERS))
async def test_hec_counts_only_code_0(receiver: Receiver, tmp_path: Path, answer: str) -> None:
    headers, body = HEC_BAD_ANSWERS[answer]
    bad = 3
    receiver.script = [lambda lines: (200, headers, body)] * bad
    receiver.fallback = hec_success
    sink = http_sink(receiver.url, encoding="splunk_hec", auth={"strategy": "splunk", "token": "t"})
    await sink.start()
    try:
        result = await sink.send([make_event(n) for n in range(5)])
        assert result.retry is not None and result.error_type == "bad_success_body"
        assert result.retry.startswith("HTTP 200 but ") and len(result.retry) < 300
        assert body[:15].decode() in result.retry
        store, _, metrics = await run_pipeline(tmp_path, sink, ScriptedSource(5, 100))
    finally:
        await sink.aclose()
    # What Splunk indexed: the requests it answered code 0.
    stored = [line for request in receiver.requests[bad:] for line in request.body.splitlines()]
    ids = [orjson.loads(line)["event"]["event"]["id"] for line in stored]
    assert sorted(ids) == sorted(_ids(500)) and len(ids) == len(set(ids))
    assert _errors(metrics, "bad_success_body") == bad - 1
    assert await store.load("cal") == {"b": 4, "seen": {}}


BULK_BAD_ANSWERS = {
    "empty": b"",
    "login_page": LOGIN_PAGE,
    "no_items": b'{"took":3,"errors":false}',
    "too_few_items": b'{"took":3,"errors":false,"items":[{"create":{"status":201}}]}',
    "array": b"[]",
}


@pytest.mark.parametrize("answer", [*BULK_BAD_ANSWERS, "other_ids"])
async def test_bulk_answer_must_match_the_request(answer: str, tmp_path: Path) -> None:
    es = FakeElasticsearch()
    bad: list[int] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        if len(bad) < 2:
            bad.append(1)
            await request.read()
            if answer == "other_ids":  # a replayed answer to another request
                items = [{"create": {"_id": f"other{n}", "status": 201}} for n in range(500)]
                body = orjson.dumps({"took": 1, "errors": False, "items": items})
            else:
                body = BULK_BAD_ANSWERS[answer]
            return await write_in_pieces(request, 200, {"Content-Type": "text/html"}, body, 2)
        return await es.handle(request)

    runner, url = await start_app({"/_bulk": handle}, "/_bulk")
    sink = http_sink(url, encoding="elasticsearch_bulk")
    await sink.start()
    try:
        result = await sink.send([make_event(n) for n in range(500)])
        assert result.retry is not None and result.error_type == "bad_success_body"
        assert not result.delivered and not result.rejected
        store, _, metrics = await run_pipeline(tmp_path, sink, ScriptedSource(5, 100))
    finally:
        await sink.aclose()
        await runner.cleanup()
    assert set(es.index) == _ids(500)
    assert _errors(metrics, "bad_success_body") == 1
    assert await store.load("cal") == {"b": 4, "seen": {}}


PLAIN_ANSWERS = [
    # (status, content type, body, delivered?)
    (200, "text/html; charset=utf-8", LOGIN_PAGE, False),
    (200, "text/plain", b"\n  <!doctype HTML><html><body>Captive portal</body></html>", False),
    (200, "application/xhtml+xml", b"<?xml version='1.0'?><html/>", False),
    (200, "", b"<html>\n<body>login</body></html>", False),
    (200, "text/plain", b"<HTML/>", False),
    (200, "text/plain; charset=UTF-8", b"", True),  # ClickHouse
    (200, "application/json", b'{"ok":true}', True),
    (202, "text/plain", b"Ok.\n", True),
    (204, "", b"", True),
    (200, "text/plain", b"<b>not a page</b>", True),
]


@pytest.mark.parametrize("encoding", ["ndjson", "json_array"])
@pytest.mark.parametrize(("status", "content_type", "body", "delivered"), PLAIN_ANSWERS)
async def test_ndjson_and_json_array_refuse_html_pages(
    receiver: Receiver,
    encoding: str,
    status: int,
    content_type: str,
    body: bytes,
    delivered: bool,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    receiver.script = [lambda lines: (status, headers, body)]
    sink = http_sink(receiver.url, encoding=encoding)
    await sink.start()
    try:
        result = await sink.send([make_event(n) for n in range(3)])
    finally:
        await sink.aclose()
    if delivered:
        assert result.retry is None and not result.rejected
    else:
        assert result.retry is not None and result.error_type == "bad_success_body"
        assert "HTML page" in result.retry and not result.delivered


# -- bounded answers ---------------------------------------------------------------------------


async def test_answer_above_max_response_bytes_is_a_retried_failure(tmp_path: Path) -> None:
    es = FakeElasticsearch(pieces=4)
    runner, url = await start_app({"/_bulk": es.handle}, "/_bulk")
    sink = http_sink(url, encoding="elasticsearch_bulk", max_response_bytes=65_536)
    await sink.start()
    try:
        result = await sink.send([make_event(n) for n in range(DEFAULT_BATCH)])
    finally:
        await sink.aclose()
        await runner.cleanup()
    assert es.answer_sizes[0] > 65_536
    assert result.retry is not None and result.error_type == "response_too_large"
    assert "max_response_bytes (65536 bytes)" in result.retry
    assert not result.delivered and not result.rejected


async def test_gzip_bomb_answer_is_cut_at_the_limit(receiver: Receiver) -> None:
    # 256 MiB of zeros, gzip-compressed to ~250 KB.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(256)) + compressor.flush()
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    receiver.script = [lambda lines: (200, headers, bomb)]
    sink = http_sink(receiver.url)
    await sink.start()
    tracemalloc.start()
    try:
        result = await sink.send([make_event(1)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await sink.aclose()
    assert result.retry is not None and result.error_type == "response_too_large"
    limit = HttpSinkConfig(type="http", url="http://x").max_response_bytes
    assert peak < 3 * limit, f"{peak / 2**20:.0f} MiB allocated reading a {len(bomb)} B bomb"
    print(orjson.dumps({"bomb_bytes": len(bomb), "peak_mib": round(peak / 2**20, 1)}).decode())


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("31536000000", 900.0),  # 1,000 years
        ("Fri, 31 Dec 9999 23:59:59 GMT", 900.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("0x10", None),
        ("", None),
        ("٣", None),  # a digit, but not ASCII
    ],
)
async def test_retry_after_is_capped_and_garbage_ignored(
    receiver: Receiver, value: str, expected: float | None
) -> None:
    receiver.script = [lambda lines: (503, {"Retry-After": value}, b"busy")]
    metrics = Metrics()
    sink = http_sink(receiver.url, metrics)
    await sink.start()
    try:
        result = await sink.send([make_event(1)])
    finally:
        await sink.aclose()
    assert result.retry is not None and result.error_type == "http_503"
    assert result.retry_after == expected
    capped = metrics.registry.get_sample_value(
        "forwarder_sink_capped_values_total", {"sink": "http", "kind": "retry_after"}
    )
    assert (capped or 0) == (1 if expected == 900.0 else 0)
    assert ("retry_after" in sink.warnings) == (expected == 900.0)


async def test_capped_retry_after_holds_no_longer_than_max_retry_after(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.script = [lambda lines: (429, {"Retry-After": "31536000000"}, b"slow down")]
    sink = http_sink(receiver.url, max_retry_after=120)
    await sink.start()
    clock = ManualClock(0)
    try:
        await run_pipeline(tmp_path, sink, ScriptedSource(1, 3), clock=clock)
    finally:
        await sink.aclose()
    assert 120 <= clock.now() < 121, clock.now()
    assert len(receiver.accepted) == 3
    assert sink.warnings == {}, "the warning outlived the condition"


# -- header_files -------------------------------------------------------------------------------


async def test_header_files_are_sent(receiver: Receiver, tmp_path: Path) -> None:
    key = tmp_path / "api-key"
    key.write_text("k-123\n")
    sink = http_sink(receiver.url, headers={"X-Env": "prod"}, header_files={"X-Api-Key": str(key)})
    await sink.start()
    try:
        result = await sink.send([make_event(1)])
    finally:
        await sink.aclose()
    assert result.retry is None
    [request] = receiver.requests
    assert (request.headers["X-Api-Key"], request.headers["X-Env"]) == ("k-123", "prod")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "cannot read"), ("", "is empty"), ("\n \n", "is empty"), ("a\nb", "control")],
)
def test_header_file_problems_name_the_key(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        http_sink("https://ch.example/", header_files={"X-ClickHouse-Key": str(path)})
    assert raised.value.key == "sinks.http.header_files.X-ClickHouse-Key"
    assert problem in raised.value.problem


@pytest.mark.parametrize(
    "name", ["X-ClickHouse-Key", "X-Api-Key", "Authorization", "X-Auth-Token", "Cookie", "X-SECRET"]
)
def test_credential_headers_are_refused_in_headers(tmp_path: Path, name: str) -> None:
    config = tmp_path / "forwarder.yaml"
    config.write_text(
        f"""state_dir: {tmp_path}
sources:
  cal: {{type: calendly, token: abc, organization: "https://api.calendly.com/organizations/X"}}
sinks:
  ch: {{type: http, url: "https://ch.example/", headers: {{{name}: "hunter2-value"}}}}
"""
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.key == "sinks.ch.headers"
    assert "header_files" in raised.value.problem and name in raised.value.problem
    assert "hunter2" not in str(raised.value)


def test_plain_headers_and_header_files_together() -> None:
    config = HttpSinkConfig(
        type="http",
        url="https://x/",
        headers={"X-ClickHouse-User": "forwarder", "X-Env": "prod"},
        header_files={"X-ClickHouse-Key": Path("/run/secrets/ch")},
    )
    assert config.headers["X-ClickHouse-User"] == "forwarder"
    with pytest.raises(ValueError, match="both headers and header_files"):
        HttpSinkConfig(
            type="http", url="https://x/", headers={"X-Env": "a"}, header_files={"x-env": "/f"}
        )
    with pytest.raises(ValueError, match="not both"):
        HttpSinkConfig(
            type="http",
            url="https://x/",
            auth={"strategy": "bearer", "token": "t"},
            header_files={"Authorization": "/f"},
        )
    with pytest.raises(ValueError, match="not a valid HTTP header name"):
        HttpSinkConfig(type="http", url="https://x/", header_files={"X Key": "/f"})


@pytest.mark.parametrize("status", [200, 401, 400])
async def test_credentials_echoed_by_the_receiver_are_not_quoted(
    receiver: Receiver, tmp_path: Path, status: int
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("ck-key-9d8c7b6a5f4e3d2c1b0a\n")
    token = "5b3f1c2e-9a7d-4e8b-b6c1-0d2e3f4a5b6c"
    # The token straddles the point where the excerpt is cut.
    for cut in (100, 2040):
        body = (
            "<html><!-- " + "x" * cut + f" Authorization: Splunk {token} "
            "X-ClickHouse-Key: ck-key-9d8c7b6a5f4e3d2c1b0a --></html>"
        ).encode()
        receiver.script = [lambda lines, body=body: (status, {"Content-Type": "text/html"}, body)]
        sink = http_sink(
            receiver.url,
            encoding="splunk_hec",
            auth={"strategy": "splunk", "token": token},
            header_files={"X-ClickHouse-Key": str(key_file)},
        )
        await sink.start()
        try:
            result = await sink.send([make_event(1)])
        finally:
            await sink.aclose()
        quoted = " ".join([result.retry or "", *result.details.values()])
        assert quoted.strip(), result
        for fragment in (token[:8], token[-8:], "ck-key-9d8c", "2c1b0a"):
            assert fragment not in quoted, quoted
