"""Rolling, mergeable traffic statistics built from time buckets.

Each `Bucket` holds what the panels need for one slice of time: counts by status code,
bytes, a latency sketch, bot hits, and bounded top-k summaries. Every part merges
exactly, so a window is the merge of its buckets and several sources or aggregators
merge the same way. A batch of events is folded in with a handful of vectorised
group-bys; Python only touches the aggregated rows.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from logtui.core.endpoints import with_endpoints
from logtui.core.sketch import SMALLEST, LatencySketch, bin_index_expr
from logtui.core.topk import TopK

# Dimensions with a bounded top-k per bucket, and the column each counts.
TOP_DIMENSIONS = {"paths": "path", "ips": "ip", "countries": "country", "uas": "ua"}
TOP_CAPACITY = 100
ENDPOINT_CAPACITY = 100
# A window of 'all' spans at most this many buckets, doubling their width when the
# input's time span outgrows it, so memory stays flat however long the input.
MAX_BUCKETS = 360
# How far ahead of the clock a live window keeps events (senders' clocks drift); beyond
# that they are counted as late, so garbage times cannot fill memory with buckets.
FUTURE_SLACK = 3600.0
# Buckets merged into a snapshot between two shrinks of its summaries: memory stays within
# MERGE_RUN times a bucket's, and each shrink's ranking is paid once per run.
MERGE_RUN = 32
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(code: int) -> str:
    return f"{code // 100}xx"


@dataclass(slots=True)
class BotStats:
    hits: int = 0
    errors: int = 0          # responses >= 400
    last_seen: float = -math.inf

    def copy(self) -> BotStats:
        return BotStats(self.hits, self.errors, self.last_seen)

    def merge(self, other: BotStats) -> None:
        self.hits += other.hits
        self.errors += other.errors
        self.last_seen = max(self.last_seen, other.last_seen)


@dataclass(slots=True)
class EndpointStats:
    count: int = 0
    errors: int = 0          # responses >= 500
    timed: int = 0           # requests with a latency
    latency_total: float = 0.0
    latency_max: float = 0.0

    def copy(self) -> EndpointStats:
        return EndpointStats(self.count, self.errors, self.timed, self.latency_total,
                             self.latency_max)

    def merge(self, other: EndpointStats) -> None:
        self.count += other.count
        self.errors += other.errors
        self.timed += other.timed
        self.latency_total += other.latency_total
        self.latency_max = max(self.latency_max, other.latency_max)


@dataclass
class Bucket:
    start: float
    total: int = 0
    unparsed: int = 0
    bytes: int = 0
    newest: float = -math.inf
    status: dict[int, int] = field(default_factory=dict)
    latency: LatencySketch = field(default_factory=LatencySketch)
    bots: dict[str, BotStats] = field(default_factory=dict)
    tops: dict[str, TopK] = field(
        default_factory=lambda: {name: TopK(TOP_CAPACITY) for name in TOP_DIMENSIONS})
    # the busiest endpoints (path templates) of each batch, for "slowest endpoints"
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)

    def merge(self, other: Bucket, shrink: bool = True) -> None:
        """Add `other` in; with shrink=False the top-k summaries and endpoints may stay
        over their bounds until `shrink()` (merging many buckets into one)."""
        self.total += other.total
        self.unparsed += other.unparsed
        self.bytes += other.bytes
        self.newest = max(self.newest, other.newest)
        for code, n in other.status.items():
            self.status[code] = self.status.get(code, 0) + n
        self.latency.merge(other.latency)
        for name, bot in other.bots.items():
            self.bots.setdefault(name, BotStats()).merge(bot)
        for name, top in other.tops.items():
            self.tops[name].merge(top, shrink)
        for name, endpoint in other.endpoints.items():
            self.endpoints.setdefault(name, EndpointStats()).merge(endpoint)
        if shrink:
            self.shrink()

    def shrink(self) -> None:
        for top in self.tops.values():
            top.shrink()
        self._cap_endpoints()

    def copy(self) -> Bucket:
        """An independent copy, part by part: a dashboard copies every bucket it counts, so
        every view change pays for it (merging into an empty bucket took three times as long)."""
        return Bucket(start=self.start, total=self.total, unparsed=self.unparsed,
                      bytes=self.bytes, newest=self.newest, status=dict(self.status),
                      latency=self.latency.copy(),
                      bots={name: bot.copy() for name, bot in self.bots.items()},
                      tops={name: top.copy() for name, top in self.tops.items()},
                      endpoints={name: e.copy() for name, e in self.endpoints.items()})

    def _cap_endpoints(self) -> None:
        if len(self.endpoints) > 2 * ENDPOINT_CAPACITY:
            keep = heapq.nlargest(ENDPOINT_CAPACITY, self.endpoints.items(),
                                  key=lambda item: item[1].count)
            self.endpoints = dict(keep)

    def classes(self) -> dict[str, int]:
        counts = dict.fromkeys(CLASSES, 0)
        for code, n in self.status.items():
            name = status_class(code)
            counts[name] = counts.get(name, 0) + n
        return counts


def _grouped(events: pl.LazyFrame, column: str, **aggs: pl.Expr) -> pl.LazyFrame:
    """`events` with a value in `column`, grouped by bucket and that value.

    The groups are keyed on the value's 64-bit hash, which is 20-40 % faster than the
    string with the bucket (polars encodes a key of two columns row by row). Two values
    of one bucket are counted as one only if their hashes collide: a chance of k**2/2**65
    for k distinct values, 1e-11 for 20,000."""
    value = pl.col(column)
    return (events.filter(value.is_not_null())
            .group_by("bucket", value.hash().alias("_hash"))
            .agg(value.first(), **aggs).drop("_hash"))


def _summaries(events: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Per bucket, the Misra-Gries counters of `column` (Agarwal et al.'s merge of exact
    counts): only the capacity+1 largest counts matter, and in any order. The smallest of
    them is the threshold subtracted from the others; a count at it is dropped, whichever
    of several tied keys was selected. Selecting is half the cost of sorting them all."""
    top = (_grouped(events, column, len=pl.len())
           .group_by("bucket").agg(pl.struct(column, "len").top_k_by("len", TOP_CAPACITY + 1))
           .explode(column).unnest(column))
    count = pl.col("len")
    threshold = (pl.when(pl.len().over("bucket") > TOP_CAPACITY)
                 .then(count.min().over("bucket")).otherwise(0))
    return (top.with_columns(n=count - threshold).filter(pl.col("n") > 0)
            .group_by("bucket").agg(column, "n"))


# Buckets keep the same keys (paths, agents, endpoints) hundreds of times over: a window
# of 'all' keeps up to 360 buckets. Interned, each distinct key is one object: on the
# busy-site log, 0.2 MiB of key strings instead of 6.3 (interned strings are freed with
# their last bucket). Latency bins are ints out of the small-int cache: one per index.
_BIN_INDICES: dict[int, int] = {}   # 3,500 indices span 1 ns to 11 days; floats bound it


# The event columns fold reads; a caller that keeps batches to fold later keeps only these.
FOLD_COLUMNS = tuple(dict.fromkeys(("time", "parsed", "bytes", "latency", "status", "bot",
                                     "path", "endpoint", *TOP_DIMENSIONS.values())))


def fold(frame: pl.DataFrame, width: float) -> dict[int, Bucket]:
    """Aggregate a batch of events (with times) into buckets keyed by start // width.

    Every aggregate is one lazy query over the same frame, collected together: polars
    runs them in parallel in one call, and Python only walks the small results.
    """
    events = with_endpoints(frame).lazy().with_columns(
        bucket=(pl.col("time") / width).floor().cast(pl.Int64))
    latency, status = pl.col("latency"), pl.col("status")
    timed = latency.is_not_null() & (latency >= 0)
    timed_latency = pl.when(timed).then(latency)   # null otherwise: aggregations skip it
    queries = [
        events.group_by("bucket").agg(
            total=pl.len(),
            unparsed=(~pl.col("parsed")).sum(),
            bytes=pl.col("bytes").sum(),
            newest=pl.col("time").max(),
            timed=timed.sum(),
            zeros=(timed & (latency < SMALLEST)).sum(),
            latency_total=timed_latency.sum(),
            latency_low=timed_latency.min(),
            latency_high=timed_latency.max(),
            **{f"n_{dimension}": pl.col(column).count()
               for dimension, column in TOP_DIMENSIONS.items()},
        ),
        events.filter(status.is_not_null()).group_by("bucket", "status").len(),
        events.filter(timed & (latency >= SMALLEST))
        .group_by("bucket", bin_index_expr(latency).alias("index")).len()
        .group_by("bucket").agg("index", "len"),
        events.filter(pl.col("bot").is_not_null()).group_by("bucket", "bot").agg(
            hits=pl.len(), errors=(status >= 400).sum(), last=pl.col("time").max()),
        _grouped(events, "endpoint", count=pl.len(), errors=(status >= 500).sum(),
                 timed=timed.sum(), latency_total=timed_latency.sum(),
                 latency_max=timed_latency.max())
        .sort(["bucket", "count", "endpoint"], descending=[False, True, False])
        .group_by("bucket", maintain_order=True).head(ENDPOINT_CAPACITY),
        *(_summaries(events, column) for column in TOP_DIMENSIONS.values()),
    ]
    # polars 2 collects on its streaming engine by default, whose start-up costs more than
    # these queries on a batch: a fold of 200 events took 6.3 ms there, 2.1 ms in memory.
    summary, statuses, bins, bots, endpoints, *ranked = pl.collect_all(queries,
                                                                       engine="in-memory")
    buckets: dict[int, Bucket] = {}
    for row in summary.iter_rows(named=True):
        key = row["bucket"]
        bucket = buckets[key] = Bucket(start=key * width, total=row["total"],
                                       unparsed=row["unparsed"], bytes=row["bytes"] or 0,
                                       newest=row["newest"])
        if row["timed"]:
            bucket.latency.add_counts({}, row["zeros"], row["timed"], row["latency_total"],
                                      row["latency_low"], row["latency_high"])
    for key, code, n in statuses.iter_rows():
        buckets[key].status[code] = n
    for key, indices, counts in bins.iter_rows():
        shared = map(_BIN_INDICES.setdefault, indices, indices)   # no Python frame per bin
        buckets[key].latency.bins.update(zip(shared, counts, strict=True))
    for key, name, hits, errors, last in bots.iter_rows():
        buckets[key].bots[sys.intern(name)] = BotStats(hits, errors, last)
    for key, name, count, errors, timed_count, total, high in endpoints.iter_rows():
        buckets[key].endpoints[sys.intern(name)] = EndpointStats(count, errors, timed_count,
                                                              total or 0.0, high or 0.0)
    weights = {row["bucket"]: row for row in summary.select(
        "bucket", *(f"n_{d}" for d in TOP_DIMENSIONS)).iter_rows(named=True)}
    for dimension, summaries in zip(TOP_DIMENSIONS, ranked, strict=True):
        for key, keys, counts in summaries.iter_rows():
            counters = dict(zip(map(sys.intern, keys), counts, strict=True))
            buckets[key].tops[dimension].add_summary(counters, weights[key][f"n_{dimension}"])
    return buckets


Clock = Callable[[], float]


class RollingStats:
    """The window over buckets: `add` batches, `snapshot()` merges what the window covers.

    With a clock (live mode) the window ends now; without one (batch mode) it ends at the
    newest event seen, so an old log file shows its own last minutes.
    """

    def __init__(self, window: float | None, bucket: float, clock: Clock | None = None) -> None:
        self.window = window
        self.width = bucket
        # A window spans at most MAX_BUCKETS buckets, as 'all' does: '--window 30d' would
        # otherwise hold and print 259,200 ten-second buckets, nearly all of them empty.
        while window is not None and window / self.width > MAX_BUCKETS:
            self.width *= 2
        self.clock = clock
        self.buckets: dict[int, Bucket] = {}
        self.newest = -math.inf
        # events outside the window when they arrived: older than it, or (live) more than
        # FUTURE_SLACK ahead of the clock
        self.late = 0
        self.changed: set[int] = set()   # bucket keys touched since take_changed()

    def now(self) -> float:
        """Where the window ends. Live, at the clock: an event stamped ahead of it (a
        sender's clock runs fast) waits in its bucket until its time comes, rather than
        moving the window forward and leaving the current traffic behind as late."""
        return self.clock() if self.clock is not None else self.newest

    def add(self, frame: pl.DataFrame) -> None:
        """Fold a batch of events (every row with a time) into the window."""
        if not frame.is_empty():
            self.add_buckets(fold(frame, self.width).values())

    def add_buckets(self, buckets: Iterable[Bucket]) -> None:
        """Merge buckets folded elsewhere (a worker thread, another aggregator)."""
        buckets = list(buckets)
        if self.clock is not None:
            # events a little ahead of the clock wait in their buckets for their time;
            # garbage far ahead must not pile up buckets that no window reaches for years
            ahead = self.clock() + FUTURE_SLACK
            self.late += sum(bucket.total for bucket in buckets if bucket.start > ahead)
            buckets = [bucket for bucket in buckets if bucket.start <= ahead]
        for bucket in buckets:
            self.newest = max(self.newest, bucket.newest)
        horizon = self.now() - self.window if self.window is not None else -math.inf
        for bucket in buckets:
            if bucket.start + self.width <= horizon:
                self.late += bucket.total
                continue
            # buckets folded at a finer width (before a coarsening) fall inside one of ours
            key = math.floor(bucket.start / self.width)
            existing = self.buckets.get(key)
            if existing is None:
                bucket.start = key * self.width
                self.buckets[key] = bucket
            else:
                existing.merge(bucket)
            self.changed.add(key)
        self._evict()

    def take_changed(self) -> list[Bucket]:
        """The buckets touched since the last call (what a viewer needs to catch up)."""
        changed = [self.buckets[key] for key in sorted(self.changed) if key in self.buckets]
        self.changed.clear()
        return changed

    def _evict(self) -> None:
        if self.window is None:
            # bound the span, not just the count: the series fills the gaps between buckets
            while self.buckets and max(self.buckets) - min(self.buckets) >= MAX_BUCKETS:
                self._coarsen()
            return
        horizon = self.now() - self.window
        for key in [k for k, b in self.buckets.items() if b.start + self.width <= horizon]:
            del self.buckets[key]
            self.changed.discard(key)   # nobody may ask for it: keep the set bounded too

    def _coarsen(self) -> None:
        self.width *= 2
        merged: dict[int, Bucket] = {}
        for key in sorted(self.buckets):
            bucket = self.buckets[key]
            target = merged.get(key // 2)
            if target is None:
                bucket.start = (key // 2) * self.width
                merged[key // 2] = bucket
            else:
                target.merge(bucket)
        self.buckets = merged
        self.changed = {key // 2 for key in self.changed}

    def window_buckets(self) -> list[Bucket]:
        self._evict()
        return [self.buckets[k] for k in sorted(self.buckets)]

    def merged(self, buckets: Iterable[Bucket] | None = None) -> Bucket:
        """The buckets as one. Their top-k summaries are added up and shrunk once per
        MERGE_RUN buckets rather than after each (a 250-bucket snapshot: 49 -> 29 ms)."""
        total = Bucket(start=math.nan)
        for index, bucket in enumerate(self.window_buckets() if buckets is None else buckets):
            total.merge(bucket, shrink=False)
            if index % MERGE_RUN == MERGE_RUN - 1:
                total.shrink()
        total.shrink()
        return total

    def series(self, span: float | None = None) -> list[Bucket]:
        """The window's buckets oldest first, with empty ones filling the gaps; `span`
        narrows it to the newest seconds (the dashboard's shorter windows)."""
        buckets = self.window_buckets()
        length = span if span is not None else self.window
        end = self.now()
        if length is not None and math.isfinite(end):
            last = math.floor(end / self.width)
            first = last - math.ceil(length / self.width) + 1
        elif buckets:
            first = math.floor(buckets[0].start / self.width)
            last = math.floor(buckets[-1].start / self.width)
        else:
            return []
        return [self.buckets.get(key) or Bucket(start=key * self.width)
                for key in range(first, last + 1)]

    def snapshot(self, top: int = 10, span: float | None = None) -> dict[str, Any]:
        """The window as plain data: what `--once` and `--no-ui` print as JSON, and what
        the dashboard panels show. `span` narrows the window to its newest seconds."""
        series = self.series(span)
        merged = self.merged(series)
        window = span if span is not None else self.window
        return {
            "window": window if window is not None else "all",
            "bucket": self.width,
            "end": self.now() if self.newest > -math.inf or self.clock else None,
            "total": merged.total,
            "parsed": merged.total - merged.unparsed,
            "unparsed": merged.unparsed,
            "late": self.late,
            "bytes": merged.bytes,
            "status": {str(code): merged.status[code] for code in sorted(merged.status)},
            "classes": merged.classes(),
            "status_codes": status_table(merged, series),
            "latency": merged.latency.summary(),
            "bots": {name: bot.hits for name, bot in
                     sorted(merged.bots.items(), key=lambda item: (-item[1].hits, item[0]))},
            "crawlers": [
                {"name": name, "hits": bot.hits, "errors": bot.errors, "last_seen": bot.last_seen}
                for name, bot in sorted(merged.bots.items(), key=lambda i: (-i[1].hits, i[0]))
            ],
            **{f"top_{dimension}" if dimension != "countries" else dimension:
               [{TOP_DIMENSIONS[dimension]: key, "count": n}
                for key, n in merged.tops[dimension].top(top)]
               for dimension in TOP_DIMENSIONS},
            "endpoints": slowest_endpoints(merged, top),
            "series": [
                {"start": bucket.start, "total": bucket.total, **bucket.classes(),
                 "p95": bucket.latency.quantile(0.95)}
                for bucket in series
            ],
        }


def status_table(merged: Bucket, series: list[Bucket]) -> list[dict[str, Any]]:
    """Codes by count, with their share and trend: the rate in the newest quarter of the
    window over the rate in the whole window (above 1: rising)."""
    recent = series[-max(1, len(series) // 4):]
    recent_total: dict[int, int] = {}
    for bucket in recent:
        for code, n in bucket.status.items():
            recent_total[code] = recent_total.get(code, 0) + n
    responses = sum(merged.status.values())
    scale = len(series) / len(recent) if series else 1.0
    return [
        {"code": code, "count": n, "share": n / responses,
         "trend": recent_total.get(code, 0) * scale / n}
        for code, n in sorted(merged.status.items(), key=lambda item: (-item[1], item[0]))
    ]


def slowest_endpoints(merged: Bucket, top: int) -> list[dict[str, Any]]:
    """Busy endpoints (path templates) by mean latency, slowest first."""
    timed = [(name, e) for name, e in merged.endpoints.items() if e.timed]
    timed.sort(key=lambda item: (-item[1].latency_total / item[1].timed, item[0]))
    return [
        {"endpoint": name, "count": e.count, "errors": e.errors,
         "mean": e.latency_total / e.timed, "max": e.latency_max}
        for name, e in timed[:top]
    ]
