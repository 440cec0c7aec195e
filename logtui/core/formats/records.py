"""Structured records (JSON, LTSV, forwarded events) mapped onto the normalised fields.

Real services name the same thing many ways (`status`, `status_code`, `EdgeResponseStatus`,
Caddy's nested `request.method`, ECS `http.response.status_code`). An `AliasTable` lists
the names per field; lookups ignore case, and durations are scaled by their unit suffix
(`duration_ms`, `latency_us`, `OriginResponseDurationMs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import polars as pl

from logtui.core.event import SCHEMA
from logtui.core.timestamps import clf_expr, epoch_expr, iso_expr, naive_local_expr

REQUEST_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*) (\S+)(?: (\S+))?$")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Suffixes that scale a duration field to seconds, tried after the bare name.
DURATION_SUFFIXES = (("_ms", 1e-3), ("ms", 1e-3), ("_us", 1e-6), ("_micros", 1e-6),
                     ("_microsec", 1e-6), ("_ns", 1e-9), ("_s", 1.0), ("_sec", 1.0))
# Durations whose unit is in their definition rather than their name (ECS: nanoseconds).
DURATION_UNITS = {"event.duration": 1e-9}


@dataclass(frozen=True)
class AliasTable:
    """Names (lower case; dots descend into nested objects) per normalised field."""

    ip: Sequence[str]
    method: Sequence[str]
    path: Sequence[str]
    status: Sequence[str]
    bytes: Sequence[str]
    latency: Sequence[str]
    ua: Sequence[str]
    referer: Sequence[str]
    host: Sequence[str]
    country: Sequence[str]
    time: Sequence[str]
    level: Sequence[str]
    request: Sequence[str]


JSON_ALIASES = AliasTable(
    ip=("remote_addr", "client_ip", "ip", "remote_ip", "clientip", "client", "src_ip",
        "request.client_ip", "request.remote_ip", "client.ip", "source.ip",
        "http_x_forwarded_for"),
    method=("method", "request_method", "http_method", "verb", "clientrequestmethod",
            "request.method", "http.request.method"),
    path=("path", "uri", "request_uri", "url", "clientrequesturi", "request.uri",
          "url.original", "url.path"),
    status=("status", "status_code", "code", "statuscode", "response_status",
            "edgeresponsestatus", "http.response.status_code", "response.status"),
    bytes=("bytes", "body_bytes_sent", "bytes_sent", "size", "body_bytes", "response_size",
           "resp_size", "edgeresponsebytes", "http.response.body.bytes"),
    latency=("request_time", "duration", "latency", "elapsed", "response_time", "took",
             "originresponseduration", "upstream_response_time", "event.duration"),
    ua=("user_agent", "http_user_agent", "ua", "useragent", "agent",
        "clientrequestuseragent", "request.headers.user-agent", "user_agent.original"),
    referer=("referer", "referrer", "http_referer", "clientrequestreferer",
             "request.headers.referer", "http.request.referrer"),
    host=("host", "server_name", "vhost", "http_host", "clientrequesthost", "request.host",
          "url.domain"),
    # a CDN's or a log shipper's own lookup: Cloudflare, Logstash's geoip filter, ECS
    country=("country", "country_code", "clientcountry", "geoip.country_code2",
             "geoip.country_code", "geoip.country_iso_code", "client.geo.country_iso_code",
             "source.geo.country_iso_code"),
    time=("time", "timestamp", "ts", "@timestamp", "time_local", "time_iso8601", "datetime",
          "date", "edgestarttimestamp", "msec", "start_time"),
    level=("level", "lvl", "severity", "loglevel", "log.level"),
    request=("request",),
)

# ltsv.org labels: note that `host` is the client there, and `vhost` the server name.
LTSV_ALIASES = AliasTable(
    ip=("host", "remote_addr", "forwardedfor", "client_ip"),
    method=("method",),
    path=("uri", "path", "request_uri"),
    status=("status",),
    bytes=("size", "body_bytes", "bytes_sent", "body_bytes_sent"),
    latency=("reqtime", "request_time", "apptime", "runtime", "upstream_response_time"),
    ua=("ua", "user_agent"),
    referer=("referer",),
    host=("vhost", "server_name", "http_host"),
    country=("country", "country_code"),
    time=("time", "timestamp", "epoch"),
    level=("level",),
    request=("req", "request"),
)


# Nesting kept by `plain`; below it a value is its text (JSON lines stop near 1000 too).
PLAIN_DEPTH = 64


def plain(value: Any, depth: int = 0) -> Any:
    """`value` as JSON holds it: text keys, bytes decoded as UTF-8 (invalid bytes
    replaced), anything else as its text. msgpack senders may send all of these."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if depth < PLAIN_DEPTH and isinstance(value, Mapping):
        return {key if isinstance(key, str) else str(plain(key, depth + 1)):
                plain(item, depth + 1) for key, item in value.items()}
    if depth < PLAIN_DEPTH and isinstance(value, list | tuple):
        return [plain(item, depth + 1) for item in value]
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == "-"


@dataclass(frozen=True)
class _Candidate:
    """Where one alias is found in records of a given shape."""

    key: str                  # the record's own top-level key
    path: tuple[str, ...]     # lower-case names below it (Caddy's request.method)
    scale: float = 1.0        # a duration unit suffix turned into seconds


Plan = dict[str, tuple[_Candidate, ...]]
_PLANS: dict[tuple[int, tuple[str, ...]], Plan] = {}
_MAX_PLANS = 4096
# What records_frame returns, in this order.
RECORD_COLUMNS = ("time", "ip", "method", "path", "status", "bytes", "latency", "ua", "referer",
                  "host", "country", "level", "fields")
PLANNED_FIELDS = ("ip", "method", "path", "status", "bytes", "latency", "ua", "referer", "host",
                  "country", "time", "level", "request")


def _plan(keys: tuple[str, ...], aliases: AliasTable) -> Plan:
    """Which keys of records with these keys answer each field, in alias order.

    A stream's records mostly share a few shapes, so this runs once per shape, not once
    per record: the per-record work is then a handful of dictionary reads."""
    cached = _PLANS.get((id(aliases), keys))
    if cached is not None:
        return cached
    lower = {key.lower(): key for key in keys}
    plan: Plan = {}
    for field in PLANNED_FIELDS:
        suffixes = (("", 1.0), *DURATION_SUFFIXES) if field == "latency" else (("", 1.0),)
        candidates = []
        for name in getattr(aliases, field):
            unit = DURATION_UNITS.get(name)
            for suffix, scale in suffixes if unit is None else (("", unit),):
                variant = name + suffix
                first, _, rest = variant.partition(".")
                if first in lower:
                    path = tuple(rest.split(".")) if rest else ()
                    candidates.append(_Candidate(lower[first], path, scale))
                elif rest and variant in lower:
                    # some producers put dots in flat keys ("log.level")
                    candidates.append(_Candidate(lower[variant], (), scale))
        plan[field] = tuple(candidates)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[(id(aliases), keys)] = plan
    return plan


def _scalar_plan(plan: Plan, record: Mapping[str, Any]) -> Plan:
    """`plan` without the names that hold an object in records of this shape: in nested
    ECS, `url` is {"path": ...} and `user_agent` {"original": ...}, and the field is
    the `url.path` or `user_agent.original` further down the list."""
    return {field: tuple(c for c in options
                         if c.path or not isinstance(record[c.key], Mapping))
            for field, options in plan.items()}


def _value(record: Mapping[str, Any], candidate: _Candidate) -> Any:
    value = record[candidate.key]
    for part in candidate.path:
        if not isinstance(value, Mapping):
            return None
        value = next((v for k, v in value.items() if k.lower() == part), None)
    if isinstance(value, list):   # Caddy headers: {"User-Agent": ["..."]}
        value = value[0] if value else None
    return None if _missing(value) else value


def _missing_as_null(column: pl.Expr) -> pl.Expr:
    return pl.when(column.str.strip_chars().is_in(["-", ""])).then(None).otherwise(column)


def _duration_expr(text: pl.Expr, scale: float, numbers_only: bool = False) -> pl.Expr:
    """A duration: a number (times `scale`), Go text such as '1.5ms', or a list of
    upstream times '0.100, 0.004' (summed). `numbers_only` when the caller knows every
    value is a plain number: the two text forms cost ten times as much to try."""
    number = text.cast(pl.Float64, strict=False) * scale
    if numbers_only:
        return number
    go = text.str.extract_groups(r"^\s*(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)\s*$")
    go_seconds = go.struct.field("1").cast(pl.Float64) * go.struct.field("2").replace_strict(
        UNIT_SECONDS, default=None, return_dtype=pl.Float64)
    parts = text.str.extract_all(r"\d+(?:\.\d+)?").list.eval(pl.element().cast(pl.Float64))
    listed = pl.when(text.str.contains(r"^[\d.\s,:]+$") & (parts.list.len() > 0)).then(
        parts.list.sum() * scale)
    return pl.coalesce(number, go_seconds, listed)


TIME_KINDS = {
    "clf": re.compile(r"^\[?\d{1,2}/[A-Za-z]{3}/\d{4}:"),
    "zoned": re.compile(r"^\d{4}-\d{2}-\d{2}[T ][\d:.]+(Z|[+-]\d{2}:?\d{2})$"),
    "naive": re.compile(r"^\d{4}-\d{2}-\d{2}[T ][\d:.]+$"),
}


def time_kind(value: Any) -> str:
    """How a record's time is written, judged from one value: records of one shape nearly
    always write it the same way, so their column is parsed one way only."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "epoch"
    if isinstance(value, str):
        if value.replace(".", "", 1).isdigit():
            return "epoch"
        for kind, pattern in TIME_KINDS.items():
            if pattern.match(value):
                return kind
    return "any"


def _time_expr(text: pl.Expr, kind: str) -> pl.Expr:
    """A time column: epoch numbers by magnitude, CLF, ISO 8601 with a zone, or without
    one (read as local time, as the server wrote it)."""
    naive = pl.coalesce(
        text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False),
        text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False),
    )
    parsers = {"epoch": epoch_expr(text), "clf": clf_expr(text),
               "zoned": iso_expr(text), "naive": naive_local_expr(naive)}
    # one parser when the kind is known: the odd record written another way gets no time
    # of its own and takes its neighbour's, as an unparsed line does
    return parsers[kind] if kind in parsers else pl.coalesce(*parsers.values())


NONE = "_none"


def _candidate_values(records: Sequence[Mapping[str, Any]], candidate: _Candidate) -> pl.Series:
    if candidate.path:
        values = [_value(record, candidate) for record in records]
    else:
        values = list(map(itemgetter(candidate.key), records))
    return pl.Series(values, dtype=pl.String, strict=False)


def _top_level_text(records: Sequence[Mapping[str, Any]], keys: list[str]
                    ) -> pl.DataFrame | None:
    """The values under `keys` as text, converted in Rust (a third faster than a Series
    per key); None when a value is not a scalar polars turns into text as Python would."""
    try:
        return pl.from_dicts(records, schema=dict.fromkeys(keys, pl.String), strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        return None


def _all_numbers(column: pl.Series) -> bool:
    return column.cast(pl.Float64, strict=False).null_count() == column.null_count()


def _shape_frame(records: Sequence[Mapping[str, Any]], plan: Plan) -> pl.DataFrame:
    """The normalised columns of records that all have the same keys."""
    candidates = {f"{field}.{index}": candidate for field, options in plan.items()
                  for index, candidate in enumerate(options)}
    top = _top_level_text(records, list(dict.fromkeys(
        candidate.key for candidate in candidates.values() if not candidate.path)))
    columns = {name: top[candidate.key] if top is not None and not candidate.path
               else _candidate_values(records, candidate)
               for name, candidate in candidates.items()}
    # a column of nulls stands in for fields no key answers (a literal would be one row
    # long, which the per-batch Python step of local times cannot broadcast)
    columns[NONE] = pl.Series([None] * len(records), dtype=pl.String)
    frame = pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))

    def first(field: str) -> pl.Expr:
        options = [_missing_as_null(pl.col(f"{field}.{i}")) for i in range(len(plan[field]))]
        return pl.coalesce(options) if options else pl.col(NONE)

    latencies = [_duration_expr(_missing_as_null(pl.col(f"latency.{i}")), candidate.scale,
                                _all_numbers(frame[f"latency.{i}"]))
                 for i, candidate in enumerate(plan["latency"])]
    request = first("request").str.extract_groups(REQUEST_LINE.pattern)
    ip = first("ip")
    country = first("country")
    times = (_value(records[0], candidate) for candidate in plan["time"])
    kind = time_kind(next((t for t in times if t is not None), None))
    return frame.select(
        time=_time_expr(first("time"), kind),
        ip=pl.when(ip.str.contains(",")).then(ip.str.extract(r"^\s*([^,\s]+)", 1)).otherwise(ip),
        method=pl.coalesce(first("method"), request.struct.field("1")),
        path=pl.coalesce(first("path"), request.struct.field("2")),
        status=first("status").cast(pl.Float64, strict=False).cast(pl.Int32, strict=False),
        bytes=first("bytes").cast(pl.Float64, strict=False).cast(pl.Int64, strict=False),
        latency=pl.coalesce(latencies) if latencies else pl.col(NONE).cast(pl.Float64),
        ua=first("ua"),
        referer=first("referer"),
        host=first("host"),
        # ISO codes as --geoip gives them ('ru' -> 'RU'); a country's name as written
        country=pl.when(country.str.len_chars() == 2).then(country.str.to_uppercase())
        .otherwise(country),
        level=first("level"),
    )


def _extras(records: Sequence[Mapping[str, Any]], plan: Plan) -> pl.Series | None:
    """`fields` for records of one shape: every key no field takes (a field takes the
    first of its aliases present at the top level), as JSON text."""
    used = {candidates[0].key for candidates in plan.values()
            if candidates and not candidates[0].path}
    keys = [key for key in records[0] if key not in used]
    if not keys:
        return None
    try:
        values = pl.DataFrame({key: list(map(itemgetter(key), records)) for key in keys})
        if not any("Binary" in str(dtype) for dtype in values.schema.values()):
            return values.select(pl.struct(pl.all()).struct.json_encode())[:, 0]
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        pass
    # values of mixed types under one key, or bytes (polars panics writing those as JSON):
    # the json module writes each record
    return pl.Series([json.dumps({key: record[key] for key in keys}, ensure_ascii=False,
                                 default=plain) for record in records], dtype=pl.String)


Shapes = dict[tuple[str, ...], list[int]]


def shapes_of(records: Sequence[Mapping[str, Any]]) -> Shapes:
    """The indices of the records, grouped by their keys (in order)."""
    shapes: Shapes = {}
    for index, record in enumerate(records):
        shapes.setdefault(tuple(record), []).append(index)
    return shapes


def records_frame(records: Sequence[Mapping[str, Any]], aliases: AliasTable,
                  shapes: Shapes | None = None) -> pl.DataFrame:
    """The normalised columns (time, ip ... level, fields) of structured records, in order.

    Records are grouped by their keys (`shapes`, when the caller has them); each group's
    columns are pulled out once and the conversions run vectorised, so a batch costs a
    few dictionary reads per record."""
    parts = []
    for keys, indices in (shapes_of(records) if shapes is None else shapes).items():
        group = records if len(indices) == len(records) else [records[i] for i in indices]
        plan = _scalar_plan(_plan(keys, aliases), group[0])
        extras = _extras(group, plan)
        parts.append(_shape_frame(group, plan).with_columns(
            fields=extras if extras is not None else pl.lit(None, dtype=pl.String),
            _row=pl.Series(indices, dtype=pl.UInt32)))
    if not parts:
        return pl.DataFrame(schema={name: SCHEMA[name] for name in RECORD_COLUMNS})
    if len(parts) == 1:
        return parts[0].drop("_row")
    return pl.concat(parts).sort("_row").drop("_row")
