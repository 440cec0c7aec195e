"""The live log stream: newest lines at the bottom, coloured by status class.

It follows the tail until the cursor moves up (then it holds still while lines arrive)
and goes back to following with End. Enter opens the selected line's parsed record.
Lines are drawn with the Line API, so the widget costs the same for 20 lines or 2,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip

from logtui.core.dashboard import StreamLine
from logtui.core.sanitize import printable
from logtui.ui import format as fmt
from logtui.ui.colors import status_style
from logtui.ui.widgets.cursor_view import CursorView


class LogStream(CursorView):
    DEFAULT_CSS = "LogStream { background: $surface; overflow-x: hidden; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Record")]
    following: reactive[bool] = reactive(True)

    class Selected(Message):
        def __init__(self, line: StreamLine) -> None:
            super().__init__()
            self.line = line

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: list[StreamLine] = []

    def show(self, lines: Sequence[StreamLine]) -> None:
        selected = self.lines[self.cursor] if 0 <= self.cursor < len(self.lines) else None
        self.lines = list(lines)
        if self.following or selected is None:
            self.cursor = len(self.lines) - 1
        else:
            # keep the cursor on the same line as the window slides (or the oldest one left)
            self.cursor = next((i for i, line in enumerate(self.lines) if line is selected), 0)
        self.virtual_size = Size(self.size.width, len(self.lines))
        self.scroll_to_cursor()
        # again once the layout has caught up: until the first lines overflow the panel it
        # has no scrollbar, and a scroll asked for before then does nothing
        self.call_after_refresh(self.scroll_to_cursor)
        self.refresh()

    @property
    def row_count(self) -> int:
        return len(self.lines)

    def move_cursor(self, row: int) -> None:
        """Moving to the newest line follows the tail again; any other line holds still."""
        if self.lines:
            self.following = min(row, len(self.lines) - 1) == len(self.lines) - 1
        super().move_cursor(row)

    def scroll_to_cursor(self) -> None:
        if self.following:   # the newest line at the bottom, even as fewer lines come in
            self.scroll_to(y=max(0, len(self.lines) - self.size.height), animate=False,
                           immediate=True)
        else:
            super().scroll_to_cursor()

    def action_select(self) -> None:
        if 0 <= self.cursor < len(self.lines):
            self.post_message(self.Selected(self.lines[self.cursor]))

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.size.width
        if not 0 <= index < len(self.lines):
            return Strip.blank(width, self.rich_style)
        line = self.lines[index]
        style = status_style(self.app, line.status if line.parsed else None)
        if index == self.cursor and self.has_focus:
            style += Style(reverse=True)
        text = f"{fmt.clock(line.time)} {printable(line.line)}"
        return Strip([Segment(text, style)]).crop(0, width).extend_cell_length(width, style)
