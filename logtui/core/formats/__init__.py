"""Line formats: names, `nginx:` specs, and per-file detection with per-line fallback."""

from __future__ import annotations

from typing import Protocol

import polars as pl

from logtui.core.formats.haproxy import HAPROXY
from logtui.core.formats.nginx import BUILTIN_SPECS, LogFormatError, builtin, compile_log_format
from logtui.core.formats.regex import reparse_unparsed
from logtui.core.formats.structured import JSON_LINES, LTSV
from logtui.core.formats.w3c import W3CFormat

DETECTION_SAMPLE = 200


class LineFormat(Protocol):
    name: str

    def matches(self, line: str) -> bool: ...

    def parse(self, lines: pl.Series, tag: str) -> pl.DataFrame: ...


def is_sequential(fmt: LineFormat) -> bool:
    """Whether batches must be parsed in order: the format carries state between them
    (W3C's #Fields layout), so a reader must not parse two of them at once."""
    if isinstance(fmt, AutoFormat):
        return fmt.chosen is not None and is_sequential(fmt.chosen)
    return bool(getattr(fmt, "sequential", False))


class UnknownFormat(ValueError):
    pass


def _candidates() -> list[LineFormat]:
    # Most specific first: a tie in detection goes to the earlier one. `common` comes
    # last because every combined line also matches it (with a longer tail): it is
    # chosen only when nothing else matches, and otherwise serves as a per-line fallback.
    # W3C scores on its directive lines alone (data lines need a #Fields line first), which
    # no other format matches; a fresh instance because it keeps its source's layout.
    return [builtin("ingress"), builtin("vhost"), builtin("combined"), JSON_LINES, LTSV,
            HAPROXY, W3CFormat(), builtin("common")]


NAMES = ("auto", "combined", "common", "vhost", "ingress", "json", "ltsv", "haproxy", "w3c")


class AutoFormat:
    """Detects the format of one source from a sample, then falls back per line."""

    name = "auto"

    def __init__(self) -> None:
        self.candidates = _candidates()
        self.chosen: LineFormat | None = None

    def matches(self, line: str) -> bool:
        return any(candidate.matches(line) for candidate in self.candidates)

    def detect(self, lines: pl.Series) -> LineFormat | None:
        sample = [line for line in lines.head(DETECTION_SAMPLE * 4) if line][:DETECTION_SAMPLE]
        *specific, fallback = self.candidates
        scores = [sum(map(candidate.matches, sample)) for candidate in specific]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        if scores[best]:
            return specific[best]
        return fallback if any(map(fallback.matches, sample)) else None

    def parse(self, lines: pl.Series, tag: str) -> pl.DataFrame:
        if self.chosen is None:
            self.chosen = self.detect(lines)
        order = self.candidates
        if self.chosen is not None:
            order = [self.chosen, *(c for c in self.candidates if c is not self.chosen)]
        frame = order[0].parse(lines, tag)
        for fallback in order[1:]:
            frame = reparse_unparsed(frame, lines,
                                     lambda rest, parser=fallback: parser.parse(rest, tag))
        return frame


def get_format(spec: str) -> LineFormat:
    """A format by name, or `nginx:<log_format line>`; auto gives a fresh detector."""
    if spec == "auto":
        return AutoFormat()
    if spec.startswith("nginx:"):
        return compile_log_format(spec.removeprefix("nginx:"), "nginx")
    if spec in BUILTIN_SPECS:
        return builtin(spec)
    if spec == "json":
        return JSON_LINES
    if spec == "ltsv":
        return LTSV
    if spec == "haproxy":
        return HAPROXY
    if spec == "w3c" or spec.startswith("w3c:"):
        # stateful (the #Fields layout): one per source; `w3c:<fields>` gives the layout
        # for a tail that starts after the file's #Fields line
        return W3CFormat(spec.removeprefix("w3c").removeprefix(":").split())
    raise UnknownFormat(
        f"unknown format {spec!r}: expected one of {', '.join(NAMES)} or nginx:'<log_format>'"
    )


__all__ = ["NAMES", "AutoFormat", "LineFormat", "LogFormatError", "UnknownFormat", "get_format",
           "is_sequential"]
