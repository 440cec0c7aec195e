"""The top bar: sources and their state, rate, error rate, totals, window, filter."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from logtui.core.durations import format_duration
from logtui.core.sanitize import printable
from logtui.ui import format as fmt

STATE_MARKS = {"following": "●", "closed": "○", "missing": "?", "connected": "●"}


class Summary(Static):
    DEFAULT_CSS = "Summary { height: 2; background: $panel; padding: 0 1; }"

    def show(self, snapshot: dict[str, Any], paused: bool) -> None:
        view = snapshot["view"]
        sources = Text()
        for index, source in enumerate(snapshot["sources"]):
            healthy = source.state in ("following", "connected")
            mark = STATE_MARKS.get(source.state, "!")
            sources.append(("  " if index else "") + mark + " ",
                           style="green" if healthy else "bold red")
            sources.append(printable(source.tag))
            if not healthy:
                sources.append(f" ({printable(source.state)})", style="red")
            elif source.format not in ("auto",):
                sources.append(f" {source.format}", style="dim")
        if not snapshot["sources"]:
            sources.append("no sources", style="dim")
        error_style = "bold red" if snapshot["error_rate"] >= 0.01 else "bold"
        fields = [
            ("req/s", f"{snapshot['rate']:.1f}", "bold"),
            ("5xx", fmt.share(snapshot["error_rate"]), error_style),
            ("total", fmt.count(snapshot["total"]), "bold"),
            ("unparsed", fmt.count(snapshot["unparsed"]),
             "bold yellow" if snapshot["unparsed"] else "bold"),
            ("window", format_duration(view.window), "bold"),
            ("bots", view.bots, "bold"),
            ("filter", printable(view.filter) or "none", "bold cyan"),
        ]
        numbers = Text.assemble(("PAUSED", "bold reverse"), "   ") if paused else Text()
        numbers.append_text(fmt.fields(fields))
        # a fixed height: a layout pass of the whole screen would change nothing
        self.update(Text("\n").join([sources, numbers]), layout=False)
