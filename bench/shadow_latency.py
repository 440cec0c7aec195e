"""Client latency p50/p99: direct, through plain mitmproxy, and through shadow (nothing mirrored,
staging healthy, staging hanging), with the issue's targets. Figures only, no assertions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

TIMEOUT = 30  # seconds a client waits for one answer before the bench fails
BIN = Path(sys.executable).parent
BODY = b'{"id": 42, "name": "Ada", "roles": ["admin", "dev"], "active": true}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


async def _upstream(port: int, hang: bool) -> None:
    """A minimal keep-alive HTTP/1.1 server: answers every GET at once, or never."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # a client closing between requests ends the loop (IncompleteReadError is an EOFError)
        with contextlib.suppress(ConnectionError, EOFError):
            while await reader.readuntil(b"\r\n\r\n"):
                if hang:
                    await asyncio.Event().wait()
                writer.write(RESPONSE)
                await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    def listening() -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False
    wait_until(listening, process)


@contextlib.contextmanager
def running(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process; its stderr goes to `log` (a pipe nobody reads would
    fill up and stop it)."""
    with log.open("wb") as err:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
    try:
        if Path(args[0]).name == "shadow":
            # shadow says it listens once its mirror worker is up as well
            wait_until(lambda: "listening on" in log.read_text(), process)
        wait_listening(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes],
               timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: did not start: {process.args}")
        time.sleep(0.05)


def upstream(port: int, log: Path, hang: bool = False
             ) -> contextlib.AbstractContextManager[object]:
    return running([sys.executable, __file__, "--serve", str(port)]
                   + (["--hang"] if hang else []), port, log)


def measure(port: int, requests: int, concurrency: int, seed: int) -> list[float]:
    """Per-request client latency, `concurrency` keep-alive clients each sending in turn."""
    def client(number: int) -> list[float]:
        latencies = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as http:
            for i in range(requests // concurrency):
                started = time.perf_counter()
                response = http.get(f"/users/{seed}{number:02}{i:06}")
                latencies.append(time.perf_counter() - started)
                if response.content != BODY:
                    raise SystemExit(f"bench: wrong body through port {port}")
        return latencies

    # a client that fails fails the bench (.result() raises), rather than shrinking it
    with ThreadPoolExecutor(concurrency) as pool:
        clients = [pool.submit(client, n) for n in range(concurrency)]
        return [latency for c in clients for latency in c.result()]


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Client latency through plain mitmproxy and shadow. Every server and "
                    "proxy runs in a process of its own on loopback.")
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per setup")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="keep-alive clients sending at once (default 1: sequential)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per setup")
    parser.add_argument("--rounds", type=int, default=6,
                        help="the setups are timed in turn this many times")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hang", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_upstream(args.serve, args.hang))
        return 0

    ports = {name: free_port() for name in ("production", "staging", "hanging", "plain",
                                             "idle", "healthy", "stalled")}
    primary = f"http://127.0.0.1:{ports['production']}"

    def shadow(proxy: str, staging: str, *flags: str) -> list[str]:
        return [str(BIN / "shadow"), "proxy", "run", "--primary", primary, "--staging",
                f"http://127.0.0.1:{ports[staging]}", "--listen", f"127.0.0.1:{ports[proxy]}",
                *flags]

    setups = {
        "direct to production": "production",
        "plain mitmproxy (mitmdump)": "plain",
        "shadow, nothing mirrored": "idle",
        "shadow, staging healthy": "healthy",
        "shadow, staging hanging": "stalled",
    }
    results: dict[str, list[float]] = {name: [] for name in setups}
    # Other work on the machine moves p99 more than anything measured here: say how busy.
    load_before = os.getloadavg()[0]
    stats: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        stack.enter_context(upstream(ports["production"], logs / "production"))
        stack.enter_context(upstream(ports["staging"], logs / "staging"))
        stack.enter_context(upstream(ports["hanging"], logs / "hanging", hang=True))
        stack.enter_context(running(
            [str(BIN / "mitmdump"), "--mode", f"reverse:{primary}", "--listen-host",
             "127.0.0.1", "--listen-port", str(ports["plain"]), "-q"], ports["plain"],
            logs / "plain"))
        shadows = {name: (stack.enter_context(running(shadow(proxy, staging, *flags),
                                                      ports[proxy], logs / proxy)),
                          logs / proxy)
                   for name, proxy, staging, flags in (
                       ("shadow, nothing mirrored", "idle", "staging", ("--sample", "0")),
                       ("shadow, staging healthy", "healthy", "staging", ()),
                       ("shadow, staging hanging", "stalled", "hanging", ()))}
        for proxy in setups.values():
            measure(ports[proxy], args.warmup, args.concurrency, 9)
        # Rounds of each setup in turn, so drift in the machine's speed hits all alike.
        block = max(args.requests // args.rounds, 1)
        for round_ in range(args.rounds):
            print(f"bench: round {round_ + 1}/{args.rounds}", file=sys.stderr, flush=True)
            for name, proxy in setups.items():
                try:
                    results[name] += measure(ports[proxy], block, args.concurrency, round_)
                except httpx.HTTPError as error:
                    raise SystemExit(f"bench: {name}: {type(error).__name__}: {error}") from None
                # let a shadow's worker finish its backlog before the next setup is timed
                time.sleep(0.5)
        for name, (process, log) in shadows.items():
            process.send_signal(signal.SIGINT)
            process.wait(TIMEOUT)
            stopped = re.findall(r"shadow: stopped; (.*)", log.read_text())
            stats[name] = stopped[-1] if stopped else "(no final status)"

    print(f"{args.requests} GET requests per setup in {args.rounds} interleaved rounds, "
          f"{args.concurrency} keep-alive client(s), {args.warmup} warm-up; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"{'setup':32} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in results.items():
        print(f"{name:32} {quantile(values, .5) * 1000:8.3f} {quantile(values, .99) * 1000:8.3f}")
    for name, line in stats.items():
        print(f"{name}: {line}")
    plain = results["plain mitmproxy (mitmdump)"]
    healthy, hanging = results["shadow, staging healthy"], results["shadow, staging hanging"]
    ratio = quantile(healthy, .5) / quantile(plain, .5)
    print(f"target: shadow / plain-mitmproxy p50 = {ratio:.3f} (target <= 1.10)")
    for label, base in (("plain mitmproxy", plain), ("staging healthy", healthy)):
        change = quantile(hanging, .99) / quantile(base, .99) - 1
        print(f"target: p99 with staging hanging vs {label} = {change:+.1%} (target within 10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
