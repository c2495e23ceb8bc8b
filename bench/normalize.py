"""Normalization throughput on one core, next to the orjson loads+dumps ceiling.

.venv/bin/python bench/normalize.py [records]
"""

from __future__ import annotations

import sys
import time

import orjson

from forwarder.clock import ManualClock
from forwarder.schema.normalize_stream import normalize_payload
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount


def _measure(provider: str, records: list[dict]) -> tuple[float, float, int]:
    data = b"\n".join(orjson.dumps(record) for record in records)
    started = time.perf_counter()
    events, failures = normalize_payload(provider, data, ingested="2026-01-01T00:00:00.000Z")
    encoded = [event.encoded("ecs") for event in events]
    normalize_seconds = time.perf_counter() - started
    assert not failures and encoded
    started = time.perf_counter()
    for line in data.split(b"\n"):
        orjson.dumps(orjson.loads(line))
    ceiling_seconds = time.perf_counter() - started
    return normalize_seconds, ceiling_seconds, len(events)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    now = 1_800_000_000.0
    clock = ManualClock(now)
    minutes = count / 60.0
    start = now - minutes * 60
    calendly = CalendlySimulator(CalendlyConfig(start=start, rate_per_minute=60), clock)
    google = GoogleReportsSimulator(
        GoogleConfig(start=start, rate_per_minute=60), clock, ServiceAccount.generate()
    )
    samples = {
        "calendly": calendly.truth(),
        "google_calendar": [record["activity"] for record in google.truth()],
    }
    header = ("provider", "records", "events", "events/s", "ceiling rec/s", "ratio")
    print("{:<16}{:>9}{:>9}{:>12}{:>15}{:>8}".format(*header))
    for provider, records in samples.items():
        seconds, ceiling, events = _measure(provider, records)
        print(
            f"{provider:<16}{len(records):>9}{events:>9}{events / seconds:>12,.0f}"
            f"{len(records) / ceiling:>15,.0f}{ceiling / seconds:>8.2f}"
        )


if __name__ == "__main__":
    main()
