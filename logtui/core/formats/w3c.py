"""W3C extended log format (IIS, CloudFront, Akamai): `#Fields:` directives name the
columns of the lines that follow, so one instance per source remembers the current list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from logtui.core.event import conform
from logtui.core.formats.regex import as_int, missing_as_null

# The directives of the W3C working draft (WD-logfile-960323); any other '#' line is not one.
DIRECTIVE = re.compile(r"^#(Version|Fields|Software|Start-Date|End-Date|Date|Remark):[ \t]*(.*)$")
DATED_DIRECTIVES = ("Date", "Start-Date", "End-Date")
# Values are separated by spaces (IIS) or tabs (CloudFront); a value never holds either,
# IIS writes its spaces as '+'.
TOKEN = r"[^ \t]+"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
ROW = "_row"
LAYOUT = "_layout"

# Fields with a normalised column; the rest go to `fields` under their own names.
CONSUMED = {"date", "time", "c-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "cs-uri",
            "sc-status", "sc-bytes", "time-taken", "cs(user-agent)", "cs(referer)",
            "cs-host", "x-host-header", "cs(host)"}


def utc_expr(text: pl.Expr) -> pl.Expr:
    """'2015-01-13 00:32:17': the spec says W3C dates and times are in GMT."""
    moment = text.str.strptime(pl.Datetime("us", "UTC"), TIME_FORMAT, strict=False)
    return moment.dt.epoch("us").cast(pl.Float64) / 1e6


def time_taken_expr(text: pl.Expr) -> pl.Expr:
    """IIS writes whole milliseconds; CloudFront writes seconds with a decimal point."""
    number = text.cast(pl.Float64, strict=False)
    return pl.when(text.str.contains(".", literal=True)).then(number).otherwise(number / 1000)


def decode_plus(text: pl.Expr) -> pl.Expr:
    """IIS writes a space as '+' and leaves a literal '+' alone, so crawlers' '; +http://'
    becomes ';++http://': a '+' right after another is read as the literal one."""
    return text.str.replace_all(r"\+(\+?)", " ${1}")


def split_fields(text: str) -> tuple[str, ...]:
    return tuple(re.findall(TOKEN, text))


class W3CFormat:
    """Parses W3C lines with the most recent `#Fields:` layout, carried across batches.

    Directive lines are events too: parsed, with level "directive" and no status. Until a
    `#Fields:` line has been seen (or `fields` given), data lines cannot be read and come
    back unparsed; `matches` then recognises only directives, which is what detection sees.
    """

    name = "w3c"
    # Batches of one source must be parsed in order (see `fields`): readers check this.
    sequential = True

    def __init__(self, fields: Sequence[str] | None = None) -> None:
        # The layout in force after the last line parsed. Batches of one source must be
        # parsed in order for a mid-file #Fields change to apply to the right lines.
        self.fields: tuple[str, ...] | None = tuple(fields) if fields else None

    def matches(self, line: str) -> bool:
        if DIRECTIVE.match(line):
            return True
        return self.fields is not None and len(split_fields(line)) == len(self.fields)

    def parse(self, lines: pl.Series, tag: str) -> pl.DataFrame:
        frame = (pl.DataFrame({"line": lines}, schema={"line": pl.String})
                 .with_row_index(ROW)
                 .with_columns(pl.col("line").str.extract_groups(DIRECTIVE.pattern)
                               .struct.rename_fields(["directive", "value"]).alias("_d"))
                 .unnest("_d"))
        carried = " ".join(self.fields) if self.fields else None
        is_fields = pl.col("directive") == "Fields"
        frame = frame.with_columns(
            pl.when(is_fields).then(pl.col("value")).otherwise(None)
            .forward_fill().fill_null(pl.lit(carried, dtype=pl.String)).alias(LAYOUT))
        last = frame[LAYOUT][-1] if len(frame) else carried
        self.fields = split_fields(last) if last else None

        directives = frame.filter(pl.col("directive").is_not_null())
        data = frame.filter(pl.col("directive").is_null() & pl.col(LAYOUT).is_not_null())
        parts = [self._directives(directives)]
        for layout in data[LAYOUT].unique(maintain_order=True):
            if fields := split_fields(layout):
                parts.append(self._data(data.filter(pl.col(LAYOUT) == layout), fields))
        # Each part keeps its row numbers; what no part took is unparsed, in line order.
        parsed = pl.concat([conform(part.with_columns(tag=pl.lit(tag))).with_columns(part[ROW])
                            for part in parts])
        rest = (frame.filter(~pl.col(ROW).is_in(parsed[ROW].implode()))
                .select(ROW, "line", tag=pl.lit(tag), parsed=pl.lit(False)))
        everything = pl.concat([parsed, conform(rest).with_columns(rest[ROW])])
        return everything.sort(ROW).drop(ROW)

    @staticmethod
    def _directives(frame: pl.DataFrame) -> pl.DataFrame:
        dated = pl.col("directive").is_in(DATED_DIRECTIVES)
        return frame.with_columns(
            parsed=pl.lit(True),
            level=pl.lit("directive"),
            time=pl.when(dated).then(utc_expr(pl.col("value"))).otherwise(None),
            fields=pl.struct("directive", "value").struct.json_encode(),
        )

    @staticmethod
    def _data(frame: pl.DataFrame, layout: tuple[str, ...]) -> pl.DataFrame:
        tokens = pl.col("line").str.extract_all(TOKEN)
        frame = frame.with_columns(tokens.alias("_t")).filter(
            pl.col("_t").list.len() == len(layout))
        index: dict[str, int] = {}
        for position, name in enumerate(layout):
            index.setdefault(name.lower(), position)

        def value(name: str) -> pl.Expr:
            if name not in index:
                return pl.lit(None, dtype=pl.String)
            return missing_as_null(pl.col("_t").list.get(index[name]))

        stem, query = value("cs-uri-stem"), value("cs-uri-query")
        path = pl.when(query.is_null()).then(stem).otherwise(stem + "?" + query)
        columns = {
            "parsed": pl.lit(True),
            "time": utc_expr(pl.concat_str(value("date"), value("time"), separator=" ")),
            "ip": value("c-ip"),
            "method": value("cs-method"),
            "path": pl.coalesce(path, value("cs-uri")),
            "status": as_int(value("sc-status")),
            "bytes": as_int(value("sc-bytes")),
            "latency": time_taken_expr(value("time-taken")),
            "ua": decode_plus(value("cs(user-agent)")),
            # a referer is a URL, where '+' already stands for a space: left as written
            "referer": value("cs(referer)"),
            # CloudFront's cs(Host) is the distribution's own name; the site is x-host-header
            "host": pl.coalesce(value("cs-host"), value("x-host-header"), value("cs(host)")),
        }
        # named as the #Fields line spells them; a repeated name keeps its first column
        others = [missing_as_null(pl.col("_t").list.get(position)).alias(layout[position])
                  for name, position in index.items() if name not in CONSUMED]
        if others:
            columns["fields"] = pl.struct(others).struct.json_encode()
        return frame.with_columns(**columns)
