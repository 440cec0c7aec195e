"""The dashboard's state, without the UI: retained events, the current view, panel data.

Sources hand in unfiltered, enriched batches (`ingest`, from worker threads). The view
(filter, window, bots) selects what the panels count; changing it recomputes the
statistics from the retained events, which are bounded by rows and by the longest window.
The UI only reads `snapshot()` on its timer.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

import polars as pl

from logtui.core.durations import DurationError, format_duration, parse_window
from logtui.core.filters import Filter, compile_filter
from logtui.core.stats import RollingStats, fold

WINDOWS: tuple[float | None, ...] = (60.0, 300.0, 900.0, 3600.0, None)
BOT_MODES = ("all", "hide", "only")
BOT_TERMS = {"all": "", "hide": "-bot:*", "only": "bot:*"}
PANELS = ("status", "latency", "crawlers", "paths", "clients", "countries", "stream")
RETAINED_ROWS = 250_000     # events kept to recompute the panels when the view changes
STREAM_LINES = 2_000        # lines the log stream can scroll back through
VIEW_PREFIX = "logtui:"


class ViewError(ValueError):
    """A view string that cannot be opened."""


@dataclass(frozen=True)
class View:
    """What the user is looking at; `to_string` is what `y` copies and `--view` opens."""

    filter: str = ""
    window: float | None = 300.0
    bots: str = "all"
    focus: str = "status"

    def to_string(self) -> str:
        fields = {"f": self.filter, "w": format_duration(self.window), "b": self.bots,
                  "p": self.focus}
        return VIEW_PREFIX + urlencode({k: v for k, v in fields.items() if v})

    @classmethod
    def from_string(cls, text: str) -> View:
        if not text.startswith(VIEW_PREFIX):
            raise ViewError(f"{text!r}: a view starts with '{VIEW_PREFIX}' (copy one with 'y')")
        fields = {k: v[-1] for k, v in parse_qs(text.removeprefix(VIEW_PREFIX)).items()}
        unknown = fields.keys() - {"f", "w", "b", "p"}
        if unknown:
            raise ViewError(f"{text!r}: unknown part {sorted(unknown)[0]!r}")
        try:
            window = parse_window(fields.get("w", "5m"))
        except DurationError as error:
            raise ViewError(f"window {error}") from None
        bots, focus = fields.get("b", "all"), fields.get("p", "status")
        if bots not in BOT_MODES:
            raise ViewError(f"bots {bots!r}: expected one of {', '.join(BOT_MODES)}")
        if focus not in PANELS:
            raise ViewError(f"panel {focus!r}: expected one of {', '.join(PANELS)}")
        compile_filter(fields.get("f", ""))   # a bad filter raises FilterError with its column
        return cls(filter=fields.get("f", ""), window=window, bots=bots, focus=focus)


@dataclass(frozen=True)
class StreamLine:
    """One line of the log stream, with its parsed record for the detail view."""

    time: float
    tag: str
    line: str
    status: int | None
    parsed: bool
    record: dict[str, Any]


class EventStore:
    """The newest unfiltered batches, at most `max_rows` rows: what a view change recounts.

    Bounded by rows only: the statistics rebuilt from it drop what is older than their
    window themselves, and a window of 'all' is recounted from as far back as it reaches.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.frames: deque[tuple[int, pl.DataFrame]] = deque()
        self.added = 0              # batches ever added: a position to ask "what is newer"
        self.rows = 0
        self.dropped = 0            # rows let go to stay within max_rows

    def add(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        self.added += 1
        self.frames.append((self.added, frame))
        self.rows += frame.height
        while len(self.frames) > 1 and self.rows > self.max_rows:
            _, old = self.frames.popleft()
            self.rows -= old.height
            self.dropped += old.height

    @property
    def oldest(self) -> float | None:
        return self.frames[0][1]["time"].min() if self.frames else None

    def since(self, position: int) -> list[pl.DataFrame]:
        """The batches added after `position` (0: all of them)."""
        return [frame for added, frame in self.frames if added > position]


def _row_record(row: dict[str, Any]) -> dict[str, Any]:
    skip = {"tag", "time", "line", "parsed", "fields"}
    record = {k: v for k, v in row.items() if k not in skip and v is not None}
    if row.get("fields"):
        record.update(json.loads(row["fields"]))
    return record


def stream_lines(frame: pl.DataFrame, limit: int) -> list[StreamLine]:
    return [StreamLine(row["time"], row["tag"], row["line"] or "", row["status"],
                       bool(row["parsed"]), _row_record(row))
            for row in frame.tail(limit).iter_rows(named=True)]


@dataclass
class SourceState:
    tag: str
    state: str = "following"
    format: str = "auto"
    lines: int = 0
    truncated: int = 0      # lines cut at the length cap
    gaps: int = 0           # truncations whose lost part could not be recovered


@dataclass
class Dashboard:
    bucket: float = 10.0
    view: View = field(default_factory=View)
    clock: Callable[[], float] = time.time
    retained_rows: int = RETAINED_ROWS

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        longest = max((w for w in (*WINDOWS, self.view.window) if w is not None), default=3600)
        self.retained_window = longest
        self.store = EventStore(self.retained_rows)
        self.sources: dict[str, SourceState] = {}
        self.generation = 0      # bumped by each view change; stale recomputations are dropped
        self._install(self.view)

    # --- the view -------------------------------------------------------------------------

    def _filter_for(self, view: View) -> Filter:
        parts = [f"({view.filter})" if view.filter.strip() else "", BOT_TERMS[view.bots]]
        return compile_filter(" ".join(p for p in parts if p))

    def _install(self, view: View) -> None:
        """Rebuild the statistics for `view` from the retained events (call under no lock;
        the swap happens under it). Raises FilterError for a bad filter, changing nothing."""
        query = self._filter_for(view)
        with self.lock:
            self.generation += 1
            generation = self.generation
            position = self.store.added
            frames = self.store.since(0)
        stats = RollingStats(self.retained_window, self.bucket, clock=self.clock)
        everything = RollingStats(None, self.bucket, clock=self.clock)
        stream: deque[StreamLine] = deque(maxlen=STREAM_LINES)
        for frame in frames:   # the slow part, outside the lock: ingestion goes on meanwhile
            self._count(query.apply(frame), stats, everything, stream)
        with self.lock:
            if generation != self.generation:
                return   # a newer view won while this one was computed
            for frame in self.store.since(position):   # what arrived meanwhile
                self._count(query.apply(frame), stats, everything, stream)
            self.view, self.query = view, query
            self.stats, self.everything, self.stream = stats, everything, stream
            self.filtered_since = self.store.oldest

    def set_view(self, view: View) -> None:
        self._install(view)

    def set_filter(self, text: str) -> None:
        self._install(replace(self.view, filter=text))

    def cycle_window(self) -> None:
        index = WINDOWS.index(self.view.window) if self.view.window in WINDOWS else 0
        with self.lock:   # the window only changes which buckets are read: no recompute
            self.view = replace(self.view, window=WINDOWS[(index + 1) % len(WINDOWS)])

    def cycle_bots(self) -> None:
        self._install(replace(self.view, bots=BOT_MODES[
            (BOT_MODES.index(self.view.bots) + 1) % len(BOT_MODES)]))

    def set_focus(self, panel: str) -> None:
        with self.lock:
            self.view = replace(self.view, focus=panel)

    # --- ingestion ------------------------------------------------------------------------

    @staticmethod
    def _count(frame: pl.DataFrame, stats: RollingStats, everything: RollingStats,
               stream: deque[StreamLine]) -> None:
        if frame.is_empty():
            return
        buckets = fold(frame, stats.width)
        stats.add_buckets(buckets.values())
        everything.add_buckets(copy.deepcopy(list(buckets.values())))
        stream.extend(stream_lines(frame, stream.maxlen or STREAM_LINES))

    def ingest(self, frame: pl.DataFrame) -> None:
        """An unfiltered, enriched batch from one source (safe from any thread)."""
        with self.lock:
            query, stats, everything, stream = self.query, self.stats, self.everything, self.stream
            self.store.add(frame)
            self._count(query.apply(frame), stats, everything, stream)

    def update_sources(self, states: Iterable[SourceState]) -> None:
        with self.lock:
            self.sources = {state.tag: state for state in states}

    # --- reading --------------------------------------------------------------------------

    def snapshot(self, top: int = 10) -> dict[str, Any]:
        """Everything the panels show, computed under the lock from the current view."""
        with self.lock:
            view = self.view
            if view.window is None:
                data = self.everything.snapshot(top)
            else:
                data = self.stats.snapshot(top, span=view.window)
            seconds = view.window or _span(data["series"], self.bucket)
            responses = sum(data["status"].values())
            data.update(
                view=view,
                view_string=view.to_string(),
                rate=data["total"] / seconds if seconds else 0.0,
                error_rate=(data["classes"]["5xx"] / responses) if responses else 0.0,
                bot_share=(sum(data["bots"].values()) / data["parsed"]) if data["parsed"]
                else 0.0,
                stream=list(self.stream),
                sources=list(self.sources.values()),
                retained_rows=self.store.rows,
                dropped_rows=self.store.dropped,
                filtered_since=self.filtered_since,
            )
            return data


def _span(series: list[dict[str, Any]], bucket: float) -> float:
    return len(series) * bucket if series else 0.0


