"""Live inputs as event batches: the tailer's lines through one pipeline source per tag.

Both the dashboard's feeder thread and `tail --no-ui` read through this, so what they
count cannot differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import BinaryIO

import polars as pl

from logtui.core.dashboard import Dashboard, SourceState
from logtui.core.pipeline import Pipeline, Source
from logtui.sources.tail import TailSet

# Longest wait between polls when no change is announced: bounds write-to-screen delay.
FEED_WAIT = 0.1


class LiveSources:
    def __init__(self, paths: list[str], pipeline: Pipeline, *, from_start: bool,
                 last_lines: int, stdin: BinaryIO | None = None) -> None:
        self.pipeline = pipeline
        self.tails = TailSet(paths, from_start=from_start, last_lines=last_lines, stdin=stdin)
        self.sources: dict[str, Source] = {}

    def poll(self) -> list[pl.DataFrame]:
        """New events of every input since the last call, one batch per input."""
        batches = []
        for tag, lines in self.tails.poll():
            source = self.sources.get(tag) or self.sources.setdefault(
                tag, self.pipeline.source(tag))
            batches.append(source.events(lines, time.time()))
        return batches

    def states(self) -> list[SourceState]:
        states = []
        for status in self.tails.sources:
            source = self.sources.get(status.tag)
            states.append(SourceState(
                status.tag, status.state, source.format_name if source else "auto",
                source.lines if source else 0, status.truncated, status.gaps))
        return states

    @property
    def finished(self) -> bool:
        """Every input has ended (only standard input ends)."""
        statuses = self.tails.sources
        return bool(statuses) and all(status.state == "closed" for status in statuses)

    def wait(self, timeout: float) -> None:
        if not self.tails.has_more:
            self.tails.wait(timeout)

    def close(self) -> None:
        self.tails.close()

    def __enter__(self) -> LiveSources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dashboard_feeder(paths: list[str], pipeline: Pipeline, *, from_start: bool, last_lines: int,
                     stdin: BinaryIO | None = None,
                     ) -> Callable[[Dashboard, threading.Event], None]:
    """What the dashboard's worker thread runs: read, parse, hand over, until stopped."""

    def feed(dashboard: Dashboard, stop: threading.Event) -> None:
        with LiveSources(paths, pipeline, from_start=from_start, last_lines=last_lines,
                         stdin=stdin) as live:
            while not stop.is_set():
                for batch in live.poll():
                    dashboard.ingest(batch)
                dashboard.update_sources(live.states())
                live.wait(FEED_WAIT)

    return feed
