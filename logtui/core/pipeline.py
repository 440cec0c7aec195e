"""From raw lines to filtered, enriched event batches: parse, time, enrich, filter.

Pure and thread-safe per source: the batch reader calls `Source.events` from worker
threads on separate chunks, the live tailer from one worker, and neither touches the UI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from logtui.core.enrich import Enricher
from logtui.core.filters import Filter
from logtui.core.formats import AutoFormat, LineFormat, get_format


def fill_times(frame: pl.DataFrame, fallback: float) -> pl.DataFrame:
    """Give every event a time: a line without one (unparsed, or a record with no
    timestamp) takes its neighbour's, so it lands in the right bucket."""
    time = pl.col("time")
    return frame.with_columns(time.forward_fill().backward_fill().fill_null(fallback))


@dataclass
class Pipeline:
    """What every source shares: the format spec, enrichment and the filter."""

    format_spec: str
    enricher: Enricher
    filter: Filter

    def source(self, tag: str) -> Source:
        return Source(tag, get_format(self.format_spec), self)


@dataclass
class Source:
    tag: str
    format: LineFormat
    pipeline: Pipeline
    last_time: float = -math.inf
    lines: int = 0

    @property
    def format_name(self) -> str:
        """What the source is parsed as: 'combined', or 'auto:json' once detected."""
        if isinstance(self.format, AutoFormat):
            return f"auto:{self.format.chosen.name}" if self.format.chosen else "auto"
        return self.format.name

    def events(self, lines: Sequence[str] | pl.Series, fallback_time: float) -> pl.DataFrame:
        """Parse, time, enrich and filter one batch of this source's lines."""
        series = lines if isinstance(lines, pl.Series) else pl.Series(lines, dtype=pl.String)
        self.lines += len(series)
        frame = self.format.parse(series, self.tag)
        known = self.last_time if self.last_time > -math.inf else fallback_time
        frame = fill_times(frame, known)
        if not frame.is_empty():
            self.last_time = max(self.last_time, frame["time"][-1])
        frame = self.pipeline.enricher.apply(frame)
        return self.pipeline.filter.apply(frame)
