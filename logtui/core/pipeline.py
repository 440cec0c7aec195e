"""From raw lines to filtered, enriched event batches: parse, time, enrich, filter.

Pure and thread-safe per source: the batch reader calls `Source.events` from worker
threads on separate chunks, the live tailer from one worker, and neither touches the UI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from logtui.core.endpoints import with_endpoints
from logtui.core.enrich import Enricher
from logtui.core.event import conform, usable_numbers, usable_time
from logtui.core.filters import Filter
from logtui.core.formats import AutoFormat, LineFormat, get_format
from logtui.core.formats.records import JSON_ALIASES, plain, records_frame, shapes_of
from logtui.core.lines import MAX_LINE


def fill_times(frame: pl.LazyFrame, fallback: float) -> pl.LazyFrame:
    """Give every event a time: a line without one (unparsed, or a record with no
    timestamp) takes its neighbour's, so it lands in the right bucket."""
    time = pl.col("time")
    return frame.with_columns(time.forward_fill().backward_fill().fill_null(fallback))


# Columns the pipeline derives from others: enrichment (bot, country), templates (endpoint).
DERIVED = frozenset(("bot", "country", "endpoint"))


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

    @property
    def defers_derived(self) -> bool:
        """Whether the derived columns may be filled after filtering (the filter does not
        read them): a batch reader then fills them once per fold, on many chunks at a time,
        where each distinct user agent and path is looked up fewer times."""
        return DERIVED.isdisjoint(self.pipeline.filter.expr.meta.root_names())

    def events(self, lines: Sequence[str] | pl.Series, fallback_time: float, *,
               derive: bool = True, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """Parse, time, enrich and filter one batch of this source's lines, keeping only
        `columns` if given. With `derive=False` (only when `defers_derived`) the caller
        fills the derived columns with `derive`, and one query times, filters and selects."""
        series = lines if isinstance(lines, pl.Series) else pl.Series(lines, dtype=pl.String)
        self.lines += len(series)
        frame = self.format.parse(series, self.tag).with_columns(usable_numbers())
        known = self.last_time if self.last_time > -math.inf else fallback_time
        if not frame.is_empty():   # the time the last line gets from fill_times
            times = frame["time"].drop_nulls()
            self.last_time = max(self.last_time, times[-1] if len(times) else known)
        timed = fill_times(frame.lazy(), known)
        if derive:   # enrichment looks values up in Python: it needs the rows
            events = self.pipeline.filter.apply(self.derive(timed.collect(engine="in-memory")))
            return events if columns is None else events.select(columns)
        events = self.pipeline.filter.apply(timed)
        return (events if columns is None else events.select(columns)).collect(engine="in-memory")

    def records(self, records: Sequence[Mapping[str, Any]], times: Sequence[float]
                ) -> pl.DataFrame:
        """A batch of structured records (forwarded events) with their own times.

        A record that is only a log line in a `log` or `message` field (Fluent Bit's and
        Fluentd's tail inputs send those) is parsed as a line of this source's format.
        Records come from the network: one that cannot be read (bytes, keys that are not
        text, a line nested too deep) is counted as an unparsed event, and the rest of
        its batch is read as usual."""
        self.lines += len(records)
        try:
            frame = self._records_frame(records, times)
        except UNREADABLE:
            frame = self._records_apart([plain(record) for record in records], times)
        return self._finish(frame)

    def _records_frame(self, records: Sequence[Mapping[str, Any]], times: Sequence[float]
                       ) -> pl.DataFrame:
        shapes = shapes_of(records)
        # no `line`: text_of() writes one out when something reads it
        frame = records_frame(records, JSON_ALIASES, shapes).with_columns(
            parsed=pl.lit(True), tag=pl.lit(self.tag), line=pl.lit(None, dtype=pl.String))
        # most senders parse their records: look for line fields once per shape of record
        if any(not _LINE_KEYS.isdisjoint(keys) for keys in shapes):
            frame = self._parse_carried_lines(frame, [_line_of(record) for record in records])
        return self._timed(conform(frame), times)

    def _records_apart(self, records: Sequence[Mapping[str, Any]], times: Sequence[float]
                       ) -> pl.DataFrame:
        """Read the records half a batch at a time until what fails is one record, which
        becomes an unparsed event: a few bad records cost a few reads each, not one per
        record of the batch."""
        try:
            return self._records_frame(records, times)
        except UNREADABLE:
            if len(records) == 1:
                text = json.dumps(records[0], ensure_ascii=False, default=str)[:MAX_LINE]
                unread = pl.DataFrame({"tag": [self.tag], "line": [text], "parsed": [False]})
                return self._timed(conform(unread), times)
            half = len(records) // 2
            return pl.concat([self._records_apart(records[:half], times[:half]),
                              self._records_apart(records[half:], times[half:])])

    def _timed(self, frame: pl.DataFrame, times: Sequence[float]) -> pl.DataFrame:
        """The record's own time if usable, else the sender's if usable, else a
        neighbour's."""
        sent = usable_time(pl.lit(pl.Series(times, dtype=pl.Float64)))
        frame = frame.lazy().with_columns(usable_numbers()).with_columns(
            pl.col("time").fill_null(sent))
        known = self.last_time if self.last_time > -math.inf else 0.0
        return fill_times(frame, known).collect(engine="in-memory")

    def _parse_carried_lines(self, frame: pl.DataFrame, carried: list[str | None]
                             ) -> pl.DataFrame:
        """`frame` with the line each record carries, and those records that are nothing
        but a line replaced by the line parsed."""
        frame = frame.with_columns(line=pl.Series(carried, dtype=pl.String))
        holders = frame.with_row_index("_row").filter(
            pl.col("status").is_null() & pl.col("path").is_null()
            & pl.Series([line is not None for line in carried]))
        if holders.is_empty():
            return frame
        rows = holders["_row"]
        parsed = self.format.parse(holders["line"], self.tag).with_columns(_row=rows)
        return (frame.with_row_index("_row").filter(~pl.col("_row").is_in(rows.implode()))
                .pipe(lambda rest: pl.concat([conform_rows(rest), conform_rows(parsed)]))
                .sort("_row").drop("_row"))

    def derive(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` with its derived columns filled: crawler, country and endpoint."""
        return with_endpoints(self.pipeline.enricher.apply(frame))

    def _finish(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not frame.is_empty():
            self.last_time = max(self.last_time, frame["time"][-1])
        return self.pipeline.filter.apply(self.derive(frame))


LINE_FIELDS = ("log", "message")   # in the order they are tried
# What reading a batch of network records may raise (a Rust panic is no Exception).
UNREADABLE = (Exception, pl.exceptions.PanicException)
_LINE_KEYS = frozenset(LINE_FIELDS)


def _line_of(record: Mapping[str, Any]) -> str | None:
    for key in LINE_FIELDS:
        value = record.get(key)
        if isinstance(value, bytes):   # msgpack bin, from older senders
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            return value.rstrip("\r\n")
    return None


def conform_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """conform, keeping a `_row` index column for re-ordering."""
    return conform(frame).with_columns(frame["_row"].cast(pl.UInt32))
