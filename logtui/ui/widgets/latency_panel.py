"""Latency: percentiles now, p95 over time, and the slowest endpoints."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from logtui.ui import format as fmt
from logtui.ui.widgets.drill_table import DrillTable

# two rows, so that all six fit a quarter of a 120-column terminal
SHOWN = (("p50", "p95", "p99"), ("min", "mean", "max"))


class LatencyPanel(Vertical):
    DEFAULT_CSS = """
    LatencyPanel > Static { height: 2; }
    LatencyPanel > Sparkline { height: 2; }
    LatencyPanel > DrillTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="latency-now")
        yield Sparkline([], id="latency-p95")
        yield DrillTable("endpoint", ("endpoint", "mean", "max", "hits"))

    def show(self, snapshot: dict[str, Any]) -> None:
        latency = snapshot["latency"]
        self.query_one("#latency-now", Static).update(Text("\n").join(
            fmt.fields([(name, fmt.seconds(latency[name]), "bold") for name in row], "  ")
            for row in SHOWN), layout=False)   # a fixed height: no layout pass
        self.query_one(Sparkline).data = [point["p95"] or 0.0 for point in snapshot["series"]]
        self.query_one(DrillTable).show([
            (row["endpoint"], (fmt.safe(row["endpoint"]), fmt.seconds(row["mean"]),
                               fmt.seconds(row["max"]), fmt.count(row["count"])))
            for row in snapshot["endpoints"]])
