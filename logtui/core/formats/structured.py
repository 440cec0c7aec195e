"""Line formats that carry their own field names: JSON Lines and LTSV."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from logtui.core.event import SCHEMA, conform
from logtui.core.formats.records import JSON_ALIASES, LTSV_ALIASES, AliasTable, normalise

# `docker compose logs` and similar put "service  | " before each JSON line.
SERVICE_PREFIX = re.compile(r"^[\w.-]+\s+\|\s+(?=\{)")

ROW_COLUMNS = ("time", "ip", "method", "path", "status", "bytes", "latency", "ua", "referer",
               "host", "level", "fields")


def json_object(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        prefix = SERVICE_PREFIX.match(text)
        if prefix is None:
            return None
        text = text[prefix.end():]
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def ltsv_object(line: str) -> dict[str, Any] | None:
    """ltsv.org: TAB-separated label:value pairs; a label is [0-9A-Za-z_.-]+."""
    record: dict[str, Any] = {}
    for item in line.rstrip("\r\n").split("\t"):
        label, colon, value = item.partition(":")
        if not colon or not label or not LTSV_LABEL.match(label):
            return None
        record[label] = value
    return record if len(record) >= 2 else None


LTSV_LABEL = re.compile(r"^[0-9A-Za-z_.-]+$")


@dataclass(frozen=True)
class StructuredFormat:
    name: str
    split: Callable[[str], dict[str, Any] | None]
    aliases: AliasTable

    def matches(self, line: str) -> bool:
        return self.split(line) is not None

    def parse(self, lines: pl.Series, tag: str) -> pl.DataFrame:
        columns: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
        parsed: list[bool] = []
        empty = dict.fromkeys(ROW_COLUMNS)
        for line in lines:
            record = self.split(line) if line else None
            row = normalise(record, self.aliases) if record is not None else empty
            parsed.append(record is not None)
            for name in ROW_COLUMNS:
                columns[name].append(row[name])
        frame = pl.DataFrame(
            {"line": lines, "parsed": parsed, **columns},
            schema={"line": pl.String, "parsed": pl.Boolean,
                    **{name: SCHEMA[name] for name in ROW_COLUMNS}},
            strict=False,
        )
        return conform(frame.with_columns(tag=pl.lit(tag)))


JSON_LINES = StructuredFormat("json", json_object, JSON_ALIASES)
LTSV = StructuredFormat("ltsv", ltsv_object, LTSV_ALIASES)
