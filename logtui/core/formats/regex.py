"""Line formats defined by one regular expression, parsed a column at a time.

A `RegexFormat` runs its pattern over a whole polars column (Rust regex, no Python
loop per line) and turns the captured groups into the normalised columns through
per-variable conversions. nginx `log_format` lines compile to this (see nginx.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from logtui.core.event import SCHEMA
from logtui.core.timestamps import clf_expr, epoch_expr, iso_expr

# A conversion turns one captured text column into one normalised column.
Conversion = Callable[[pl.Expr], pl.Expr]


def missing_as_null(column: pl.Expr) -> pl.Expr:
    """'-' is how access logs write "no value"; it never means zero or a name."""
    return pl.when(column.is_in(["-", ""])).then(None).otherwise(column)


def as_int(column: pl.Expr) -> pl.Expr:
    return column.cast(pl.Int64, strict=False)


def as_float(column: pl.Expr) -> pl.Expr:
    return column.cast(pl.Float64, strict=False)


def first_address(column: pl.Expr) -> pl.Expr:
    """A client list 'a, b, c' (X-Forwarded-For style) names the client first."""
    return missing_as_null(column.str.extract(r'^\s*"?([^,\s"]+)', 1))


def strip_port(column: pl.Expr) -> pl.Expr:
    """Apache's %v:%p writes 'example.com:80'; the host is the part before the port."""
    return missing_as_null(column.str.replace(r":\d+$", ""))


def sum_of_times(column: pl.Expr) -> pl.Expr:
    """$upstream_response_time lists one time per upstream tried: '0.100, 0.004 : 0.2'."""
    parts = column.str.extract_all(r"\d+(?:\.\d+)?").list.eval(pl.element().cast(pl.Float64))
    return pl.when(parts.list.len() > 0).then(parts.list.sum()).otherwise(None)


MATCHED = "_matched"
REQUEST = r"^(?P<method>[A-Za-z][A-Za-z0-9_-]*) (?P<path>\S+)(?: (?P<protocol>\S+))?$"
TRAILING_SECONDS = r"(?:^|\s)(\d+\.\d+)\s*$"

TIME_CONVERSIONS: Mapping[str, Conversion] = {
    "clf": clf_expr,
    "iso8601": iso_expr,
    "epoch": epoch_expr,
}


@dataclass(frozen=True)
class Target:
    """How one captured group feeds the normalised record."""

    column: str                  # a SCHEMA column, or "request"/"time" (expanded below)
    convert: Conversion = missing_as_null
    time_kind: str = ""
    # what the lenient pattern captures may need more work (a client list: take the first)
    lenient_convert: Conversion | None = None


def reparse_unparsed(frame: pl.DataFrame, lines: pl.Series,
                     parse: Callable[[pl.Series], pl.DataFrame]) -> pl.DataFrame:
    """Give the rows `frame` could not parse a second chance with another parser."""
    unparsed = ~frame["parsed"]
    if not unparsed.any():
        return frame
    rows = unparsed.arg_true()
    retried = parse(lines.gather(rows))
    if not retried["parsed"].any():
        return frame
    indexed = frame.with_row_index("_row")
    return (pl.concat([indexed.filter(pl.col("parsed")),
                       retried.with_columns(_row=rows.cast(pl.UInt32)).select(indexed.columns)])
            .sort("_row").drop("_row"))


@dataclass
class RegexFormat:
    name: str
    pattern: str
    # group name -> Target; groups with no target are kept as record fields
    targets: Mapping[str, Target]
    # groups kept verbatim in `fields` (nginx variables we have no column for)
    extra_groups: tuple[str, ...] = ()
    # builtin formats accept trailing fields after the standard ones
    tail_group: str | None = None
    # a slower pattern for the unusual lines `pattern` misses (client lists, for instance)
    lenient: str | None = None

    def __post_init__(self) -> None:
        self._built: dict[bool, list[pl.Expr]] = {}
        # An empty group at the start is "" on a match and null otherwise: a cheap match flag.
        self.pattern = f"^(?P<{MATCHED}>)" + self.pattern.removeprefix("^")
        self.patterns = [re.compile(self.pattern)]
        if self.lenient is not None:
            self.lenient = f"^(?P<{MATCHED}>)" + self.lenient.removeprefix("^")
            self.patterns.append(re.compile(self.lenient))

    def matches(self, line: str) -> bool:
        return any(pattern.match(line) for pattern in self.patterns)

    def parse(self, lines: pl.Series, tag: str) -> pl.DataFrame:
        """Parse a column of lines; rows that do not match come back with parsed=False."""
        frame = self._parse(self.pattern, lines, tag)
        if self.lenient is not None:
            lenient = self.lenient
            frame = reparse_unparsed(frame, lines,
                                     lambda rest: self._parse(lenient, rest, tag, lenient=True))
        return frame

    def _parse(self, pattern: str, lines: pl.Series, tag: str,
               lenient: bool = False) -> pl.DataFrame:
        # one query, collected once: no frame in between is materialised
        frame = pl.LazyFrame({"line": lines}, schema={"line": pl.String})
        groups = pl.col("line").str.extract_groups(pattern).alias("_g")
        return (frame.with_columns(groups).unnest("_g")
                .select(pl.lit(tag, dtype=pl.String).alias("tag"), *self._schema_columns(lenient))
                .collect(engine="in-memory"))

    def _schema_columns(self, lenient: bool) -> list[pl.Expr]:
        """Every SCHEMA column after `tag`, from the captured groups; built once per
        pattern, since building expressions holds the GIL that the other worker needs."""
        if lenient not in self._built:
            self._built[lenient] = self._build_columns(lenient)
        return self._built[lenient]

    def _build_columns(self, lenient: bool) -> list[pl.Expr]:
        columns: dict[str, pl.Expr] = {"parsed": pl.col(MATCHED).is_not_null()}
        fallbacks: dict[str, list[pl.Expr]] = {}
        for group, target in self.targets.items():
            if target.column == "request":
                self._add_request(group, fallbacks)
                continue
            convert = TIME_CONVERSIONS[target.time_kind] if target.time_kind else target.convert
            if lenient and target.lenient_convert is not None:
                convert = target.lenient_convert
            fallbacks.setdefault(target.column, []).append(convert(pl.col(group)))
        if self.tail_group is not None:
            seconds = pl.col(self.tail_group).str.extract(TRAILING_SECONDS, 1).cast(pl.Float64)
            fallbacks.setdefault("latency", []).append(seconds)
        for column, candidates in fallbacks.items():
            columns[column] = pl.coalesce(candidates) if len(candidates) > 1 else candidates[0]
        if self.extra_groups:
            extras = [missing_as_null(pl.col(g)).alias(g) for g in self.extra_groups]
            any_value = pl.any_horizontal(extra.is_not_null() for extra in extras)
            columns["fields"] = (pl.when(any_value)
                                 .then(pl.struct(extras).struct.json_encode())
                                 .otherwise(None))
        # as conform() would: a group named like a column (and `line`) is that column
        captured = {"line", *self.patterns[1 if lenient else 0].groupindex}
        return [(columns[name] if name in columns else pl.col(name) if name in captured
                 else pl.lit(None)).cast(dtype).alias(name)
                for name, dtype in SCHEMA.items() if name != "tag"]

    @staticmethod
    def _add_request(group: str, fallbacks: dict[str, list[pl.Expr]]) -> None:
        request = pl.col(group).str.extract_groups(REQUEST)
        fallbacks.setdefault("method", []).insert(0, request.struct.field("method"))
        fallbacks.setdefault("path", []).insert(0, request.struct.field("path"))
