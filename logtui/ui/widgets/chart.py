"""Stacked bars of status classes over time: one column per time slice, errors on top."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from logtui.ui.colors import theme_variables

CLASSES = ("2xx", "3xx", "1xx", "4xx", "5xx")   # bottom to top: errors stay visible on top
EIGHTHS = " ▁▂▃▄▅▆▇█"


def columns_for(series: Sequence[dict[str, Any]], width: int) -> list[dict[str, int]]:
    """Merge adjacent buckets so the newest ones fill at most `width` columns."""
    if width <= 0 or not series:
        return []
    per_column = max(1, -(-len(series) // width))
    # align groups to the newest bucket so the right edge is always "now"
    start = len(series) % per_column
    groups = ([series[:start]] if start else []) + [
        series[i:i + per_column] for i in range(start, len(series), per_column)]
    return [{name: sum(point.get(name, 0) for point in group) for name in CLASSES}
            for group in groups][-width:]


def stack_cells(column: dict[str, int], height: int, peak: int) -> list[tuple[str, str | None]]:
    """(character, class) for each row of one column, bottom row first."""
    if peak <= 0:
        return [(" ", None)] * height
    scale = height * 8 / peak
    cells: list[tuple[str, str | None]] = []
    edges, running = [], 0
    for name in CLASSES:
        running += column[name]
        edges.append((round(running * scale), name))
    top = edges[-1][0]
    for row in range(height):
        low, middle = row * 8, row * 8 + 4
        if top <= low:
            cells.append((" ", None))
            continue
        owner = next((name for edge, name in edges if edge > middle), edges[-1][1])
        if top >= low + 8:
            cells.append(("█", owner))
        else:
            owner = next(name for edge, name in edges if edge > low)
            cells.append((EIGHTHS[top - low], owner))
    return cells


class StackedBars(Widget):
    DEFAULT_CSS = "StackedBars { height: 1fr; min-height: 4; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.series: list[dict[str, Any]] = []

    def show(self, series: list[dict[str, Any]]) -> None:
        self.series = series
        self.refresh()

    def _styles(self) -> dict[str | None, Style]:
        variables = theme_variables(self.app)
        background = variables.get("surface")
        styles: dict[str | None, Style] = {
            name: Style(color=variables.get(f"status-{name}", "white"), bgcolor=background)
            for name in CLASSES}
        styles[None] = Style(bgcolor=background)
        return styles

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        columns = columns_for(self.series, width)
        # few buckets (a short window) get wider bars rather than an empty left side
        bar = max(1, width // len(columns)) if columns else 1
        peak = max((sum(c.values()) for c in columns), default=0)
        styles = self._styles()
        row_from_bottom = height - 1 - y
        segments = [Segment(" " * (width - bar * len(columns)), styles[None])]
        for column in columns:
            char, owner = stack_cells(column, height, peak)[row_from_bottom]
            segments.append(Segment(char * bar, styles[owner]))
        return Strip(segments, width)
