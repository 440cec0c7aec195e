"""The batch reader (`--once`) against one fold of the whole input: chunking, parallel
parsing and filling derived columns per fold must not change what is counted."""

from __future__ import annotations

import io

import polars as pl
import pytest

from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.core.stats import RollingStats
from logtui.sources.batch import BatchReader
from logtui.synthetic import TrafficModel, combined_line

# Enough lines for many chunks and several folds (512 KiB chunks, 20,000 rows a fold).
LINES = [combined_line(r) for r in TrafficModel(seed=5, clients=20_000).requests(
    60_000, start=1_700_000_000, rate=200)]


def summary(stats: RollingStats) -> dict[str, object]:
    """What both must count exactly: top paths are Misra-Gries estimates, and endpoints
    are capped per fold (a hundred /static/app.N.js), so only templated ones are exact."""
    snapshot = stats.snapshot(top=20)
    return {key: snapshot[key] for key in ("total", "status", "bots", "top_uas")} | {
        "endpoints": sorted((e["endpoint"], e["count"], e["errors"])
                            for e in snapshot["endpoints"] if "{" in e["endpoint"])}


@pytest.mark.parametrize("text", ["", "status:>=400", "bot:Googlebot",
                                  "endpoint:/api/v1/users/{id}"])
def test_chunked_parallel_read_counts_what_one_fold_of_everything_counts(text: str) -> None:
    pipeline = Pipeline("combined", Enricher.default(), compile_filter(text))
    # derived columns are filled late unless the filter reads them
    assert pipeline.source("x").defers_derived == (text in ("", "status:>=400"))

    expected = RollingStats(None, 10.0)
    expected.add(pipeline.source("x").events(pl.Series(LINES), 0.0))

    read = RollingStats(None, 10.0)
    reader = BatchReader(read)
    try:
        reader.read(io.BytesIO("\n".join(LINES).encode()), pipeline.source("x"), 0.0)
    finally:
        reader.close()
    assert summary(read) == summary(expected)
    counted = summary(read)
    assert counted["total"] > 0 and counted["bots"] and counted["endpoints"]
