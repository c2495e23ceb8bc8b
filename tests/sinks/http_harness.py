"""HTTP receivers for the sink tests: a scriptable local server (HEC, bulk, faults,
latency, concurrency tracking) and a real ClickHouse server started by PID."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from kafka_harness import free_port, wait_listening

Responder = Callable[[list[bytes]], tuple[int, dict[str, str], bytes]]


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
