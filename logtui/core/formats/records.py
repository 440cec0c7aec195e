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
from typing import Any

from logtui.core.timestamps import parse_timestamp

REQUEST_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*) (\S+)(?: (\S+))?$")
GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# Suffixes that scale a duration field to seconds, tried after the bare name.
DURATION_SUFFIXES = (("_ms", 1e-3), ("ms", 1e-3), ("_us", 1e-6), ("_micros", 1e-6),
                     ("_microsec", 1e-6), ("_ns", 1e-9), ("_s", 1.0), ("_sec", 1.0))


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
             "originresponseduration", "upstream_response_time"),
    ua=("user_agent", "http_user_agent", "ua", "useragent", "agent",
        "clientrequestuseragent", "request.headers.user-agent", "user_agent.original"),
    referer=("referer", "referrer", "http_referer", "clientrequestreferer",
             "request.headers.referer", "http.request.referrer"),
    host=("host", "server_name", "vhost", "http_host", "clientrequesthost", "request.host",
          "url.domain"),
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
    time=("time", "timestamp", "epoch"),
    level=("level",),
    request=("req", "request"),
)


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == "-"


class _Lookup:
    """Case-insensitive access to a record, remembering which top-level keys were used."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self.lower = {key.lower(): key for key in record}
        self.used: set[str] = set()

    def get(self, dotted: str) -> Any:
        first, _, rest = dotted.partition(".")
        key = self.lower.get(first)
        if key is None:
            # some producers put dots in flat keys ("log.level"): try the whole name
            key = self.lower.get(dotted) if rest else None
            if key is None:
                return None
            rest = ""
        value = self.record[key]
        for part in rest.split(".") if rest else ():
            if not isinstance(value, Mapping):
                return None
            value = next((v for k, v in value.items() if k.lower() == part), None)
        if isinstance(value, list):   # Caddy headers: {"User-Agent": ["..."]}
            value = value[0] if value else None
        if _missing(value):
            return None
        if not rest:
            self.used.add(key)
        return value

    def first(self, names: Sequence[str]) -> Any:
        for name in names:
            value = self.get(name)
            if value is not None:
                return value
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def duration_seconds(value: Any, scale: float = 1.0) -> float | None:
    """A duration number (times `scale`), numeric text, or Go text such as '1.5ms'."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) * scale
    text = str(value).strip()
    try:
        return float(text) * scale
    except ValueError:
        pass
    if match := GO_DURATION.match(text):
        return float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    # $upstream_response_time lists one time per upstream: "0.100, 0.004"
    parts = [p for p in re.split(r"[\s,:]+", text) if p]
    try:
        return sum(float(p) for p in parts) * scale if parts else None
    except ValueError:
        return None


def _latency(lookup: _Lookup, names: Sequence[str]) -> float | None:
    for name in names:
        for suffix, scale in (("", 1.0), *DURATION_SUFFIXES):
            value = lookup.get(name + suffix)
            if value is not None:
                return duration_seconds(value, scale)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def normalise(record: Mapping[str, Any], aliases: AliasTable) -> dict[str, Any]:
    """The normalised columns of one record; unused keys go to `fields` as JSON."""
    lookup = _Lookup(record)
    method = lookup.first(aliases.method)
    path = lookup.first(aliases.path)
    request = lookup.first(aliases.request)
    if isinstance(request, str) and (match := REQUEST_LINE.match(request)):
        method = method or match.group(1)
        path = path or match.group(2)
    row: dict[str, Any] = {
        "ip": _text(lookup.first(aliases.ip)),
        "method": _text(method),
        "path": _text(path),
        "status": _int(lookup.first(aliases.status)),
        "bytes": _int(lookup.first(aliases.bytes)),
        "latency": _latency(lookup, aliases.latency),
        "ua": _text(lookup.first(aliases.ua)),
        "referer": _text(lookup.first(aliases.referer)),
        "host": _text(lookup.first(aliases.host)),
        "level": _text(lookup.first(aliases.level)),
        "time": parse_timestamp(lookup.first(aliases.time)),
    }
    if isinstance(row["ip"], str) and "," in row["ip"]:
        row["ip"] = row["ip"].split(",", 1)[0].strip()
    extras = {key: value for key, value in record.items() if key not in lookup.used}
    row["fields"] = json.dumps(extras, ensure_ascii=False, default=str) if extras else None
    return row
