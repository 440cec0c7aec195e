"""A panel table whose rows drill down: Enter (or a click on the highlighted row) adds the
row's filter term.

Drawn with the Line API. The panels repaint up to ten times a second, and Textual's
DataTable re-renders every cell of every row after any change (its caches are keyed on
one update counter for the whole table): that was most of the UI thread's time, which the
feeder and view recounts share through the GIL. Here a row is a few segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip

from logtui.core.filters import term_for
from logtui.ui.widgets.cursor_view import CursorView

Cell = str | Text
PADDING = 1     # blank cells on each side of a column


class DrillTable(CursorView):
    """Rows are keyed by the value they count; `field` names the filter field. The first
    column (a path, a user agent...) gets the width the others leave and is cut with an
    ellipsis, so the counts beside it always stay in view. The header stays on top."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"drill-table--header", "drill-table--cursor"}
    DEFAULT_CSS = """
    DrillTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        & > .drill-table--header { background: $surface; color: $text-muted; text-style: bold; }
        & > .drill-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .drill-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "drill", "Drill down", show=False)]
    header = 1

    class DrillDown(Message):
        def __init__(self, term: str) -> None:
            super().__init__()
            self.term = term

    def __init__(self, field: str, columns: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.field = field
        self.columns = tuple(columns)
        self.values: list[object] = []
        self.rows: list[tuple[Text, ...]] = []
        self.widths: list[int] = [len(name) for name in self.columns]
        self._header = tuple(Text(name) for name in self.columns)
        # set once per repaint by render_lines, for every line it draws
        self._styles = (Style(), Style(), Style())   # base, header, cursor
        self._cell_widths = list(self.widths)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def show(self, rows: Sequence[tuple[object, Sequence[Cell]]]) -> None:
        """Replace the rows: (value drilled into, cells). The cursor stays where it was."""
        self.values = [value for value, _ in rows]
        self.rows = [tuple(cell if isinstance(cell, Text) else Text(cell) for cell in cells)
                     for _, cells in rows]
        self.widths = [max([len(name), *(row[i].cell_len for row in self.rows)])
                       for i, name in enumerate(self.columns)]
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self.refresh()

    # --- keys and mouse -------------------------------------------------------------------

    def action_drill(self) -> None:
        if 0 <= self.cursor < len(self.values):
            self.post_message(self.DrillDown(term_for(self.field, self.values[self.cursor])))

    def on_click(self, event: events.Click) -> None:
        """A click highlights a row; a click on the highlighted row drills, as Enter."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        row = self.scroll_offset.y + offset.y - 1
        if row >= len(self.rows):
            return
        if row == self.cursor and self.has_focus:
            self.action_drill()
        self.move_cursor(row)

    # --- drawing ----------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # once per repaint, not per line: each style walks the DOM to resolve
        self._styles = (self.rich_style, self.get_component_rich_style("drill-table--header"),
                        self.get_component_rich_style("drill-table--cursor"))
        # the first column is cut to the room the others leave (1 for a vertical scrollbar)
        others = sum(w + 2 * PADDING for w in self.widths[1:])
        room = max(6, self.size.width - others - 2 * PADDING - 1)
        self._cell_widths = [min(room, self.widths[0]), *self.widths[1:]]
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base, header, cursor = self._styles
        if y == 0:
            return self._strip(self._header, base + header, width)
        index = self.scroll_offset.y + y - 1
        if index >= len(self.rows):
            return Strip.blank(width, base)
        return self._strip(self.rows[index], base, width,
                           cursor if index == self.cursor else None)

    def _strip(self, cells: Sequence[Text], base: Style, width: int,
               over: Style | None = None) -> Strip:
        """One line: the first column left-aligned, cut to the room the others leave; the
        others (counts, shares) right-aligned. `over` (the cursor) goes over the cells'
        own styles."""
        console = self.app.console
        line_style = base + over if over else base
        pad = Segment(" " * PADDING, line_style)
        segments: list[Segment] = []
        for column, (cell, cell_width) in enumerate(
                zip(cells, self._cell_widths, strict=True)):
            text = cell.copy()
            text.truncate(cell_width, overflow="ellipsis")
            text.align("left" if column == 0 else "right", cell_width)
            own = base + console.get_style(cell.style) if cell.style else base
            segments.append(pad)
            for part in text.render(console):
                style = own + part.style if part.style else own
                segments.append(Segment(part.text, style + over if over else style))
            segments.append(pad)
        return Strip(segments).crop(0, width).extend_cell_length(width, line_style)
