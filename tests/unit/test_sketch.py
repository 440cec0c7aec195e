import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtui.core.event import conform
from logtui.core.sketch import RELATIVE_ACCURACY, LatencySketch
from logtui.core.stats import fold

latencies = st.lists(
    st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=1, max_size=300)


def sketch_of(values: list[float]) -> LatencySketch:
    sketch = LatencySketch()
    for value in values:
        sketch.add(value)
    return sketch


@given(latencies, st.sampled_from([0.0, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_quantiles_are_within_the_relative_accuracy_of_numpys(
        values: list[float], q: float) -> None:
    exact = float(np.percentile(values, q * 100))   # linear between neighbouring ranks
    estimate = sketch_of(values).quantile(q)
    assert estimate is not None
    # values under 1e-9 count as 0: that much absolute error on top of the relative one
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact * (1 + 1e-9) + 1e-9


def test_a_small_sample_reaches_its_slowest_value_at_the_top_percentiles() -> None:
    sketch = sketch_of([0.1] * 11 + [60.0])
    assert sketch.quantile(0.99) == pytest.approx(np.percentile([0.1] * 11 + [60.0], 99),
                                                  rel=RELATIVE_ACCURACY)
    assert sketch.quantile(1.0) == 60.0 and sketch.quantile(0.0) == 0.1


@given(latencies, latencies)
def test_merging_equals_sketching_everything_at_once(a: list[float], b: list[float]) -> None:
    merged = sketch_of(a)
    merged.merge(sketch_of(b))
    together = sketch_of(a + b)
    assert merged.bins == together.bins
    assert (merged.count, merged.zeros, merged.low, merged.high) == (
        together.count, together.zeros, together.low, together.high)
    assert math.isclose(merged.total, together.total, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=30)
@given(latencies)
def test_vectorised_folding_bins_exactly_like_adding_one_by_one(values: list[float]) -> None:
    frame = conform(pl.DataFrame({"time": [0.0] * len(values), "latency": values,
                                  "parsed": [True] * len(values)}))
    folded = fold(frame, 10.0)[0].latency
    one_by_one = sketch_of(values)
    assert folded.bins == one_by_one.bins
    assert folded.zeros == one_by_one.zeros and folded.count == one_by_one.count


def test_percentiles_of_a_million_lognormal_latencies_match_numpy_within_one_percent() -> None:
    rng = np.random.default_rng(7)
    values = np.round(rng.lognormal(-3, 1, 1_000_000), 3)
    frame = conform(pl.DataFrame({"time": np.zeros(len(values)), "latency": values,
                                  "parsed": np.ones(len(values), dtype=bool)}))
    summary = fold(frame, 10.0)[0].latency.summary()
    for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        exact = float(np.percentile(values, q))
        assert abs(summary[name] - exact) <= 0.01 * exact, name
    assert summary["min"] == values.min() and summary["max"] == values.max()
    assert math.isclose(summary["mean"], values.mean(), rel_tol=1e-9)


def test_an_empty_sketch_reports_no_values() -> None:
    assert LatencySketch().summary()["p99"] is None
    assert LatencySketch().quantile(0.5) is None
