"""Status codes: stacked classes per time slice, and codes with count, share and trend."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from logtui.ui import format as fmt
from logtui.ui.colors import status_style
from logtui.ui.widgets.chart import StackedBars
from logtui.ui.widgets.drill_table import DrillTable


class StatusPanel(Vertical):
    DEFAULT_CSS = """
    StatusPanel > StackedBars { height: 1fr; }
    StatusPanel > DrillTable { height: 6; }
    """

    def compose(self) -> ComposeResult:
        yield StackedBars()
        yield DrillTable("status", ("code", "count", "share", "trend"))

    def show(self, snapshot: dict[str, Any]) -> None:
        self.query_one(StackedBars).show(snapshot["series"])
        self.query_one(DrillTable).show([
            (row["code"], (Text(str(row["code"]), style=status_style(self.app, row["code"])),
                           fmt.count(row["count"]), fmt.share(row["share"]),
                           fmt.trend(row["trend"])))
            for row in snapshot["status_codes"]])
