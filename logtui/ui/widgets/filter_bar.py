"""The '/' filter input: live validation as you type, history with up and down."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Static

from logtui.core.filters import FilterError, compile_filter
from logtui.core.sanitize import CONTROL, printable

HISTORY = 50


class FilterValidator(Validator):
    def validate(self, value: str) -> ValidationResult:
        try:
            compile_filter(value)
        except FilterError as error:
            return self.failure(str(error))
        return self.success()


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    return chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7F else "\ufffd"


class ControlPictures(Highlighter):
    """Shows control characters as their pictures (ESC as ␛), one cell each so the cursor
    stays in place: a term drilled from a log value keeps the raw character to match it,
    but the terminal must never receive it."""

    def highlight(self, text: Text) -> None:
        text.plain = CONTROL.sub(_picture, text.plain)


class FilterInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Older", show=False),
        Binding("down", "history(1)", "Newer", show=False),
        Binding("escape", "cancel", "Cancel"),
    ]

    class Cancelled(Message):
        pass

    def __init__(self, **kwargs: object) -> None:
        super().__init__(placeholder="status:5xx -bot:* path:/api/*  (Enter applies, Esc leaves)",
                         validators=[FilterValidator()], validate_on=["changed", "submitted"],
                         # opening puts the cursor at the end, to add a term: select nothing
                         highlighter=ControlPictures(), select_on_focus=False,
                         **kwargs)  # type: ignore[arg-type]
        self.history: list[str] = []
        self.position = 0

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history = [*self.history, text][-HISTORY:]
        self.position = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self.position = max(0, min(len(self.history), self.position + step))
        self.value = self.history[self.position] if self.position < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class FilterBar(Vertical):
    """Hidden until '/': an input and, under it, why the text does not parse yet."""

    DEFAULT_CSS = """
    FilterBar { height: auto; display: none; background: $panel; }
    FilterBar.-open { display: block; }
    FilterBar > Static { height: 1; padding: 0 1; color: $text-muted; }
    FilterBar > Static.-invalid { color: $error; }
    """

    class Applied(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Closed(Message):
        pass

    def compose(self) -> ComposeResult:
        yield FilterInput()
        yield Static("", id="filter-status")

    def open(self, current: str) -> None:
        field = self.query_one(FilterInput)
        field.value = current
        field.cursor_position = len(current)
        field.position = len(field.history)
        self.add_class("-open")
        field.focus()

    def close(self) -> None:
        self.remove_class("-open")
        self.post_message(self.Closed())

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        status = self.query_one("#filter-status", Static)
        result = event.validation_result
        if result is not None and not result.is_valid:
            # plain text: the reason quotes what was typed, which may look like markup
            status.update(Text(printable(result.failure_descriptions[0])))
            status.add_class("-invalid")
        else:
            status.update("Enter applies this filter (the current one stays until then)"
                          if event.value.strip() else "Enter clears the filter")
            status.remove_class("-invalid")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.validation_result is None or event.validation_result.is_valid:
            # an invalid filter is never applied: the previous one stays
            self.query_one(FilterInput).remember(event.value.strip())
            self.post_message(self.Applied(event.value.strip()))
            self.close()

    def on_filter_input_cancelled(self, event: FilterInput.Cancelled) -> None:
        event.stop()
        self.close()
