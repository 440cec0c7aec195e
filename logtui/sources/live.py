"""Live inputs as event batches: the tailer's lines through one pipeline source per tag.

Both the dashboard's feeder thread and `tail --no-ui` read through this, so what they
count cannot differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import polars as pl

from logtui.core.dashboard import Dashboard, SourceState
from logtui.core.pipeline import Pipeline, Source
from logtui.sources.tail import TailSet

if TYPE_CHECKING:   # the listener (asyncio, ssl, msgpack) loads only with --listen
    from logtui.sources.listen import ForwardListener, ListenOptions

# Longest wait between polls when no change is announced: bounds write-to-screen delay.
FEED_WAIT = 0.05
FORWARD_BACKLOG = 200_000   # forwarded events parsed but not yet read by poll()


class Backlog:
    """Forwarded batches waiting for poll(), bounded in rows. When it is full, `put`
    waits: the server stops acking, and forwarders keep their buffers until we catch up."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.ready = threading.Condition()
        self.frames: list[pl.DataFrame] = []
        self.rows = 0
        self.closed = False

    def put(self, frame: pl.DataFrame) -> None:
        with self.ready:
            self.ready.wait_for(lambda: self.rows < self.max_rows or self.closed)
            if not self.closed:
                self.frames.append(frame)
                self.rows += frame.height

    def take(self) -> list[pl.DataFrame]:
        with self.ready:
            frames, self.frames, self.rows = self.frames, [], 0
            self.ready.notify_all()
            return frames

    def close(self) -> None:
        """Release any waiting `put` (it drops its batch: nothing will read it now)."""
        with self.ready:
            self.closed = True
            self.ready.notify_all()


class Consumer(Protocol):
    """Where live inputs go: the dashboard, or `serve`'s hub."""

    def ingest(self, frame: pl.DataFrame) -> None: ...
    def ingest_shadow(self, records: list[dict[str, Any]]) -> None: ...
    def update_sources(self, states: Iterable[SourceState]) -> None: ...


class LiveSources:
    """Files, standard input and (with `listen`) forwarded events, as event batches."""

    def __init__(self, paths: list[str], pipeline: Pipeline, *, from_start: bool,
                 last_lines: int, stdin: BinaryIO | None = None,
                 listen: ListenOptions | None = None) -> None:
        self.pipeline = pipeline
        self.tails = TailSet(paths, from_start=from_start, last_lines=last_lines, stdin=stdin)
        self.sources: dict[str, Source] = {}
        self.forwarded = Backlog(FORWARD_BACKLOG)
        self.comparisons: list[dict[str, Any]] = []   # shadow records, for take_shadow()
        self.comparisons_lock = threading.Lock()
        self.listener: ForwardListener | None = None
        if listen is not None:
            from logtui.sources.listen import ForwardListener

            self.listener = ForwardListener(listen, pipeline, self.forwarded.put,
                                            self._compared)
            try:
                self.listener.start()
            except BaseException:
                self.tails.close()
                raise

    def hand_over(self, consumer: Consumer) -> None:
        """What the inputs have had since the last call, with the shadow comparison
        records and the inputs' states."""
        for batch in self.poll():
            consumer.ingest(batch)
        consumer.ingest_shadow(self.take_shadow())
        consumer.update_sources(self.states())

    def poll(self) -> list[pl.DataFrame]:
        """New events of every input since the last call, one batch per input."""
        batches = []
        for tag, lines in self.tails.poll():
            source = self.sources.get(tag) or self.sources.setdefault(
                tag, self.pipeline.source(tag))
            batches.append(source.events(lines, time.time()))
        forwarded = self.forwarded.take()
        if forwarded:
            # one batch of all that arrived: folding costs about the same for 1 or 10,000 rows
            batches.append(pl.concat(forwarded))
        return batches

    def _compared(self, records: list[dict[str, Any]]) -> None:
        with self.comparisons_lock:
            self.comparisons.extend(records)

    def take_shadow(self) -> list[dict[str, Any]]:
        """The `shadow` comparison records forwarded since the last call."""
        with self.comparisons_lock:
            records, self.comparisons = self.comparisons, []
            return records

    def states(self) -> list[SourceState]:
        states = []
        for status in self.tails.sources:
            source = self.sources.get(status.tag)
            states.append(SourceState(
                status.tag, status.state, source.format_name if source else "auto",
                source.lines if source else 0, status.truncated, status.gaps))
        if self.listener is not None:
            states.append(self.listener.state())
        return states

    @property
    def finished(self) -> bool:
        """Every input has ended (only standard input ends)."""
        statuses = self.tails.sources
        return (self.listener is None and bool(statuses)
                and all(status.state == "closed" for status in statuses))

    @property
    def has_more(self) -> bool:
        """A file stopped at its read budget: poll again without waiting."""
        return self.tails.has_more

    def wait(self, timeout: float) -> None:
        """Until an input may have changed, or `timeout` passes (not at all when a file
        has more to read at once)."""
        self.tails.wait(timeout)

    def close(self) -> None:
        self.tails.close()
        self.forwarded.close()
        if self.listener is not None:
            self.listener.close()

    def __enter__(self) -> LiveSources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dashboard_feeder(paths: list[str], pipeline: Pipeline, *, from_start: bool, last_lines: int,
                     stdin: BinaryIO | None = None, listen: ListenOptions | None = None,
                     ) -> Callable[[Dashboard, threading.Event], None]:
    """What the dashboard's worker thread runs: read, parse, hand over, until stopped.

    The inputs open here, before the dashboard starts, so that a port already taken is
    a one-line error rather than a broken screen."""
    live = LiveSources(paths, pipeline, from_start=from_start, last_lines=last_lines,
                       stdin=stdin, listen=listen)

    def feed(dashboard: Dashboard, stop: threading.Event) -> None:
        with live:
            while not stop.is_set():
                live.hand_over(dashboard)
                live.wait(FEED_WAIT)

    return feed
