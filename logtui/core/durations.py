"""Durations as users type them: 500ms, 30s, 5m, 1h, 1d, 2m30s (and 'all' for windows)."""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
# a bare number (seconds), or numbers with units, largest first: 1h30m, 2m30s, 1s500ms
DURATION = re.compile(r"^\d+(?:\.\d+)?$|^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    written = text.strip().lower()
    parts = [(float(number), UNITS[unit]) for number, unit in PART.findall(written)]
    scales = [scale for _, scale in parts]
    seconds = 0.0   # stays 0 for anything that is no duration
    if DURATION.match(written) is not None and scales == sorted(set(scales), reverse=True):
        seconds = sum(number * scale for number, scale in parts) if parts else float(written)
    if seconds <= 0:
        raise DurationError(f"{text!r}: expected a duration like 30s, 5m, 1h or 2m30s")
    return seconds


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
