"""`logtui connect`'s state: what each aggregator last sent, merged into one dashboard.

Each `Replica` holds one aggregator's buckets for our view, replaced as the aggregator
sends them. `RemoteDashboard` offers the dashboard's interface to the UI and to the
headless output: its snapshot merges the replicas' buckets exactly (they are mergeable
statistics), and a view change is sent to every aggregator, which recounts for it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from logtui.core.dashboard import (
    BOT_MODES,
    STREAM_LINES,
    SourceState,
    StreamLine,
    View,
    panel_data,
)
from logtui.core.filters import compile_filter
from logtui.core.shadow import ShadowBoard
from logtui.core.stats import Bucket, RollingStats

# 'all' is the aggregators' whole memory, which they do not share: connect reads up to an hour
REMOTE_WINDOWS: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)
RETAINED = 3600.0


@dataclass
class Replica:
    """One aggregator, as last heard from."""

    state: str = "connecting"
    width: float = 10.0
    buckets: dict[int, Bucket] = field(default_factory=dict)
    late: int = 0
    lines: deque[StreamLine] = field(default_factory=lambda: deque(maxlen=STREAM_LINES))
    dropped: int = 0           # lines the aggregator dropped because we were slow
    sources: list[SourceState] = field(default_factory=list)
    since: float | None = None  # the oldest event its numbers for our view include
    shadow: ShadowBoard = field(default_factory=ShadowBoard)

    def apply_stats(self, width: float, buckets: list[Bucket], replace: bool, late: int,
                    since: float | None) -> None:
        if replace or width != self.width:
            self.buckets = {}
        self.width = width
        for bucket in buckets:
            self.buckets[math.floor(bucket.start / width)] = bucket
        # Buckets only arrive when they change: let go of those no window reaches any more.
        if self.buckets:
            oldest = max(b.start for b in self.buckets.values()) - RETAINED - width
            self.buckets = {k: b for k, b in self.buckets.items() if b.start > oldest}
        self.late, self.since = late, since

    def apply_lines(self, lines: list[StreamLine], dropped: int) -> None:
        self.lines.extend(lines)
        self.dropped += dropped


class RemoteDashboard:
    def __init__(self, names: list[str], view: View, bucket: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.Lock()
        self.replicas = {name: Replica(width=bucket) for name in names}
        self.bucket = bucket
        self.clock = clock
        self._view = replace(view, window=view.window or RETAINED)
        self.on_view: list[Callable[[View], None]] = []   # connections resubscribe
        self.version = 0   # bumped by every change the panels would show

    @property
    def view(self) -> View:
        return self._view

    def set_view(self, view: View) -> None:
        compile_filter(view.filter)   # a bad filter raises here and is never sent
        with self.lock:
            self._view = replace(view, window=view.window or RETAINED)
            self.version += 1
            for replica in self.replicas.values():
                replica.lines.clear()
        for notify in list(self.on_view):
            notify(self._view)

    def set_filter(self, text: str) -> None:
        self.set_view(replace(self.view, filter=text))

    def cycle_bots(self) -> None:
        self.set_view(replace(self.view, bots=BOT_MODES[
            (BOT_MODES.index(self.view.bots) + 1) % len(BOT_MODES)]))

    def cycle_window(self) -> None:
        window = self.view.window
        index = REMOTE_WINDOWS.index(window) if window in REMOTE_WINDOWS else 0
        with self.lock:   # only which buckets are read changes: nothing to resend
            self._view = replace(self._view, window=REMOTE_WINDOWS[(index + 1)
                                                                   % len(REMOTE_WINDOWS)])
            self.version += 1

    def set_focus(self, panel: str) -> None:
        with self.lock:
            self._view = replace(self._view, focus=panel)

    def update(self, name: str, change: Callable[[Replica], None]) -> None:
        """Apply what a connection received, under the lock."""
        with self.lock:
            change(self.replicas[name])
            self.version += 1

    def snapshot(self, top: int = 10) -> dict[str, Any]:
        with self.lock:
            view = self._view
            merged = RollingStats(RETAINED, self.bucket, clock=self.clock)
            horizon = self.clock() - (view.window or RETAINED) - self.bucket
            for replica in self.replicas.values():
                # copies: merging adds into the first bucket of each key
                merged.add_buckets(b.copy() for b in replica.buckets.values()
                                   if b.start >= horizon)
                merged.late += replica.late
            stream = sorted((line for r in self.replicas.values() for line in r.lines),
                            key=lambda line: line.time)[-STREAM_LINES:]
            sources = [SourceState(name, replica.state, "aggregator",
                                   sum(s.lines for s in replica.sources))
                       for name, replica in self.replicas.items()]
            sources += [source for replica in self.replicas.values()
                        for source in replica.sources]
            dropped = sum(replica.dropped for replica in self.replicas.values())
            shadow = ShadowBoard()
            for replica in self.replicas.values():
                shadow.merge(replica.shadow)
            since = [r.since for r in self.replicas.values() if r.since is not None]
        data = merged.snapshot(top, span=view.window)
        return panel_data(data, view, stream=stream, sources=sources, retained_rows=0,
                          shadow=shadow.snapshot(top) if shadow else None,
                          dropped_rows=dropped, filtered_since=min(since, default=None))
