"""The Shadow panel: `shadow` comparisons by endpoint (regressions first) and the latest
differences. It appears when comparison records arrive (`shadow proxy run --forward`)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from logtui.ui import format as fmt
from logtui.ui.widgets.drill_table import DrillTable


class ShadowPanel(Vertical):
    DEFAULT_CSS = """
    ShadowPanel > Static { height: 1; }
    ShadowPanel > DrillTable { height: 1fr; }
    ShadowPanel > DataTable { height: 1fr; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="shadow-totals")
        yield DrillTable("endpoint", ("endpoint", "regr", "diff", "same", "total"))
        yield DataTable(id="shadow-latest", cursor_type="none", show_header=False)

    def on_mount(self) -> None:
        self.query_one("#shadow-latest", DataTable).add_columns("time", "verdict", "request",
                                                                "prod", "stg")

    def show(self, board: dict[str, Any]) -> None:
        verdicts = board["verdicts"]
        self.query_one("#shadow-totals", Static).update(fmt.fields([
            ("compared", fmt.count(board["compared"]), "bold"),
            ("regressions", fmt.count(verdicts["regression"]),
             "bold red" if verdicts["regression"] else "bold"),
            ("diffs", fmt.count(verdicts["diff"]), "bold")]), layout=False)   # a fixed height
        self.query_one(DrillTable).show([
            (row["endpoint"], (fmt.safe(row["endpoint"]), Text(fmt.count(row["regression"]),
                                                               style="red" if row["regression"]
                                                               else ""),
                               fmt.count(row["diff"]), fmt.count(row["same"]),
                               fmt.count(row["total"])))
            for row in board["endpoints"]])
        latest = self.query_one("#shadow-latest", DataTable)
        latest.clear()
        for entry in board["latest"][:20]:
            latest.add_row(fmt.clock(entry["time"]),
                           Text(entry["verdict"], style="red" if entry["verdict"] == "regression"
                                else "yellow"),
                           fmt.safe(f"{entry['method']} {entry['path']}"),
                           fmt.safe(entry["production"]), fmt.safe(entry["staging"]))
