"""Bytes to lines, sans-I/O: the tailer and the batch reader only move bytes into this.

`LineSplitter.feed(data)` returns the complete lines in `data` (newline and a CR before
it removed, invalid UTF-8 replaced) and keeps a partial last line for the next call.
A line longer than `max_line` bytes is cut there, counted, and the rest of it skipped,
so memory stays bounded whatever the input.
"""

from __future__ import annotations

MAX_LINE = 1 << 20  # 1 MiB


def decode_lines(blob: bytes) -> list[str]:
    """Newline-separated bytes (the final newline removed) to text lines, CRLF-aware."""
    text = blob.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").removesuffix("\r")
    return text.split("\n")


class LineSplitter:
    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.truncated = 0          # lines cut at max_line so far
        self._partial = bytearray()
        self._skipping = False      # inside the remainder of a cut line

    @property
    def pending(self) -> int:
        """Bytes of the partial line held back, waiting for its newline."""
        return len(self._partial)

    def feed(self, data: bytes) -> list[str]:
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return []
            self._skipping = False
            data = data[end + 1:]
        last = data.rfind(b"\n")
        if last < 0:
            self._partial += data
            return self._cut_partial()
        if self._partial:
            self._partial += data[:last]
            complete = bytes(self._partial)
        else:
            complete = data[:last]
        self._partial = bytearray(data[last + 1:])
        lines = self._cut_long(complete)
        return lines + self._cut_partial()

    def flush(self) -> list[str]:
        """End of input: a partial last line counts as a line."""
        if self._skipping or not self._partial:
            self._skipping = False
            return []
        lines = decode_lines(bytes(self._partial))
        self._partial.clear()
        return lines

    def _cut_partial(self) -> list[str]:
        if len(self._partial) <= self.max_line:
            return []
        head = bytes(self._partial[: self.max_line])
        self._partial.clear()
        self._skipping = True
        self.truncated += 1
        return decode_lines(head)

    def _cut_long(self, complete: bytes) -> list[str]:
        if len(complete) <= self.max_line:
            return decode_lines(complete)
        raw = complete.split(b"\n")
        if max(map(len, raw)) <= self.max_line:
            return decode_lines(complete)
        lines: list[str] = []
        for line in raw:
            if len(line) > self.max_line:
                self.truncated += 1
                line = line[: self.max_line]
            lines.extend(decode_lines(line))
        return lines
