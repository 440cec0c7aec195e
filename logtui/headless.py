"""Headless output: `tail --once` (one JSON summary) and `tail --no-ui` (a JSON line per tick)."""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import asdict
from typing import Any, BinaryIO, TextIO

from logtui.cli import TailOptions, listen_failure
from logtui.command import RuntimeFailure
from logtui.core.pipeline import Source
from logtui.core.sanitize import json_text, printable
from logtui.core.shadow import ShadowBoard
from logtui.core.stats import RollingStats
from logtui.sources.batch import BatchReader
from logtui.sources.live import LiveSources
from logtui.sources.tail import FileFollower

GLOB_CHARS = frozenset("*?[")


def expand(pattern: str) -> list[str]:
    """The files a command-line argument names; a glob may name several (or none)."""
    if pattern == "-" or not GLOB_CHARS & set(pattern):
        return [pattern]
    return sorted(glob.glob(pattern))


def emit(snapshot: dict[str, Any], out: TextIO) -> None:
    out.write(json_text(snapshot) + "\n")
    out.flush()


def describe(source: Source, **more: Any) -> dict[str, Any]:
    return {"tag": source.tag, "format": source.format_name, "lines": source.lines, **more}


def run_once(options: TailOptions, out: TextIO, stdin: BinaryIO | None = None) -> int:
    """Read what exists and print one summary. An unreadable input is reported on stderr
    and makes the exit status 1, but everything readable is still counted and printed."""
    stats = RollingStats(options.window, options.bucket)
    reader = BatchReader(stats)
    sources: list[dict[str, Any]] = []
    try:
        for pattern in options.paths:
            paths = expand(pattern)
            if not paths:
                sources.append(describe(options.pipeline.source(pattern), truncated=0,
                                        state="no files match"))
            for path in paths:
                source = options.pipeline.source(path)
                try:
                    truncated = _read_existing(path, source, options, reader, stdin)
                except OSError as error:
                    reason = (error.strerror or str(error)).lower()
                    sources.append(describe(source, truncated=0, state=f"error: {reason}"))
                    continue
                sources.append(describe(source, truncated=truncated))
    finally:
        reader.close()
    emit({**stats.snapshot(options.top), "sources": sources}, out)
    failed = [source for source in sources if "state" in source]   # only failures have one
    for source in failed:   # names come from globs: escaped
        reason = source["state"].removeprefix("error: ")
        print(f"logtui: {printable(source['tag'])}: {reason}", file=sys.stderr)
    return 1 if failed else 0


def _read_existing(path: str, source: Source, options: TailOptions, reader: BatchReader,
                   stdin: BinaryIO | None) -> int:
    """Feed one input to the reader; returns how many over-long lines were cut."""
    if path == "-":
        return reader.read(stdin or sys.stdin.buffer, source, time.time())
    if options.lines is None:
        with open(path, "rb") as stream:
            return reader.read(stream, source, os.fstat(stream.fileno()).st_mtime)
    # --lines N: the follower's backwards scan finds where the last N lines start
    with FileFollower(path, last_lines=options.lines) as follower:
        lines = follower.read()
        while follower.has_more:
            lines += follower.read()
        state = follower.state   # before close(), which makes it "closed"
        if state.startswith("error") or state == "missing":
            raise OSError(0, "no such file or directory" if state == "missing"
                          else state.removeprefix("error: "), path)
        lines += follower.close(final=True)
        if lines:
            reader.stats.add(source.events(lines, os.stat(path).st_mtime))
        return follower.truncated


def run_follow(options: TailOptions, out: TextIO, stdin: BinaryIO | None = None) -> int:
    """Follow the inputs and print a snapshot every --interval until interrupted (or
    until standard input, when it is the only input, ends)."""
    stats = RollingStats(options.window, options.bucket, clock=time.time)
    shadow = ShadowBoard()
    try:
        live = LiveSources(options.paths, options.pipeline, from_start=options.from_start,
                           last_lines=options.last_lines, stdin=stdin, listen=options.listen)
    except OSError as error:
        raise RuntimeFailure(listen_failure(options.listen, error)) from None
    with live:
        next_tick = time.monotonic() + options.interval
        while True:
            for batch in live.poll():
                stats.add(batch)
            shadow.add(live.take_shadow())
            finished = live.finished
            if time.monotonic() >= next_tick or finished:
                sources = [asdict(state) for state in live.states()]
                emit({**stats.snapshot(options.top), "sources": sources,
                      **({"shadow": shadow.snapshot(options.top)} if shadow else {})}, out)
                next_tick = max(next_tick + options.interval, time.monotonic())
            if finished:
                return 0
            live.wait(max(0.0, min(next_tick - time.monotonic(), 0.25)))

