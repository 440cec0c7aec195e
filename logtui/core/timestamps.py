"""Timestamps as they appear in access logs, to epoch seconds, a whole column at once.

Zones are honoured; a time without a zone is read in the local zone, as the server
wrote it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

CLF_POLARS_FORMAT = "%d/%b/%Y:%H:%M:%S %z"

# Epoch numbers are told apart by magnitude: seconds until the year 5138, then ms, us, ns.
_EPOCH_SCALES = ((1e17, 1e-9), (1e14, 1e-6), (1e11, 1e-3))


def _micros_to_seconds(datetimes: pl.Expr) -> pl.Expr:
    return datetimes.dt.epoch("us").cast(pl.Float64) / 1e6


def clf_expr(column: pl.Expr) -> pl.Expr:
    """Vectorised $time_local (the zone is always present in this form)."""
    text = column.str.strip_chars("[]")
    return _micros_to_seconds(text.str.strptime(pl.Datetime("us", "UTC"), CLF_POLARS_FORMAT,
                                                strict=False))


def iso_expr(column: pl.Expr) -> pl.Expr:
    """Vectorised $time_iso8601 with a zone ('Z' or an offset)."""
    return _micros_to_seconds(column.str.strptime(pl.Datetime("us", "UTC"), "%+", strict=False))


def epoch_expr(column: pl.Expr) -> pl.Expr:
    """Vectorised $msec and other epoch numbers, scaled by their magnitude."""
    number = column.cast(pl.Float64, strict=False)
    expr = number
    for threshold, scale in reversed(_EPOCH_SCALES):
        expr = pl.when(number.abs() >= threshold).then(number * scale).otherwise(expr)
    return expr


def _local_offsets(hours: pl.Series) -> pl.Series:
    """Microseconds to subtract from a wall-clock hour (read as UTC) to get the epoch."""
    table: dict[int, int | None] = {}
    for hour in hours.drop_nulls().unique().to_list():
        wall = datetime(1970, 1, 1) + timedelta(hours=hour)
        try:
            # a naive datetime's timestamp() asks the C library, DST rules included
            table[hour] = round((hour * 3600 - wall.timestamp()) * 1e6)
        except (OverflowError, OSError, ValueError):
            table[hour] = None
    return hours.replace_strict(table, default=None, return_dtype=pl.Int64)


def naive_local_expr(naive: pl.Expr) -> pl.Expr:
    """Vectorised zone-less datetimes read in the local zone, as `parse_timestamp` does.

    The offset is looked up once per distinct hour, so a batch costs a few calls.
    """
    micros = naive.dt.epoch("us")
    offsets = (micros // 3_600_000_000).map_batches(_local_offsets, return_dtype=pl.Int64)
    return (micros - offsets).cast(pl.Float64) / 1e6
