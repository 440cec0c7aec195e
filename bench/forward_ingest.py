"""Forward ingest events/s and peak RSS: PackedForward batches of access records, acked, to the real
server on loopback: `python bench/forward_ingest.py [--events N ...] [--runs 3]`. Figures only."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import polars as pl

from logtui.core.dashboard import View
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.forward import (
    EventBatch,
    EventTime,
    ForwardDecoder,
    ReplyDecoder,
    pack_entries,
)
from logtui.core.pipeline import Pipeline, Source
from logtui.core.stats import RollingStats
from logtui.serve import wait_round
from logtui.sources.forward import ForwardServer, Peer
from logtui.sources.listen import ListenOptions
from logtui.sources.live import LiveSources
from logtui.sources.viewers import Hub

TARGET_EVENTS_PER_S = 200_000   # the target, on one core
DISTINCT_BATCHES = 16           # payloads the sender cycles through (chunk ids stay unique)
MIB = 1 << 20
PATHS = ["/", "/index.html", "/api/v1/items/{}", "/api/v1/users/{}/orders", "/static/app.{}.js",
         "/search?q=item{}&page=2", "/login", "/healthz"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
]


def access_record(rng: random.Random) -> dict[str, Any]:
    """One nginx access-log record as Fluent Bit / Fluentd forward a JSON log line."""
    return {
        "remote_addr": f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}"
                       f".{rng.randrange(1, 255)}",
        "time_local": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "method": rng.choices(["GET", "POST", "HEAD", "PUT"], [85, 10, 3, 2])[0],
        "path": rng.choice(PATHS).format(rng.randrange(100_000)),
        "protocol": "HTTP/1.1",
        "status": rng.choices([200, 304, 404, 500, 502], [80, 8, 8, 3, 1])[0],
        "body_bytes_sent": rng.randrange(100, 60_000),
        "request_time": round(rng.lognormvariate(-3.5, 1.0), 3),
        "http_referer": rng.choice(["-", "https://example.com/", "https://www.google.com/"]),
        "http_user_agent": rng.choice(AGENTS),
        "host": "shop.example.com",
    }


def payloads(batch: int, seed: int = 1) -> list[bytes]:
    """Packed [EventTime, record] entries for DISTINCT_BATCHES batches."""
    rng = random.Random(seed)
    start = time.time_ns()
    return [pack_entries((EventTime.from_ns(start + (b * batch + i) * 1000), access_record(rng))
                         for i in range(batch))[0]
            for b in range(DISTINCT_BATCHES)]


def frame(payload: bytes, batch: int, number: int) -> bytes:
    return msgpack.packb(["nginx.access", payload, {"size": batch, "chunk": f"bench-{number}"}])


def peak_rss_mib() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent.
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MIB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # KiB on Linux


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


# -- the server process ---------------------------------------------------------------------


class Normaliser:
    """on_events for `normalise`: what `logtui serve` and `tail --listen` do. Before the
    ack each batch is parsed, enriched and queued; the reader folds what is queued into the
    rolling statistics as one batch (here every FOLD_EVERY events, as a poll would)."""

    FOLD_EVERY = 10_000

    def __init__(self) -> None:
        self.rows = 0
        self.pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
        self.sources: dict[str, Source] = {}
        self.stats = RollingStats(300, 10, clock=time.time)
        self.queued: list[pl.DataFrame] = []

    def __call__(self, events: EventBatch, peer: Peer) -> None:
        tag = events.tag
        source = self.sources.get(tag) or self.sources.setdefault(tag, self.pipeline.source(tag))
        self.queued.append(source.records(events.records, events.seconds))
        self.rows += len(events)
        if sum(batch.height for batch in self.queued) >= self.FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        if self.queued:
            self.stats.add(pl.concat(self.queued))
            self.queued.clear()


class Counter:
    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, events: EventBatch, peer: Peer) -> None:
        self.rows += len(events)


def serve_like_logtui() -> None:
    """`serve` mode: what `logtui serve` runs, with one viewer attached. The real
    ForwardListener (parses what arrives within 20 ms together, acks once it is queued),
    read by serve's own rounds into the Hub, where the viewer's dashboard folds each batch."""
    pin(0)
    live = LiveSources([], Pipeline("auto", Enricher.default(), compile_filter("")),
                       from_start=False, last_lines=0, listen=ListenOptions("127.0.0.1", 0))
    hub = Hub()
    viewer = hub.join(View(), 10.0)
    assert live.listener is not None
    print(live.listener.port, flush=True)
    stop = threading.Event()
    counted_at = [0.0]   # monotonic time of the last round that gave the hub events

    def loop() -> None:
        while not stop.is_set():
            started, before = time.monotonic(), hub.events
            live.hand_over(hub)
            if hub.events > before:
                counted_at[0] = time.monotonic()
            wait_round(live, started)

    thread = threading.Thread(target=loop)
    thread.start()
    sys.stdin.read()
    # acks go out once events are queued for the parse: the rest is counted after the last
    # ack, and done_at puts that time into the figure
    deadline = time.monotonic() + 30
    while hub.events < live.listener.server.stats.events and time.monotonic() < deadline:
        time.sleep(0.001)
    stop.set()
    thread.join()
    live.close()
    counted = viewer.snapshot()["total"]
    print(json.dumps({"rows": hub.events, "events": live.listener.events, "counted": counted,
                      "malformed": live.listener.server.stats.malformed,
                      "done_at": counted_at[0], "peak_rss_mib": peak_rss_mib()}), flush=True)


async def serve(mode: str) -> None:
    """Print the port, serve until stdin closes, then print what was received as JSON."""
    pin(0)
    on_events = Normaliser() if mode == "normalise" else Counter()
    server = ForwardServer("127.0.0.1", 0, on_events)
    await server.start()
    print(server.port, flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await server.close()
    done_at = 0.0   # counting: everything was done by the last ack
    if isinstance(on_events, Normaliser):
        on_events.fold()   # what is left after the last ack
        done_at = time.monotonic()
    print(json.dumps({"rows": on_events.rows, "events": server.stats.events,
                      "malformed": server.stats.malformed, "done_at": done_at,
                      "peak_rss_mib": peak_rss_mib()}), flush=True)


# -- the sender -----------------------------------------------------------------------------


async def send(port: int, batches: list[bytes], frames: int, batch: int
               ) -> tuple[float, float]:
    """Send `frames` frames on one connection, pipelined: when the first was sent and
    when the last ack came (time.monotonic, which every process on the machine shares)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies = ReplyDecoder()

    async def read_acks() -> None:
        acked = 0
        while acked < frames:
            data = await reader.read(1 << 16)
            if not data:
                raise ConnectionError(f"server closed after {acked} acks")
            acked += len(replies.feed(data))

    started = time.monotonic()
    acks = asyncio.create_task(read_acks())
    for number in range(frames):
        writer.write(frame(batches[number % len(batches)], batch, number))
        await writer.drain()
    await acks
    acked = time.monotonic()
    writer.close()
    await writer.wait_closed()
    return started, acked


def run_server(mode: str, events: int, batch: int, batches: list[bytes]) -> tuple[float, dict]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    try:
        port = int(server.stdout.readline())
        pin(1)
        started, acked = asyncio.run(send(port, batches, events // batch, batch))
        server.stdin.close()
        report = json.loads(server.stdout.readline())
        # until the last ack, or until the server had counted what was acked, if later
        seconds = max(acked, report["done_at"]) - started
    finally:
        server.wait(timeout=60)
    if report["rows"] != events // batch * batch or report["malformed"]:
        print(f"WARNING: {mode}: sent {events // batch * batch}, got {report}", file=sys.stderr)
    return seconds, report


def decode_only(events: int, batch: int, batches: list[bytes]) -> tuple[float, dict]:
    """The codec alone on the same bytes, fed in 256 KiB reads as the server gets them."""
    stream = b"".join(frame(batches[n % len(batches)], batch, n)
                      for n in range(min(events // batch, 200)))
    decoder = ForwardDecoder()
    decoded = 0
    started = time.perf_counter()
    while decoded < events // batch * batch:
        for offset in range(0, len(stream), 256 << 10):
            for item in decoder.feed(stream[offset:offset + (256 << 10)]):
                decoded += len(item.events)
    # no RSS figure: this process also holds the sender's data
    return time.perf_counter() - started, {"rows": decoded, "peak_rss_mib": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--modes", nargs="+", default=["decode", "ingest", "normalise", "serve"],
        help="decode: the codec alone, in-process, no sockets; ingest: the server in its own "
             "process pinned to one core, on_events only counts; normalise: on_events parses "
             "and enriches each frame's records alone, folding every 10,000; serve: what "
             "`logtui serve` runs with one viewer (the real listener, which parses what "
             "arrives within 20 ms together, and the viewer's fold), pinned to one core. "
             "Each is timed from the first frame sent to the last ack or, when later, to "
             "when the server had counted every event acked")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "serve":
        serve_like_logtui()
        return
    if args.serve:
        asyncio.run(serve(args.serve))
        return

    batches = payloads(args.batch)
    frame_bytes = len(frame(batches[0], args.batch, 0))
    print(f"# forward ingest: PackedForward, {args.batch} entries/frame "
          f"({frame_bytes / args.batch:.0f} B/event, {frame_bytes / MIB:.2f} MiB/frame), "
          f"acked, one connection on loopback")
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"msgpack {msgpack.version}, polars {pl.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; server pinned to CPU 0, sender to CPU 1")
    print(f"{'mode':<10} {'events':>10} {'events/s':>12} {'MiB/s':>8} {'peak RSS MiB':>13}")
    for mode in args.modes:
        for events in args.events:
            rates, rss, sizes = [], [], []
            for _ in range(args.runs):
                if mode == "decode":
                    seconds, report = decode_only(events, args.batch, batches)
                else:
                    seconds, report = run_server(mode, events, args.batch, batches)
                rates.append(report["rows"] / seconds)
                sizes.append(report["rows"] / args.batch * frame_bytes / MIB / seconds)
                if report["peak_rss_mib"] is not None:
                    rss.append(report["peak_rss_mib"])
                print(f"  {mode} {events}: {rates[-1]:,.0f} events/s", file=sys.stderr)
            peak = f"{max(rss):.1f}" if rss else "-"
            print(f"{mode:<10} {events:>10,} {statistics.median(rates):>12,.0f} "
                  f"{statistics.median(sizes):>8.1f} {peak:>13}")
    print(f"# target: >= {TARGET_EVENTS_PER_S:,} events/s on one core (ingest), memory flat "
          f"(peak RSS alike at every size)")


if __name__ == "__main__":
    main()
