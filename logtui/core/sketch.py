"""A mergeable latency sketch with bounded relative error (the DDSketch construction).

Values fall into logarithmic bins of ratio gamma = (1 + a) / (1 - a); any quantile read
back is within a relative error `a` of the true value at that rank, however many values
were added, and two sketches merge exactly by adding their bin counts. Memory depends on
the spread of the values (about 460 bins per decade at a = 0.5%), never on their number.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import polars as pl

RELATIVE_ACCURACY = 0.005
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LOG_GAMMA = math.log(GAMMA)
# Below this a latency is reported as 0: sub-nanosecond timings are not measurements.
SMALLEST = 1e-9
QUANTILES = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def bin_index(value: float) -> int:
    return math.ceil(math.log(value) / LOG_GAMMA)


def bin_index_expr(values: pl.Expr) -> pl.Expr:
    """bin_index for a column; values below SMALLEST must be filtered out first."""
    return (values.log() / LOG_GAMMA).ceil().cast(pl.Int32)


def bin_value(index: int) -> float:
    # The point of bin (gamma^(i-1), gamma^i] whose relative distance to both ends is `a`.
    return 2 * GAMMA**index / (GAMMA + 1)


@dataclass
class LatencySketch:
    bins: dict[int, int] = field(default_factory=dict)
    zeros: int = 0
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        if value < 0 or math.isnan(value):
            return
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        if value < SMALLEST:
            self.zeros += 1
        else:
            index = bin_index(value)
            self.bins[index] = self.bins.get(index, 0) + 1

    def add_counts(self, bins: dict[int, int], zeros: int, count: int, total: float,
                   low: float, high: float) -> None:
        """Fold in values already binned elsewhere (a vectorised group-by)."""
        for index, n in bins.items():
            self.bins[index] = self.bins.get(index, 0) + n
        self.zeros += zeros
        self.count += count
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)

    def copy(self) -> LatencySketch:
        return LatencySketch(dict(self.bins), self.zeros, self.count, self.total, self.low,
                             self.high)

    def merge(self, other: LatencySketch) -> None:
        self.add_counts(other.bins, other.zeros, other.count, other.total, other.low, other.high)

    def quantile(self, q: float) -> float | None:
        """The q-quantile as numpy computes it by default: between the values at ranks
        floor(q(n-1)) and the next, in proportion. (The value at the lower rank alone
        would call the 11th of 12 requests the p99 and never the slowest.)"""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        below = math.floor(rank)
        indices = sorted(self.bins)
        # seen[k]: how many values lie below the k-th bin (the zeros, then bins 0..k-1)
        seen = list(accumulate((self.bins[index] for index in indices), initial=self.zeros))

        def value_at(position: int) -> float:
            """The value at a 0-based rank in sorted order, within the relative accuracy."""
            bin_number = bisect_right(seen, position)
            if bin_number == 0:
                return 0.0
            if bin_number > len(indices):
                return self.high
            return min(max(bin_value(indices[bin_number - 1]), self.low), self.high)

        low = value_at(below)
        return low + (rank - below) * (value_at(min(below + 1, self.count - 1)) - low)

    def summary(self) -> dict[str, float | int | None]:
        if not self.count:
            return {"count": 0, "min": None, "mean": None, **dict.fromkeys(QUANTILES),
                    "max": None}
        return {
            "count": self.count,
            "min": self.low,
            "mean": self.total / self.count,
            **{name: self.quantile(q) for name, q in QUANTILES.items()},
            "max": self.high,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"bins": self.bins, "zeros": self.zeros, "count": self.count,
                "total": self.total, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencySketch:
        bins = {int(k): int(v) for k, v in data["bins"].items()}
        return cls(bins, data["zeros"], data["count"], data["total"], data["low"], data["high"])
