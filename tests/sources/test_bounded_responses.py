"""API responses are bounded: a body is read incrementally and refused past
max_response_bytes of decompressed data (a gzip bomb, an endless body, an announced
huge length), a trickling body ends at the request timeout, and a page holding more
records than asked for is refused before anything in it is normalized. Each is a
retried, reported error; once the peer behaves, nothing is lost."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hostile import announced, compressed, deflate_bomb, endless, gzip_bomb, rewrite_json
from runner_harness import SourcePipeline
from source_harness import HOUR, T0, calendly_truth, google_truth

MiB = 1 << 20


async def _start(provider: str, calendly: Any, google: Any, hostile: Any, **source: Any):  # type: ignore[no-untyped-def]
    if provider == "calendly":
        simulator, make_source = await calendly({"start": T0 - HOUR}, page_size=20)
        path, source_id = "/activity_log_entries", "cal"
    else:
        simulator, make_source = await google({"start": T0 - HOUR}, page_size=20)
        path, source_id = "/activity/", "gcal"
    proxy = await hostile(simulator.url)
    built = make_source(base_url=proxy.url, **source)
    built.restore(None)
    return simulator, built, proxy, path, source_id


def _truth(provider: str, simulator: Any) -> Counter[str]:
    return calendly_truth(simulator) if provider == "calendly" else google_truth(simulator, T0 - 5)


BODIES = {
    # 1 GiB of whitespace in about 1 MB of gzip.
    "gzip_bomb": lambda: compressed(gzip_bomb(1024 * MiB)),
    "deflate_bomb": lambda: compressed(deflate_bomb(1024 * MiB), encoding="deflate"),
    "endless": lambda: endless(),
    "announced_1TB": lambda: announced(1 << 40),
}


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_body_past_the_cap_is_refused_and_retried(
    calendly, google, hostile, clock, metrics, tmp_path, provider, body
) -> None:
    simulator, source, proxy, path, source_id = await _start(
        provider, calendly, google, hostile, max_response_bytes=MiB, max_attempts=2
    )
    # Both attempts of the first page get it: the poll fails and says why.
    proxy.push(path, BODIES[body](), count=2)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert not await pipeline.poll()
        assert pipeline.runner.last_error_type == "response_too_large"
        assert "max_response_bytes" in pipeline.runner.last_error
        assert (
            pipeline.sample(
                "forwarder_source_errors_total", source=source_id, error_type="response_too_large"
            )
            == 2
        )
        assert not proxy.pending
        assert await pipeline.poll()
        assert pipeline.delivered == _truth(provider, simulator)


@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_trickling_endless_body_ends_at_the_request_timeout(
    calendly, google, hostile, clock, metrics, tmp_path, provider
) -> None:
    simulator, source, proxy, path, source_id = await _start(
        provider, calendly, google, hostile, request_timeout=0.5
    )
    proxy.push(path, endless(chunk=b" ", pause=0.02))
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        # Retried within the poll: the next attempt gets the real page.
        assert await pipeline.poll()
        errors = pipeline.sample(
            "forwarder_source_errors_total", source=source_id, error_type="transient"
        )
        assert errors == 1
        assert pipeline.delivered == _truth(provider, simulator)


@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_page_with_more_records_than_asked_for_is_refused_unread(
    calendly, google, hostile, clock, metrics, tmp_path, provider
) -> None:
    """100,000 empty records would each be a dead letter if they were normalized: the
    page is refused before that, whatever its records are."""
    simulator, source, proxy, path, source_id = await _start(
        provider, calendly, google, hostile, max_attempts=2
    )
    key = "collection" if provider == "calendly" else "items"
    proxy.push(path, rewrite_json(lambda page: {**page, key: [{}] * 100_000}), count=2)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert not await pipeline.poll()
        assert pipeline.runner.last_error_type == "oversized_page"
        assert "100000" in pipeline.runner.last_error
        assert (
            pipeline.sample(
                "forwarder_source_errors_total", source=source_id, error_type="oversized_page"
            )
            == 2
        )
        assert pipeline.dead_letters() == []
        assert await pipeline.poll()
        assert pipeline.delivered == _truth(provider, simulator)
        assert pipeline.dead_letters() == []


async def test_a_large_legitimate_page_is_read_whole(calendly, clock, metrics, tmp_path) -> None:
    """Pages of 1,000 entries (about 1 MB each, several TCP reads) under the default cap."""
    simulator, make_source = await calendly(
        {"start": T0 - 6 * HOUR, "end": T0, "rate_per_minute": 10.0}, page_size=1000
    )
    source = make_source(initial_lookback=7 * HOUR, backfill_concurrency=1)
    source.restore(None)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert await pipeline.poll()
        assert pipeline.delivered == calendly_truth(simulator)
        assert sum(pipeline.delivered.values()) > 3000


@pytest.mark.parametrize("provider", ["calendly", "google"])
async def test_a_body_built_to_expand_when_parsed_is_refused_unparsed(
    calendly, google, hostile, clock, metrics, tmp_path, provider
) -> None:
    """Under the byte cap, but 300,000 empty objects inside one record would take Python
    ~24x the body's size: refused from an estimate, before parsing."""
    simulator, source, proxy, path, source_id = await _start(
        provider, calendly, google, hostile, max_response_bytes=MiB, max_attempts=2
    )
    key = "collection" if provider == "calendly" else "items"

    def expand(page: dict[str, Any]) -> dict[str, Any]:
        return {**page, key: [{"details": {"x": [{}] * 300_000}}, *page.get(key, [])[1:]]}

    proxy.push(path, rewrite_json(expand), count=2)
    async with SourcePipeline(source, tmp_path, metrics, clock) as pipeline:
        assert not await pipeline.poll()
        assert pipeline.runner.last_error_type == "response_too_large"
        assert "once parsed" in pipeline.runner.last_error
        assert (
            pipeline.sample(
                "forwarder_source_errors_total", source=source_id, error_type="response_too_large"
            )
            == 2
        )
        assert await pipeline.poll()
        assert pipeline.delivered == _truth(provider, simulator)
