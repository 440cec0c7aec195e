"""Endpoints: request paths grouped into templates (`/users/123` -> `/users/{id}`).

One set of rules in two forms, `template(path)` for one path and `template_expr` for a
column, so panels, filters and the shadow report group requests the same way.
"""

from __future__ import annotations

import re

import polars as pl

# (pattern for one path segment, its placeholder); a segment is matched whole.
# No segment matches two of them except long numbers (ids, as they are tried first), so the
# cheapest test comes first.
SEGMENT_RULES = (
    (r"\d+", "{id}"),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "{uuid}"),
    (r"[0-9a-fA-F]{16,}", "{hex}"),
)
QUERY = r"[?#].*$"
_COMPILED = [(re.compile(rf"/{pattern}(?=/|$)"), f"/{name}") for pattern, name in SEGMENT_RULES]


def template(path: str) -> str:
    path = re.sub(QUERY, "", path)
    for pattern, placeholder in _COMPILED:
        path = pattern.sub(placeholder, path)
    return path or "/"


def template_expr(path: pl.Expr) -> pl.Expr:
    """The same rules for a column, segment by segment (Rust regex has no look-ahead for
    the segment end; matching whole segments is also four times faster than rewriting
    the path once per rule)."""
    segment = pl.element()
    matches = [(segment.str.contains(f"^(?:{pattern})$"), pl.lit(placeholder))
               for pattern, placeholder in SEGMENT_RULES]
    (first, placeholder), *rest = matches
    rules = pl.when(first).then(placeholder)
    for match, placeholder in rest:
        rules = rules.when(match).then(placeholder)
    expr = path.str.replace(QUERY, "").str.split("/").list.eval(rules.otherwise(segment))
    return expr.list.join("/").replace("", "/")   # one use: a `when` would build it twice


def endpoint_column(paths: pl.Series) -> pl.Series:
    """Path templates, computed once per distinct path of the batch."""
    distinct = paths.drop_nulls().unique()
    templates = distinct.to_frame("path").select(template_expr(pl.col("path")))["path"]
    return paths.replace_strict(distinct, templates, default=None,
                                return_dtype=pl.String).alias("endpoint")


def with_endpoints(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its `endpoint` column filled. The pipeline does this once per event,
    so that recounting retained events for a new view does not template every path again."""
    if "endpoint" in frame.columns and (frame["endpoint"].null_count()
                                        == frame["path"].null_count()):
        return frame
    return frame.with_columns(endpoint_column(frame["path"]))
