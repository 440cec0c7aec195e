"""Dashboard latency on the real app, headless: write-to-screen and key-to-repaint.

    .venv/bin/python bench/dashboard_latency.py [--rates 1000 20000] [--seconds 10] [--presses 20]

A writer thread appends nginx combined lines to a temporary access log at a set rate; each
line carries its write time (perf_counter_ns, in the referer). The real `LogtuiApp` follows
the file through the real feeder (`dashboard_feeder`) with its default refresh, and the
bench wraps two widget instances' `show` methods to see what reaches the screen:

- write-to-screen: from a line's write to the first `LogStream.show()` that includes it
  (and write-to-ingest, to `Dashboard.ingest`, to tell reading from repainting);
- key-to-repaint: from a key (`w`, `b`, `/status:5xx` Enter, Backspace) to the first
  `Summary.show()` with the new state, while the writer keeps writing.

Prints figures and the issue's targets; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from logtui.core.dashboard import BOT_MODES, WINDOWS, Dashboard, StreamLine
from logtui.core.durations import format_duration
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.sources.live import dashboard_feeder
from logtui.synthetic import TrafficModel, clf_time
from logtui.ui.app import LogtuiApp
from logtui.ui.themes import load_themes
from logtui.ui.widgets.filter_bar import FilterBar, FilterInput
from logtui.ui.widgets.log_stream import LogStream
from logtui.ui.widgets.summary import Summary

TARGET_INGEST = 20_000          # lines/s, with key-to-repaint within the next target
TARGET_KEY = 0.100              # seconds
TARGET_WRITE_P99 = 0.250        # seconds, at 1k lines/s
TICK = 0.01                     # the writer's write interval
REFERER = "https://bench.invalid/"
KEY_TIMEOUT = 10.0


class Writer(threading.Thread):
    """Appends realistic lines at `rate` per second, stamping each with its write time."""

    def __init__(self, path: Path, rate: float) -> None:
        super().__init__(name="bench-writer", daemon=True)
        self.path, self.rate = path, rate
        self.stop = threading.Event()
        self.written = 0
        # pre-rendered around the two parts that change: the time and the stamp
        self.parts = [(f"{r.ip} - - [", f'] "{r.method} {r.path} HTTP/1.1" {r.status} {r.size} '
                                         f'"{REFERER}', f'" "{r.ua}" {r.latency:.3f}\n')
                      for r in TrafficModel(5).requests(50_000, 0.0, 1.0)]

    def run(self) -> None:
        start = time.perf_counter()
        with self.path.open("a", encoding="utf-8") as log:
            while not self.stop.wait(TICK):
                due = int((time.perf_counter() - start) * self.rate) - self.written
                stamp, clf = time.perf_counter_ns(), clf_time(time.time())
                parts = self.parts
                log.write("".join(
                    f"{head}{clf}{middle}{stamp}{tail}"
                    for head, middle, tail in (parts[(self.written + i) % len(parts)]
                                               for i in range(due))))
                log.flush()
                self.written += due


@dataclass
class Probe:
    """Wraps the LogStream and Summary instances' `show` to timestamp what they are given."""

    seen_stamp: int = 0
    write_to_ingest: list[float] = field(default_factory=list)   # where the time goes: reading
    write_to_screen: list[float] = field(default_factory=list)
    summaries: list[tuple[float, Any]] = field(default_factory=list)   # (time, view)
    measuring: bool = False

    def install(self, app: LogtuiApp) -> None:
        stream, summary = app.query_one(LogStream), app.query_one(Summary)
        show_stream, show_summary = stream.show, summary.show
        board = app.dashboard
        ingest = board.ingest

        def timed_ingest(frame: pl.DataFrame) -> None:
            now = time.perf_counter_ns()
            if self.measuring:
                stamps = frame["referer"].str.strip_prefix(REFERER).cast(pl.Int64, strict=False)
                self.write_to_ingest.extend(((now - stamps.drop_nulls()) / 1e9).to_list())
            ingest(frame)

        def stream_show(lines: list[StreamLine]) -> None:
            now = time.perf_counter_ns()
            newest = self.seen_stamp
            for line in reversed(lines):          # newest first, down to what was seen
                stamp = _stamp(line)
                if stamp is None:
                    continue
                if stamp <= self.seen_stamp:
                    break
                newest = max(newest, stamp)
                if self.measuring:
                    self.write_to_screen.append((now - stamp) / 1e9)
            self.seen_stamp = newest
            show_stream(lines)

        def summary_show(snapshot: dict[str, Any], paused: bool) -> None:
            self.summaries.append((time.perf_counter(), snapshot["view"]))
            show_summary(snapshot, paused)

        board.ingest = timed_ingest        # type: ignore[method-assign]
        stream.show = stream_show          # type: ignore[method-assign]
        summary.show = summary_show        # type: ignore[method-assign]

    async def until(self, since: float, shown: Callable[[Any], bool]) -> float:
        """Seconds from `since` to the first Summary.show after it whose view satisfies
        `shown` (inf when it never comes)."""
        deadline = since + KEY_TIMEOUT
        checked = 0
        while time.perf_counter() < deadline:
            for at, view in self.summaries[checked:]:
                if at >= since and shown(view):
                    return at - since
            checked = len(self.summaries)
            await asyncio.sleep(0.001)
        return float("inf")


def _stamp(line: StreamLine) -> int | None:
    referer = line.record.get("referer")
    if isinstance(referer, str) and referer.startswith(REFERER):
        return int(referer.removeprefix(REFERER))
    return None


def figures(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"p50 {statistics.median(ordered) * 1e3:7.1f} ms   p99 {p99 * 1e3:7.1f} ms   "
            f"max {ordered[-1] * 1e3:7.1f} ms   n={len(ordered)}")


async def press_keys(app: LogtuiApp, probe: Probe, presses: int) -> dict[str, list[float]]:
    board = app.dashboard
    results: dict[str, list[float]] = {"w": [], "b": [], "/status:5xx⏎": [], "⌫": []}
    for _ in range(presses):
        window = WINDOWS[(WINDOWS.index(board.view.window) + 1) % len(WINDOWS)]
        start = time.perf_counter()
        app.simulate_key("w")
        results["w"].append(await probe.until(start, lambda v, w=window: v.window == w))

        bots = BOT_MODES[(BOT_MODES.index(board.view.bots) + 1) % len(BOT_MODES)]
        start = time.perf_counter()
        app.simulate_key("b")
        results["b"].append(await probe.until(start, lambda v, b=bots: v.bots == b))

        app.simulate_key("slash")
        while not app.query_one(FilterBar).has_class("-open"):
            await asyncio.sleep(0.001)
        app.query_one(FilterInput).value = "status:5xx"    # pasted: the typing is not timed
        start = time.perf_counter()
        app.simulate_key("enter")
        results["/status:5xx⏎"].append(
            await probe.until(start, lambda v: v.filter == "status:5xx"))

        while not app.query_one(LogStream).has_focus:      # back on a panel after Enter
            await asyncio.sleep(0.001)
        start = time.perf_counter()
        app.simulate_key("backspace")
        results["⌫"].append(await probe.until(start, lambda v: v.filter == ""))
    return results


async def run_rate(rate: float, seconds: float, presses: int) -> None:
    with tempfile.TemporaryDirectory(prefix="logtui-bench-") as directory:
        path = Path(directory) / "access.log"
        path.touch()
        pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
        feeder = dashboard_feeder([str(path)], pipeline, from_start=False, last_lines=0)
        board = Dashboard()
        app = LogtuiApp(board, feeder=feeder, themes=load_themes())
        probe = Probe()
        writer = Writer(path, rate)
        async with app.run_test(headless=True, size=(160, 50)):
            probe.install(app)
            app.query_one(LogStream).focus()    # Enter/Backspace land as on a log panel
            writer.start()
            started = time.perf_counter()
            await asyncio.sleep(2.0)           # warm-up: the first batches, imports, caches
            probe.measuring = True
            await asyncio.sleep(seconds)
            probe.measuring = False
            keys = await press_keys(app, probe, presses)
            elapsed = time.perf_counter() - started
            ingested = board.store.rows + board.store.dropped
            writer.stop.set()
            writer.join()
        print(f"\n== {rate:,.0f} lines/s for {elapsed:.0f} s "
              f"(written {writer.written / elapsed:,.0f}/s, ingested {ingested / elapsed:,.0f}/s, "
              f"behind at the end {writer.written - ingested:,} lines; "
              f"window now {format_duration(board.view.window)})")
        print(f"write-to-ingest      {figures(probe.write_to_ingest)}")
        print(f"write-to-screen      {figures(probe.write_to_screen)}")
        for key, values in keys.items():
            print(f"key {key:<16} {figures(values)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000, 20000],
                        help="lines per second to write (default: 1000 20000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds of write-to-screen measurement per rate (default: 10)")
    parser.add_argument("--presses", type=int, default=20,
                        help="presses of each key per rate (default: 20)")
    args = parser.parse_args()
    print(f"targets: {TARGET_INGEST:,} lines/s ingested with key-to-repaint <= "
          f"{TARGET_KEY * 1e3:.0f} ms; write-to-screen p99 <= {TARGET_WRITE_P99 * 1e3:.0f} ms "
          "at 1k lines/s")
    for rate in args.rates:
        asyncio.run(run_rate(rate, args.seconds, args.presses))


if __name__ == "__main__":
    main()
