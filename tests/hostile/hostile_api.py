"""A hostile API server: an aiohttp reverse proxy on 127.0.0.1 in front of the real
simulators (``forwarder simulate``) for both APIs the daemon reads.

It serves Calendly ``GET /activity_log_entries``, Google ``GET
/admin/reports/v1/activity/users/all/applications/calendar`` and ``POST /token``, passes
every request through by default and, per case, lets one :class:`Behaviour` misbehave on
some of them until it is healed (or has spoiled ``limit`` responses). The simulators stay
the ground truth (``GET /_sim/truth``): whatever the proxy did, once healed every true
record must reach the sinks.

The token endpoint is a translating proxy: the daemon signs its JWT assertion for the
proxy's ``/token`` (its ``token_url``), and the simulator accepts only assertions for its
own; the proxy checks the daemon's assertion with the service account's public key and
signs the same claims again for the simulator, with the same key. Every assertion the
daemon sent and every access token handed to it are recorded: they are secrets that must
never show.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hostile_harness import BackgroundLoop
from multidict import CIMultiDict, CIMultiDictProxy

from forwarder.timeutil import parse_rfc3339

CALENDLY_PATH = "/activity_log_entries"
GOOGLE_PATH = "/admin/reports/v1/activity/users/all/applications/calendar"
TOKEN_PATH = "/token"
# Headers of an API answer the daemon reads; the rest (lengths, encodings) are the proxy's.
PASSED_HEADERS = (
    "Date",
    "Content-Type",
    "Cache-Control",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
FUTURE_HTTP_DATE = "Fri, 31 Dec 9999 23:59:59 GMT"
FUTURE_RFC3339 = "9999-12-31T23:59:59.000000Z"
# 1e9 seconds (31.7 years), as delta-seconds digits: both sources parse those.
HUGE_WAIT = "1000000000"
STREAM_CHUNK = 1 << 16


class Api(StrEnum):
    CALENDLY = "calendly"
    GOOGLE = "google"
    TOKEN = "token"


class Upstream:
    """The simulator's answer to a forwarded request."""

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


class Exchange:
    """One request of the daemon, with the means to forward it and answer it."""

    def __init__(
        self, proxy: HostileApi, api: Api, request: web.Request, form: dict[str, str] | None
    ) -> None:
        self.proxy = proxy
        self.api = api
        self.request = request
        self.form = form

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query)

    @property
    def page_token(self) -> str | None:
        name = "page_token" if self.api is Api.CALENDLY else "pageToken"
        return self.request.query.get(name) or None

    def with_page_token(self, token: str) -> dict[str, str]:
        name = "page_token" if self.api is Api.CALENDLY else "pageToken"
        return {**self.query, name: token}

    async def forward(self, query: Mapping[str, str] | None = None) -> Upstream:
        return await self.proxy.forward(self, query)

    def answer(
        self,
        body: bytes,
        *,
        status: int = 200,
        upstream: Upstream | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        merged: dict[str, str] = {"Content-Type": "application/json"}
        if upstream is not None:
            merged.update(
                {
                    name: upstream.headers[name]
                    for name in PASSED_HEADERS
                    if name in upstream.headers
                }
            )
        merged.update(headers or {})
        return web.Response(status=status, body=body, headers=merged)

    def json_answer(
        self,
        document: Any,
        *,
        status: int = 200,
        upstream: Upstream | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        return self.answer(
            orjson.dumps(document), status=status, upstream=upstream, headers=headers
        )

    def relay(self, upstream: Upstream, headers: Mapping[str, str] | None = None) -> web.Response:
        return self.answer(
            upstream.body, status=upstream.status, upstream=upstream, headers=headers
        )


class Behaviour:
    """Passes everything through. Subclasses misbehave on ``apis`` while not healed and
    fewer than ``limit`` responses were spoiled; ``spoiled`` counts what they served."""

    def __init__(self, apis: Iterable[Api], limit: int | None = None) -> None:
        self.apis = frozenset(apis)
        self.limit = limit
        self.healed = False
        self.spoiled: Counter[Api] = Counter()

    def heal(self) -> None:
        self.healed = True

    def misbehaving(self, api: Api) -> bool:
        return (
            not self.healed
            and api in self.apis
            and (self.limit is None or self.spoiled[api] < self.limit)
        )

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        """The answer, or None to pass the request through."""
        return None


class HostileApi:
    """The proxy. ``url`` is both sources' ``base_url``; ``token_url`` Google's token URL."""

    def __init__(
        self, loop: BackgroundLoop, endpoints: Mapping[str, Any], behaviour: Behaviour
    ) -> None:
        self.loop = loop
        self.behaviour = behaviour
        self.calendly_url = endpoints["calendly_url"]
        self.google_url = endpoints["google_url"]
        self.upstream_token_url = endpoints["google_token_uri"]
        key = orjson.loads(Path(endpoints["google_key_file"]).read_bytes())
        self._private_pem = key["private_key"]
        self._key_id = key["private_key_id"]
        self._public_key = load_pem_private_key(self._private_pem.encode(), None).public_key()
        self.requests: Counter[Api] = Counter()
        self.assertions: list[str] = []
        self.issued_tokens: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._open: asyncio.Event | None = None
        app = web.Application()
        app.router.add_get(CALENDLY_PATH, self._calendly)
        app.router.add_get(GOOGLE_PATH, self._google)
        app.router.add_post(TOKEN_PATH, self._token)
        app.on_cleanup.append(self._close)
        loop.run(self._setup())
        self.url = loop.serve(app)
        self.token_url = self.url + TOKEN_PATH

    async def _setup(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        # The simulators never compress; the proxy hands bodies on as they are.
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    # -- holding every answer (e.g. until the test has prepared the state dir) ----------

    def hold(self) -> None:
        assert self._open is not None
        self.loop.call(self._open.clear)

    def release(self) -> None:
        assert self._open is not None
        self.loop.call(self._open.set)

    # -- routes --------------------------------------------------------------------------

    async def _calendly(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(Api.CALENDLY, request, None)

    async def _google(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(Api.GOOGLE, request, None)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        form = {key: str(value) for key, value in (await request.post()).items()}
        if form.get("assertion"):
            self.assertions.append(form["assertion"])
        return await self._serve(Api.TOKEN, request, form)

    async def _serve(
        self, api: Api, request: web.Request, form: dict[str, str] | None
    ) -> web.StreamResponse:
        assert self._open is not None
        await self._open.wait()
        self.requests[api] += 1
        exchange = Exchange(self, api, request, form)
        answer = await self.behaviour.handle(exchange)
        if answer is not None:
            return answer
        return exchange.relay(await exchange.forward())

    async def forward(self, exchange: Exchange, query: Mapping[str, str] | None) -> Upstream:
        assert self._session is not None
        headers = {
            name: exchange.request.headers[name]
            for name in ("Authorization", "Accept")
            if name in exchange.request.headers
        }
        if exchange.api is Api.TOKEN:
            return await self._forward_token(exchange, headers)
        base = self.calendly_url if exchange.api is Api.CALENDLY else self.google_url
        params = dict(exchange.request.query if query is None else query)
        async with self._session.get(
            base + exchange.request.path, params=params, headers=headers, allow_redirects=False
        ) as response:
            return Upstream(response.status, response.headers, await response.read())

    async def _forward_token(self, exchange: Exchange, headers: dict[str, str]) -> Upstream:
        assert self._session is not None and exchange.form is not None
        form = dict(exchange.form)
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self._public_key,
                algorithms=["RS256"],
                audience=self.token_url,
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            body = {"error": "invalid_grant", "error_description": f"proxy: {error}"}
            return Upstream(400, CIMultiDictProxy(CIMultiDict()), orjson.dumps(body))
        claims["aud"] = self.upstream_token_url
        form["assertion"] = jwt.encode(
            claims, self._private_pem, algorithm="RS256", headers={"kid": self._key_id}
        )
        async with self._session.post(
            self.upstream_token_url, data=form, allow_redirects=False
        ) as response:
            upstream = Upstream(response.status, response.headers, await response.read())
        if upstream.status == 200:
            token = upstream.json().get("access_token")
            if isinstance(token, str):
                self.issued_tokens.append(token)
        return upstream

    def note_token(self, token: str) -> None:
        """A token the proxy itself handed out (rewritten): a secret too."""
        self.issued_tokens.append(token)


# -- Misbehaviours -----------------------------------------------------------------------


def google_error(code: int, message: str, reason: str, status: str = "") -> dict[str, Any]:
    """Google's error envelope."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
    }
    if status:
        error["status"] = status
    return {"error": error}


def _next_token(api: Api, page: dict[str, Any]) -> str | None:
    if api is Api.CALENDLY:
        return (page.get("pagination") or {}).get("next_page_token") or None
    return page.get("nextPageToken") or None


def _set_next_token(exchange: Exchange, page: dict[str, Any], token: str | None) -> dict[str, Any]:
    page = dict(page)
    if exchange.api is Api.CALENDLY:
        pagination = dict(page.get("pagination") or {})
        pagination["next_page_token"] = token
        pagination["next_page"] = (
            str(exchange.request.url.update_query(page_token=token)) if token else None
        )
        page["pagination"] = pagination
    elif token:
        page["nextPageToken"] = token
    else:
        page.pop("nextPageToken", None)
    return page


class PaginationLoop(Behaviour):
    """Answers every page with the same page token, forever (the same page again for
    that token). Healed, a loop token carries on where the real API would have."""

    def __init__(self, api: Api) -> None:
        super().__init__([api])
        self.loops: dict[str, tuple[dict[str, Any], str | None, Upstream]] = {}

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        api = exchange.api
        token = exchange.page_token
        if token is not None and token in self.loops:
            page, real_next, upstream = self.loops[token]
            if self.misbehaving(api):
                self.spoiled[api] += 1
                return exchange.json_answer(
                    _set_next_token(exchange, page, token), upstream=upstream
                )
            if real_next is not None:
                return exchange.relay(await exchange.forward(exchange.with_page_token(real_next)))
            return exchange.json_answer(_set_next_token(exchange, page, None), upstream=upstream)
        if not self.misbehaving(api):
            return None
        upstream = await exchange.forward()
        if upstream.status != 200:
            return exchange.relay(upstream)
        page = upstream.json()
        loop_token = f"hostile-loop-{len(self.loops)}"
        self.loops[loop_token] = (page, _next_token(api, page), upstream)
        self.spoiled[api] += 1
        return exchange.json_answer(_set_next_token(exchange, page, loop_token), upstream=upstream)


class FutureDate(Behaviour):
    """Every Google answer (API and token endpoint) dated 31 Dec 9999."""

    def __init__(self) -> None:
        super().__init__([Api.GOOGLE, Api.TOKEN])

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        if not self.misbehaving(exchange.api):
            return None
        upstream = await exchange.forward()
        self.spoiled[exchange.api] += 1
        return exchange.relay(upstream, headers={"Date": FUTURE_HTTP_DATE})


class HugeRateLimit(Behaviour):
    """429 with a wait of 1e9 seconds: Calendly's ``X-RateLimit-Reset``, Google's
    ``Retry-After``."""

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        api = exchange.api
        if not self.misbehaving(api) or api is Api.TOKEN:
            return None
        self.spoiled[api] += 1
        if api is Api.CALENDLY:
            return exchange.json_answer(
                {
                    "title": "Too Many Requests",
                    "message": "You have exceeded the rate limit. Please try again later.",
                },
                status=429,
                headers={
                    "X-RateLimit-Limit": "500",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": HUGE_WAIT,
                },
            )
        return exchange.json_answer(
            google_error(429, "Quota exceeded for quota metric 'Queries'.", "rateLimitExceeded"),
            status=429,
            headers={"Retry-After": HUGE_WAIT},
        )


def gzip_bomb(decompressed: int, prefix: bytes) -> bytes:
    """A gzip member of ``prefix`` and spaces, ``decompressed`` bytes in all, built
    without compressing them all: a full flush resets the compressor, so every 1 MiB
    block of spaces compresses to the same bytes and one copy is repeated (0.2 s for
    1 GiB, the CRC included, instead of 2.5 s)."""
    block = b" " * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks, rest = divmod(decompressed - len(prefix), len(block))
    tail = compressor.compress(b" " * rest) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(prefix)
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(b" " * rest, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc & 0xFFFFFFFF, decompressed & 0xFFFFFFFF)
    return header + head + repeated * blocks + tail + trailer


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    chunks: Iterable[bytes],
) -> int:
    """Write ``chunks`` until done or the client goes away; returns the bytes written."""
    written = 0
    try:
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
            written += len(chunk)
        await response.write_eof()
    except (ConnectionError, RuntimeError, asyncio.CancelledError):
        pass
    return written


def _page_prefix(api: Api) -> bytes:
    if api is Api.CALENDLY:
        return b'{"collection":['
    return b'{"kind":"admin#reports#activities","items":['


class OversizedBody(Behaviour):
    """An answer no page should be: ``kind`` is ``gzip_bomb`` (about 1 MB that inflates
    to 1 GiB of JSON-looking text), ``endless`` (a chunked page that never ends) or
    ``large`` (a 200 MB JSON object with a Content-Length)."""

    BOMB_SIZE = 1 << 30
    LARGE_SIZE = 200 * 1000 * 1000
    # An endless body stops here all the same, so a broken build cannot fill the host.
    ENDLESS_SAFETY = 8 << 30

    def __init__(self, kind: str, apis: Iterable[Api] = (Api.CALENDLY, Api.GOOGLE)) -> None:
        super().__init__(apis)
        self.kind = kind
        self.bytes_sent: Counter[Api] = Counter()
        self._bombs: dict[Api, bytes] = {}

    def bomb(self, api: Api) -> bytes:
        if api not in self._bombs:
            self._bombs[api] = gzip_bomb(self.BOMB_SIZE, _page_prefix(api))
        return self._bombs[api]

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        api = exchange.api
        if not self.misbehaving(api):
            return None
        self.spoiled[api] += 1
        request = exchange.request
        if self.kind == "gzip_bomb":
            body = self.bomb(api)
            response = web.StreamResponse(
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
            )
            response.content_length = len(body)
            chunks: Iterable[bytes] = (
                body[i : i + STREAM_CHUNK] for i in range(0, len(body), STREAM_CHUNK)
            )
        elif self.kind == "endless":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            chunks = self._endless(api)
        else:
            prefix = _page_prefix(api) + b'],"padding":"'
            suffix = b'"}'
            padding = self.LARGE_SIZE - len(prefix) - len(suffix)
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = self.LARGE_SIZE
            chunks = self._large(prefix, padding, suffix)
        self.bytes_sent[api] += await _stream(request, response, chunks)
        return response

    def _endless(self, api: Api) -> Iterable[bytes]:
        yield _page_prefix(api)
        record = b"{}," * (STREAM_CHUNK // 3)
        sent = 0
        while sent < self.ENDLESS_SAFETY:
            yield record
            sent += len(record)

    @staticmethod
    def _large(prefix: bytes, padding: int, suffix: bytes) -> Iterable[bytes]:
        yield prefix
        block = b"x" * (1 << 20)
        while padding > 0:
            piece = block[: min(len(block), padding)]
            yield piece
            padding -= len(piece)
        yield suffix


class MillionRecords(Behaviour):
    """A page of 1,000,000 tiny records, far more than the ``count`` / ``maxResults``
    the daemon asked for."""

    RECORDS = 1_000_000

    def __init__(self, apis: Iterable[Api] = (Api.CALENDLY, Api.GOOGLE)) -> None:
        super().__init__(apis)
        records = b",".join([b"{}"] * self.RECORDS)
        self.bodies = {
            Api.CALENDLY: b'{"collection":['
            + records
            + b'],"pagination":{"count":100,"next_page":null,"next_page_token":null,'
            b'"previous_page":null,"previous_page_token":null},"total_count":1000000,'
            b'"exceeds_max_total_count":false,"last_event_time":null}',
            Api.GOOGLE: b'{"kind":"admin#reports#activities","items":[' + records + b"]}",
        }

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        if not self.misbehaving(exchange.api):
            return None
        self.spoiled[exchange.api] += 1
        return exchange.answer(self.bodies[exchange.api])


class PageOneOver(Behaviour):
    """A real page padded to one record more than the ``count`` / ``maxResults`` asked
    for, with copies of ``templates`` given new ids (records the truth does not have, so
    a daemon that takes the page delivers events it must not)."""

    def __init__(self, templates: Mapping[Api, dict[str, Any]]) -> None:
        super().__init__(templates)
        self.templates = templates

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        api = exchange.api
        if not self.misbehaving(api):
            return None
        upstream = await exchange.forward()
        if upstream.status != 200:
            return exchange.relay(upstream)
        page = upstream.json()
        key, size = ("collection", "count") if api is Api.CALENDLY else ("items", "maxResults")
        records = list(page.get(key) or [])
        wanted = int(exchange.query.get(size, "1000" if api is Api.GOOGLE else "20")) + 1
        while len(records) < wanted:
            records.append(self._copy(api, len(records)))
        page[key] = records[:wanted]
        self.spoiled[api] += 1
        return exchange.json_answer(page, upstream=upstream)

    def _copy(self, api: Api, number: int) -> dict[str, Any]:
        record = orjson.loads(orjson.dumps(self.templates[api]))
        if api is Api.CALENDLY:
            record["uri"] = f"{record['uri']}-HOSTILEPAD{number}"
        else:
            record["id"]["uniqueQualifier"] = f"-77{number:06d}"
        return record


class TokenAnswer(Behaviour):
    """The token endpoint's answer rewritten: ``expires_in_zero`` or ``crlf`` (a CR/LF
    and a header line inside ``access_token``)."""

    def __init__(self, kind: str) -> None:
        super().__init__([Api.TOKEN])
        self.kind = kind
        self.api_requests_while_spoiling = 0
        # API requests that carried the header line smuggled into the token.
        self.injected_headers = 0

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        if exchange.api is Api.GOOGLE:
            self.api_requests_while_spoiling += not self.healed
            self.injected_headers += "X-Hostile" in exchange.request.headers
        if not self.misbehaving(exchange.api):
            return None
        upstream = await exchange.forward()
        if upstream.status != 200:
            return exchange.relay(upstream)
        body = upstream.json()
        if self.kind == "expires_in_zero":
            body["expires_in"] = 0
        else:
            body["access_token"] = body["access_token"] + "\r\nX-Hostile: injected"
            exchange.proxy.note_token(body["access_token"])
        self.spoiled[Api.TOKEN] += 1
        return exchange.json_answer(body, upstream=upstream)


def _within(moment: float, low: str | None, high: str | None, *, high_open: bool) -> bool:
    if low is not None and moment < parse_rfc3339(low):
        return False
    if high is None:
        return True
    end = parse_rfc3339(high)
    return moment < end if high_open else moment <= end


class InjectedRecords(Behaviour):
    """Records the simulators do not have, put where the real APIs would list them:

    * ``calendly_entry`` (dated at or after every real entry) at the end of the log: on
      the last page of every query whose range holds it (the proxy asks the simulator for
      one entry less per page, so that the page keeps at most ``count`` entries);
    * ``google_activity`` (dated at or after every real activity) first on the first page
      of every window that holds it (one activity less asked for, likewise).

    ``calendly_cut`` (Unix seconds) holds back every real Calendly entry after it until
    healed, as if they did not exist yet; page tokens issued meanwhile keep the cut, so
    a read in progress ends consistently. The injected records stay after healing: they
    are part of the log.
    """

    def __init__(
        self,
        *,
        calendly_entry: dict[str, Any] | None = None,
        google_activity: dict[str, Any] | None = None,
        calendly_cut: float | None = None,
        calendly_cut_text: str | None = None,
    ) -> None:
        apis = [Api.CALENDLY] if calendly_entry or calendly_cut else []
        apis += [Api.GOOGLE] if google_activity else []
        super().__init__(apis)
        self.calendly_entry = calendly_entry
        self.google_activity = google_activity
        self.calendly_cut = calendly_cut
        self.calendly_cut_text = calendly_cut_text
        self.held_tokens: set[str] = set()
        # Calendly answers that held entries back (misbehaviour actually served).
        self.held_answers = 0

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        if exchange.api is Api.CALENDLY and Api.CALENDLY in self.apis:
            return await self._calendly(exchange)
        if exchange.api is Api.GOOGLE and self.google_activity is not None:
            return await self._google(exchange)
        return None

    async def _calendly(self, exchange: Exchange) -> web.StreamResponse:
        query = exchange.query
        upstream_query = dict(query)
        token = query.get("page_token")
        held = self.calendly_cut is not None and (not self.healed or token in self.held_tokens)
        if held:
            assert self.calendly_cut is not None and self.calendly_cut_text is not None
            asked = query.get("max_occurred_at")
            if asked is None or parse_rfc3339(asked) > self.calendly_cut:
                upstream_query["max_occurred_at"] = self.calendly_cut_text
        entry = self.calendly_entry
        applies = entry is not None and _within(
            parse_rfc3339(entry["occurred_at"]),
            query.get("min_occurred_at"),
            query.get("max_occurred_at"),
            high_open=False,
        )
        count = int(query.get("count", "20"))
        if applies and count > 1:
            upstream_query["count"] = str(count - 1)
        upstream = await exchange.forward(upstream_query)
        if upstream.status != 200:
            return exchange.relay(upstream)
        page = upstream.json()
        next_token = _next_token(Api.CALENDLY, page)
        if held:
            self.held_answers += 1
            if next_token:
                self.held_tokens.add(next_token)
        if applies and next_token is None:
            page["collection"] = [*page["collection"], entry]
            self.spoiled[Api.CALENDLY] += 1
        return exchange.json_answer(page, upstream=upstream)

    async def _google(self, exchange: Exchange) -> web.StreamResponse | None:
        query = exchange.query
        activity = self.google_activity
        assert activity is not None
        if "pageToken" in query or not _within(
            parse_rfc3339(activity["id"]["time"]),
            query.get("startTime"),
            query.get("endTime"),
            high_open=True,
        ):
            return None
        upstream_query = dict(query)
        wanted = int(query.get("maxResults", "1000"))
        if wanted > 1:
            upstream_query["maxResults"] = str(wanted - 1)
        upstream = await exchange.forward(upstream_query)
        if upstream.status != 200:
            return exchange.relay(upstream)
        page = upstream.json()
        page["items"] = [activity, *(page.get("items") or [])]
        self.spoiled[Api.GOOGLE] += 1
        return exchange.json_answer(page, upstream=upstream)


class CredentialEcho(Behaviour):
    """Error answers that echo the credential the daemon sent.

    ``calendly``: 500 whose message holds the request's ``Authorization`` value.
    ``google_stage`` ``access_token``: the Reports API answers 500 echoing the bearer
    token; ``assertion``: it answers 401 (echoing the token), so the daemon asks for a
    new one, and the token endpoint answers 400 ``invalid_grant`` echoing the signed
    assertion.
    """

    def __init__(self) -> None:
        super().__init__([Api.CALENDLY, Api.GOOGLE, Api.TOKEN])
        self.calendly = True
        self.google_stage: str | None = "access_token"

    def heal(self) -> None:
        super().heal()
        self.calendly = False
        self.google_stage = None

    async def handle(self, exchange: Exchange) -> web.StreamResponse | None:
        api = exchange.api
        authorization = exchange.request.headers.get("Authorization", "")
        if api is Api.CALENDLY and self.calendly:
            self.spoiled[api] += 1
            return exchange.json_answer(
                {
                    "title": "Internal Server Error",
                    "message": f"the request with Authorization: {authorization} failed",
                },
                status=500,
            )
        if api is Api.GOOGLE and self.google_stage == "access_token":
            self.spoiled[api] += 1
            return exchange.json_answer(
                google_error(
                    500, f"Backend Error (Authorization: {authorization})", "backendError"
                ),
                status=500,
            )
        if api is Api.GOOGLE and self.google_stage == "assertion":
            self.spoiled[api] += 1
            return exchange.json_answer(
                google_error(
                    401,
                    f"Request had invalid authentication credentials: {authorization}",
                    "authError",
                    "UNAUTHENTICATED",
                ),
                status=401,
            )
        if api is Api.TOKEN and self.google_stage == "assertion":
            self.spoiled[api] += 1
            assertion = (exchange.form or {}).get("assertion", "")
            return exchange.json_answer(
                {
                    "error": "invalid_grant",
                    "error_description": f"Invalid JWT Signature: assertion={assertion}",
                },
                status=400,
            )
        return None
