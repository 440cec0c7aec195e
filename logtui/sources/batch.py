"""Batch reading for `--once`: whole files in large chunks, parsed on every core.

Chunks of a MiB are cut at their last newline, then split into lines, parsed and
filtered in worker threads (polars runs outside the GIL); the parsed columns of a few
chunks at a time are folded into buckets, also in a worker, and merged into the
statistics in file order.
Memory holds a few chunks at a time, whatever the file size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import polars as pl

from logtui.core.formats import is_sequential
from logtui.core.lines import LineSplitter, decode_column
from logtui.core.pipeline import Source
from logtui.core.stats import FOLD_COLUMNS, Bucket, RollingStats, fold

# Larger chunks parse faster (polars' cost per call is fixed), but each one in flight
# costs several times its size: 1 MiB keeps `--once` at about 143 MiB peak RSS on 1M and
# 5M lines of the busy-site log (bench/throughput.py; 512 KiB: 10 % slower, 130 MiB).
CHUNK_SIZE = 1 << 20
WORKERS = min(2, os.cpu_count() or 1)
# A fold has a fixed cost (ten polars queries: 2 ms on 200 rows, 10 ms on 23,000): the
# parsed columns of several chunks are folded together, this many rows at a time, which
# also fills the derived columns with fewer lookups (10,000: slower; 40,000: no faster).
FOLD_ROWS = 20_000

def read_line_chunks(stream: BinaryIO, splitter: LineSplitter,
                     chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Complete lines, a chunk at a time, as bytes joined by newlines (decode_column splits
    them); the partial last line at EOF counts as a line."""
    while data := stream.read(chunk_size):
        blob = splitter.feed_blob(data)
        if blob is not None:
            yield blob
    if (last := splitter.flush_blob()) is not None:
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
        chunks = read_line_chunks(stream, splitter)
        # Crawler names and endpoint templates are filled per fold rather than per chunk
        # when the filter allows: a fold's rows repeat each user agent and path more often.
        derive_late = source.defers_derived

        def parse(blob: bytes) -> pl.DataFrame:
            return source.events(decode_column(blob), fallback_time, derive=not derive_late,
                                 columns=FOLD_COLUMNS)

        def fold_rows(frames: list[pl.DataFrame], width: float) -> dict[int, Bucket]:
            frame = pl.concat(frames)
            return fold(source.derive(frame) if derive_late else frame, width)

        def fold_later(frames: list[pl.DataFrame]) -> Future[dict[int, Bucket]]:
            # Fold at the width current when the batch is handed out, so that results do
            # not depend on thread timing. Widths only grow (window 'all' coarsens), and
            # finer buckets merge exactly into coarser ones.
            return self.pool.submit(fold_rows, frames, self.stats.width)

        def fold_now(frames: list[pl.DataFrame]) -> None:
            self.stats.add_buckets(fold_later(frames).result().values())

        # The first chunk runs alone so that format detection happens once, on the head;
        # a format with state between batches (W3C's #Fields) reads them all in order.
        first = next(chunks, None)
        if first is None:
            return splitter.truncated
        fold_now([parse(first)])
        if is_sequential(source.format):
            for blob in chunks:
                fold_now([parse(blob)])
        parsing: deque[Future[pl.DataFrame]] = deque()
        folding: deque[Future[dict[int, Bucket]]] = deque()
        parsed: list[pl.DataFrame] = []

        def collect_one() -> None:
            parsed.append(parsing.popleft().result())
            if sum(frame.height for frame in parsed) >= FOLD_ROWS or not parsing:
                folding.append(fold_later(parsed[:]))
                parsed.clear()
            # Merge in file order, one fold behind: always the same folds before the next
            # is handed out, so the width it folds at does not depend on thread timing.
            while len(folding) > 1:
                self.stats.add_buckets(folding.popleft().result().values())

        for blob in chunks:
            parsing.append(self.pool.submit(parse, blob))
            # bounded read-ahead: never more chunks in memory than workers can use
            while len(parsing) > self.workers:
                collect_one()
        while parsing:
            collect_one()
        while folding:
            self.stats.add_buckets(folding.popleft().result().values())
        return splitter.truncated

    def close(self) -> None:
        self.pool.shutdown(wait=True)
