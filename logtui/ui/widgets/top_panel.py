"""A top list (paths, clients, countries): value, count and share of the window."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical

from logtui.ui import format as fmt
from logtui.ui.widgets.drill_table import DrillTable


class TopPanel(Vertical):
    DEFAULT_CSS = "TopPanel > DrillTable { height: 1fr; }"

    def __init__(self, key: str, field: str, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key, self.field, self.label = key, field, label

    def compose(self) -> ComposeResult:
        yield DrillTable(self.field, (self.label, "count", "share"))

    def show(self, snapshot: dict[str, Any]) -> None:
        total = snapshot["parsed"] or 1
        self.query_one(DrillTable).show([
            (row[self.field], (fmt.safe(row[self.field]), fmt.count(row["count"]),
                               fmt.share(row["count"] / total)))
            for row in snapshot[self.key]])
