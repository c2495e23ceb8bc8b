"""BatchHistogram exposes exactly what prometheus_client's Histogram does for the same
values, however they are split into batches."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from forwarder.observability.metrics import DELIVERY_LAG_BUCKETS, BatchHistogram

# Values on the bucket bounds matter most: le is inclusive.
_VALUES = st.one_of(
    st.sampled_from([float(bound) for bound in DELIVERY_LAG_BUCKETS]),
    st.floats(min_value=-10, max_value=1e7, allow_nan=False),
)


def _samples(registry: CollectorRegistry) -> dict[str, float]:
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith("#") or "_created" in line:
            continue
        series, value = line.rsplit(" ", 1)
        samples[series] = float(value)
    return samples


@given(
    batches=st.lists(st.tuples(st.sampled_from(["kafka", "file"]), st.lists(_VALUES))),
)
def test_same_exposition_as_prometheus_client(batches: list[tuple[str, list[float]]]) -> None:
    reference_registry = CollectorRegistry()
    reference = Histogram(
        "lag_seconds", "Lag.", ["sink"], buckets=DELIVERY_LAG_BUCKETS, registry=reference_registry
    )
    registry = CollectorRegistry()
    histogram = BatchHistogram("lag_seconds", "Lag.", "sink", DELIVERY_LAG_BUCKETS)
    registry.register(histogram)
    for sink, values in batches:
        reference.labels(sink)  # a series exists once its label is used, as in the worker
        for value in values:
            reference.labels(sink).observe(value)
        histogram.observe_many(sink, values)
    expected, actual = _samples(reference_registry), _samples(registry)
    assert actual.keys() == expected.keys()
    for series, value in expected.items():
        assert math.isclose(actual[series], value, rel_tol=1e-9, abs_tol=1e-9), series


def test_counts_are_cumulative_and_inclusive() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("lag_seconds", "Lag.", "sink", (1, 5))
    registry.register(histogram)
    histogram.observe_many("s", [0.5, 1.0, 1.5, 5.0])
    histogram.observe_many("s", [6.0])
    samples = _samples(registry)
    assert samples['lag_seconds_bucket{le="1.0",sink="s"}'] == 2
    assert samples['lag_seconds_bucket{le="5.0",sink="s"}'] == 4
    assert samples['lag_seconds_bucket{le="+Inf",sink="s"}'] == 5
    assert samples['lag_seconds_count{sink="s"}'] == 5
    assert samples['lag_seconds_sum{sink="s"}'] == 14.0
