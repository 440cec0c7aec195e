"""A log line's parsed record, field by field (Enter on the log stream)."""

from __future__ import annotations

import json
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from logtui.core.dashboard import StreamLine
from logtui.ui import format as fmt


class RecordScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RecordScreen { align: center middle; }
    RecordScreen > Vertical { width: 90%; height: auto; max-height: 90%;
                              border: thick $accent; background: $surface; padding: 0 1; }
    RecordScreen Static { margin-bottom: 1; }
    RecordScreen DataTable { height: auto; max-height: 30; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "dismiss", "Close")]

    def __init__(self, line: StreamLine) -> None:
        super().__init__()
        self.line = line

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(fmt.safe(self.line.line))
            yield DataTable(cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("field", "value")
        rows = [("tag", self.line.tag), ("time", fmt.clock(self.line.time)),
                ("parsed", "yes" if self.line.parsed else "no (counted as unparsed)"),
                *sorted(self.line.record.items())]
        for name, value in rows:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            table.add_row(fmt.safe(name), fmt.safe(text))
        table.focus()
