"""Line formats that carry their own field names: JSON Lines and LTSV."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from logtui.core.event import conform
from logtui.core.formats.records import JSON_ALIASES, LTSV_ALIASES, AliasTable, records_frame

# `docker compose logs` and similar put "service  | " before each JSON line.
SERVICE_PREFIX = re.compile(r"^[\w.-]+\s+\|\s+(?=\{)")



def json_object(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        prefix = SERVICE_PREFIX.match(text)
        if prefix is None:
            return None
        text = text[prefix.end():]
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):   # RecursionError: nested some 1000 deep
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
        records = [self.split(line) if line else None for line in lines]
        parsed = [record is not None for record in records]
        columns = records_frame([r for r in records if r is not None], self.aliases)
        frame = pl.DataFrame({"line": lines, "parsed": parsed},
                             schema={"line": pl.String, "parsed": pl.Boolean})
        if columns.height:
            # the records' columns go to the parsed rows; the others stay null
            rows = frame.with_row_index("_row").filter(pl.col("parsed"))["_row"]
            frame = frame.with_row_index("_row").join(
                columns.with_columns(_row=rows), on="_row", how="left").drop("_row")
        return conform(frame.with_columns(tag=pl.lit(tag)))


JSON_LINES = StructuredFormat("json", json_object, JSON_ALIASES)
LTSV = StructuredFormat("ltsv", ltsv_object, LTSV_ALIASES)
