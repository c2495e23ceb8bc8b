"""A hostile receiver for the ``http`` sink, on 127.0.0.1.

Modes (each misbehaves until healed, then answers as a good receiver of its kind):

* ``es_bulk``: a realistic Elasticsearch ``_bulk`` endpoint, always: ``create`` actions
  are indexed once (a repeated ``_id`` is a 409 conflict, as in Elasticsearch) and the
  answer (~190 bytes per item, ~95 KB for the default 500-event batch) is written in
  16 KiB pieces with a pause between them, i.e. in several TCP writes;
* ``redirect_302``: ``302 Found`` to ``/landing`` on the same server, which answers a GET
  with 200 (a POST turned into a GET that "succeeds");
* ``redirect_307``: ``307`` to another origin, a second server (the *trap*) that answers
  200 to anything and must receive nothing;
* ``hec_code_6``: Splunk HEC ``200 {"text":"Invalid data format","code":6}``;
* ``hec_html``: ``200`` with an HTML login page (which echoes the Authorization value).

Bodies were gzip-compressed by the daemon; aiohttp's server inflates them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from aiohttp import web
from hostile_harness import BackgroundLoop

# Pieces of an Elasticsearch answer, and the pause that makes each one a TCP write.
BULK_WRITE_SIZE = 16 * 1024
BULK_WRITE_PAUSE = 0.005

LOGIN_PAGE = """<!DOCTYPE html>
<html><head><title>Sign in</title></head>
<body><form method="post" action="/account/login">
<input type="hidden" name="return_to" value="/services/collector/event">
<!-- request authorization: {authorization} -->
<input name="username"><input name="password" type="password">
<button>Sign in</button></form></body></html>
"""


class SinkMode(StrEnum):
    ES_BULK = "es_bulk"
    REDIRECT_302 = "redirect_302"
    REDIRECT_307 = "redirect_307"
    HEC_CODE_6 = "hec_code_6"
    HEC_HTML = "hec_html"


ENCODINGS = {
    SinkMode.ES_BULK: "elasticsearch_bulk",
    SinkMode.REDIRECT_302: "ndjson",
    SinkMode.REDIRECT_307: "ndjson",
    SinkMode.HEC_CODE_6: "splunk_hec",
    SinkMode.HEC_HTML: "splunk_hec",
}


@dataclass
class Received:
    """One request to a receiver."""

    method: str
    path: str
    headers: dict[str, str]
    ids: list[str]
    status: int = 0
    answer_bytes: int = 0
    writes: int = 0


def event_ids(body: bytes, encoding: str) -> list[str]:
    """The ``event.id`` of every event in a request body, in order."""
    ids = []
    for line in body.splitlines():
        if not line.strip():
            continue
        document = orjson.loads(line)
        if encoding == "elasticsearch_bulk":
            if "create" in document:
                ids.append(document["create"]["_id"])
        elif encoding == "splunk_hec":
            ids.append(document["event"]["event"]["id"])
        else:
            ids.append(document["event"]["id"])
    return ids


@dataclass
class Trap:
    """The other origin of a cross-origin redirect: records what reaches it."""

    requests: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Received(request.method, request.path, dict(request.headers), [], 200, len(body))
        )
        return web.json_response({})


class HostileSink:
    """The receiver. ``url`` is the sink's ``url``; ``accepted`` the ids a good receiver
    of this kind would now hold (in arrival order, repeats included)."""

    def __init__(self, loop: BackgroundLoop, mode: SinkMode) -> None:
        self.mode = mode
        self.encoding = ENCODINGS[mode]
        self.healed = False
        self.requests: list[Received] = []
        self.accepted: list[str] = []
        self.misbehaved = 0
        self.landing_hits = 0
        self.indexed: dict[str, int] = {}
        self.trap = Trap()
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/ingest", self._ingest)
        app.router.add_route("*", "/landing", self._landing)
        self.url = loop.serve(app) + "/ingest"
        if mode is SinkMode.REDIRECT_307:
            trap = web.Application(client_max_size=256 * 1024 * 1024)
            trap.router.add_route("*", "/{tail:.*}", self.trap.handle)
            self.trap.url = loop.serve(trap) + "/ingest"

    def heal(self) -> None:
        self.healed = True

    def posted(self) -> Counter[str]:
        """How often each id was POSTed here (re-sends show as counts above 1)."""
        return Counter(event_id for request in self.requests for event_id in request.ids)

    async def _landing(self, request: web.Request) -> web.Response:
        self.landing_hits += 1
        return web.Response(
            text="<html><body>Moved here. OK.</body></html>", content_type="text/html"
        )

    async def _ingest(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        received = Received(
            request.method, request.path, dict(request.headers), event_ids(body, self.encoding)
        )
        self.requests.append(received)
        if self.mode is SinkMode.ES_BULK:
            return await self._bulk(request, received)
        response = self._misbehave(request) if not self.healed else None
        if response is not None:
            self.misbehaved += 1
        else:
            self.accepted.extend(received.ids)
            if self.encoding == "splunk_hec":
                response = web.json_response({"text": "Success", "code": 0})
            else:
                response = web.json_response({})
        received.status = response.status
        received.answer_bytes = len(response.body or b"")
        return response

    def _misbehave(self, request: web.Request) -> web.Response | None:
        authorization = request.headers.get("Authorization", "")
        if self.mode is SinkMode.REDIRECT_302:
            return web.Response(status=302, headers={"Location": "/landing"}, text="Found")
        if self.mode is SinkMode.REDIRECT_307:
            key = request.headers.get("X-ClickHouse-Key", "")
            return web.Response(
                status=307,
                headers={"Location": self.trap.url},
                text=f"Code: 516. moved for X-ClickHouse-Key {key}",
            )
        if self.mode is SinkMode.HEC_CODE_6:
            return web.json_response(
                {"text": "Invalid data format", "code": 6, "invalid-event-number": 0}
            )
        if self.mode is SinkMode.HEC_HTML:
            return web.Response(
                text=LOGIN_PAGE.format(authorization=authorization), content_type="text/html"
            )
        return None

    async def _bulk(self, request: web.Request, received: Received) -> web.StreamResponse:
        items: list[dict[str, Any]] = []
        errors = False
        for event_id in received.ids:
            index = "audit-events"
            if event_id in self.indexed:
                errors = True
                items.append(
                    {
                        "create": {
                            "_index": index,
                            "_id": event_id,
                            "status": 409,
                            "error": {
                                "type": "version_conflict_engine_exception",
                                "reason": f"[{event_id}]: version conflict, document already "
                                "exists (current version [1])",
                                "index_uuid": "rbH3HYdSQmi_2Qb3QbLkzA",
                                "shard": "0",
                                "index": index,
                            },
                        }
                    }
                )
                continue
            self.indexed[event_id] = len(self.indexed)
            self.accepted.append(event_id)
            items.append(
                {
                    "create": {
                        "_index": index,
                        "_id": event_id,
                        "_version": 1,
                        "result": "created",
                        "_shards": {"total": 2, "successful": 2, "failed": 0},
                        "_seq_no": self.indexed[event_id],
                        "_primary_term": 1,
                        "status": 201,
                    }
                }
            )
        body = orjson.dumps({"took": 31, "errors": errors, "items": items})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), BULK_WRITE_SIZE):
            await response.write(body[start : start + BULK_WRITE_SIZE])
            received.writes += 1
            await asyncio.sleep(BULK_WRITE_PAUSE)
        await response.write_eof()
        received.status = 200
        received.answer_bytes = len(body)
        return response
