"""The normalised event model shared by every source, panel and filter.

One event is Fluentd's triple (tag, time, record). Inside the core, events travel in
columnar batches (polars DataFrames) with the fixed schema below, so that parsing,
filtering and aggregation run vectorised over thousands of lines at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

# Access-log fields with numbers (the others are text); see SCHEMA for them all.
NUMERIC_FIELDS = ("status", "bytes", "latency")

SCHEMA: dict[str, pl.DataType] = {
    "tag": pl.String(),        # the source: file path, "-" for stdin, or a forward tag
    "time": pl.Float64(),      # seconds since the epoch (UTC)
    "line": pl.String(),       # the raw text (null for a record sent without one: text_of)
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
    "country": pl.String(),    # ISO 3166 code from the source or --geoip, or null
    "endpoint": pl.String(),   # the path's template (/users/{id}), filled by the pipeline
    "fields": pl.String(),     # every other record field, as a JSON object (or null)
}


def text_of() -> pl.Expr:
    """An event's text, for text search and the log stream: its line or, for a record
    sent without one, its normalised fields in access-log order, then the rest as JSON.
    Written out only when read: most forwarded records are counted and never shown, and
    the text would double what the store keeps of them."""
    request = pl.concat_str(pl.col("method"), pl.col("path"), separator=" ", ignore_nulls=True)
    parts = [pl.col("ip"), pl.concat_str(pl.lit('"'), pl.when(request != "").then(request),
                                          pl.lit('"')),
             pl.col("status"), pl.col("bytes"), pl.col("latency"),
             pl.concat_str(pl.lit('"'), pl.col("ua"), pl.lit('"')), pl.col("fields")]
    written = pl.concat_str([p.cast(pl.String).fill_null("-") for p in parts], separator=" ")
    return pl.coalesce(pl.col("line"), written)


# The times a log line can sensibly carry: from 1970 to 2106 (32-bit unsigned seconds).
LATEST_TIME = float(2**32)


def usable_time(time: pl.Expr) -> pl.Expr:
    """A time with garbage (NaN, infinities, before 1970 or after 2106) as null, as a '-'
    would be: a line may say anything, and one such value must not stop the rest from
    being counted. A time left null is the neighbour's (fill_times)."""
    return pl.when(time.is_finite() & (time >= 0) & (time < LATEST_TIME)).then(time)


def usable_numbers() -> list[pl.Expr]:
    """`time` and `latency` with garbage as null (usable_time; a latency must be finite)."""
    latency = pl.col("latency")
    return [usable_time(pl.col("time")).alias("time"),
            pl.when(latency.is_finite()).then(latency).alias("latency")]


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing schema columns as nulls, cast, and order them as SCHEMA does."""
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in SCHEMA.items()
               if name not in frame.columns]
    if missing:
        frame = frame.with_columns(missing)
    return frame.select(pl.col(name).cast(dtype) for name, dtype in SCHEMA.items())


@dataclass(slots=True)
class Event:
    """One event as the forward protocol delivers it (the record as sent)."""

    tag: str
    time: float
    record: dict[str, Any] = field(default_factory=dict)
