"""Follow log files through rotation (rename, copytruncate, delete), globs and stdin, no line lost.

Sources are polled; between polls `TailSet.wait` sleeps until watchfiles sees a change.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import queue
import select
import stat
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from logtui.core.lines import MAX_LINE, LineSplitter

CHUNK = 1 << 20            # bytes per pread
MAX_READ = 8 << 20         # bytes per read()/poll() call, so a huge backlog comes in several calls
SCAN_BLOCK = 64 << 10      # block size of the backwards scan for the last N lines
FINGERPRINT = 64           # bytes before our offset, to find a copytruncate copy
# W3C logs (IIS, CloudFront) name their columns in a `#Fields:` line, written at the top and
# again after a restart. Following from the end of such a file, the one in force there is
# read first, or no line after it could be parsed. How far back it is looked for:
LAYOUT_PREFIX = b"#Fields:"
LAYOUT_SCAN = 8 << 20
HEADER_SIZE = 64 << 10    # a file's header is in its first bytes
ROTATE_WAIT = 5.0          # seconds a rotated or deleted file is still drained (nginx until USR1)
POLL_FALLBACK = 0.25       # seconds between polls when watchfiles is unavailable
PIPE_READ = 64 << 10       # bytes per read from stdin
PIPE_QUEUE = 128           # chunks buffered from stdin before the reader thread waits (8 MiB)
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".z")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _reason(exc: OSError) -> str:
    """`state` text for an OSError: "error: permission denied", "error: is a directory"."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"error: {text.lower()}"


def _has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    """Open a regular file for reading; (fd, fstat of what was actually opened)."""
    # Check before opening: open() succeeds on a directory, and would block on a FIFO.
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file (pipe it into '-' instead)", path)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise


def start_of_last_lines(fd: int, size: int, count: int) -> int:
    """Offset where the last `count` complete lines before `size` begin, scanning back in blocks."""
    # A partial last line (after the final newline) is not one of them, so we look for the
    # (count+1)-th newline from the end and start right after it.
    needed = count + 1
    pos = size
    while pos > 0:
        start = max(0, pos - SCAN_BLOCK)
        block = os.pread(fd, pos - start, start)
        found = block.count(b"\n")
        if found < needed:
            needed -= found
        else:
            end = len(block)
            while True:
                end = block.rfind(b"\n", 0, end)
                needed -= 1
                if needed == 0:
                    return start + end + 1
        pos = start
    return 0


def layout_line(fd: int, offset: int) -> str | None:
    """The last `#Fields:` line before `offset`, looked for LAYOUT_SCAN bytes back (and,
    when the file is longer than that, in its first block, where the header is)."""
    end, floor = offset, max(0, offset - LAYOUT_SCAN)
    while end > floor:
        start = max(floor, end - SCAN_BLOCK)
        # the block runs on past `end` by the prefix's length: a match across the boundary
        block = os.pread(fd, min(offset, end + len(LAYOUT_PREFIX)) - start, start)
        if (at := _last_layout(block, start)) is not None:
            return _line_at(fd, start + at)
        end = start
    if floor > 0 and (at := _last_layout(os.pread(fd, min(floor, HEADER_SIZE), 0), 0)) is not None:
        return _line_at(fd, at)
    return None


def _last_layout(block: bytes, start: int) -> int | None:
    """Where the last line starting with LAYOUT_PREFIX begins in `block` (read at `start`)."""
    at = block.rfind(b"\n" + LAYOUT_PREFIX)
    if at >= 0:
        return at + 1
    return 0 if start == 0 and block.startswith(LAYOUT_PREFIX) else None


def _line_at(fd: int, offset: int) -> str:
    line = os.pread(fd, MAX_LINE, offset).split(b"\n", 1)[0]
    return line.decode("utf-8", "replace").rstrip("\r")


@dataclass(eq=False)
class _Open:
    """One open file and how far we have read it."""

    fd: int
    dev: int
    ino: int
    offset: int
    splitter: LineSplitter
    fp: bytes = b""                    # up to FINGERPRINT bytes just before `offset`
    live: bool = True                  # the file the path names: checked for truncation
    close_after: float | None = None   # monotonic deadline once rotated away or deleted


class FileFollower:
    """Follows one path through rotation; `read()` returns the lines completed since the last call.

    Not thread-safe: use one follower from one thread. `state` is "following", "missing",
    "closed" or "error: <reason>"; no OSError escapes `read()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        from_start: bool = False,
        last_lines: int = 1000,
        max_read: int = MAX_READ,
        rotate_wait: float = ROTATE_WAIT,
        max_line: int = MAX_LINE,
    ) -> None:
        self.path = os.fspath(path)
        self.max_read = max_read
        self.rotate_wait = rotate_wait
        self.max_line = max_line
        self.state = "missing"
        self.gaps = 0              # truncations whose unread bytes could not be found in a copy
        self.has_more = False      # the last read() stopped at its byte budget
        self.bytes_read = 0        # bytes consumed by the last read()
        self._live: _Open | None = None
        self._retired: list[_Open] = []   # rotated/deleted files, copytruncate copies; oldest first
        self._cut = 0                     # lines truncated by splitters already closed
        self._budget = 0
        self._closed = False
        self._preamble: list[str] = []    # lines to hand out before the file's own
        # A file that exists but cannot be read yet keeps the start policy for when it can;
        # a file that appears later is new, so it is read from its beginning.
        self._start: tuple[bool, int] | None = None
        try:
            self._live = self._open(from_start, last_lines)
            self.state = "following"
        except FileNotFoundError:
            self.state = "missing"
        except PermissionError as exc:
            self.state = _reason(exc)
            self._start = (from_start, last_lines)
        except OSError as exc:
            self.state = _reason(exc)

    # -- public -------------------------------------------------------------------------------

    @property
    def truncated(self) -> int:
        """Lines longer than max_line that were cut so far."""
        return self._cut + sum(f.splitter.truncated for f in self._files())

    @property
    def pending(self) -> int:
        """Bytes of partial lines held back, waiting for their newline."""
        return sum(f.splitter.pending for f in self._files())

    @property
    def is_open(self) -> bool:
        """True while any file descriptor is held (the live file or one still being drained)."""
        return bool(self._files())

    @property
    def lost_bytes_unknown(self) -> bool:
        """True once a truncation may have dropped unread bytes (no rotated copy matched)."""
        return self.gaps > 0

    def read(self, max_bytes: int | None = None) -> list[str]:
        """Newly complete lines, oldest first; at most `max_bytes` (default max_read) consumed."""
        out: list[str] = []
        self.has_more = False
        self.bytes_read = 0
        if self._closed:
            return out
        out.extend(self._preamble)
        self._preamble = []
        budget = self.max_read if max_bytes is None else max_bytes
        self._budget = budget
        try:
            self._poll(out)
        except OSError as exc:
            self.state = _reason(exc)
        self.bytes_read = budget - self._budget
        return out

    def close(self, final: bool = False) -> list[str]:
        """Release every fd. With final=True (end of input) partial last lines are returned."""
        out: list[str] = []
        for f in self._files():
            lines = self._close_file(f)
            if final:
                out.extend(lines)
        self._retired.clear()
        self._live = None
        self._closed = True
        self.state = "closed"
        return out

    def __enter__(self) -> FileFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _files(self) -> list[_Open]:
        return [*self._retired, *([self._live] if self._live is not None else [])]

    def _open(self, from_start: bool, last_lines: int) -> _Open:
        fd, st = _open_regular(self.path)
        try:
            offset = 0 if from_start else start_of_last_lines(fd, st.st_size, max(0, last_lines))
            layout = layout_line(fd, offset) if offset else None
            self._preamble = [layout] if layout else []
            n = min(FINGERPRINT, offset)
            fp = os.pread(fd, n, offset - n) if n else b""
        except BaseException:
            os.close(fd)
            raise
        return _Open(fd, st.st_dev, st.st_ino, offset, LineSplitter(self.max_line), fp)

    def _close_file(self, f: _Open) -> list[str]:
        lines = f.splitter.flush()
        self._cut += f.splitter.truncated
        with contextlib.suppress(OSError):
            os.close(f.fd)
        return lines

    def _poll(self, out: list[str]) -> None:
        now = time.monotonic()
        # Which file the path names is checked BEFORE draining: whatever the writer put in the
        # old file before it was renamed or deleted is then already there when we drain it.
        st: os.stat_result | None = None
        stat_error: OSError | None = None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:   # e.g. the directory became unreadable: drain what we hold
            stat_error = exc

        for f in list(self._retired):
            if not self._drain(f, out):
                return
            if f.close_after is not None and now >= f.close_after:
                out.extend(self._close_file(f))
                self._retired.remove(f)

        live = self._live
        if live is not None:
            if not self._drain(live, out):
                return
            if stat_error is not None or (st is not None and (st.st_dev, st.st_ino)
                                          == (live.dev, live.ino)):
                live.close_after = None
                self.state = _reason(stat_error) if stat_error else "following"
                return
            if live.close_after is None:
                # The writer may still hold the old file (nginx writes there until USR1).
                live.close_after = now + self.rotate_wait
            if st is None:
                # Deleted: keep the fd for rotate_wait in case the writer still appends to it.
                if now >= live.close_after:
                    out.extend(self._close_file(live))
                    self._live = None
                self.state = "missing"
                return
            live.live = False
            self._retired.append(live)
            self._live = None

        if stat_error is not None:
            self.state = _reason(stat_error)
            return
        if st is None:
            self.state = "missing"
            return
        start = self._start or (True, 0)
        self._live = self._open(*start)
        self._start = None
        self.state = "following"
        self._drain(self._live, out)

    def _drain(self, f: _Open, out: list[str]) -> bool:
        """Read `f` to its end within the budget; False when the budget ran out first."""
        if f.live and self._was_truncated(f) and not self._on_truncate(f, out):
            return False
        while True:
            if self._budget <= 0:
                self.has_more = True
                return False
            data = os.pread(f.fd, min(CHUNK, self._budget), f.offset)
            if not data:
                return True
            # Verified after the read: if the file was truncated before the pread, `data` may be
            # the new content; it is dropped and the copy (or the restart at 0) takes over.
            if f.live and f.fp and self._was_truncated(f):
                if not self._on_truncate(f, out):
                    return False
                continue
            self._budget -= len(data)
            f.fp = data[-FINGERPRINT:] if len(data) >= FINGERPRINT else (f.fp + data)[-FINGERPRINT:]
            f.offset += len(data)
            out.extend(f.splitter.feed(data))

    @staticmethod
    def _was_truncated(f: _Open) -> bool:
        if os.fstat(f.fd).st_size < f.offset:
            return True
        # Truncated and written again past our offset: the bytes before it are no longer ours.
        return bool(f.fp) and os.pread(f.fd, len(f.fp), f.offset - len(f.fp)) != f.fp

    def _on_truncate(self, f: _Open, out: list[str]) -> bool:
        """copytruncate: read the rest from the rotated copy, then the live file from 0."""
        copy = self._find_copy(f) if f.fp else None
        if copy is not None:
            # The copy continues the partial line we hold, so it takes over our splitter.
            copy.splitter, f.splitter = f.splitter, LineSplitter(self.max_line)
            self._retired.append(copy)
        else:
            if f.offset > 0:
                self.gaps += 1
            out.extend(f.splitter.flush())   # its continuation is gone
        f.offset = 0
        f.fp = b""
        if copy is None:
            return True
        if not self._drain(copy, out):
            return False
        out.extend(self._close_file(copy))
        self._retired.remove(copy)
        return True

    def _rotated_siblings(self) -> list[str]:
        first = self.path + ".1"
        base = glob.escape(self.path)
        others = {*glob.glob(base + "-*"), *glob.glob(base + ".*")} - {first}

        def mtime(p: str) -> float:
            try:
                return os.stat(p).st_mtime
            except OSError:
                return float("-inf")

        plain = [p for p in others if not p.lower().endswith(COMPRESSED)]
        return [first, *sorted(plain, key=mtime, reverse=True)]

    def _find_copy(self, f: _Open) -> _Open | None:
        """The rotated file holding, at our offset, the bytes we had read just before it."""
        n = len(f.fp)
        for candidate in self._rotated_siblings():
            try:
                fd = os.open(candidate, _OPEN_FLAGS)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if (stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) != (f.dev, f.ino)
                        and st.st_size >= f.offset
                        and os.pread(fd, n, f.offset - n) == f.fp):
                    return _Open(fd, st.st_dev, st.st_ino, f.offset, f.splitter, f.fp,
                                 live=False, close_after=float("-inf"))
            except OSError:
                pass
            os.close(fd)
        return None


class StdinSource:
    """Lines from a pipe (default sys.stdin.buffer), read by a thread so `read()` never blocks.

    `state` is "following" until end of input, then "closed" (the partial last line is
    returned then). `stream` must not have been read through its Python buffer before.
    """

    def __init__(
        self,
        stream: BinaryIO | None = None,
        *,
        tag: str = "-",
        on_data: Callable[[], None] | None = None,
        max_read: int = MAX_READ,
        max_line: int = MAX_LINE,
    ) -> None:
        self.tag = tag
        self.path = tag
        self.state = "following"
        self.gaps = 0
        self.has_more = False
        self.bytes_read = 0
        self.max_read = max_read
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._on_data = on_data
        self._splitter = LineSplitter(max_line)
        # Bounded: when nobody reads, the thread stops reading and the writer upstream blocks.
        self._queue: queue.Queue[bytes | OSError | None] = queue.Queue(maxsize=PIPE_QUEUE)
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()   # close() interrupts the select() with this
        self._done = False
        self._thread = threading.Thread(target=self._run, name="logtui-stdin", daemon=True)
        self._thread.start()

    @property
    def truncated(self) -> int:
        return self._splitter.truncated

    @property
    def pending(self) -> int:
        return self._splitter.pending

    @property
    def is_open(self) -> bool:
        return not self._done

    def read(self, max_bytes: int | None = None) -> list[str]:
        """Lines completed since the last call; never blocks."""
        out: list[str] = []
        self.has_more = False
        self.bytes_read = 0
        budget = self.max_read if max_bytes is None else max_bytes
        while not self._done:
            if self.bytes_read >= budget:
                self.has_more = not self._queue.empty()
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                out.extend(self._splitter.flush())
                self.state = "closed"
                self._done = True
            elif isinstance(item, OSError):
                out.extend(self._splitter.flush())
                self.state = _reason(item)
                self._done = True
            else:
                self.bytes_read += len(item)
                out.extend(self._splitter.feed(item))
        return out

    def close(self, final: bool = False) -> list[str]:
        """Stop the reader thread (it does not close the stream). final=True flushes."""
        out = self.read(1 << 62) if final else []
        if final and not self._done:
            out.extend(self._splitter.flush())
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=2.0)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._done = True
        if self.state == "following":
            self.state = "closed"
        return out

    def _run(self) -> None:
        try:
            fd: int | None = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None      # e.g. io.BytesIO: plain blocking reads, which end at its EOF anyway
        try:
            while not self._stop.is_set():
                if fd is not None:
                    ready, _, _ = select.select([fd, self._wake_r], [], [])
                    if fd not in ready:
                        continue
                    data = os.read(fd, PIPE_READ)
                else:
                    data = self._stream.read(PIPE_READ)
                if not data:
                    break
                self._put(data)
            self._put(None)
        except OSError as exc:
            self._put(exc)

    def _put(self, item: bytes | OSError | None) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            if self._on_data is not None:
                self._on_data()
            return


@dataclass(frozen=True)
class SourceStatus:
    """One source as the dashboard header shows it."""

    tag: str
    state: str
    truncated: int = 0      # long lines cut
    gaps: int = 0           # truncations where unread lines may have been lost


Source = FileFollower | StdinSource


class TailSet:
    """Many paths, globs and "-" (stdin), re-globbed on every poll.

    Globs add the files that match them, so use `logs/*.log`: a pattern like `logs/*.log*`
    would also match rotated copies (access.log.1) and read them again as new sources.
    """

    def __init__(
        self,
        patterns: Sequence[str | os.PathLike[str]],
        *,
        from_start: bool = False,
        last_lines: int = 1000,
        max_read: int = MAX_READ,
        rotate_wait: float = ROTATE_WAIT,
        stdin: BinaryIO | None = None,
    ) -> None:
        self.patterns = [os.fspath(p) for p in patterns]
        self.from_start = from_start
        self.last_lines = last_lines
        self.max_read = max_read
        self.rotate_wait = rotate_wait
        self.has_more = False           # the last poll() stopped at its byte budget
        self.watch_error: str | None = None
        self._sources: dict[str, tuple[str, Source]] = {}   # key -> (tag, source)
        self._explicit: set[str] = set()                     # keys never dropped when missing
        self._rr = 0                                         # round-robin start for fairness
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._watching = False
        self._watch_dirs: frozenset[str] = frozenset()
        if "-" in self.patterns:
            self._sources["-"] = ("-", StdinSource(stdin, on_data=self._changed.set,
                                                   max_read=max_read))
            self._explicit.add("-")
        self._discover(initial=True)

    @property
    def sources(self) -> list[SourceStatus]:
        return [SourceStatus(tag, src.state, src.truncated, src.gaps)
                for tag, src in self._sources.values()]

    def poll(self) -> list[tuple[str, list[str]]]:
        """(tag, new lines) for each source that has some; at most max_read bytes in all."""
        out: list[tuple[str, list[str]]] = []
        self.has_more = False
        if self._stop.is_set():
            return out
        self._discover(initial=False)
        budget = self.max_read
        items = list(self._sources.items())
        n = len(items)
        for k in range(n):
            i = (self._rr + k) % n
            key, (tag, src) = items[i]
            if budget <= 0:
                # Unvisited sources may have data: start with them next time.
                self.has_more = True
                self._rr = i
                break
            lines = src.read(budget)
            budget -= src.bytes_read
            self.has_more |= src.has_more
            if lines:
                out.append((tag, lines))
            if key not in self._explicit and src.state == "missing" and not src.is_open:
                # A globbed file that went away; it is picked up again (from 0) if it returns.
                del self._sources[key]
        self._watch_dirs = self._dirs()
        return out

    def wait(self, timeout: float) -> None:
        """Block until something may have changed, or `timeout` seconds pass."""
        if self.has_more or self._stop.is_set():
            return
        if self._watcher is None:
            self._watch_dirs = self._dirs()
            self._watcher = threading.Thread(target=self._watch, name="logtui-watch",
                                             daemon=True)
            self._watching = True
            self._watcher.start()
        self._changed.wait(timeout if self._watching else min(timeout, POLL_FALLBACK))
        # Cleared before the caller's poll: a change after this sets it again.
        self._changed.clear()

    def follow(self, callback: Callable[[str, list[str]], None], stop: threading.Event,
               interval: float = 0.25) -> None:
        """Poll and call callback(tag, lines) until `stop` is set (or this set is closed)."""
        while not stop.is_set() and not self._stop.is_set():
            for tag, lines in self.poll():
                callback(tag, lines)
            self.wait(interval)

    def close(self, final: bool = False) -> list[tuple[str, list[str]]]:
        """Stop the watcher thread and close every source; final=True returns partial last lines."""
        self._stop.set()
        self._changed.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5.0)
        out: list[tuple[str, list[str]]] = []
        for tag, src in self._sources.values():
            lines = src.close(final)
            if lines:
                out.append((tag, lines))
        return out

    def __enter__(self) -> TailSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _discover(self, initial: bool) -> None:
        for pattern in self.patterns:
            if pattern == "-":
                continue
            if _has_magic(pattern):
                paths = [p for p in sorted(glob.glob(pattern)) if not os.path.isdir(p)]
            else:
                paths = [pattern]
            for path in paths:
                key = os.path.abspath(path)
                if key in self._sources:
                    continue
                # Files there at start honour --from-start/--lines; files that appear later
                # are new, so all of them is new.
                follower = FileFollower(path, from_start=self.from_start or not initial,
                                        last_lines=self.last_lines, max_read=self.max_read,
                                        rotate_wait=self.rotate_wait)
                self._sources[key] = (path, follower)
                if not _has_magic(pattern):
                    self._explicit.add(key)

    def _dirs(self) -> frozenset[str]:
        dirs = {os.path.dirname(p) or "." for p in self.patterns
                if p != "-" and not _has_magic(os.path.dirname(p))}
        dirs.update(os.path.dirname(tag) or "." for key, (tag, _) in self._sources.items()
                    if key != "-")
        return frozenset(os.path.abspath(d) for d in dirs if os.path.isdir(d))

    def _watch(self) -> None:
        """Watcher thread: sets _changed on any change in the watched directories."""
        try:
            import watchfiles
        except ImportError as exc:
            self.watch_error = f"watchfiles unavailable: {exc}"
            self._watching = False
            return
        while not self._stop.is_set():
            dirs = self._watch_dirs
            if not dirs:
                self._watching = False     # nothing to watch yet: wait() polls meanwhile
                self._stop.wait(POLL_FALLBACK)
                continue
            self._watching = True
            try:
                for changes in watchfiles.watch(
                    *sorted(dirs), watch_filter=None, debounce=50, step=25,
                    stop_event=self._stop, rust_timeout=500, yield_on_timeout=True,
                    recursive=False, raise_interrupt=False,
                ):
                    if changes:
                        self._changed.set()
                    if self._watch_dirs != dirs:
                        # Changes between two watches would go unseen: poll once.
                        self._changed.set()
                        break
            except Exception as exc:  # e.g. the inotify watch limit: fall back to polling
                self.watch_error = f"{type(exc).__name__}: {exc}"
                self._watching = False
                self._changed.set()
                return
        self._watching = False
