"""Unit tests of the syslog encoders: RFC 5424 header limits and escaping, PRI and
severity, timestamps, RFC 3164, CEF / LEEF escaping round trips, truncation and framing."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from syslog_harness import CONTROLS, HOSTILE, as_escaped, parse_cef, parse_leef

from forwarder.config.model import SyslogSinkConfig
from forwarder.events import Event
from forwarder.observability.metrics import Metrics
from forwarder.sinks.syslog.cef import CefPayload
from forwarder.sinks.syslog.fields import auto_severity, cut_utf8, header_field, sd_value
from forwarder.sinks.syslog.leef import LeefPayload
from forwarder.sinks.syslog.payloads import JsonPayload
from forwarder.sinks.syslog.rfc3164 import Rfc3164Encoder
from forwarder.sinks.syslog.rfc5424 import Rfc3339, Rfc5424Encoder
from forwarder.sinks.syslog.sink import SyslogSink, build_encoder
from forwarder.sinks.syslog.transport import lf_terminated, octet_counted

HEADER = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
)


def event(**document: Any) -> Event:
    base: dict[str, Any] = {
        "event": {"id": "e1", "action": "create_event", "outcome": "success"},
        "message": "alice created an event",
    }
    base.update(document)
    result = Event(
        id="e1",
        timestamp=1_800_000_000.123456,
        provider="google_calendar",
        action="create_event",
        document=base,
        raw={"r": 1},
    )
    result.source = "gcal"
    return result


def encoder(**options: Any) -> Rfc5424Encoder:
    settings: dict[str, Any] = {
        "facility": 16,
        "severity": None,
        "hostname": "host",
        "app_name": "forwarder",
        "procid": "42",
    }
    settings.update(options)
    return Rfc5424Encoder(JsonPayload("ecs"), **settings)


def header(message: bytes) -> dict[str, str]:
    match = HEADER.match(message.decode())
    assert match is not None, message[:120]
    return match.groupdict()


# -- header fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 48, "-"),
        (None, 48, "-"),
        ("a" * 300, 255, "a" * 255),
        ("x" * 49, 48, "x" * 48),
        ("host name", 255, "host_name"),
        ("hôst✓", 255, "h_st_"),
        ("tab\there\x00\x7f", 255, "tab_here__"),
        ("😀", 32, "_"),
        ("!~", 32, "!~"),
    ],
)
def test_header_field_is_printable_ascii_cut_and_nil(
    text: str | None, limit: int, expected: str
) -> None:
    assert header_field(text, limit) == expected


def test_header_limits_and_nilvalue_in_a_message() -> None:
    message = encoder(hostname="h" * 300, app_name="a" * 60, procid="p" * 200).encode(
        event(event={"id": "e1"})
    )
    fields = header(message)
    assert fields["host"] == "h" * 255
    assert fields["app"] == "a" * 48
    assert fields["procid"] == "p" * 128
    long_action = event()
    long_action.action = "change_event_guest_response_auto_and_more"
    assert header(encoder().encode(long_action))["msgid"] == "change_event_guest_response_auto"
    assert header(encoder(msgid="-").encode(event()))["msgid"] == "-"
    assert header(encoder(msgid="audit log").encode(event()))["msgid"] == "audit_log"
    assert header(encoder(hostname="", app_name="").encode(event()))["host"] == "-"
    nameless = event()
    nameless.action = ""
    fields = header(encoder(app_name="").encode(nameless))
    assert (fields["app"], fields["msgid"]) == ("-", "-")


def test_non_ascii_action_is_replaced_in_msgid_but_kept_in_structured_data() -> None:
    tricky = event()
    tricky.action = 'créer "x"]'
    message = encoder().encode(tricky).decode()
    assert header(message.encode())["msgid"] == 'cr_er_"x"]'
    assert 'action="créer \\"x\\"\\]"]' in message


def test_structured_data_escapes_quote_backslash_bracket_and_controls() -> None:
    assert sd_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert sd_value("[=😀 é") == "[=😀 é"
    assert sd_value("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert sd_value("\x00\x1b\x7f\x85\x9b\u2028\u2029") == (
        "\\u0000\\u001b\\u007f\\u0085\\u009b\\u2028\\u2029"
    )
    weird = event()
    weird.id = 'id"]\\'
    weird.source = "src ]"
    message = encoder(sd_id="audit@32473").encode(weird).decode()
    assert (
        '[audit@32473 id="id\\"\\]\\\\" source="src \\]" provider="google_calendar"'
        ' action="create_event"] ' in message
    )


def test_invalid_sd_id_is_refused() -> None:
    for bad in ("a b", 'a"b', "a]b", "a=b", "", "x" * 33):
        with pytest.raises(ValueError):
            encoder(sd_id=bad)


# -- PRI, severity, timestamps, BOM -----------------------------------------------------


@pytest.mark.parametrize(
    ("document", "severity"),
    [
        ({"event": {"outcome": "failure", "category": ["iam"], "type": ["change"]}}, 4),
        ({"event": {"outcome": "success", "category": ["iam"], "type": ["user", "change"]}}, 5),
        ({"event": {"outcome": "unknown", "category": ["configuration"], "type": ["deletion"]}}, 5),
        ({"event": {"outcome": "success", "category": ["configuration"], "type": ["access"]}}, 6),
        ({"event": {"outcome": "success", "category": ["network"], "type": ["access"]}}, 6),
        ({"event": {}}, 6),
        ({}, 6),
    ],
)
def test_auto_severity(document: dict[str, Any], severity: int) -> None:
    assert auto_severity(document) == severity


def test_pri_is_facility_times_8_plus_severity() -> None:
    failure = event(event={"id": "e1", "outcome": "failure"})
    assert header(encoder(facility=16).encode(failure))["pri"] == str(16 * 8 + 4)
    assert header(encoder(facility=0, severity=0).encode(failure))["pri"] == "0"
    assert header(encoder(facility=23, severity=7).encode(failure))["pri"] == "191"
    config = SyslogSinkConfig(type="syslog", host="h", facility="auth", severity="err")
    assert header(build_encoder(config).encode(failure))["pri"] == str(4 * 8 + 3)


@pytest.mark.parametrize(
    ("timestamp", "precision", "expected"),
    [
        (1_800_000_000.123456, "microseconds", "2027-01-15T08:00:00.123456Z"),
        (1_800_000_000.123456, "milliseconds", "2027-01-15T08:00:00.123Z"),
        (1_800_000_000.9996, "milliseconds", "2027-01-15T08:00:01.000Z"),
        (1_799_999_999.9999996, "microseconds", "2027-01-15T08:00:00.000000Z"),
        (0.0, "microseconds", "1970-01-01T00:00:00.000000Z"),
    ],
)
def test_rfc3339_timestamps(timestamp: float, precision: str, expected: str) -> None:
    clock = Rfc3339(precision)
    assert clock.format(timestamp) == expected
    assert clock.format(timestamp) == expected  # from the per-second cache


def test_bom_before_msg_and_off() -> None:
    with_bom = encoder().encode(event())
    without = encoder(bom=False).encode(event())
    payload = event().encoded("ecs")
    assert with_bom.endswith(b"] \xef\xbb\xbf" + payload)
    assert without.endswith(b"] " + payload)


def test_rfc3164_format() -> None:
    legacy = Rfc3164Encoder(
        JsonPayload("raw"),
        facility=1,
        severity=None,
        hostname="my host",
        app_name="for warder:x",
        procid="7",
    )
    single_digit_day = event()
    single_digit_day.timestamp = 1_798_761_600.5  # 2027-01-01T00:00:00.5Z
    assert (
        legacy.encode(single_digit_day) == b'<14>Jan  1 00:00:00 my_host for_warder_x[7]: {"r":1}'
    )


# -- truncation and framing ---------------------------------------------------------------


@given(st.text(), st.integers(min_value=0, max_value=200))
def test_cut_utf8_never_splits_a_character(text: str, limit: int) -> None:
    data = text.encode()
    cut = cut_utf8(data, limit)
    assert len(cut) <= limit and data.startswith(cut)
    cut.decode()  # whole characters only
    assert len(cut) >= min(len(data), limit) - 3


def test_framing() -> None:
    assert octet_counted([b"<1>1 a", b"\xc3\xa9"]) == b"6 <1>1 a2 \xc3\xa9"
    assert lf_terminated([b"a", b"b"]) == b"a\nb\n"


async def test_sink_escapes_lf_for_lf_framing_and_cuts_to_the_limit() -> None:
    metrics = Metrics()
    config = SyslogSinkConfig(
        type="syslog", host="127.0.0.1", framing="lf", max_message_bytes=480, hostname="h"
    )
    sink = SyslogSink("lf", config, metrics)
    newline = event()
    newline.id = "a\nb"
    message, cut = sink._encode(newline)
    assert b"\n" not in message and b'id="a\\nb"' in message and not cut
    big = event(message="é" * 400)
    message, cut = sink._encode(big)
    assert cut and len(message) <= 480 and len(message) >= 478
    message.decode()


# -- CEF and LEEF -------------------------------------------------------------------------

# Printable text plus the characters every one of these formats must escape.
TRICKY = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from('\\|=^\t\n\r ]"')),
    max_size=40,
)


def rich_event(message: str, action: str, email: str, ip: str = "203.0.113.5") -> Event:
    result = event(
        event={
            "id": "e1",
            "action": action,
            "outcome": "failure",
            "category": ["iam"],
            "type": ["change"],
            "dataset": "google_workspace.calendar",
        },
        message=message,
        user={"email": email, "id": "u1", "target": {"name": "bob", "id": "u2"}},
        source={"ip": ip},
        user_agent={"original": "UA/1.0 (x=y)"},
        url={"original": "https://x.example/a?b=c|d"},
        organization={"id": "C0"},
    )
    result.action = action
    return result


@given(TRICKY, TRICKY.filter(bool), TRICKY)
def test_cef_round_trips(message: str, action: str, email: str) -> None:
    line = CefPayload().encode(rich_event(message, action, email), 4).decode()
    assert not CONTROLS.intersection(line)
    header_fields, extension = parse_cef(line)
    # The CEF parser turns \n and \r back into newlines; other controls stay escaped.
    message, action, email = (as_escaped(text, parsed="\n\r") for text in (message, action, email))
    assert header_fields == [
        "Google",
        "Workspace Calendar",
        "reports_v1",
        action,
        message or action,
        "6",
    ]
    expected = {
        "rt": "1800000000123",
        "externalId": "e1",
        "act": action,
        "cat": "iam",
        "outcome": "failure",
        "suid": "u1",
        "duser": "bob",
        "duid": "u2",
        "src": "203.0.113.5",
        "requestClientApplication": "UA/1.0 (x=y)",
        "request": "https://x.example/a?b=c|d",
        "cs1": "google_workspace.calendar",
        "cs1Label": "dataset",
        "cs2": "C0",
        "cs2Label": "organization",
        "cs3": "gcal",
        "cs3Label": "forwarderSource",
        "cs4": "change",
        "cs4Label": "eventType",
    }
    if email:
        expected["suser"] = email
    if message:
        expected["msg"] = message
    assert extension == expected


def test_cef_ipv6_source_goes_to_c6a2() -> None:
    line = CefPayload().encode(rich_event("m", "a", "e", ip="2001:db8::1"), 6).decode()
    _, extension = parse_cef(line)
    assert "src" not in extension
    assert extension["c6a2"] == "2001:db8::1"
    assert extension["c6a2Label"] == "Source IPv6 Address"


@pytest.mark.parametrize("delimiter", ["\t", "^"])
@given(message=TRICKY, action=TRICKY.filter(bool), email=TRICKY)
def test_leef_round_trips(delimiter: str, message: str, action: str, email: str) -> None:
    line = LeefPayload(delimiter).encode(rich_event(message, action, email), 5).decode()
    assert not CONTROLS.intersection(line.replace(delimiter, ""))
    header_fields, attributes = parse_leef(line)
    declared = "x09" if delimiter == "\t" else delimiter
    assert header_fields == [
        "Google",
        "Workspace Calendar",
        "reports_v1",
        as_escaped(action, parsed="\n\r"),
        declared,
    ]
    # The LEEF parser turns \n, \r (and \t for the tab delimiter) back; others stay escaped.
    parsed = "\n\r\t" if delimiter == "\t" else "\n\r"
    message, action, email = (as_escaped(text, parsed) for text in (message, action, email))
    assert attributes["devTime"] == "2027-01-15T08:00:00.123Z"
    assert attributes["devTimeFormat"] == "yyyy-MM-dd'T'HH:mm:ss.SSSX"
    assert attributes["sev"] == "4"
    assert attributes["action"] == action
    assert attributes.get("msg") == (message or None)
    assert attributes.get("usrName") == (email or None)
    assert attributes["url"] == "https://x.example/a?b=c|d"
    assert attributes["src"] == "203.0.113.5"
    assert attributes["targetUsrName"] == "bob"


def test_unknown_provider_is_named_as_is() -> None:
    other = event()
    other.provider = "zoom"
    header_fields, _ = parse_cef(CefPayload().encode(other, 6).decode())
    assert header_fields[:2] == ["forwarder", "zoom"]


async def test_unencodable_event_is_rejected_not_retried() -> None:
    sink = SyslogSink("x", SyslogSinkConfig(type="syslog", host="127.0.0.1"), Metrics())
    broken = event()
    broken.document = {1: "non-string key"}  # type: ignore[dict-item]
    with pytest.raises(orjson.JSONEncodeError):
        broken.encoded("ecs")
    result = await sink.send([broken])
    assert result.retry is None and result.rejected == {0: "unencodable"}


@given(TRICKY)
def test_json_payload_escapes_c1_and_line_separators(text: str) -> None:
    hostile = event(message=f"{HOSTILE} {text}", user={"name": text + "\u2028\x85\x7f"})
    encoded = JsonPayload("ecs").encode(hostile, 6)
    assert not CONTROLS.intersection(encoded.decode())
    assert orjson.loads(encoded) == hostile.document
