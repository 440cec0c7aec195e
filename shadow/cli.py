"""The `shadow` command line (`proxy run`, `report`). Exit codes: 0 ok, 2 usage error (one
line naming the argument), 1 runtime failure (one line with the cause); never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit

from mitmproxy import ctx, exceptions
from mitmproxy.addons import default_addons
from mitmproxy.master import Master
from mitmproxy.options import Options

from logtui import __version__, command
from logtui.command import Parser, RuntimeFailure, UsageError
from logtui.core.address import parse_endpoint
from logtui.core.sanitize import json_text
from shadow.addon import OPTIONS, MirrorAddon, config_from_options
from shadow.forward import os_reason
from shadow.mirror import ConfigError, MirrorStats, Upstream
from shadow.report import render_text, summarise_file
from shadow.worker import UNAVAILABLE

CONNECT_TIMEOUT = 3.0
# Ctrl-C, kill, and the terminal closing all stop the proxy in order.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _flag(setting: str) -> str:
    return "--" + setting.replace("_", "-")


class _Startup:
    """Reports whether mitmproxy's listening socket came up (it only logs a failure)."""

    def __init__(self) -> None:
        self.ready: asyncio.Future[list[tuple[str, int]]] = (
            asyncio.get_running_loop().create_future())

    def running(self) -> None:
        servers = list(ctx.master.addons.get("proxyserver").servers)
        failed = [s.last_exception for s in servers if s.last_exception is not None]
        if failed:
            self.ready.set_exception(failed[0])
        else:
            self.ready.set_result([tuple(a[:2]) for s in servers for a in s.listen_addrs])


class _QuietLog(logging.Handler):
    """mitmproxy logs every client and upstream hiccup; shadow prints its own status line.

    Errors (an addon failing) are shown, one line each, once the proxy runs; at startup
    shadow reports the failure itself.
    """

    def __init__(self, err: TextIO) -> None:
        super().__init__(logging.ERROR)
        self.err = err
        self.running = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.running:
            first_line = (record.getMessage().splitlines() or [""])[0]
            print(f"\nshadow: error: {first_line}", file=self.err, flush=True)


class ShadowProxy:
    """mitmproxy's reverse proxy for `primary` with the mirror addon, run in this process."""

    def __init__(self, primary: Upstream, listen: tuple[str, int], options: dict[str, Any]
                 ) -> None:
        self.primary = primary
        self.listen = listen
        self.options = options
        self.addon = MirrorAddon()
        self._master: Master | None = None
        self._run: asyncio.Task[None] | None = None

    @property
    def stats(self) -> MirrorStats:
        return self.addon.worker.stats if self.addon.worker else MirrorStats()

    async def start(self) -> tuple[str, int]:
        """Listen; the address actually bound, or RuntimeFailure with the cause."""
        master = Master(Options())
        startup = _Startup()
        master.addons.add(*default_addons(), self.addon, startup)
        try:
            master.options.update(
                mode=[f"reverse:{self.primary.url}"], listen_host=self.listen[0],
                listen_port=self.listen[1],
                ssl_insecure=bool(self.options.get("shadow_insecure")),
                # bodies over the cap are never compared: stream them, never buffer them
                stream_large_bodies=self.options.get("shadow_max_body", "1m"), **self.options)
        except exceptions.OptionsError as error:
            raise RuntimeFailure(_option_message(str(error))) from None
        self._master = master
        self._run = asyncio.get_running_loop().create_task(master.run())
        try:
            addresses = await startup.ready
        except OSError as error:
            await self.stop()
            where = f"{self.listen[0] or '*'}:{self.listen[1]}"
            raise RuntimeFailure(f"--listen {where}: {os_reason(error)}") from None
        return addresses[0]

    def shutdown(self) -> None:
        """Ask the proxy to stop; safe from any thread or a signal handler."""
        if self._master is not None:
            self._master.shutdown()

    async def stop(self) -> None:
        self.shutdown()
        await self.wait()

    async def wait(self) -> None:
        if self._run is not None:
            await self._run


def _option_message(message: str) -> str:
    """`shadow_report: ...` -> `--report ...`: name the flag the user typed."""
    name, colon, rest = message.partition(":")
    if colon and name.startswith("shadow_"):
        return f"{_flag(name.removeprefix('shadow_'))}{rest}"
    return message


def proxy_settings(args: argparse.Namespace) -> tuple[Upstream, tuple[str, int], dict[str, Any]]:
    """Validate every flag before anything starts, so an error comes first and alone."""
    # each `shadow_*` option of the addon is the flag of the same name
    options = {name: getattr(args, name.removeprefix("shadow_")) for name, *_ in OPTIONS}
    try:
        primary = Upstream.parse("primary", args.primary)
        config = config_from_options(argparse.Namespace(**options))
    except ConfigError as error:
        raise UsageError(f"{_flag(error.setting)} {error}") from None
    options["shadow_max_in_flight"] = config.max_in_flight   # mitmproxy's option is an int
    if urlsplit(primary.url).path:
        raise UsageError(f"--primary {args.primary!r}: mitmproxy forwards to a host, "
                         "not a path: give the URL without one")
    try:
        listen = parse_endpoint(args.listen, default_host="")
    except ValueError as error:
        raise UsageError(f"--listen {error}") from None
    if args.forward:
        try:
            parse_endpoint(args.forward, default_host=None)
        except ValueError as error:
            raise UsageError(f"--forward {error}") from None
    return primary, listen, options


async def _reachable(url: str) -> str | None:
    """None when a TCP connection to the URL's host opens, else why not."""
    host, port = _host_port(url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return f"no answer from {host}:{port} within {CONNECT_TIMEOUT:g}s"
    except OSError as error:
        return f"cannot connect to {host}:{port}: {os_reason(error)}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


async def run_proxy(primary: Upstream, listen: tuple[str, int], options: dict[str, Any],
                    err: TextIO, log: _QuietLog, *, interval: float = 1.0) -> int:
    if (why := await _reachable(primary.url)) is not None:
        raise RuntimeFailure(f"--primary {primary.url}: {why}")
    for flag, url in (("--staging", options["shadow_staging"]),
                      ("--secondary", options["shadow_secondary"])):
        if url and (why := await _reachable(url)) is not None:
            print(f"shadow: warning: {flag} {url}: {why}; mirrored requests fail until it "
                  "answers (production is not affected)", file=err)
    proxy = ShadowProxy(primary, listen, options)
    loop = asyncio.get_running_loop()
    host, port = await proxy.start()
    log.running = True
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, proxy.shutdown)
    shown = "localhost" if host in ("::", "0.0.0.0", "") else host
    print(f"shadow: listening on http://{shown}:{port} -> production {primary.url}; "
          f"mirroring {options['shadow_methods']} at {options['shadow_sample']}% to "
          f"{options['shadow_staging']}" + (f", report {options['shadow_report']}"
                                            if options["shadow_report"] else ""), file=err)
    status = asyncio.ensure_future(_status(proxy, err, interval))
    try:
        await proxy.wait()
    finally:
        status.cancel()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    line = f"shadow: stopped; {proxy.stats.line()}{_worker_state(proxy)}"
    print(("\r\x1b[K" if err.isatty() else "") + line, file=err)
    return 0


async def _status(proxy: ShadowProxy, err: TextIO, interval: float) -> None:
    """One live line on a terminal; otherwise a line whenever the counts changed (10 s at most)."""
    tty = err.isatty()
    last = ""
    while True:
        await asyncio.sleep(interval if tty else max(interval, 10.0))
        line = f"shadow: {proxy.stats.line()}{_worker_state(proxy)}"
        if tty:
            err.write(f"\r\x1b[K{line}")
            err.flush()
        elif line != last:
            print(line, file=err, flush=True)
        last = line


def _worker_state(proxy: ShadowProxy) -> str:
    worker = proxy.addon.worker
    if worker is None:
        return ""
    failure = f" | {worker.failure}" if worker.failure else ""
    if worker.breaker.is_open:
        failure += (f" | staging not answering: mirroring paused "
                    f"({worker.stats.skipped[UNAVAILABLE]} skipped so far)")
    forward = worker.forward
    if forward is None:
        return failure
    state = "connected" if forward.connected else (forward.last_error or "connecting")
    return f" | forward {forward.sent} sent, {forward.dropped} dropped ({state}){failure}"


def proxy_run(args: argparse.Namespace) -> int:
    primary, listen, options = proxy_settings(args)
    root = logging.getLogger()
    log = _QuietLog(sys.stderr)
    root.addHandler(log)
    try:
        return asyncio.run(run_proxy(primary, listen, options, sys.stderr, log))
    finally:
        root.removeHandler(log)


def report(args: argparse.Namespace) -> int:
    try:
        summary = summarise_file(args.path)
    except OSError as error:
        raise RuntimeFailure(f"{args.path}: {os_reason(error)}") from None
    if args.json:
        print(json_text(summary))
    else:
        sys.stdout.write(render_text(summary))
    return 0


def build_parser() -> Parser:
    parser = Parser(prog="shadow", description="Mirror production traffic to staging through a "
                    "reverse proxy and report what staging breaks.")
    parser.add_argument("--version", action="version", version=f"shadow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    proxy = commands.add_parser("proxy", help="the mirroring reverse proxy")
    proxy_commands = proxy.add_subparsers(dest="proxy_command", metavar="COMMAND",
                                          parser_class=Parser)
    proxy_commands.required = True
    run = proxy_commands.add_parser(
        "run", help="proxy to production and mirror requests to staging",
        description="A reverse proxy in front of production (mitmproxy): clients get "
                    "production's answers unchanged; sampled safe requests are replayed "
                    "against staging in the background and both answers compared.")
    run.add_argument("--primary", required=True, metavar="URL",
                     help="production base URL (what clients are answered from)")
    run.add_argument("--staging", required=True, metavar="URL", help="staging base URL")
    run.add_argument("--secondary", metavar="URL",
                     help="another production instance: what differs between it and the "
                          "primary is noise, not reported")
    run.add_argument("--listen", default="8080", metavar="[HOST:]PORT",
                     help="where clients connect (default 8080 on all interfaces)")
    run.add_argument("--sample", default="100", metavar="PCT",
                     help="percentage of requests mirrored (default 100)")
    run.add_argument("--sample-key", metavar="header:NAME|param:NAME",
                     help="sample by a hash of this header or query parameter, so one user "
                          "is always in or always out")
    run.add_argument("--methods", default="GET,HEAD,OPTIONS", metavar="M,M",
                     help="methods mirrored (default GET,HEAD,OPTIONS)")
    run.add_argument("--allow-unsafe", action="store_true",
                     help="allow POST, PUT, PATCH, DELETE... in --methods")
    run.add_argument("--allow", action="append", default=[], metavar="PATTERN",
                     help="mirror only paths matching this glob (/api/*); repeatable")
    run.add_argument("--deny", action="append", default=[], metavar="PATTERN",
                     help="never mirror paths matching this glob; repeatable, wins over --allow")
    run.add_argument("--strip-header", action="append", default=[], metavar="NAME",
                     help="do not send this header to staging; repeatable")
    run.add_argument("--set-header", action="append", default=[], metavar="NAME:VALUE",
                     help="set this header on staging requests; repeatable")
    run.add_argument("--max-body", default="1m", metavar="BYTES",
                     help="larger request or response bodies are not mirrored (default 1m)")
    run.add_argument("--timeout", default="10s", metavar="S",
                     help="give up on staging after this long (default 10s)")
    run.add_argument("--max-in-flight", default="100", metavar="N",
                     help="mirrored requests in flight at most; more are dropped (default 100)")
    run.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                     help="never compare this JSON path ($.meta.id, items[*].ts, **.updated_at) "
                          "or header:NAME; repeatable")
    run.add_argument("--insecure", action="store_true",
                     help="do not verify the TLS certificates of production and staging")
    run.add_argument("--report", metavar="PATH",
                     help="append one JSON line per compared request to this file")
    run.add_argument("--forward", metavar="HOST:PORT",
                     help="send each comparison as a shadow.diff event to logtui "
                          "(forward protocol)")
    run.add_argument("--shared-key", metavar="KEY",
                     help="the forward handshake key, when the logtui side requires one")
    run.set_defaults(run=proxy_run)

    summary = commands.add_parser(
        "report", help="summarise a --report file by endpoint and verdict",
        description="Summarise comparisons by endpoint and verdict, most regressions first, "
                    "with latency p50/p95 of production and staging and the differing fields.")
    summary.add_argument("path", metavar="PATH", help="a file written by --report")
    summary.add_argument("--json", action="store_true", help="print one JSON object")
    summary.set_defaults(run=report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return command.run("shadow", build_parser(), argv)
