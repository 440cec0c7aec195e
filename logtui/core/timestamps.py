"""Timestamps as they appear in access logs, to epoch seconds.

Two forms of the same rules: `parse_timestamp` for one value (JSON, LTSV) and the
`*_expr` functions for a whole column at once (regex formats). Zones are honoured;
a time without a zone is read in the local zone, as the server wrote it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import polars as pl

MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

# Apache/nginx $time_local: 10/Oct/2000:13:55:36 -0700 (brackets optional).
CLF = re.compile(
    r"\[?(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?: ?([+-]\d{2}):?(\d{2}))?\]?$"
)
CLF_POLARS_FORMAT = "%d/%b/%Y:%H:%M:%S %z"

# Epoch numbers are told apart by magnitude: seconds until the year 5138, then ms, us, ns.
_EPOCH_SCALES = ((1e17, 1e-9), (1e14, 1e-6), (1e11, 1e-3))


def epoch_seconds(value: float) -> float:
    for threshold, scale in _EPOCH_SCALES:
        if abs(value) >= threshold:
            return value * scale
    return float(value)


@lru_cache(maxsize=4096)
def _zone(sign_hours: str, minutes: str) -> timezone:
    hours = int(sign_hours)
    offset = timedelta(hours=abs(hours), minutes=int(minutes))
    return timezone(-offset if sign_hours.startswith("-") else offset)


def _parse_clf(match: re.Match[str]) -> float | None:
    day, month, year, hour, minute, second, fraction, zone_h, zone_m = match.groups()
    month_number = MONTHS.get(month.lower())
    if month_number is None:
        return None
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = _zone(zone_h, zone_m) if zone_h else None
    try:
        moment = datetime(int(year), month_number, int(day), int(hour), int(minute),
                          int(second), micros, tzinfo=tz)
    except ValueError:
        return None
    return moment.timestamp()


def parse_timestamp(value: object) -> float | None:
    """Epoch seconds from a number, digits, CLF or ISO 8601 text; None when unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return epoch_seconds(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text == "-":
        return None
    if text[0].isdigit() and text.replace(".", "", 1).isdigit():
        return epoch_seconds(float(text))
    if match := CLF.match(text):
        return _parse_clf(match)
    try:
        # Python 3.11 reads every ISO 8601 form access logs use ('Z', offsets, fractions).
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


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
    """Vectorised $msec and other epoch numbers, scaled by magnitude like epoch_seconds."""
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
