"""Crawlers: their share of the traffic, and each bot's hits, errors and last visit."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from logtui.ui import format as fmt
from logtui.ui.widgets.drill_table import DrillTable


class CrawlersPanel(Vertical):
    DEFAULT_CSS = """
    CrawlersPanel > Static { height: 1; }
    CrawlersPanel > DrillTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="bot-share")
        yield DrillTable("bot", ("bot", "hits", "err%", "last"))

    def show(self, snapshot: dict[str, Any]) -> None:
        hits = sum(snapshot["bots"].values())
        self.query_one("#bot-share", Static).update(fmt.fields([
            ("bots", fmt.share(snapshot["bot_share"]), "bold"),
            ("hits", fmt.count(hits), "bold")]), layout=False)   # a fixed height
        self.query_one(DrillTable).show([
            (row["name"], (fmt.safe(row["name"]), fmt.count(row["hits"]),
                           fmt.share(row["errors"] / row["hits"]) if row["hits"] else "-",
                           fmt.clock(row["last_seen"], seconds=False)))
            for row in snapshot["crawlers"]])
