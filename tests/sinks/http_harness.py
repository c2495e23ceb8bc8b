"""HTTP receivers for the sink tests: a scriptable local server (HEC, bulk, faults,
latency, concurrency tracking), an Elasticsearch-shaped ``_bulk`` endpoint, a real
ClickHouse server started by PID, the HTTP sink, scripted sources and a one-source
pipeline to drive a sink with (shared with the other sink tests and tests/unit)."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from kafka_harness import free_port, wait_listening

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.clock import Clock, SystemClock
from forwarder.config.model import HttpSinkConfig
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Batch, Event
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.queue import EventBoundedQueue
from forwarder.pipeline.sink_worker import Delivery, SinkWorker
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.sinks.base import Sink
from forwarder.sinks.http import HttpSink

Responder = Callable[[list[bytes]], tuple[int, dict[str, str], bytes]]

HEC_SUCCESS: tuple[int, dict[str, str], bytes] = (
    200,
    {"Content-Type": "application/json; charset=UTF-8"},
    b'{"text":"Success","code":0}',
)


def hec_success(lines: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    """What Splunk's HEC answers to an accepted request."""
    return HEC_SUCCESS


async def write_in_pieces(
    request: web.Request,
    status: int,
    headers: dict[str, str],
    body: bytes,
    pieces: int,
    pause: float = 0.005,
) -> web.StreamResponse:
    """Answer with ``body`` (Content-Length set) in ``pieces`` separate TCP writes with a
    pause between them, as a busy server on a real network does."""
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    size = -(-len(body) // pieces)
    for start in range(0, len(body), size):
        # Each write() is one send() on the socket (TCP_NODELAY): the pause makes the
        # pieces arrive separately.
        await response.write(body[start : start + size])
        await asyncio.sleep(pause)
    await response.write_eof()
    return response


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes  # decompressed by aiohttp


@dataclass
class Receiver:
    """Records every request; ``script`` answers them (default: 200 ``{}``)."""

    script: list[Responder] = field(default_factory=list)
    fallback: Responder | None = None
    latency: float = 0.0
    requests: list[Received] = field(default_factory=list)
    accepted: list[bytes] = field(default_factory=list)  # chunks of 2xx requests
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # aiohttp's server already undid Content-Encoding: gzip (and would fail on a
            # body that claims gzip without being gzip).
            raw = await request.read()
            self.requests.append(Received(dict(request.headers), raw))
            if self.latency:
                await asyncio.sleep(self.latency)
            lines = [line for line in raw.split(b"\n") if line]
            responder = self.script.pop(0) if self.script else self.fallback
            status, headers, body = responder(lines) if responder else (200, {}, b"{}")
            if 200 <= status < 300:
                self.accepted.extend(lines)
            return web.Response(status=status, headers=headers, body=body)
        finally:
            self.in_flight -= 1


async def start_receiver(receiver: Receiver, path: str = "/ingest") -> web.AppRunner:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}{path}"
    return runner


class ClickHouse:
    """A private clickhouse-server (Debian package) on 127.0.0.1 with user ``forwarder``."""

    USER = "forwarder"
    PASSWORD = "s3cret-pass"

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("clickhouse-server")
        if binary is None:
            raise AssertionError("clickhouse-server is not installed (make test installs it)")
        self.http_port, tcp_port = free_port(), free_port()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "users.xml").write_text(
            f"""<yandex><profiles><default></default></profiles><users><{self.USER}>
<password>{self.PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>
<profile>default</profile><quota>default</quota></{self.USER}></users>
<quotas><default></default></quotas></yandex>"""
        )
        (directory / "config.xml").write_text(
            f"""<yandex><logger><level>warning</level><console>1</console></logger>
<http_port>{self.http_port}</http_port><tcp_port>{tcp_port}</tcp_port>
<listen_host>127.0.0.1</listen_host><path>{directory}/data/</path>
<tmp_path>{directory}/tmp/</tmp_path><users_config>{directory}/users.xml</users_config>
<default_profile>default</default_profile><default_database>default</default_database>
<mark_cache_size>5368709</mark_cache_size></yandex>"""
        )
        self._log = open(directory / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [binary, f"--config-file={directory / 'config.xml'}"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_listening(self.http_port, timeout=30)

    def query(self, sql: str) -> bytes:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/",
            data=sql.encode(),
            headers={"X-ClickHouse-User": self.USER, "X-ClickHouse-Key": self.PASSWORD},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def insert_url(self, table: str) -> str:
        query = urllib.parse.urlencode(
            {
                "query": f"INSERT INTO {table} FORMAT JSONEachRow",
                # Nested ECS objects map to `event.id`-style columns; the rest is skipped.
                "input_format_import_nested_json": "1",
                "input_format_skip_unknown_fields": "1",
            }
        )
        return f"http://127.0.0.1:{self.http_port}/?{query}"

    def rows(self, sql: str) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.query(sql + " FORMAT JSONEachRow").splitlines()]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class FakeElasticsearch:
    """An Elasticsearch ``_bulk`` endpoint that keeps what it indexed and answers the way
    Elasticsearch 8 does: one result per action, ``create`` of an existing ``_id`` a 409
    ``version_conflict_engine_exception``, ids in ``refuse`` a 400 parsing error every
    time, ids in ``throttle_once`` a 429 the first time. Each answer is written in
    ``pieces`` TCP writes, gzip-compressed when ``gzip_answers`` (as with
    ``http.compression``)."""

    def __init__(
        self,
        refuse: frozenset[str] = frozenset(),
        throttle_once: frozenset[str] = frozenset(),
        pieces: int = 8,
        gzip_answers: bool = False,
    ) -> None:
        self.refuse = refuse
        self.throttle_once = set(throttle_once)
        self.pieces = pieces
        self.gzip_answers = gzip_answers
        self.index: dict[str, bytes] = {}
        self.requests = 0
        self.answer_sizes: list[int] = []  # uncompressed
        self.url = ""
        self._seq_no = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        lines = (await request.read()).splitlines()
        items = [
            self._item(action, document)
            for action, document in zip(lines[::2], lines[1::2], strict=True)
        ]
        body = orjson.dumps(
            {"errors": any(i["create"]["status"] >= 300 for i in items), "took": 87, "items": items}
        )
        self.answer_sizes.append(len(body))
        headers = {"Content-Type": "application/json", "X-elastic-product": "Elasticsearch"}
        if self.gzip_answers:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return await write_in_pieces(request, 200, headers, body, self.pieces)

    def _item(self, action: bytes, document: bytes) -> dict[str, Any]:
        meta = orjson.loads(action)["create"]
        doc_id, index = meta["_id"], meta["_index"]
        item: dict[str, Any] = {"_index": index, "_id": doc_id}
        if doc_id in self.refuse:
            item["status"] = 400
            item["error"] = {
                "type": "document_parsing_exception",
                "reason": f"[1:25] failed to parse field [n] of type [long] in document with"
                f" id '{doc_id}'. Preview of field's value: 'x'",
                "caused_by": {"type": "illegal_argument_exception", "reason": 'For input "x"'},
            }
        elif doc_id in self.throttle_once:
            self.throttle_once.discard(doc_id)
            item["status"] = 429
            item["error"] = {
                "type": "es_rejected_execution_exception",
                "reason": "rejected execution of coordinating operation [coordinating_and_"
                "primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, "
                "coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=107374182]",
            }
        elif doc_id in self.index:
            item["status"] = 409
            item["error"] = {
                "type": "version_conflict_engine_exception",
                "reason": f"[{doc_id}]: version conflict, document already exists (current"
                " version [1])",
                "index_uuid": "lU5nQ2k8T7i3QWv4a9Hk3w",
                "shard": "0",
                "index": index,
            }
        else:
            self.index[doc_id] = document
            self._seq_no += 1
            item.update(
                {
                    "_version": 1,
                    "result": "created",
                    "_shards": {"total": 2, "successful": 1, "failed": 0},
                    "_seq_no": self._seq_no,
                    "_primary_term": 1,
                    "status": 201,
                }
            )
        return {"create": item}


async def start_app(
    routes: Mapping[str, Callable[..., Any]], path: str
) -> tuple[web.AppRunner, str]:
    """An aiohttp server on 127.0.0.1 answering every method of ``routes`` (path ->
    handler); returns the runner and the URL of ``path``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    for route, handler in routes.items():
        app.router.add_route("*", route, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}{path}"


def http_sink(url: str, metrics: Metrics | None = None, **options: Any) -> HttpSink:
    """The HTTP sink ``http`` posting to ``url`` (request timeout 10 s), with ``options``."""
    settings: dict[str, Any] = {"type": "http", "url": url, "request_timeout": 10}
    settings.update(options)
    return HttpSink("http", HttpSinkConfig(**settings), metrics or Metrics())


def make_event(n: int, provider: str = "calendly") -> Event:
    """Event ``n`` of source ``cal``: id ``n`` as 32 hex digits, non-ASCII text."""
    event = Event(
        id=f"{n:032x}",
        timestamp=1_800_000_000.25 + n,
        provider=provider,
        action="API.Token_Created",
        document={"@timestamp": "2027-01-15T08:00:00.250Z", "event": {"id": f"{n:032x}"},
                  "message": f"event {n} é ✓", "n": n},
        raw={"n": n},
    )  # fmt: skip
    event.source = "cal"
    return event


class StubSource:
    """What the pipeline needs of a scripted source besides ``id`` and ``poll``: nothing
    to restore, no state of its own (the checkpoint travels in its batches), nothing to
    close."""

    provider = "calendly"
    poll_interval = 3600.0

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        return None

    def checkpoint(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        return None


class ScriptedSource(StubSource):
    """``batches`` pages of ``size`` events each, checkpoint ``{"b": page}``."""

    def __init__(self, batches: int, size: int) -> None:
        self.id = "cal"
        self.batches, self.size = batches, size

    async def poll(self) -> AsyncIterator[Batch]:
        for b in range(self.batches):
            yield Batch(
                self.id,
                [make_event(b * self.size + i) for i in range(self.size)],
                Checkpoint({"b": b}),
            )


class SinkPipeline:
    """One source through the real SourceRunner, OrderedCommitter, file checkpoint store
    (in ``state``, default ``tmp_path``) and dead-letter queue (``tmp_path / "dl"``), and a
    SinkWorker for ``sink`` with ``backoff`` (default quick) and a queue of ``capacity``
    events. ``async with`` runs the worker."""

    def __init__(
        self,
        tmp_path: Path,
        sink: Sink,
        source: Any,
        *,
        capacity: int = 100_000,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        state: Path | None = None,
    ) -> None:
        clock = SystemClock() if clock is None else clock
        self.metrics = Metrics() if metrics is None else metrics
        self.store = SqliteCheckpointStore(tmp_path if state is None else state)
        self.dead = FileDeadLetterQueue(tmp_path / "dl", self.metrics, clock)
        self.queue: EventBoundedQueue[Delivery] = EventBoundedQueue(capacity)
        backoff = Backoff(0.01, 0.05) if backoff is None else backoff
        self.worker = SinkWorker(sink, self.queue, self.dead, self.metrics, clock, backoff)
        self.committer = OrderedCommitter(source.id, self.store, self.metrics, clock)
        self.runner = SourceRunner(
            source, self.committer, [self.queue], self.dead, self.metrics, clock, Backoff()
        )
        self.source = source

    async def __aenter__(self) -> SinkPipeline:
        self.task = asyncio.create_task(self.worker.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        # The store stays readable (its connection reopens on the next call).
        await self.store.aclose()


async def run_pipeline(
    tmp_path: Path,
    sink: Sink,
    source: StubSource,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
    within: float = 60,
) -> tuple[SqliteCheckpointStore, FileDeadLetterQueue, Metrics]:
    """One poll of ``source`` through a sink worker for ``sink`` (quick backoff) until
    every batch is acknowledged; the checkpoint store, dead letters and pipeline metrics."""
    pipeline = SinkPipeline(tmp_path, sink, source, clock=clock, metrics=metrics)
    async with pipeline:
        await pipeline.runner.poll_once()
        await asyncio.wait_for(pipeline.committer.wait_idle(), within)
    return pipeline.store, pipeline.dead, pipeline.metrics
