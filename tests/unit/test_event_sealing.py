"""Event sealing: what the sources do to every event when no sink reads documents.

A sealed event must be indistinguishable from an unsealed one to every sink: the same
bytes in every format, the same document and record when asked for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.clock import ManualClock
from forwarder.config.model import FileSinkConfig, KafkaSinkConfig, SyslogSinkConfig
from forwarder.daemon import build_sink, event_seal_formats
from forwarder.events import Event
from forwarder.observability.metrics import Metrics
from forwarder.schema.calendly import normalize_entry
from forwarder.schema.google_calendar import normalize_activity
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.sinks.syslog.sink import build_encoder

INGESTED = "2027-01-15T08:00:00.000Z"
FORMATS = ("ecs", "ocsf", "raw")


def _records() -> list[tuple[str, dict[str, Any]]]:
    now = 1_800_000_000.0
    clock = ManualClock(now)
    calendly = CalendlySimulator(CalendlyConfig(start=now - 3600, rate_per_minute=2), clock)
    google = GoogleReportsSimulator(
        GoogleConfig(start=now - 3600, rate_per_minute=2), clock, ServiceAccount.generate()
    )
    return [("calendly", entry) for entry in calendly.truth()] + [
        ("google_calendar", item["activity"]) for item in google.truth()
    ]


RECORDS = _records()


def _normalize(provider: str, record: dict[str, Any]) -> list[Event]:
    # A deep copy each time: the two events under comparison must share nothing.
    record = orjson.loads(orjson.dumps(record))
    if provider == "calendly":
        return [normalize_entry(record, ingested=INGESTED)]
    return normalize_activity(record, ingested=INGESTED)


def test_the_sample_has_both_providers_and_multi_event_activities() -> None:
    providers = {provider for provider, _ in RECORDS}
    assert providers == {"calendly", "google_calendar"}
    assert any(len(record["events"]) > 1 for p, record in RECORDS if p == "google_calendar")


@pytest.mark.parametrize("sealed_formats", [("ecs",), FORMATS, ()])
def test_a_sealed_event_encodes_reads_and_maps_as_an_unsealed_one(
    sealed_formats: tuple[str, ...],
) -> None:
    compared = 0
    for provider, record in RECORDS:
        plain = _normalize(provider, record)
        sealed = _normalize(provider, record)
        for event in sealed:
            event.seal(sealed_formats)
        assert len(sealed) == len(plain)
        for expected, actual in zip(plain, sealed, strict=True):
            # Formats not sealed up front (OCSF, raw) are built from the decoded document
            # and record: still the same bytes.
            for fmt in FORMATS:
                assert actual.encoded(fmt) == expected.encoded(fmt), (fmt, expected.id)
            assert actual.document == expected.document
            assert actual.raw == record
            assert (actual.id, actual.timestamp, actual.action, actual.mapped) == (
                expected.id,
                expected.timestamp,
                expected.action,
                expected.mapped,
            )
            compared += 1
    assert compared == sum(
        1 if provider == "calendly" else len(record["events"]) for provider, record in RECORDS
    )


def test_sealing_twice_or_after_encoding_changes_nothing() -> None:
    provider, record = RECORDS[0]
    (event,) = _normalize(provider, record)
    before = event.encoded("ecs")
    event.seal(("ecs",))
    event.seal(FORMATS)
    assert event.encoded("ecs") is before
    assert event.encoded("raw") == orjson.dumps(record)


def test_an_event_without_an_original_keeps_its_record() -> None:
    # Events built by hand (tests, tools) may have no event.original: the record stays.
    event = Event("x", 0.0, "test", "act", {"n": 1}, {"r": 2})
    event.seal(("ecs",))
    assert event.raw == {"r": 2}
    assert event.document == {"n": 1}
    assert event.encoded("raw") == b'{"r":2}'


def test_an_event_that_cannot_be_encoded_is_left_for_the_sink_to_dead_letter() -> None:
    event = Event("x", 0.0, "test", "act", {1: "not a string key"}, {})  # type: ignore[dict-item]
    event.seal(("ecs",))
    assert not event.sealed
    with pytest.raises(orjson.JSONEncodeError):
        event.encoded("ecs")


@pytest.mark.parametrize("payload", ["json", "cef", "leef"])
def test_a_syslog_message_from_a_sealed_event_is_the_same(payload: str) -> None:
    # Syslog sinks keep documents, but one reading a sealed event must still work.
    encoder = build_encoder(SyslogSinkConfig(type="syslog", host="h", payload=payload))
    for provider, record in RECORDS[:40]:
        for expected, actual in zip(
            _normalize(provider, record), _normalize(provider, record), strict=True
        ):
            actual.seal(("ecs",))
            assert encoder.encode(actual) == encoder.encode(expected)


def test_the_daemon_seals_in_every_sink_format_unless_a_sink_reads_documents(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    file_ecs = build_sink("a", FileSinkConfig(type="file", path=tmp_path / "a"), metrics)
    file_raw = build_sink(
        "b", FileSinkConfig(type="file", path=tmp_path / "b", format="raw"), metrics
    )
    kafka = build_sink(
        "k", KafkaSinkConfig(type="kafka", bootstrap_servers=["127.0.0.1:9"]), metrics
    )
    syslog = build_sink("s", SyslogSinkConfig(type="syslog", host="127.0.0.1"), metrics)
    assert event_seal_formats([file_ecs, file_raw, kafka]) == ("ecs", "raw")
    assert event_seal_formats([file_ecs, syslog]) is None
    assert event_seal_formats([]) == ()
