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
from textual.scroll_view import ScrollView
from textual.strip import Strip

from logtui.core.dashboard import StreamLine
from logtui.core.sanitize import printable
from logtui.ui import format as fmt
from logtui.ui.colors import status_style


class LogStream(ScrollView, can_focus=True):
    DEFAULT_CSS = "LogStream { background: $surface; overflow-x: hidden; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "move(-10)", "Page up", show=False),
        Binding("pagedown", "move(10)", "Page down", show=False),
        Binding("home", "top", "Oldest", show=False),
        Binding("end", "follow", "Follow", show=False),
        Binding("enter", "select", "Record"),
    ]
    following: reactive[bool] = reactive(True)

    class Selected(Message):
        def __init__(self, line: StreamLine) -> None:
            super().__init__()
            self.line = line

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: list[StreamLine] = []
        self.cursor = -1

    def show(self, lines: Sequence[StreamLine]) -> None:
        selected = self.lines[self.cursor] if 0 <= self.cursor < len(self.lines) else None
        self.lines = list(lines)
        if self.following or selected is None:
            self.cursor = len(self.lines) - 1
        else:
            # keep the cursor on the same line as the window slides (or the oldest one left)
            self.cursor = next((i for i, line in enumerate(self.lines) if line is selected), 0)
        self.virtual_size = Size(self.size.width, len(self.lines))
        self._scroll_to_cursor()
        # again once the layout has caught up: until the first lines overflow the panel it
        # has no scrollbar, and a scroll asked for before then does nothing
        self.call_after_refresh(self._scroll_to_cursor)
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        top, height = self.scroll_offset.y, self.size.height
        if self.following:
            self.scroll_to(y=max(0, len(self.lines) - height), animate=False, immediate=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        if not self.lines:
            return
        self.cursor = max(0, min(len(self.lines) - 1, self.cursor + delta))
        self.following = self.cursor == len(self.lines) - 1
        self._scroll_to_cursor()
        self.refresh()

    def action_top(self) -> None:
        self.action_move(-len(self.lines))

    def action_follow(self) -> None:
        self.following = True
        self.action_move(len(self.lines))

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
