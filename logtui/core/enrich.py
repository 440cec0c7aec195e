"""Fill the derived columns of an event batch: `bot` from `ua`, `country` from `ip`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:  # crawlers and geo import map_distinct from here
    from logtui.core.crawlers import CrawlerMatcher
    from logtui.core.geo import GeoLookup


def map_distinct(values: pl.Series, func: Callable[[str], str | None]) -> pl.Series:
    """`func` over a string column, called once per distinct non-null value."""
    values = values.cast(pl.String)
    distinct = values.drop_nulls().unique()
    results = pl.Series([func(value) for value in distinct.to_list()], dtype=pl.String)
    return values.replace_strict(distinct, results, default=None,
                                 return_dtype=pl.String).alias(values.name)


class Enricher:
    """Vectorised enrichment; None for either part turns that part off."""

    def __init__(self, crawlers: CrawlerMatcher | None, geo: GeoLookup | None) -> None:
        self.crawlers = crawlers
        self.geo = geo

    @classmethod
    def default(cls, geo: GeoLookup | None = None) -> Enricher:
        """Crawler names from the process-wide matcher, plus `geo` if --geoip was given."""
        from logtui.core.crawlers import default_matcher

        return cls(default_matcher(), geo)

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` with `bot` and `country` filled where they are still null.

        Values a source already carries win: some JSON sources log their own country
        (e.g. Cloudflare's), and a forwarded event may arrive already enriched.
        """
        columns: list[pl.Series] = []
        if self.crawlers is not None and "ua" in frame.columns:
            bots = self.crawlers.bot_names(frame["ua"]).alias("bot")
            columns.append(_coalesce(frame, bots))
        if self.geo is not None and "ip" in frame.columns:
            ips = frame["ip"]
            if "country" in frame.columns:
                # Look up only the rows that still need it, so the distinct set stays small.
                ips = frame.select(
                    pl.when(pl.col("country").is_null()).then(pl.col("ip"))).to_series()
            countries = self.geo.countries(ips).alias("country")
            columns.append(_coalesce(frame, countries))
        return frame.with_columns(columns) if columns else frame


def _coalesce(frame: pl.DataFrame, derived: pl.Series) -> pl.Series:
    if derived.name not in frame.columns:
        return derived
    existing = frame[derived.name].cast(pl.String)
    return existing.zip_with(existing.is_not_null(), derived).alias(derived.name)
