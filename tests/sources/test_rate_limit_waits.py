"""Waits an API asks for (Calendly's X-RateLimit-Reset, Google's Retry-After in seconds
or as an HTTP date) are believed up to max_retry_after; the raw value is logged once,
counted, and the hold shows in /readyz (a source warning) and as a metric. Garbage,
negative, NaN and infinite values neither crash nor hold forever."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hostile import status
from source_harness import HOUR, T0, drain, event_ids, sample

from forwarder.schema.ids import calendly_event_key
from forwarder.sources.base import TransientSourceError

CALENDLY_429 = {"title": "Too Many Requests", "message": "You have exceeded the rate limit."}
GOOGLE_429 = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "errors": [
            {"message": "Too many requests", "domain": "global", "reason": "rateLimitExceeded"}
        ],
        "status": "RESOURCE_EXHAUSTED",
    }
}


def http_date(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, UTC), usegmt=True)


async def test_calendly_reset_of_31_years_is_capped_logged_once_and_shown(
    calendly, hostile, clock, metrics, capfd
) -> None:
    simulator, make_source = await calendly({"start": T0 - HOUR, "end": T0}, page_size=20)
    proxy = await hostile(simulator.url)
    source = make_source(base_url=proxy.url)
    source.restore(None)
    ten_years = status(429, CALENDLY_429, X_RateLimit_Reset="1000000000", X_RateLimit_Remaining="0")
    proxy.push("/activity_log_entries", ten_years)
    params = {
        "organization": simulator.config.organization_uri,
        "sort": "occurred_at:asc",
        "count": "20",
        "min_occurred_at": "2027-01-15T00:00:00.000000Z",
    }
    with pytest.raises(TransientSourceError) as raised:
        await source._fetch(params)
    assert raised.value.retry_after == 900.0
    # Held, and visibly so: a /readyz warning with the raw value, and the gauge.
    assert source.gate.hold_remaining() == 900.0
    warning = source.warnings["rate_limit_hold"]
    assert "1000000000" in warning and "max_retry_after" in warning
    assert sample(metrics, "forwarder_source_rate_limit_hold_seconds", source="cal") == 900.0
    assert (
        sample(metrics, "forwarder_source_capped_values_total", source="cal", kind="retry_after")
        == 1
    )
    clock.advance(901)
    assert "rate_limit_hold" not in source.warnings
    assert sample(metrics, "forwarder_source_rate_limit_hold_seconds", source="cal") == 0.0
    # A poll through two more such answers: waits 900 s each, at most, and delivers all.
    proxy.push("/activity_log_entries", ten_years, count=2)
    started = clock.now()
    delivered = event_ids(await drain(source))
    assert clock.now() - started < 3 * 900 + 120
    assert delivered == [calendly_event_key(entry["uri"]) for entry in simulator.truth()]
    assert (
        sample(metrics, "forwarder_source_capped_values_total", source="cal", kind="retry_after")
        == 3
    )
    assert capfd.readouterr().out.count("api_wait_capped") == 1, "the raw value, logged once"


@pytest.mark.parametrize("value", ["-5", "nan", "NaN", "inf", "-inf", "1e309", "soon", "", "0x10"])
async def test_calendly_garbage_reset_values_neither_crash_nor_hold_forever(
    calendly, hostile, clock, value
) -> None:
    simulator, make_source = await calendly({"start": T0 - HOUR, "end": T0}, page_size=20)
    proxy = await hostile(simulator.url)
    source = make_source(base_url=proxy.url)
    source.restore(None)
    proxy.push(
        "/activity_log_entries",
        status(429, CALENDLY_429, X_RateLimit_Reset=value, X_RateLimit_Remaining=value),
        count=2,
    )
    started = clock.now()
    delivered = event_ids(await drain(source))
    assert clock.now() - started <= 2 * 900 + 120
    assert Counter(delivered) == Counter(calendly_event_key(e["uri"]) for e in simulator.truth())


@pytest.mark.parametrize(
    ("retry_after", "held"),
    [
        ("1000000000", 900.0),  # seconds, 31.7 years
        ("30", 30.0),
        ("DATE+86400", 900.0),  # an HTTP date a day after the response's Date
        ("DATE+40", 40.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 5.0),  # in the past: the 5 s backoff
        ("-1", 5.0),  # unusable: Google's own 5 s backoff for quota errors
        ("nan", 5.0),
        ("tomorrow", 5.0),
    ],
)
async def test_google_retry_after_seconds_or_http_date_is_capped(
    google, hostile, clock, metrics, retry_after, held
) -> None:
    simulator, make_source = await google({"start": T0 - HOUR})
    proxy = await hostile(simulator.url)
    source = make_source(base_url=proxy.url)
    source.restore(None)
    if retry_after.startswith("DATE+"):
        retry_after = http_date(T0 + float(retry_after.removeprefix("DATE+")))
    proxy.push("/activity/", status(429, GOOGLE_429, Retry_After=retry_after, Date=http_date(T0)))
    params = {"startTime": "2027-01-15T06:00:00.000Z", "endTime": "2027-01-15T07:00:00.000Z"}
    with pytest.raises(TransientSourceError) as raised:
        await source._fetch(params)
    assert raised.value.rate_limited
    assert source.gate.hold_remaining() == pytest.approx(held, abs=1)
    if held:
        assert "rate_limit_hold" in source.warnings
    capped = sample(
        metrics, "forwarder_source_capped_values_total", source="gcal", kind="retry_after"
    )
    assert capped == (1 if held == 900.0 else 0)
    clock.advance(901)
    assert "rate_limit_hold" not in source.warnings
