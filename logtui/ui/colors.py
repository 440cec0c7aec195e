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


_VARIABLES: dict[tuple[int, str], dict[str, str]] = {}


def theme_variables(app: App[object]) -> dict[str, str]:
    """The app's CSS variables, worked out once per theme (Textual rebuilds its whole
    colour system on every call, and the log stream asks for every line)."""
    key = (id(app), app.theme)
    if key not in _VARIABLES:
        _VARIABLES[key] = app.get_css_variables()
    return _VARIABLES[key]


def status_style(app: App[object], status: int | None) -> Style:
    name = f"status-{status_class(status)}"
    return _STYLES.setdefault((id(app), app.theme, name), Style(
        color=theme_variables(app).get(name, STATUS_DEFAULTS.get(name))))


_STYLES: dict[tuple[int, str, str], Style] = {}
