"""Bounded, mergeable heavy hitters (Misra-Gries summaries).

A summary keeps at most `capacity` counters. When more keys arrive, every counter is
lowered by the (capacity+1)-th largest count and the non-positive ones are dropped, so an
estimate is never above the true count and at most n/(capacity+1) below it. Summaries of
separate streams merge the same way (Agarwal et al., "Mergeable Summaries", 2012), which
is what lets time buckets and several aggregators combine. While a stream has no more
distinct keys than `capacity`, every count is exact.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field

DEFAULT_CAPACITY = 200


@dataclass
class TopK:
    capacity: int = DEFAULT_CAPACITY
    counts: dict[Hashable, int] = field(default_factory=dict)
    # Total weight ever added, to bound the error: n / (capacity + 1).
    total: int = 0

    def update(self, items: Mapping[Hashable, int]) -> None:
        """Add exact counts."""
        self.add_summary(items, sum(items.values()))

    def add_summary(self, counts: Mapping[Hashable, int], weight: int,
                    shrink: bool = True) -> None:
        """Add another summary's counters that stand for `weight` events in all. Several
        may be added before one `shrink`: the same error bound holds (tests/unit/test_topk)."""
        mine = self.counts
        for key, n in counts.items():
            mine[key] = mine.get(key, 0) + n
        self.total += weight
        if shrink:
            self.shrink()

    def copy(self) -> TopK:
        return TopK(self.capacity, dict(self.counts), self.total)

    def merge(self, other: TopK, shrink: bool = True) -> None:
        self.add_summary(other.counts, other.total, shrink)

    def shrink(self) -> None:
        if len(self.counts) <= self.capacity:
            return
        threshold = heapq.nlargest(self.capacity + 1, self.counts.values())[-1]
        self.counts = {k: n - threshold for k, n in self.counts.items() if n > threshold}

    def top(self, k: int) -> list[tuple[Hashable, int]]:
        return heapq.nlargest(k, self.counts.items(), key=lambda item: (item[1], str(item[0])))

    @property
    def max_error(self) -> int:
        """How far below its true count any estimate may be (0 while exact)."""
        dropped = self.total - sum(self.counts.values())
        return -(-dropped // (self.capacity + 1))
