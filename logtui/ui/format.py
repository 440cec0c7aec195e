"""Numbers as panels show them: compact counts, durations, shares."""

from __future__ import annotations

import time

from rich.text import Text

from logtui.core.sanitize import printable


def count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size * 10:
            return f"{n / size:.0f}{unit}"
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:.1f}s"
    if value >= 1:
        return f"{value:.2f}s"
    if value >= 0.001:
        return f"{value * 1e3:.0f}ms" if value >= 0.01 else f"{value * 1e3:.1f}ms"
    return f"{value * 1e6:.0f}µs"


def share(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def clock(epoch: float | None, seconds: bool = True) -> str:
    if epoch is None or epoch != epoch or epoch in (float("inf"), float("-inf")):
        return "-"
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", time.localtime(epoch))


def trend(ratio: float) -> str:
    """An arrow for a rate in the newest part of the window over the whole window."""
    if ratio >= 1.5:
        return "▲"
    if ratio <= 0.5:
        return "▼"
    return "·"


def safe(value: object) -> Text:
    """Log-derived text as a literal cell: no markup, no terminal escapes."""
    return Text(printable(str(value)), no_wrap=True, overflow="ellipsis")


def fields(items: list[tuple[str, str, str]], gap: str = "   ") -> Text:
    """'label value' pairs in a row: labels dim, each value in its own style."""
    text = Text()
    for index, (label, value, style) in enumerate(items):
        text.append(gap if index else "")
        text.append(label, style="dim")
        text.append(" ")
        text.append(value, style=style)
    return text
