"""The `logtui` command line: arguments and their validation (exit codes: command.py)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from logtui import __version__, command
from logtui.command import Parser, UsageError
from logtui.core.address import AddressError, parse_endpoint
from logtui.core.dashboard import View, ViewError
from logtui.core.durations import DurationError, format_duration, parse_duration, parse_window
from logtui.core.enrich import Enricher
from logtui.core.filters import Filter, FilterError, compile_filter
from logtui.core.formats import LogFormatError, UnknownFormat, get_format
from logtui.core.pipeline import Pipeline

# GeoIP and the forward listener (asyncio, ssl, msgpack) load only when asked for: together
# they were ~10 MiB of resident memory for every `tail --once`.
if TYPE_CHECKING:
    from logtui.sources.listen import ListenOptions

DEFAULT_LAST_LINES = 1000


@dataclass(frozen=True)
class TailOptions:
    paths: list[str]
    pipeline: Pipeline
    window: float | None
    bucket: float
    interval: float
    from_start: bool
    lines: int | None
    top: int
    view: View
    theme: str | None       # None: the default, resolved when a dashboard opens
    geo: bool
    listen: ListenOptions | None

    @property
    def last_lines(self) -> int:
        return DEFAULT_LAST_LINES if self.lines is None else self.lines


def _duration(flag: str, text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as error:
        raise UsageError(f"{flag} {error}") from None


def _window(flag: str, text: str) -> float | None:
    try:
        return parse_window(text)
    except DurationError as error:
        raise UsageError(f"{flag} {error}") from None


def input_pipeline(args: argparse.Namespace, query: Filter) -> tuple[Pipeline, bool]:
    """--format, --geoip and --lines checked; the pipeline and whether geo is on."""
    try:
        get_format(args.format)
    except (UnknownFormat, LogFormatError) as error:
        raise UsageError(f"--format: {error}") from None
    geo = None
    if args.geoip:
        from logtui.core.geo import GeoDatabaseError, GeoLookup

        try:
            geo = GeoLookup.open(args.geoip)
        except GeoDatabaseError as error:
            raise UsageError(f"--geoip {error}") from None
    if args.lines is not None and args.lines < 0:
        raise UsageError(f"--lines {args.lines}: expected a count of lines, 0 or more")
    return Pipeline(args.format, Enricher.default(geo), query), geo is not None


MIN_BUCKET = 0.001   # seconds


def view_options(args: argparse.Namespace) -> tuple[View, float, float, str]:
    """--filter, --window, --view, --bucket, --interval, --top, --theme checked: the view,
    bucket and interval seconds, and the theme's full name (None when not given)."""
    try:
        compile_filter(args.filter or "")
    except FilterError as error:
        raise UsageError(f"--filter {args.filter!r}: {error}") from None
    view = View(filter=args.filter or "", window=_window("--window", args.window or "5m"))
    if args.view:
        if args.filter is not None or args.window is not None:
            raise UsageError("--view: it holds its own filter and window; give --view alone, "
                             "or --filter/--window")
        try:
            view = View.from_string(args.view)
        except (ViewError, FilterError) as error:
            raise UsageError(f"--view: {error}") from None
    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected 1 or more")
    bucket = _duration("--bucket", args.bucket)
    if bucket < MIN_BUCKET:   # bucket numbers are 64-bit integers of time / bucket
        raise UsageError(f"--bucket {args.bucket}: expected at least 1ms")
    if view.window is not None and bucket > view.window:
        raise UsageError(f"--bucket {args.bucket}: longer than the window "
                         f"({format_duration(view.window)})")
    return view, bucket, _duration("--interval", args.interval), _theme(args.theme)


def tail_options(args: argparse.Namespace) -> TailOptions:
    """Validate everything before any work starts, so errors come first and alone."""
    view, bucket, interval, theme = view_options(args)
    pipeline, geo = input_pipeline(args, view.query())   # a --view's filter and bots mode
    listen = listen_options(args)
    if listen is None and args.shared_key:   # (serve's viewers use it without --listen)
        raise UsageError("--shared-key goes with --listen")
    if listen is not None and args.once:
        raise UsageError("--listen: forwarded events arrive over time; use it without --once")
    if not args.paths and listen is None:
        raise UsageError("tail: give at least one file, glob, '-' for standard input, "
                         "or --listen")
    return TailOptions(paths=args.paths, pipeline=pipeline, window=view.window, bucket=bucket,
                       interval=interval, from_start=args.from_start, lines=args.lines,
                       top=args.top, view=view, theme=theme, geo=geo, listen=listen)


def listen_failure(options: ListenOptions | None, error: OSError, flag: str = "--listen") -> str:
    where = f" {options.host}:{options.port}" if options else ""
    return f"{flag}{where}: {(error.strerror or str(error)).lower()}"


def listen_options(args: argparse.Namespace) -> ListenOptions | None:
    """--listen, --shared-key and --tls-*: the forward input, checked before it starts."""
    if args.listen is None:
        for flag in ("tls_cert", "tls_key", "tls_client_ca"):
            if getattr(args, flag):
                raise UsageError(f"--{flag.replace('_', '-')} goes with --listen")
        return None
    from logtui.sources.forward import TLSClientCAError, tls_context
    from logtui.sources.listen import ListenOptions

    try:
        host, port = parse_endpoint(args.listen, default_host="0.0.0.0")
    except AddressError as error:
        raise UsageError(f"--listen {error}") from None
    tls = None
    if args.tls_client_ca and not args.tls_cert:
        # without TLS of its own the input would take anyone's plain TCP
        raise UsageError("--tls-client-ca goes with --tls-cert and --tls-key")
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        try:
            tls = tls_context(args.tls_cert, args.tls_key, args.tls_client_ca)
        except TLSClientCAError as error:
            raise UsageError(f"--tls-client-ca {error}") from None
        except (OSError, ValueError) as error:
            raise UsageError(f"--tls-cert/--tls-key: {error}") from None
    return ListenOptions(host, port, args.shared_key, tls)


def _theme(name: str | None) -> str | None:
    """A given --theme resolved to its full name. Without one nothing is loaded here: the
    themes (and Textual) are only needed once a dashboard opens, not for --once."""
    if name is None:
        return None
    from logtui.ui.themes import ThemeError, load_themes, resolve

    try:
        return resolve(name, load_themes())
    except ThemeError as error:
        raise UsageError(f"--theme: {error}") from None


def run_tail(args: argparse.Namespace) -> int:
    from logtui import headless

    if args.window is None and not args.view:
        # batch mode summarises the whole input unless told otherwise
        args.window = "all" if args.once else "5m"
    options = tail_options(args)
    if args.once:
        return headless.run_once(options, sys.stdout)
    if args.no_ui or not sys.stdout.isatty():
        return headless.run_follow(options, sys.stdout)
    from logtui.ui.launch import run_dashboard

    return run_dashboard(options)


def add_forward_arguments(parser: argparse.ArgumentParser) -> None:
    forward = parser.add_argument_group("forwarded logs (Fluentd / Fluent Bit forward protocol)")
    forward.add_argument("--listen", metavar="[HOST:]PORT",
                         help="accept the forward protocol on this TCP port (and UDP "
                              "heartbeats), e.g. 24224, Fluentd's usual one; a bare port "
                              "listens on every interface (no default)")
    forward.add_argument("--shared-key", metavar="KEY",
                         help="require the forward handshake with this shared key")
    forward.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate")
    forward.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    forward.add_argument("--tls-client-ca", metavar="PEM",
                         help="require client certificates signed by this CA")


FORMATS_EPILOG = (
    "Formats: auto (detected per file, falling back per line), combined, common, vhost "
    "(vhost_combined), ingress (ingress-nginx), json (JSON Lines, common field aliases), ltsv, "
    "haproxy (HTTP log), w3c (IIS/CloudFront; w3c:'<#Fields list>' when the file's header is "
    "not read), or nginx:'<log_format line>' e.g. "
    "nginx:'$remote_addr [$time_local] \"$request\" $status $request_time'.")


FILTER_EPILOG = (
    "Filters (--filter, the '/' key): terms separated by spaces must all hold; OR between "
    "terms, ( ) to group, -term negates. A bare word or \"quoted phrase\" searches the "
    "line (case ignored), /regex/ too. field:value terms: status:5xx status:404 "
    "status:>=400 method:POST path:/api/* host:example.com ip:10.0.0.0/8 latency:>0.5 "
    "bot:google bot:* country:KR tag:nginx.* level:error field.NAME:value (any record "
    "field). Example: --filter 'status:5xx -bot:*'.")


def add_input_arguments(parser: argparse.ArgumentParser, *, once: bool) -> None:
    """Files to read and how: for tail and serve."""
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or quoted globs to follow ('-' reads standard input)")
    parser.add_argument("--format", default="auto", metavar="FORMAT",
                        help="auto|combined|common|vhost|ingress|json|ltsv|haproxy|w3c|"
                             "nginx:'<log_format>' (default: auto)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from-start", action="store_true",
                       help="read existing content from the start of each file")
    start.add_argument("--lines", type=int, metavar="N",
                       help="read the last N existing lines of each file first (default: 1000"
                            + ("; with --once: every line)" if once else ")"))
    parser.add_argument("--geoip", metavar="PATH.mmdb",
                        help="MaxMind/DB-IP country or city database for client countries")


def add_view_arguments(parser: argparse.ArgumentParser, *, once: bool) -> None:
    """What to look at and how to show it: for tail and connect."""
    parser.add_argument("--window", metavar="DURATION",
                        help="rolling window, e.g. 5m, 1h, or 'all' (default: 5m; with "
                             "--once: all)" if once else
                             "rolling window, up to 1h, e.g. 30s, 5m (default: 5m)")
    parser.add_argument("--bucket", default="10s", metavar="DURATION",
                        help="time-bucket size of the series (default: 10s), doubled until the "
                             "window spans at most 360 buckets")
    parser.add_argument("--filter", metavar="EXPR",
                        help="only count events matching EXPR, e.g. 'status:5xx -bot:*'")
    mode = parser.add_mutually_exclusive_group()
    if once:
        mode.add_argument("--once", action="store_true",
                          help="read what exists, print one JSON summary and exit")
    mode.add_argument("--no-ui", action="store_true",
                      help="print one JSON snapshot per --interval (one per line) instead of "
                           "the dashboard")
    parser.add_argument("--interval", default="1s", metavar="DURATION",
                        help="how often --no-ui prints a snapshot (default: 1s)")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="entries in each top list (default: 10)")
    parser.add_argument("--theme", metavar="NAME",
                        help="dashboard theme: dark (default), light, high-contrast, or one "
                             "from ~/.config/logtui/themes")
    parser.add_argument("--view", metavar="VIEW",
                        help="open a view copied with 'y' (logtui:f=...&w=5m...): its filter, "
                             "window, bots mode and panel")


def build_parser() -> Parser:
    parser = Parser(prog="logtui", description="A live terminal dashboard for web access logs.")
    parser.add_argument("--version", action="version", version=f"logtui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    tail = commands.add_parser(
        "tail", help="follow log files (and/or stdin, forwarded logs) on a live dashboard",
        description="Follow access logs through rotation and show them live on a dashboard: "
                    "status codes over time, latency percentiles, crawlers, top paths, clients "
                    "and countries, and the log stream, with keyboard filtering (press ? in the "
                    "dashboard). --once reads what exists and prints one JSON summary; --no-ui "
                    "(or a stdout that is not a terminal) prints a JSON snapshot per --interval.",
        epilog=f"{FORMATS_EPILOG} {FILTER_EPILOG}")
    add_input_arguments(tail, once=True)
    add_view_arguments(tail, once=True)
    add_forward_arguments(tail)
    tail.set_defaults(run=run_tail)

    serve = commands.add_parser(
        "serve", help="headless aggregator: forward input and files, served to viewers",
        description="Run an aggregator: accept Fluentd / Fluent Bit forward traffic (--listen) "
                    "and/or follow files, keep the recent events and statistics, and serve "
                    "them to 'logtui connect' viewers (--viewers). Each viewer gets statistics "
                    "for its own filter, kept exact, and a bounded live stream of its lines.",
        epilog=FORMATS_EPILOG)
    add_input_arguments(serve, once=False)
    add_forward_arguments(serve)
    serve.add_argument("--viewers", default="127.0.0.1:24225", metavar="[HOST:]PORT",
                       help="where 'logtui connect' attaches (default: 127.0.0.1:24225; "
                            "bound elsewhere it requires --shared-key)")
    serve.set_defaults(run=run_serve_command)

    connect = commands.add_parser(
        "connect", help="the dashboard attached to one or more aggregators (merged)",
        description="Attach the dashboard (or --no-ui JSON snapshots) to one or more "
                    "'logtui serve' aggregators. Their statistics merge exactly; connections "
                    "reconnect with backoff and their state shows in the top bar. The window "
                    "goes up to 1h.",
        epilog=FILTER_EPILOG)
    connect.add_argument("endpoints", nargs="+", metavar="HOST:PORT",
                         help="aggregators' --viewers addresses")
    add_view_arguments(connect, once=False)
    connect.add_argument("--shared-key", metavar="KEY",
                         help="the aggregators' shared key (their viewers require it when "
                              "they are not on loopback)")
    connect.set_defaults(run=run_connect_command)

    demo = commands.add_parser(
        "demo", help="the dashboard on live synthetic traffic (needs nothing else)",
        description="Write realistic synthetic traffic to a temporary log and open the dashboard "
                    "on it: steady browsing, a Googlebot/GPTBot crawl wave, a burst of 5xx on one "
                    "endpoint, a latency spike and a log rotation, repeating. Try / to filter, "
                    "Enter on a row to drill down, ? for every key.")
    demo.add_argument("--theme", metavar="NAME", help="dashboard theme (default: dark)")
    demo.add_argument("--rate", type=float, default=120.0, metavar="N",
                      help="requests per second to write (default: 120)")
    demo.set_defaults(run=run_demo_command)
    return parser


def run_serve_command(args: argparse.Namespace) -> int:
    from logtui.serve import run_serve

    return run_serve(args)


def run_connect_command(args: argparse.Namespace) -> int:
    from logtui.serve import run_connect

    return run_connect(args)


def run_demo_command(args: argparse.Namespace) -> int:
    from logtui.demo import run_demo

    if not 0 < args.rate < math.inf:   # NaN fails both
        raise UsageError(f"--rate {args.rate}: expected a positive number of requests per second")
    if not sys.stdout.isatty():
        raise UsageError("demo: the dashboard needs a terminal (try 'logtui tail FILE --once')")
    return run_demo(_theme(args.theme), args.rate)


def main(argv: Sequence[str] | None = None) -> int:
    # a filter may start with a negated term: --filter '-bot:*'
    return command.run("logtui", build_parser(), argv, dash_values=("--filter",))
