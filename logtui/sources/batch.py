"""Batch reading for `--once`: whole files in large chunks, parsed on every core.

Chunks of a few MiB are split into lines, then parsed, enriched, filtered and folded
into buckets in worker threads (polars runs outside the GIL), and merged into the
statistics in file order. Memory holds a few chunks at a time, whatever the file size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from logtui.core.formats import is_sequential
from logtui.core.lines import LineSplitter
from logtui.core.pipeline import Source
from logtui.core.stats import Bucket, RollingStats, fold

CHUNK_SIZE = 1 << 20  # larger chunks parse faster but peak RSS grows ~20x the chunk size
WORKERS = min(2, os.cpu_count() or 1)


def read_line_chunks(stream: BinaryIO, splitter: LineSplitter,
                     chunk_size: int = CHUNK_SIZE) -> Iterator[list[str]]:
    """Complete lines, a chunk at a time; the partial last line at EOF counts as a line."""
    while data := stream.read(chunk_size):
        lines = splitter.feed(data)
        if lines:
            yield lines
    if last := splitter.flush():
        yield last


class BatchReader:
    """Feeds whole streams through their sources into one RollingStats."""

    def __init__(self, stats: RollingStats, workers: int = WORKERS) -> None:
        self.stats = stats
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="logtui-batch")
        self.workers = workers

    def read(self, stream: BinaryIO, source: Source, fallback_time: float,
             splitter: LineSplitter | None = None) -> int:
        """Read `stream` to its end; returns the number of lines cut at the length cap."""
        splitter = splitter or LineSplitter()
        pending: deque[Future[dict[int, Bucket]]] = deque()

        def work(lines: list[str]) -> Callable[[], dict[int, Bucket]]:
            # Fold at the width current when the chunk is handed out, so that results do
            # not depend on thread timing. Widths only grow (window 'all' coarsens), and
            # finer buckets merge exactly into coarser ones.
            width = self.stats.width
            return lambda: fold(source.events(lines, fallback_time), width)

        chunks = read_line_chunks(stream, splitter)
        # The first chunk runs alone so that format detection happens once, on the head.
        for lines in chunks:
            self.stats.add_buckets(work(lines)().values())
            break
        if is_sequential(source.format):
            # a format with state between batches (W3C's #Fields) reads them in order
            for lines in chunks:
                self.stats.add_buckets(work(lines)().values())
        for lines in chunks:
            pending.append(self.pool.submit(work(lines)))
            # bounded read-ahead: never more chunks in memory than workers can use
            while len(pending) > self.workers:
                self.stats.add_buckets(pending.popleft().result().values())
        while pending:
            self.stats.add_buckets(pending.popleft().result().values())
        return splitter.truncated

    def close(self) -> None:
        self.pool.shutdown(wait=True)
