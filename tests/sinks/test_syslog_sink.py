"""The syslog sink against a real rsyslogd on 127.0.0.1 (see syslog_harness).

rsyslog parses what it receives with its own RFC 5424 / RFC 3164 parsers and mmpstrucdata,
and writes every field back; the tests compare those fields with the events sent.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from http_harness import SinkPipeline, StubSource
from syslog_harness import (
    CLIENT_NAME,
    CONTROLS,
    HOSTILE,
    Pki,
    Ports,
    Rsyslog,
    as_escaped,
    decode_structured_data,
    parse_cef,
    parse_leef,
)

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import Checkpoint
from forwarder.clock import SystemClock
from forwarder.config.model import SyslogSinkConfig
from forwarder.events import Batch, Event
from forwarder.observability.metrics import Metrics
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.google_calendar import normalize_activity
from forwarder.sinks.base import SendResult
from forwarder.sinks.syslog import SyslogSink

BOM = "\ufeff"
BASE_TIME = 1_800_000_000.123456  # 2027-01-15T08:00:00.123456Z
# Everything structured data must survive: the three escaped characters, newlines,
# emoji, right-to-left text, control characters.
TRICKY = 'a]b"c\\d\ne\r😀 שלום עולם \x01\x1f\t end'


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("pki")
    ca = Pki(directory / "ca")
    other = Pki(directory / "other", "another CA")
    return {
        "ca": ca,
        "server": ca.issue("server", "localhost", client=False),
        "client": ca.issue("client", CLIENT_NAME, client=True),
        "stranger": ca.issue("stranger", "someone.else.test", client=True),
        "other_ca": other,
    }


@pytest.fixture(scope="module")
def shared_rsyslog(
    tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Any]
) -> Iterator[Rsyslog]:
    receiver = Rsyslog(tmp_path_factory.mktemp("rsyslog"), pki["ca"], pki["server"])
    receiver.start()
    yield receiver
    receiver.stop()


@dataclass
class Receiver:
    """One test's view of an rsyslog: its messages are those sent with its app name."""

    rsyslog: Receiver
    app: str

    @property
    def ports(self) -> Ports:
        return self.rsyslog.ports

    def wait(
        self,
        count: int,
        input_name: str,
        timeout: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """This test's records from ``input_name`` once there are ``count`` (or at the
        deadline)."""

        def mine(record: dict[str, Any]) -> bool:
            return self.app in (record["app_name"], record["programname"])

        match = where or mine
        return self.rsyslog.wait_records(
            count, lambda record: record["input"] == input_name and match(record), timeout
        )


@pytest.fixture
def rsyslog(shared_rsyslog: Receiver, request: pytest.FixtureRequest) -> Receiver:
    """The module's rsyslog, seen through this test's app name."""
    return Receiver(shared_rsyslog, re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:48])


@pytest.fixture
def private_rsyslog(tmp_path: Path, pki: dict[str, Any]) -> Iterator[Receiver]:
    """An rsyslog of the test's own, for tests that stop it."""
    receiver = Rsyslog(tmp_path / "rsyslog", pki["ca"], pki["server"])
    receiver.start()
    yield Receiver(receiver, "forwarder")
    receiver.stop()


def make_event(
    n: int,
    *,
    source: str = "gcal",
    provider: str = "google_calendar",
    action: str = "change_calendar_acls",
    outcome: str = "success",
    category: tuple[str, ...] = ("iam",),
    kind: tuple[str, ...] = ("change",),
    message: str | None = None,
    event_id: str | None = None,
    pad: str = "",
) -> Event:
    event_id = event_id if event_id is not None else f"{n:032x}"
    document: dict[str, Any] = {
        "@timestamp": "2027-01-15T08:00:00.123Z",
        "event": {
            "id": event_id,
            "kind": "event",
            "category": list(category),
            "type": list(kind),
            "outcome": outcome,
            "action": action,
            "provider": provider,
            "dataset": "google_workspace.calendar",
            "ingested": "2027-01-15T08:00:05.000Z",
            "original": '{"kind":"admin#reports#activity"}',
        },
        "message": message if message is not None else f"alice@x.com shared calendar {n}",
        "user": {
            "email": "alice@x.com",
            "name": "alice",
            "id": "114511147312345678901",
            "target": {"email": "bob@y.com", "name": "bob"},
        },
        "source": {"ip": "203.0.113.5"},
        "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64)"},
        "url": {"original": "https://calendar.google.com/calendar/r?a=b&c=d"},
        "organization": {"id": "C03az79cb"},
        "related": {"user": ["alice@x.com", "bob@y.com"]},
        "n": n,
        "pad": pad,
    }
    event = Event(
        id=event_id,
        timestamp=BASE_TIME + n,
        provider=provider,
        action=action,
        document=document,
        raw={"n": n},
    )
    event.source = source
    return event


def make_sink(
    rsyslog: Receiver, transport: str = "tcp", metrics: Metrics | None = None, **options: Any
) -> SyslogSink:
    ports = {"udp": rsyslog.ports.udp, "tcp": rsyslog.ports.tcp, "tls": rsyslog.ports.tls}
    settings: dict[str, Any] = {
        "type": "syslog",
        "host": "127.0.0.1",
        "port": ports[transport],
        "transport": transport,
        "hostname": "fwd-host",
        "app_name": rsyslog.app,
        "connect_timeout": 3,
        "write_timeout": 3,
    }
    if transport == "tls":
        settings["host"] = "localhost"
    settings.update(options)
    return SyslogSink("syslog", SyslogSinkConfig(**settings), metrics or Metrics())


async def send_all(sink: SyslogSink, events: list[Event], batch: int = 500) -> None:
    await sink.start()
    try:
        for start in range(0, len(events), batch):
            result = await sink.send(events[start : start + batch])
            assert result.retry is None and not result.rejected, result
    finally:
        await sink.aclose()


def payload(record: Mapping[str, Any], bom: bool = True) -> str:
    msg: str = record["msg"]
    if bom:
        assert msg.startswith(BOM), msg[:20]
        return msg[len(BOM) :]
    assert not msg.startswith(BOM)
    return msg


# -- RFC 5424 over TCP with octet counting ------------------------------------------------


async def test_every_header_field_pri_and_json_payload_over_tcp(rsyslog: Receiver) -> None:
    events = [
        make_event(0),  # iam change: notice
        make_event(1, outcome="failure", category=("network",), kind=("access",)),  # warning
        make_event(2, category=("configuration",), kind=("access",)),  # info
        make_event(3, provider="calendly", source="cal", action="API.Token_Created"),
    ]
    sink = make_sink(rsyslog, facility="local3")
    await send_all(sink, events)
    records = rsyslog.wait(4, "tcp")
    assert len(records) == 4
    for n, (record, event, severity) in enumerate(zip(records, events, (5, 4, 6, 5), strict=True)):
        assert record["version"] == "1"
        assert record["timestamp"] == f"2027-01-15T08:00:0{n}.123456Z"
        assert record["hostname"] == "fwd-host"
        assert record["app_name"] == rsyslog.app
        assert record["procid"] == str(os.getpid())
        assert record["msgid"] == event.action
        assert (record["pri"], record["facility"], record["severity"]) == (
            19 * 8 + severity,
            19,
            severity,
        )
        assert record["structured_data"] == (
            f'[forwarder@32473 id="{event.id}" source="{event.source}"'
            f' provider="{event.provider}" action="{event.action}"]'
        )
        assert record["local"]["rfc5424-sd"] == {
            "forwarder@32473": {
                "id": event.id,
                "source": event.source,
                "provider": event.provider,
                "action": event.action,
            }
        }
        assert orjson.loads(payload(record)) == event.document


async def test_structured_data_escaping_survives_rsyslogs_parser(rsyslog: Receiver) -> None:
    events = [
        make_event(0, event_id=TRICKY, source=TRICKY, action=TRICKY, message=TRICKY),
        make_event(1, event_id="]", source='"', action="\\"),
        make_event(2, event_id="", source="", action="créer_événement"),
    ]
    await send_all(make_sink(rsyslog, sd_id="audit@32473"), events)
    records = rsyslog.wait(3, "tcp")
    assert len(records) == 3
    for record, event in zip(records, events, strict=True):
        values = {
            "id": event.id,
            "source": event.source,
            "provider": event.provider,
            "action": event.action,
        }
        # rsyslog undoes the RFC 5424 escapes; the control characters stay escaped.
        assert record["local"]["rfc5424-sd"] == {
            "audit@32473": {name: as_escaped(value) for name, value in values.items()}
        }
        assert decode_structured_data(record["structured_data"]) == {"audit@32473": values}
        assert orjson.loads(payload(record)) == event.document
    # MSGID is printable ASCII: everything else (one character each) becomes "_".
    assert records[0]["msgid"] == 'a]b"c\\d_e_' + "_" * 16 + "end"
    assert records[1]["msgid"] == "\\"
    assert records[2]["msgid"] == "cr_er__v_nement"


async def test_millisecond_timestamps_without_bom(rsyslog: Receiver) -> None:
    events = [make_event(n) for n in range(3)]
    await send_all(make_sink(rsyslog, timestamp_precision="milliseconds", bom=False), events)
    records = rsyslog.wait(3, "tcp")
    assert [record["timestamp"] for record in records] == [
        "2027-01-15T08:00:00.123Z",
        "2027-01-15T08:00:01.123Z",
        "2027-01-15T08:00:02.123Z",
    ]
    assert [orjson.loads(payload(r, bom=False)) for r in records] == [e.document for e in events]


async def test_fixed_severity_msgid_and_hostname_limits(rsyslog: Receiver) -> None:
    sink = make_sink(
        rsyslog,
        facility="auth",
        severity="err",
        msgid="-",
        hostname="h" * 300,
        app_name="ä" + "a" * 60,
    )
    await send_all(sink, [make_event(0)])
    (record,) = rsyslog.wait(1, "tcp", where=lambda record: record["hostname"] == "h" * 255)
    assert (record["pri"], record["msgid"]) == (4 * 8 + 3, "-")
    assert record["hostname"] == "h" * 255
    assert record["app_name"] == "_" + "a" * 47


# -- framing ------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["octet_counting", "lf"])
async def test_sd_newlines_escaped_in_both_framings(rsyslog: Receiver, framing: str) -> None:
    multiline = "line1\nline2\n"
    events = [make_event(n, event_id=f"{multiline}{n}") for n in range(50)]
    await send_all(make_sink(rsyslog, framing=framing), events, batch=20)
    records = rsyslog.wait(50, "tcp")
    assert len(records) == 50, "a newline split a message"
    for record, event in zip(records, events, strict=True):
        # The LF became the two characters backslash and n: one frame per message.
        assert record["local"]["rfc5424-sd"]["forwarder@32473"]["id"] == event.id.replace(
            "\n", "\\n"
        )
        assert orjson.loads(payload(record)) == event.document


@pytest.mark.parametrize("framing", ["octet_counting", "lf"])
@pytest.mark.parametrize("kind", ["json", "cef", "leef"])
async def test_control_characters_never_reach_the_receiver_raw(
    private_rsyslog: Receiver, framing: str, kind: str
) -> None:
    """NUL, CR, LF, TAB, ESC, DEL, C1 (NEL, CSI), U+2028 and U+2029 in structured data,
    CEF / LEEF fields and the JSON payload: each event is one message at rsyslog, its raw
    text holds no control character (bar LEEF's tab delimiter), and every value comes back
    exactly (structured data, JSON) or as the documented escapes (CEF, LEEF)."""
    events = [
        make_event(
            n,
            event_id=f"{HOSTILE} {n}",
            source=HOSTILE,
            action=f"{HOSTILE[: 10 + 7 * n]}",
            message=f"{n}: {HOSTILE}",
        )
        for n in range(12)
    ]
    events.append(make_event(99, event_id="sentinel"))  # everything before it has arrived
    sink = make_sink(private_rsyslog, framing=framing, payload=kind, bom=False)
    await send_all(sink, events, batch=5)
    records = private_rsyslog.wait(
        1, "tcp", where=lambda record: '"sentinel"' in record["structured_data"]
    )
    assert records, "the sentinel never arrived"
    records = [r for r in private_rsyslog.rsyslog.records() if r["input"] == "tcp"]
    assert len(records) == len(events), "an event became more (or fewer) than one message"
    for record, event in zip(records, events, strict=True):
        raw = record["raw"]
        message = payload(record, bom=False)
        if kind == "leef":
            _, attributes = parse_leef(message)
            # Raw tabs are only LEEF's attribute delimiter.
            assert raw.count("\t") == len(attributes) - 1
            raw = raw.replace("\t", " ")
        assert not CONTROLS.intersection(raw), [c for c in raw if c in CONTROLS]
        assert decode_structured_data(record["structured_data"]) == {
            "forwarder@32473": {
                "id": event.id,
                "source": event.source,
                "provider": event.provider,
                "action": event.action,
            }
        }
        assert record["local"]["rfc5424-sd"]["forwarder@32473"]["id"] == as_escaped(event.id)
        assert record["msgid"].isascii() and record["msgid"].isprintable()
        if kind == "json":
            assert orjson.loads(message) == event.document
        elif kind == "cef":
            header, extension = parse_cef(message)
            assert header[3] == as_escaped(event.action, parsed="\n\r")
            assert extension["msg"] == as_escaped(event.document["message"], parsed="\n\r")
        else:
            header, attributes = parse_leef(message)
            assert header[3] == as_escaped(event.action, parsed="\n\r")
            assert attributes["msg"] == as_escaped(event.document["message"], parsed="\n\r\t")


async def test_10k_messages_over_tcp_all_arrive_in_order(rsyslog: Receiver) -> None:
    events = [make_event(n) for n in range(10_000)]
    await send_all(make_sink(rsyslog), events, batch=1000)
    records = rsyslog.wait(10_000, "tcp", timeout=20)
    assert [orjson.loads(payload(record))["n"] for record in records] == list(range(10_000))


# -- truncation ---------------------------------------------------------------------------


@pytest.mark.parametrize(("transport", "limit"), [("udp", 1500), ("tcp", 2000)])
async def test_oversized_messages_are_cut_on_a_character_boundary_and_counted(
    rsyslog: Receiver, transport: str, limit: int
) -> None:
    metrics = Metrics()
    option = "max_udp_bytes" if transport == "udp" else "max_message_bytes"
    sink = make_sink(rsyslog, transport, metrics, **{option: limit})
    # "é" is 2 bytes and "😀" 4: the cut falls inside a character for some of them.
    big = [make_event(n, pad=("é" * n) + "😀" * 400) for n in range(4)]
    small = [make_event(10 + n) for n in range(3)]
    assert all(len(sink._encode(event)[0]) < limit - 4 for event in small)
    await send_all(sink, big + small)
    records = rsyslog.wait(7, transport)
    assert len(records) == 7
    truncated = metrics.registry.get_sample_value(
        "forwarder_sink_truncated_events_total", {"sink": "syslog"}
    )
    assert truncated == 4
    by_n: dict[int, dict[str, Any]] = {}
    for record in records:
        raw = record["raw"].encode()
        if len(raw) < limit - 4:
            by_n[orjson.loads(payload(record))["n"]] = record
        else:
            assert limit - 4 < len(raw) <= limit
            raw.decode()  # whole characters: rsyslog would have written U+FFFD otherwise
            assert "\ufffd" not in record["raw"]
    assert sorted(by_n) == [10, 11, 12]


# -- other payloads and RFC 3164 ------------------------------------------------------------


async def test_cef_payload_parses_back(rsyslog: Receiver) -> None:
    message = "alice | changed = ACL \\ of 😀 שלום\nsecond line"
    events = [
        make_event(0, outcome="failure", message=message),
        make_event(1, action="a|b=c\\d"),
    ]
    await send_all(make_sink(rsyslog, payload="cef", bom=False), events)
    records = rsyslog.wait(2, "tcp")
    header, extension = parse_cef(payload(records[0], bom=False))
    assert header == ["Google", "Workspace Calendar", "reports_v1", events[0].action, message, "6"]
    assert extension["msg"] == message
    assert extension["rt"] == "1800000000123"
    assert extension["externalId"] == events[0].id
    assert extension["suser"] == "alice@x.com"
    assert extension["suid"] == "114511147312345678901"
    assert extension["duser"] == "bob@y.com"
    assert extension["src"] == "203.0.113.5"
    assert extension["outcome"] == "failure"
    assert extension["requestClientApplication"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert extension["request"] == "https://calendar.google.com/calendar/r?a=b&c=d"
    assert (extension["cs1Label"], extension["cs1"]) == ("dataset", "google_workspace.calendar")
    assert (extension["cs3Label"], extension["cs3"]) == ("forwarderSource", "gcal")
    header, extension = parse_cef(payload(records[1], bom=False))
    assert header[3] == "a|b=c\\d" and extension["act"] == "a|b=c\\d"
    assert header[5] == "4"  # iam change: notice


async def test_leef_payload_parses_back(rsyslog: Receiver) -> None:
    message = "tab\there ^ caret = equals \\ backslash\nnewline 😀"
    events = [make_event(0, message=message, provider="calendly", action="API.Token_Created")]
    await send_all(make_sink(rsyslog, payload="leef", bom=False), events)
    (record,) = rsyslog.wait(1, "tcp")
    header, attributes = parse_leef(payload(record, bom=False))
    assert header == ["Calendly", "Activity Log", "v2", "API.Token_Created", "x09"]
    assert attributes["msg"] == message
    assert attributes["devTime"] == "2027-01-15T08:00:00.123Z"
    assert attributes["usrName"] == "alice@x.com"
    assert attributes["targetUsrName"] == "bob@y.com"
    assert attributes["src"] == "203.0.113.5"
    assert attributes["sev"] == "4"
    assert attributes["url"] == "https://calendar.google.com/calendar/r?a=b&c=d"


async def test_rfc3164_is_parsed_by_rsyslog(rsyslog: Receiver) -> None:
    events = [make_event(0), make_event(1, outcome="failure")]
    # RFC 3164 cuts TAG to 32 characters: a short app name to find the records by.
    sink = make_sink(rsyslog, protocol="rfc3164", facility="daemon", app_name="fwd3164")
    await send_all(sink, events)
    records = rsyslog.wait(2, "tcp", where=lambda record: record["programname"] == "fwd3164")
    for record, event, severity in zip(records, events, (5, 4), strict=True):
        assert record["hostname"] == "fwd-host"
        assert record["tag"] == f"fwd3164[{os.getpid()}]:"
        assert record["pri"] == 3 * 8 + severity
        # No year in RFC 3164: rsyslog picks one; month, day and time are the event's.
        assert record["timestamp"][4:19] == f"-01-15T08:00:0{event.document['n']}"
        assert orjson.loads(record["msg"]) == event.document


def normalized_events() -> list[Event]:
    """Events from the real normalizers: a Google ACL change and a Calendly token creation."""
    google = {
        "kind": "admin#reports#activity",
        "id": {
            "time": "2027-01-15T08:00:00.123Z",
            "uniqueQualifier": "-4961328429713306829",
            "applicationName": "calendar",
            "customerId": "C03az79cb",
        },
        "actor": {"callerType": "USER", "email": "alice@x.com", "profileId": "1145"},
        "ipAddress": "2001:db8::5",
        "events": [
            {
                "name": "change_calendar_acls",
                "parameters": [
                    {"name": "calendar_id", "value": "c@x.com"},
                    {"name": "grantee_email", "value": "bob@y.com"},
                    {"name": "access_level", "value": "owner"},
                    {"name": "user_agent", "value": "UA/1 (x=|y)"},
                ],
            }
        ],
    }
    calendly = {
        "uri": "https://api.calendly.com/activity_log_entries/ALE0001",
        "occurred_at": "2027-01-15T08:00:01.123456Z",
        "namespace": "API",
        "action": "Token_Created",
        "details": {"token_name": "siem"},
        "organization": "https://api.calendly.com/organizations/ORG1",
        "actor": {
            "uri": "https://api.calendly.com/users/U1",
            "type": "User",
            "display_name": "Alice Martin",
            "alternative_identifier": "alice@x.com",
        },
    }
    ingested = "2027-01-15T08:00:05.000Z"
    events = [
        *normalize_activity(google, ingested=ingested),
        normalize_entry(calendly, ingested=ingested),
    ]
    for event, source in zip(events, ("gcal", "cal"), strict=True):
        event.source = source
    return events


async def test_normalized_events_as_json_and_cef(rsyslog: Receiver) -> None:
    events = normalized_events()
    await send_all(make_sink(rsyslog), events)
    await send_all(make_sink(rsyslog, payload="cef"), events)
    records = rsyslog.wait(4, "tcp")
    assert [orjson.loads(payload(r)) for r in records[:2]] == [e.document for e in events]
    assert [r["pri"] for r in records] == [16 * 8 + 5] * 4  # iam change / creation: notice
    header, extension = parse_cef(payload(records[2]))
    assert header[:5] == [
        "Google",
        "Workspace Calendar",
        "reports_v1",
        "change_calendar_acls",
        events[0].document["message"],
    ]
    assert (extension["suser"], extension["duser"]) == ("alice@x.com", "bob@y.com")
    assert (extension["c6a2"], extension["requestClientApplication"]) == (
        "2001:db8::5",
        "UA/1 (x=|y)",
    )
    assert extension["externalId"] == events[0].id
    header, extension = parse_cef(payload(records[3]))
    assert header[:4] == ["Calendly", "Activity Log", "v2", "API.Token_Created"]
    assert extension["suid"] == "https://api.calendly.com/users/U1"
    assert extension["cs2"] == "https://api.calendly.com/organizations/ORG1"


async def test_udp_delivers_json(rsyslog: Receiver) -> None:
    events = [make_event(n) for n in range(20)]
    await send_all(make_sink(rsyslog, "udp", max_udp_bytes=8192), events)
    records = rsyslog.wait(20, "udp")
    assert sorted(orjson.loads(payload(r))["n"] for r in records) == list(range(20))


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["ossl", "gtls"])
async def test_tls_verifies_the_server_certificate(
    rsyslog: Receiver, pki: dict[str, Any], driver: str
) -> None:
    port = rsyslog.ports.tls if driver == "ossl" else rsyslog.ports.tls_gtls
    trusted = make_sink(rsyslog, "tls", port=port, tls={"ca_file": pki["ca"].ca})
    await send_all(trusted, [make_event(0)])
    # server_name: connect by address, verify and send SNI for the certificate's name.
    by_address = make_sink(
        rsyslog,
        "tls",
        host="127.0.0.1",
        server_name="localhost",
        port=port,
        tls={"ca_file": pki["ca"].ca},
    )
    await send_all(by_address, [make_event(1)])
    name = "tls" if driver == "ossl" else "tls_gtls"
    records = rsyslog.wait(2, name)
    assert [orjson.loads(payload(r))["n"] for r in records] == [0, 1]

    untrusting = make_sink(rsyslog, "tls", port=port, tls={"ca_file": pki["other_ca"].ca})
    refused = await untrusting.send([make_event(2)])
    await untrusting.aclose()
    assert refused.retry is not None and "certificate verify failed" in refused.retry
    wrong_name = make_sink(
        rsyslog, "tls", port=port, server_name="wrong.example", tls={"ca_file": pki["ca"].ca}
    )
    mismatch = await wrong_name.send([make_event(3)])
    await wrong_name.aclose()
    assert mismatch.retry is not None and "wrong.example" in mismatch.retry
    assert len(rsyslog.wait(3, name, timeout=0.5)) == 2


async def test_mutual_tls_needs_the_permitted_client_certificate(
    rsyslog: Receiver, pki: dict[str, Any]
) -> None:
    def sink(certificate: Any | None) -> SyslogSink:
        tls: dict[str, Any] = {"ca_file": pki["ca"].ca}
        if certificate is not None:
            tls |= {"cert_file": certificate.cert, "key_file": certificate.key}
        return make_sink(rsyslog, "tls", port=rsyslog.ports.mtls, tls=tls)

    permitted = sink(pki["client"])
    await send_all(permitted, [make_event(0), make_event(1)])
    for refused_sink in (sink(None), sink(pki["stranger"])):
        result = await refused_sink.send([make_event(2)])
        await refused_sink.aclose()
        # Refused on the first data: seen while writing or while the new connection settles.
        assert result.retry is not None and not result.delivered, result
    records = rsyslog.wait(3, "mtls", timeout=1)
    assert [orjson.loads(payload(r))["n"] for r in records] == [0, 1]


# -- outage -------------------------------------------------------------------------------


class PausingSource(StubSource):
    """Yields ``batches`` batches; after ``pause_after`` it waits for ``resume``."""

    provider = "google_calendar"

    def __init__(self, batches: int, size: int, pause_after: int) -> None:
        self.id = "scripted"
        self.batches, self.size, self.pause_after = batches, size, pause_after
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def poll(self) -> AsyncIterator[Batch]:
        for b in range(self.batches):
            if b == self.pause_after:
                self.paused.set()
                await self.resume.wait()
            events = [make_event(n) for n in range(b * self.size, (b + 1) * self.size)]
            yield Batch(self.id, events, Checkpoint({"batch": b}))


async def test_receiver_restart_over_tcp_holds_the_cursor_and_loses_nothing(
    private_rsyslog: Receiver, tmp_path: Path
) -> None:
    rsyslog = private_rsyslog
    clock = SystemClock()
    metrics = Metrics()
    sink = make_sink(rsyslog, metrics=metrics)
    await sink.start()
    source = PausingSource(batches=20, size=100, pause_after=8)
    pipeline = SinkPipeline(
        tmp_path,
        sink,
        source,
        capacity=400,
        backoff=Backoff(0.05, 0.2),
        clock=clock,
        metrics=metrics,
        state=tmp_path / "state",
    )
    store, committer = pipeline.store, pipeline.committer
    working = asyncio.create_task(pipeline.worker.run())
    polling = asyncio.create_task(pipeline.runner.poll_once())
    try:
        await asyncio.wait_for(source.paused.wait(), 10)
        await asyncio.wait_for(committer.wait_idle(), 10)
        assert await store.load("scripted") == {"batch": 7, "seen": {}}
        # Everything acknowledged so far was written by rsyslog: stop it with the sink's
        # connection open, then let the stream go on.
        assert len(rsyslog.wait(800, "tcp")) == 800
        rsyslog.rsyslog.stop()
        source.resume.set()

        def errors() -> float:
            value = metrics.registry.get_sample_value(
                "forwarder_sink_errors_total", {"sink": "syslog", "error_type": "send_failed"}
            )
            return value or 0.0

        for _ in range(200):  # up to 10 s
            if errors() >= 3:
                break
            await asyncio.sleep(0.05)
        assert errors() >= 3, "sends did not fail while rsyslog was down"
        assert await store.load("scripted") == {"batch": 7, "seen": {}}, (
            "cursor moved during the outage"
        )

        rsyslog.rsyslog.start()  # same ports, same output file
        await asyncio.wait_for(polling, 30)
        await asyncio.wait_for(committer.wait_idle(), 30)
        assert await store.load("scripted") == {"batch": 19, "seen": {}}
        records = rsyslog.wait(2000, "tcp", timeout=15)
        numbers = {orjson.loads(payload(record))["n"] for record in records}
        assert numbers == set(range(2000)), "events lost across the restart"
    finally:
        working.cancel()
        polling.cancel()
        await asyncio.gather(working, polling, return_exceptions=True)
        await sink.aclose()


async def test_sends_while_the_receiver_is_down_ask_for_retry(private_rsyslog: Receiver) -> None:
    sink = make_sink(private_rsyslog)
    await send_all(sink, [make_event(0)])
    private_rsyslog.rsyslog.stop()
    await sink.start()  # logs and carries on
    result = await sink.send([make_event(1)])
    assert isinstance(result, SendResult) and result.retry is not None
    assert "cannot connect" in result.retry and not result.delivered
    await sink.aclose()
