"""logtui: a live terminal dashboard for web access logs."""

import os

__version__ = "0.1.0"

# polars allocates through its own jemalloc, configured from this variable when polars is
# first imported (so here, before any logtui module imports it; a value already set wins).
# By default jemalloc keeps an arena and a cache per thread and holds freed pages for
# seconds: with polars' pool and our reader threads that was ~25 MiB of peak RSS for
# `tail --once` (1M lines: 159 -> 137 MiB; 5M: 169 -> 146 MiB; bench/throughput.py).
# Our polars work is a few large column operations per chunk, which per-thread caches do
# not speed up.
os.environ.setdefault("_RJEM_MALLOC_CONF",
                      "narenas:1,tcache_max:1024,dirty_decay_ms:1000,muzzy_decay_ms:0")
