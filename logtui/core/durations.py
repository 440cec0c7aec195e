"""Durations as users type them: 500ms, 30s, 5m, 1h, 1d (and 'all' for windows)."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    match = DURATION.match(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise DurationError(f"{text!r}: expected a duration like 30s, 5m or 1h")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def parse_window(text: str) -> float | None:
    """A window length in seconds, or None for 'all' (everything read)."""
    if text.strip().lower() == "all":
        return None
    try:
        return parse_duration(text)
    except DurationError:
        raise DurationError(f"{text!r}: expected a duration like 30s, 5m, 1h or 'all'") from None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "all"
    for unit in ("d", "h", "m", "s"):
        if seconds >= UNITS[unit] and seconds % UNITS[unit] == 0:
            return f"{int(seconds // UNITS[unit])}{unit}"
    return f"{seconds:g}s"
