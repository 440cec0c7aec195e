"""The normalised event model shared by every source, panel and filter.

One event is Fluentd's triple (tag, time, record). Inside the core, events travel in
columnar batches (polars DataFrames) with the fixed schema below, so that parsing,
filtering and aggregation run vectorised over thousands of lines at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

# Access-log fields every format is normalised into (DESIGN.md, "Data model").
STRING_FIELDS = ("ip", "method", "path", "host", "ua", "referer", "level", "bot", "country")
NUMERIC_FIELDS = ("status", "bytes", "latency")
RECORD_FIELDS = ("ip", "method", "path", "status", "bytes", "latency", "ua", "referer", "host",
                 "level", "bot", "country")

SCHEMA: dict[str, pl.DataType] = {
    "tag": pl.String(),        # the source: file path, "-" for stdin, or a forward tag
    "time": pl.Float64(),      # seconds since the epoch (UTC)
    "line": pl.String(),       # the raw text, for text search and the log stream
    "parsed": pl.Boolean(),    # False: the line matched no format (an "unparsed" event)
    "ip": pl.String(),
    "method": pl.String(),
    "path": pl.String(),
    "status": pl.Int32(),
    "bytes": pl.Int64(),
    "latency": pl.Float64(),   # seconds
    "ua": pl.String(),
    "referer": pl.String(),
    "host": pl.String(),
    "level": pl.String(),
    "bot": pl.String(),        # readable crawler name, or null for humans
    "country": pl.String(),    # ISO 3166 code from --geoip, or null
    "fields": pl.String(),     # every other record field, as a JSON object (or null)
}
COLUMNS = tuple(SCHEMA)


def empty_batch() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing schema columns as nulls, cast, and order them as SCHEMA does."""
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in SCHEMA.items()
               if name not in frame.columns]
    if missing:
        frame = frame.with_columns(missing)
    return frame.select(pl.col(name).cast(dtype) for name, dtype in SCHEMA.items())


@dataclass(slots=True)
class Event:
    """One event as a row: what a viewer receives and the log stream shows."""

    tag: str
    time: float
    record: dict[str, Any] = field(default_factory=dict)
    line: str = ""
    parsed: bool = True

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Event:
        record = {name: row[name] for name in RECORD_FIELDS if row.get(name) is not None}
        if row.get("fields"):
            record.update(json.loads(row["fields"]))
        if not row["parsed"]:
            record = {"message": row["line"]}
        return cls(tag=row["tag"], time=row["time"], record=record, line=row["line"] or "",
                   parsed=bool(row["parsed"]))


def events(batch: pl.DataFrame) -> list[Event]:
    return [Event.from_row(row) for row in batch.iter_rows(named=True)]
