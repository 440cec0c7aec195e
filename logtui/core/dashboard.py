"""The dashboard's state, without the UI: retained events, the current view, panel data.

Sources hand in unfiltered, enriched batches (`ingest`, from worker threads). The view
(filter, window, bots) selects what the panels count; changing it recomputes the
statistics from the retained events, which are bounded by rows and by the longest window.
The UI only reads `snapshot()` on its timer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

import polars as pl

from logtui.core.durations import DurationError, format_duration, parse_window
from logtui.core.event import SCHEMA, text_of
from logtui.core.filters import Filter, compile_filter
from logtui.core.shadow import ShadowBoard
from logtui.core.stats import Bucket, RollingStats, fold

WINDOWS: tuple[float | None, ...] = (60.0, 300.0, 900.0, 3600.0, None)
BOT_MODES = ("all", "hide", "only")
BOT_TERMS = {"all": "", "hide": "-bot:*", "only": "bot:*"}
PANELS = ("status", "latency", "crawlers", "paths", "clients", "countries", "agents", "stream",
          "shadow")
RETAINED_ROWS = 250_000     # events kept to recompute the panels when the view changes
STREAM_LINES = 2_000        # lines the log stream can scroll back through
# How long `ingest` holds a batch back while a view change recounts: the user's key comes
# first, and the inputs lose nothing by waiting (files stay put, forwarders buffer).
RECOUNT_PRIORITY = 1.0      # seconds, at most
# Views whose counts are kept after the user leaves them: going back (Backspace after a
# drill-down, clearing a filter) then only counts what arrived meanwhile. One: the counts
# of a view can be tens of MiB after an hour of busy traffic (up to 360 buckets each).
VIEWS_KEPT = 1
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

    def query(self) -> Filter:
        """What the view counts: its filter, and its bots mode as one more term."""
        parts = [f"({self.filter})" if self.filter.strip() else "", BOT_TERMS[self.bots]]
        return compile_filter(" ".join(p for p in parts if p))

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


class StreamLine:
    """One line of the log stream. Its parsed record is only built when something reads
    it (the detail view, a viewer): most lines scroll away unread, and at 20k lines/s
    building a dict per line was a third of the feeder's time."""

    __slots__ = ("_record", "_row", "line", "parsed", "status", "tag", "time")

    def __init__(self, time: float, tag: str, line: str, status: int | None, parsed: bool,
                 record: dict[str, Any] | None = None, *, row: tuple[Any, ...] = ()) -> None:
        self.time, self.tag, self.line, self.status, self.parsed = time, tag, line, status, parsed
        self._record = record
        self._row = row      # the event's values in SCHEMA order, when `record` is not given

    @property
    def record(self) -> dict[str, Any]:
        if self._record is None:
            self._record = (_row_record(dict(zip(SCHEMA, self._row, strict=True)))
                            if self._row else {})
        return self._record

    def __repr__(self) -> str:
        return f"StreamLine({self.time!r}, {self.tag!r}, {self.line!r})"


class EventStore:
    """The newest unfiltered batches, at most `max_rows` rows: what a view change recounts.

    Bounded by rows only: the statistics rebuilt from it drop what is older than their
    window themselves, and a window of 'all' is recounted from as far back as it reaches.
    Thread-safe: an aggregator's viewers read it while its inputs add to it. Every batch
    gets a position, so a reader can tell which batches it has already counted.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.lock = threading.Lock()
        self.frames: deque[tuple[int, pl.DataFrame]] = deque()
        self.added = 0              # position of the newest batch
        self.rows = 0
        self.dropped = 0            # rows let go to stay within max_rows

    def add(self, frame: pl.DataFrame) -> int:
        """Keep a batch; returns its position."""
        with self.lock:
            self.added += 1
            self.frames.append((self.added, frame))
            self.rows += frame.height
            while len(self.frames) > 1 and self.rows > self.max_rows:
                _, old = self.frames.popleft()
                self.rows -= old.height
                self.dropped += old.height
            return self.added

    @property
    def oldest(self) -> float | None:
        with self.lock:
            return self.frames[0][1]["time"].min() if self.frames else None

    def since(self, position: int) -> list[tuple[int, pl.DataFrame]]:
        """The batches added after `position`, with their positions."""
        with self.lock:
            return [(added, frame) for added, frame in self.frames if added > position]

    def holds_all_after(self, position: int) -> bool:
        """Every batch added after `position` is still here (none was let go)."""
        with self.lock:
            return not self.frames or self.frames[0][0] <= position + 1


def _row_record(row: dict[str, Any]) -> dict[str, Any]:
    skip = {"tag", "time", "line", "parsed", "fields"}
    record = {k: v for k, v in row.items() if k not in skip and v is not None}
    if row.get("fields"):
        record.update(json.loads(row["fields"]))
    return record


@dataclass
class Counted:
    """Batches filtered and folded (the slow part, done without holding any lock), ready
    to be merged into statistics and the log stream."""

    buckets: list[Bucket]
    lines: list[StreamLine]

    @classmethod
    def of(cls, frames: list[pl.DataFrame], query: Filter, width: float) -> Counted:
        frames = [frame for frame in frames if not frame.is_empty()]
        if not frames:
            return cls([], [])
        matched = query.apply(pl.concat(frames) if len(frames) > 1 else frames[0])
        if matched.is_empty():
            return cls([], [])
        return cls(list(fold(matched, width).values()), stream_lines(matched, STREAM_LINES))

    def into(self, stats: RollingStats, everything: RollingStats,
             stream: deque[StreamLine]) -> None:
        stats.add_buckets(self.buckets)
        everything.add_buckets(bucket.copy() for bucket in self.buckets)
        stream.extend(self.lines)


@dataclass
class ViewCounts:
    """A view's statistics and log stream, counted through store position `through`;
    `since` is the oldest retained event when they were first counted."""

    stats: RollingStats
    everything: RollingStats
    stream: deque[StreamLine]
    through: int = 0
    since: float | None = None


@dataclass
class ViewerUpdate:
    """What `changes` hands a viewer's connection."""

    full: bool                   # `buckets` replace everything the viewer holds
    buckets: list[Any]           # serialised
    late: int
    since: float | None          # the oldest event the statistics include
    lines: list[StreamLine]
    dropped: int                 # lines let go because the viewer was slow


def view_key(view: View) -> tuple[str, str]:
    """What a view's counts depend on (the window and focus only change what is shown)."""
    return view.filter, view.bots


def stream_lines(frame: pl.DataFrame, limit: int) -> list[StreamLine]:
    time, tag, line, status, parsed = _STREAM_COLUMNS
    return [StreamLine(row[time], row[tag], row[line] or "", row[status], bool(row[parsed]),
                       row=row)
            for row in frame.tail(limit).with_columns(line=text_of()).select(*SCHEMA).rows()]


# Where stream_lines finds a line's own fields in a row of SCHEMA's columns.
_STREAM_COLUMNS = tuple(list(SCHEMA).index(name)
                        for name in ("time", "tag", "line", "status", "parsed"))


@dataclass
class SourceState:
    tag: str
    state: str = "following"
    format: str = "auto"
    lines: int = 0
    truncated: int = 0      # lines cut at the length cap
    gaps: int = 0           # truncations whose lost part could not be recovered


@dataclass(eq=False)   # a dashboard is an identity (an aggregator keeps a set of them)
class Dashboard:
    bucket: float = 10.0
    view: View = field(default_factory=View)
    clock: Callable[[], float] = time.time
    retained_rows: int = RETAINED_ROWS
    # An aggregator's viewers share its store (filled once by `ingest` on one dashboard)
    # and each count only what their own view selects (`observe`).
    store: EventStore | None = None
    # Lines waiting to be sent to a viewer: bounded, the oldest dropped and counted.
    outbox_size: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        longest = max((w for w in (*WINDOWS, self.view.window) if w is not None), default=3600)
        self.retained_window = longest
        if self.store is None:
            self.store = EventStore(self.retained_rows)
        self.outbox: deque[StreamLine] = deque(maxlen=self.outbox_size or None)
        self.outbox_dropped = 0
        self.counted_through = 0   # store position of the newest batch counted
        self.installed = 0         # the generation whose view and statistics are in place
        self.sent_installed = 0    # the one a viewer was last sent (see `changes`)
        self.version = 0           # bumped by every change the panels would show
        self.shadow = ShadowBoard()
        self.sources: dict[str, SourceState] = {}
        self.generation = 0      # bumped by each view change; stale recomputations are dropped
        self.recounts = 0        # view changes being counted now
        self.settled = threading.Event()   # set when none is
        self.settled.set()
        self.kept: OrderedDict[tuple[str, str], ViewCounts] = OrderedDict()   # see VIEWS_KEPT
        self._install(self.view)

    # --- the view -------------------------------------------------------------------------

    def _install(self, view: View) -> None:
        """Rebuild the statistics for `view` from the retained events (call under no lock;
        the swap happens under it). Raises FilterError for a bad filter, changing nothing."""
        query = view.query()
        with self.lock:
            self.generation += 1
            generation = self.generation
            self.recounts += 1
            self.settled.clear()
        try:
            self._recount(view, query, generation)
        finally:
            with self.lock:
                self.recounts -= 1
                if not self.recounts:
                    self.settled.set()

    def _recount(self, view: View, query: Filter, generation: int) -> None:
        """Count the view from the retained batches, or, for a view kept since the user
        left it, only the batches that arrived meanwhile (when none of them has been let
        go). Retained batches are counted as one frame: a fold costs about the same for a
        hundred rows or a hundred thousand, so per batch it would be hundreds of folds."""
        with self.lock:
            base = self.kept.pop(view_key(view), None)
            if base is None or not self.store.holds_all_after(base.through):
                base = ViewCounts(RollingStats(self.retained_window, self.bucket, clock=self.clock),
                                  RollingStats(None, self.bucket, clock=self.clock),
                                  deque(maxlen=STREAM_LINES), 0, self.store.oldest)
            frames = self.store.since(base.through)
            position = frames[-1][0] if frames else base.through
        counted = Counted.of([frame for _, frame in frames], query, self.bucket)
        if generation != self.generation:
            return   # a newer view is being counted already: stop here
        counted.into(base.stats, base.everything, base.stream)
        with self.lock:
            if generation != self.generation:
                return   # a newer view won while this one was computed
            newer = self.store.since(position)   # what arrived meanwhile
            Counted.of([frame for _, frame in newer], query, self.bucket).into(
                base.stats, base.everything, base.stream)
            base.through = newer[-1][0] if newer else position
            if self.installed:   # keep the view being left, to come back to it cheaply
                self.kept[view_key(self.view)] = ViewCounts(
                    self.stats, self.everything, self.stream, self.counted_through,
                    self.filtered_since)
                while len(self.kept) > VIEWS_KEPT:
                    self.kept.popitem(last=False)
            self.view, self.query, self.installed = view, query, generation
            self.version += 1
            self.stats, self.everything, self.stream = base.stats, base.everything, base.stream
            self.counted_through, self.filtered_since = base.through, base.since

    def set_view(self, view: View) -> None:
        self._install(view)

    def set_filter(self, text: str) -> None:
        self._install(replace(self.view, filter=text))

    def cycle_window(self) -> None:
        index = WINDOWS.index(self.view.window) if self.view.window in WINDOWS else 0
        with self.lock:   # the window only changes which buckets are read: no recompute
            self.view = replace(self.view, window=WINDOWS[(index + 1) % len(WINDOWS)])
            self.version += 1

    def cycle_bots(self) -> None:
        self._install(replace(self.view, bots=BOT_MODES[
            (BOT_MODES.index(self.view.bots) + 1) % len(BOT_MODES)]))

    def set_focus(self, panel: str) -> None:
        with self.lock:
            self.view = replace(self.view, focus=panel)

    # --- ingestion ------------------------------------------------------------------------

    def ingest(self, frame: pl.DataFrame) -> None:
        """An unfiltered, enriched batch from one source (safe from any thread). While the
        view is being recounted it waits (up to RECOUNT_PRIORITY): the recount and the
        inputs would otherwise share the CPU, and the user is waiting on the recount."""
        self.settled.wait(RECOUNT_PRIORITY)
        if not frame.is_empty():
            self.observe(frame, self.store.add(frame))

    def observe(self, frame: pl.DataFrame, position: int) -> None:
        """Count a batch that is in the store at `position` (an aggregator's viewers share
        its store). The counting runs outside the lock, so the screen never waits on it."""
        with self.lock:
            query, installed = self.query, self.installed
        counted = Counted.of([frame], query, self.bucket)
        with self.lock:
            self._commit(counted, position, installed)

    def _commit(self, counted: Counted, position: int, installed: int) -> None:
        if installed != self.installed or position <= self.counted_through:
            return   # a view change has counted it (or will) from the store
        self.counted_through = position
        self.version += 1
        counted.into(self.stats, self.everything, self.stream)
        if self.outbox_size:
            overflow = len(self.outbox) + len(counted.lines) - self.outbox_size
            self.outbox_dropped += max(0, overflow)
            self.outbox.extend(counted.lines)

    def queue_recent(self, since: float | None) -> None:
        """Put the stream's lines newer than `since` in the outbox: a viewer that comes
        back after a reconnect gets what it missed, a new one gets the recent lines."""
        with self.lock:
            self.outbox.extend(line for line in self.stream if since is None or line.time > since)

    def catch_up(self) -> None:
        """Count what reached the shared store but not this dashboard (a viewer that
        joined while batches arrived)."""
        with self.lock:
            newer = self.store.since(self.counted_through)
            if newer:
                counted = Counted.of([frame for _, frame in newer], self.query, self.bucket)
                self._commit(counted, newer[-1][0], self.installed)

    def changes(self, serialise: Callable[[Any], Any]) -> ViewerUpdate:
        """For a viewer: the buckets touched since the last call, or all of them when a
        view has been installed since (the viewer replaces what it holds), serialised under
        the lock with the lines waiting and how many of those were dropped."""
        with self.lock:
            full = self.installed != self.sent_installed
            self.sent_installed = self.installed
            changed = self.stats.take_changed()
            buckets = list(self.stats.buckets.values()) if full else changed
            lines, dropped = list(self.outbox), self.outbox_dropped
            self.outbox.clear()
            self.outbox_dropped = 0
            return ViewerUpdate(full, [serialise(bucket) for bucket in buckets],
                                self.stats.late, self.filtered_since, lines, dropped)

    def ingest_shadow(self, records: list[dict[str, Any]]) -> None:
        """`shadow` comparison records, for the Shadow panel."""
        if records:
            with self.lock:
                self.shadow.add(records)
                self.version += 1

    def update_sources(self, states: Iterable[SourceState]) -> None:
        sources = {state.tag: state for state in states}
        with self.lock:
            if sources != self.sources:
                self.sources = sources
                self.version += 1

    # --- reading --------------------------------------------------------------------------

    def snapshot(self, top: int = 10) -> dict[str, Any]:
        """Everything the panels show, computed under the lock from the current view."""
        with self.lock:
            view = self.view
            if view.window is None:
                data = self.everything.snapshot(top)
            else:
                data = self.stats.snapshot(top, span=view.window)
            return panel_data(data, view, stream=list(self.stream),
                              sources=list(self.sources.values()),
                              shadow=self.shadow.snapshot(top) if self.shadow else None,
                              retained_rows=self.store.rows, dropped_rows=self.store.dropped,
                              filtered_since=self.filtered_since)


def panel_data(data: dict[str, Any], view: View, **extra: Any) -> dict[str, Any]:
    """A statistics snapshot with what the panels derive from it: rates and shares."""
    # the snapshot's bucket width: 'all' doubles it as the input's span grows
    series = data["series"]
    seconds = view.window or (len(series) * data["bucket"] if series else 0.0)
    responses = sum(data["status"].values())
    data.update(
        view=view,
        view_string=view.to_string(),
        rate=data["total"] / seconds if seconds else 0.0,
        error_rate=(data["classes"]["5xx"] / responses) if responses else 0.0,
        bot_share=(sum(data["bots"].values()) / data["parsed"]) if data["parsed"] else 0.0,
        **extra,
    )
    return data
