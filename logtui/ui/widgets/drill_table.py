"""A panel table whose rows drill down: Enter (or a click) adds the row's filter term."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from logtui.core.filters import term_for


class DrillTable(DataTable[Any]):
    """Rows are keyed by the value they count; `field` names the filter field."""

    DEFAULT_CSS = """
    DrillTable { height: 1fr; background: $surface; overflow-x: hidden; }
    DrillTable > .datatable--header { background: $surface; color: $text-muted; }
    """

    class DrillDown(Message):
        def __init__(self, term: str) -> None:
            super().__init__()
            self.term = term

    def __init__(self, field: str, columns: Sequence[str], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.field = field
        self._columns = columns
        self._values: list[object] = []
        self._rows: Sequence[tuple[object, Sequence[str | Text]]] = []

    def on_mount(self) -> None:
        for column in self._columns:
            self.add_column(column, key=column)

    def show(self, rows: Sequence[tuple[object, Sequence[str | Text]]]) -> None:
        """Replace the rows: (value drilled into, cells). The cursor stays where it was.

        The first column (a path, a user agent...) gets the width the others leave and is
        cut with an ellipsis, so the counts beside it always stay in view."""
        self._rows = rows
        values = [value for value, _ in rows]
        room = self._first_column_room([cells for _, cells in rows])
        cells = [[_truncated(row[0], room), *row[1:]] for _, row in rows]
        if values == self._values and self.row_count == len(cells):
            for index, row in enumerate(cells):
                for column, cell in enumerate(row):
                    self.update_cell_at(Coordinate(index, column), cell)
            return
        cursor = self.cursor_row
        self.clear()
        self.add_rows(cells)
        self._values = values
        if cells:
            self.move_cursor(row=min(cursor, len(cells) - 1), animate=False)

    def on_resize(self) -> None:
        # the first column's width follows the table's: cut the values again
        if self._rows:
            self._values = []
            self.show(self._rows)

    def _first_column_room(self, rows: Sequence[Sequence[str | Text]]) -> int:
        others = sum(2 + max([len(name), *(_width(row[i]) for row in rows)])
                     for i, name in enumerate(self._columns) if i)
        # 2 for the first column's padding, 1 for a vertical scrollbar
        return max(6, self.size.width - others - 3)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if 0 <= event.cursor_row < len(self._values):
            self.post_message(self.DrillDown(term_for(self.field, self._values[event.cursor_row])))


def _width(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else Text(cell).cell_len


def _truncated(cell: str | Text, width: int) -> Text:
    text = cell.copy() if isinstance(cell, Text) else Text(cell)
    text.truncate(width, overflow="ellipsis")
    return text
