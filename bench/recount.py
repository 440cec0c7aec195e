"""What a dashboard view change costs: recounting the retained events, in process.

    .venv/bin/python bench/recount.py [--lines 250000] [--variety high] [--presses 15]

Reads a generated combined log (bench/out, made once as throughput.py makes them) into a
`Dashboard` the way the live feeder does (enriched, unfiltered batches), then presses the
bots key (`b`: all -> hide -> only -> all ...) and times each recount. The key-to-repaint
latency of the running app (dashboard_latency.py) adds the repaint and the inputs sharing
the CPU; this is the part the counting itself takes. Prints medians per mode; asserts
nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from itertools import islice
from pathlib import Path

from throughput import BENCH, log_file

from logtui.core.dashboard import Dashboard
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline

BATCH = 5000   # lines per ingested batch, as a busy feeder hands them over


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=250_000,
                        help="events retained (default: 250000, the dashboard's limit)")
    parser.add_argument("--variety", choices=["low", "high"], default="high",
                        help="the generated log's variety of clients, URLs and agents")
    parser.add_argument("--presses", type=int, default=15, help="presses of the bots key")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    path = log_file(args.out, args.lines, args.variety)
    with path.open(encoding="utf-8") as stream:
        lines = [line.rstrip("\n") for line in islice(stream, args.lines)]
    source = Pipeline("combined", Enricher.default(), compile_filter("")).source(str(path))
    batches = [source.events(lines[i:i + BATCH], 0.0) for i in range(0, len(lines), BATCH)]
    end = max(batch["time"].max() for batch in batches)
    dashboard = Dashboard(clock=lambda: end)   # the log's own "now": nothing ages out
    for batch in batches:
        dashboard.ingest(batch)

    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.presses):
        start = time.perf_counter()
        dashboard.cycle_bots()
        times[dashboard.view.bots].append((time.perf_counter() - start) * 1000)
    print(f"{path.name}: {dashboard.store.rows:,} events retained, "
          f"{len(dashboard.stats.buckets)} buckets of {dashboard.bucket:g} s")
    for mode, taken in times.items():
        print(f"  bots {mode:<5} recount  median {statistics.median(taken):6.1f} ms  "
              f"min {min(taken):6.1f} ms  ({len(taken)} presses)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
