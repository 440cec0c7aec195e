"""The UI tests' harness: fixed traffic, a frozen clock, and what each panel must show.

The expected figures come from the stats core on its own (`compile_filter` + `RollingStats`
over the same events), never from the dashboard, so a panel that counts wrong fails.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any

import polars as pl
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static
from textual.worker import WorkerCancelled

from logtui.core.dashboard import Dashboard, SourceState, View
from logtui.core.durations import format_duration
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.core.sanitize import printable
from logtui.core.stats import RollingStats
from logtui.synthetic import Request, TrafficModel, combined_line
from logtui.ui import format as fmt
from logtui.ui.app import LogtuiApp
from logtui.ui.themes import load_themes, shipped_dir
from logtui.ui.widgets.chart import StackedBars
from logtui.ui.widgets.drill_table import DrillTable
from logtui.ui.widgets.filter_bar import FilterInput
from logtui.ui.widgets.log_stream import LogStream
from logtui.ui.widgets.summary import Summary

NOW = 1_700_000_000.0   # the frozen clock: 2023-11-14 22:13:20 UTC
BUCKET = 10.0
TAG = "access.log"
TOP = 10
# What each bots mode means, stated here rather than read from the dashboard.
BOTS = {"all": "", "hide": "-bot:*", "only": "bot:*"}
# (panel id, snapshot key, record field) of the top lists shown without --geoip
TOP_PANELS = (("paths", "top_paths", "path"), ("clients", "top_ips", "ip"),
              ("agents", "top_uas", "ua"))


def spread(seed: int, count: int, start: float, end: float) -> list[Request]:
    """`count` synthetic requests in time order from `start` to exactly `end`."""
    drawn = list(TrafficModel(seed).requests(count, 0.0, 1.0))
    first, last = drawn[0].time, drawn[-1].time
    for request in drawn:
        request.time = start + (request.time - first) * (end - start) / (last - first)
    return drawn


@functools.cache
def access_lines() -> tuple[str, ...]:
    """90 minutes of traffic, busiest in the last 4 minutes, so that each window (1m, 5m,
    15m, 1h, all) counts something different; two lines do not parse."""
    old = [combined_line(r) for r in spread(4, 300, NOW - 5400, NOW - 330)]
    recent = [combined_line(r) for r in spread(3, 600, NOW - 240, NOW)]
    recent[100:100] = ["this is not an access log line"]
    recent[400:400] = ["neither is this one"]
    return (*old, *recent)


def events(lines: Sequence[str], tag: str = TAG) -> pl.DataFrame:
    """Parsed, enriched and unfiltered, as the app's feeder hands them to the dashboard."""
    pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
    return pipeline.source(tag).events(list(lines), NOW)


@functools.cache
def traffic() -> pl.DataFrame:
    return events(access_lines())


def dashboard(frame: pl.DataFrame | None = None, view: View | None = None,
              sources: Sequence[SourceState] = (SourceState(TAG, format="auto:combined"),),
              ) -> Dashboard:
    board = Dashboard(bucket=BUCKET, view=view or View(), clock=lambda: NOW)
    if frame is not None:
        board.ingest(frame)
    board.update_sources(sources)
    return board


def app_for(board: Dashboard, **options: Any) -> LogtuiApp:
    # the shipped themes only: a theme in the tester's ~/.config must not change the screen
    return LogtuiApp(board, themes=load_themes(shipped_dir()), **{"refresh": 3600, **options})


def matching(frame: pl.DataFrame, view: View) -> pl.DataFrame:
    return compile_filter(BOTS[view.bots]).apply(compile_filter(view.filter).apply(frame))


def expected(frame: pl.DataFrame, view: View) -> dict[str, Any]:
    """The figures for `view`, from the stats core alone."""
    stats = RollingStats(view.window, BUCKET, clock=lambda: NOW)
    stats.add(matching(frame, view))
    return stats.snapshot(TOP)


def shown_view(app: LogtuiApp) -> tuple[str, float | None, str] | None:
    if app.latest is None:
        return None
    view = app.latest["view"]
    return view.filter, view.window, view.bots


async def settle(pilot: Pilot[None]) -> None:
    """Wait until the workers are done and the panels show the dashboard's current view.

    A key starts a worker (recompute the view) that starts another (take a snapshot) that
    calls back into the UI, so one round of waiting may not be enough; the number of rounds
    is bounded, and no figure depends on how long anything took.
    """
    app = pilot.app
    assert isinstance(app, LogtuiApp)
    for _ in range(200):
        await pilot.pause()
        for worker in [w for w in app.workers if w.group != "feeder"]:
            with contextlib.suppress(WorkerCancelled):   # a newer one took its place
                await worker.wait()
        await pilot.pause()
        idle = not any(w.is_running for w in app.workers if w.group != "feeder")
        view = app.dashboard.view
        if idle and (app.paused or shown_view(app) == (view.filter, view.window, view.bots)):
            return
        await pilot.pause(0.01)
    raise AssertionError(f"the panels never showed {app.dashboard.view}")


async def apply_filter(pilot: Pilot[None], text: str) -> None:
    """'/', the text (pasted: typing is tested on its own, and costs a frame per key), Enter."""
    await pilot.press("slash")
    pilot.app.query_one(FilterInput).value = text
    await pilot.press("enter")
    await settle(pilot)


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def table(app: LogtuiApp, selector: str) -> list[list[str]]:
    """A panel table's cells as the user reads them."""
    widget = app.query_one(f"{selector} DrillTable", DrillTable)
    return [[plain(cell) for cell in row] for row in widget.rows]


def summary(app: LogtuiApp) -> str:
    return plain(app.query_one(Summary).content)


def static(app: LogtuiApp, selector: str) -> str:
    content = app.query_one(selector, Static).content
    return Text.from_markup(content).plain if isinstance(content, str) else plain(content)


def assert_label(shown: str, value: object) -> None:
    """A first-column label shows the value, cut with an ellipsis if it does not fit."""
    full = printable(str(value))
    assert shown == full or (shown.endswith("…") and len(shown) > 4
                             and full.startswith(shown[:-1])), (shown, full)


def assert_panels(app: LogtuiApp, frame: pl.DataFrame, view: View) -> None:
    """Every panel shows the stats core's figures for `view` over `frame`."""
    want = expected(frame, view)
    assert app.dashboard.view.filter == view.filter
    assert (app.dashboard.view.window, app.dashboard.view.bots) == (view.window, view.bots)

    # header: totals, rate over the window, 5xx share, and the view itself
    head = summary(app)
    seconds = view.window or len(want["series"]) * want["bucket"]
    responses = sum(want["status"].values())
    for part in (f"req/s {want['total'] / seconds:.1f}",
                 f"5xx {fmt.share(want['classes']['5xx'] / responses if responses else 0.0)}",
                 f"total {fmt.count(want['total'])}", f"unparsed {fmt.count(want['unparsed'])}",
                 f"window {format_duration(view.window)}", f"bots {view.bots}",
                 f"filter {printable(view.filter) or 'none'}"):
        assert part in head, (part, head)

    # status codes: the bars over time and the table
    assert app.query_one(StackedBars).series == want["series"]
    assert table(app, "#status") == [
        [str(row["code"]), fmt.count(row["count"]), fmt.share(row["share"]),
         fmt.trend(row["trend"])] for row in want["status_codes"]]

    # latency: percentiles now, p95 over time, slowest endpoints
    now = static(app, "#latency-now")
    for name in ("min", "mean", "p50", "p95", "p99", "max"):
        assert f"{name} {fmt.seconds(want['latency'][name])}" in now, (name, now)
    assert list(app.query_one("#latency-p95", Sparkline).data or []) == [
        point["p95"] or 0.0 for point in want["series"]]
    rows = table(app, "#latency")
    assert len(rows) == len(want["endpoints"])
    for row, endpoint in zip(rows, want["endpoints"], strict=True):
        assert_label(row[0], endpoint["endpoint"])
        assert row[1:] == [fmt.seconds(endpoint["mean"]), fmt.seconds(endpoint["max"]),
                           fmt.count(endpoint["count"])]

    # crawlers: their share of parsed requests, and each bot
    hits = sum(want["bots"].values())
    share = hits / want["parsed"] if want["parsed"] else 0.0
    crawlers = static(app, "#bot-share")
    assert f"bots {fmt.share(share)}" in crawlers and f"hits {fmt.count(hits)}" in crawlers
    rows = table(app, "#crawlers")
    assert len(rows) == len(want["crawlers"])
    for row, bot in zip(rows, want["crawlers"], strict=True):
        assert_label(row[0], bot["name"])
        assert row[1:] == [fmt.count(bot["hits"]), fmt.share(bot["errors"] / bot["hits"]),
                           fmt.clock(bot["last_seen"], seconds=False)]

    # top lists: count and share of parsed requests
    for panel, key, field in TOP_PANELS:
        rows = table(app, f"#{panel}")
        assert len(rows) == len(want[key]), panel
        for row, entry in zip(rows, want[key], strict=True):
            assert_label(row[0], entry[field])
            assert row[1:] == [fmt.count(entry["count"]),
                               fmt.share(entry["count"] / (want["parsed"] or 1))], panel

    # the log stream: every matching line kept, whatever the window, oldest first
    stream = app.query_one(LogStream).lines
    assert [line.line for line in stream] == matching(frame, view)["line"].to_list()
