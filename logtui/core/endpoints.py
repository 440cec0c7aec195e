"""Endpoints: request paths grouped into templates (`/users/123` -> `/users/{id}`).

One set of rules in two forms, `template(path)` for one path and `template_expr` for a
column, so panels, filters and the shadow report group requests the same way.
"""

from __future__ import annotations

import re

import polars as pl

# (pattern for one path segment, its placeholder); a segment is matched whole.
SEGMENT_RULES = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "{uuid}"),
    (r"\d+", "{id}"),
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
    """The same rules for a column (Rust regex has no look-ahead, so the segment end is
    captured and put back, twice, for adjacent matches like /1/2)."""
    expr = path.str.replace(QUERY, "")
    for pattern, placeholder in SEGMENT_RULES:
        rule = rf"/{pattern}(/|$)"
        for _ in range(2):
            expr = expr.str.replace_all(rule, f"/{placeholder}${{1}}")
    return pl.when(expr != "").then(expr).otherwise(pl.lit("/"))


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
