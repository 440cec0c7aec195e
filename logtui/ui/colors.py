"""Theme colours for status classes, read from the theme's `status-*` variables."""

from __future__ import annotations

from rich.style import Style
from textual.app import App

STATUS_DEFAULTS = {
    "status-1xx": "#8a8a8a",
    "status-2xx": "#4caf50",
    "status-3xx": "#2196f3",
    "status-4xx": "#ffb300",
    "status-5xx": "#e53935",
    "status-unparsed": "#9e9e9e",
}


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "unparsed"


def status_style(app: App[object], status: int | None) -> Style:
    variables = app.get_css_variables()
    name = f"status-{status_class(status)}"
    return Style(color=variables.get(name, STATUS_DEFAULTS.get(name)))
