"""Viewer lag: how long after a forwarder sends an event a `logtui connect` viewer has it.

    .venv/bin/python bench/viewer_lag.py [--rate 20000] [--seconds 10]

Runs a real `logtui serve` (subprocess), a sender of PackedForward batches of 1000 events
at the given rate, and a viewer (the RemoteDashboard and connections `connect` uses).
Each record carries its send time; the viewer notes when each line arrives. Prints the
line lag (p50/p99), how far the viewer's total trails the sender at the end, and the
aggregator's ingest rate. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from logtui.core.dashboard import View
from logtui.core.forward import encode_packed_forward
from logtui.core.remote import RemoteDashboard, Replica
from logtui.sources.connect import connect_all

LOGTUI = str(Path(sys.executable).with_name("logtui"))
STARTED = re.compile(r"forward on [\d.]+:(\d+); viewers on [\d.]+:(\d+)")
BATCH = 1000


def send(port: int, rate: float, seconds: float) -> int:
    sock = socket.create_connection(("127.0.0.1", port))
    sent, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        now = time.time()
        entries = [(now, {"remote_addr": "10.1.2.3", "status": 200, "path": f"/p/{i % 50}",
                          "request_time": 0.05, "sent": now}) for i in range(BATCH)]
        sock.sendall(encode_packed_forward("bench.access", entries))
        sent += BATCH
        ahead = sent / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    sock.close()
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    serve = subprocess.Popen([LOGTUI, "serve", "--listen", "127.0.0.1:0", "--viewers",
                              "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    assert serve.stderr is not None
    match = STARTED.search(serve.stderr.readline())
    if not match:
        print("serve did not start", file=sys.stderr)
        return 1
    forward_port, viewer_port = int(match.group(1)), int(match.group(2))

    remote = RemoteDashboard(["agg"], View(window=3600.0))
    lags: list[float] = []
    original = Replica.apply_lines

    def timed(replica: Replica, lines, dropped) -> None:  # type: ignore[no-untyped-def]
        arrived = time.time()
        lags.extend(arrived - float(line.record.get("sent", arrived)) for line in lines)
        original(replica, lines, dropped)

    Replica.apply_lines = timed   # type: ignore[method-assign]
    stop = threading.Event()
    viewer = threading.Thread(target=connect_all, args=(
        remote, {"agg": ("127.0.0.1", viewer_port)}, None, stop), daemon=True)
    viewer.start()
    time.sleep(1.0)
    try:
        sent = send(forward_port, args.rate, args.seconds)
        finished = time.monotonic()
        seen = remote.snapshot()["total"]
        while seen < sent and time.monotonic() - finished < 30:
            time.sleep(0.05)
            seen = remote.snapshot()["total"]
        caught_up = time.monotonic() - finished
        dropped = remote.replicas["agg"].dropped
    finally:
        stop.set()
        serve.terminate()
        serve.wait(10)
    lags.sort()
    print(f"# viewer lag: {args.rate:,.0f} events/s for {args.seconds:g}s, "
          f"PackedForward batches of {BATCH}, one viewer, loopback")
    print(f"sent {sent:,} events; the viewer's total reached {seen:,} "
          f"{caught_up:.2f}s after the last batch")
    if lags:
        p50, p99 = lags[len(lags) // 2], lags[int(len(lags) * 0.99) - 1]
        print(f"line lag (send -> viewer): p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
              f"{len(lags):,} lines timed, {dropped:,} dropped by the aggregator's queue "
              f"(mean {statistics.fmean(lags) * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
