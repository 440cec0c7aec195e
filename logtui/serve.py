"""`logtui serve` (an aggregator for viewers) and `logtui connect` (a viewer of them)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import asdict
from typing import Any, TextIO

from logtui.cli import (
    DEFAULT_LAST_LINES,
    input_pipeline,
    listen_failure,
    listen_options,
    view_options,
)
from logtui.command import RuntimeFailure, UsageError
from logtui.core.address import AddressError, is_loopback, parse_endpoint
from logtui.core.durations import format_duration
from logtui.core.filters import compile_filter
from logtui.core.remote import RETAINED, RemoteDashboard
from logtui.headless import emit
from logtui.sources.connect import connect_all
from logtui.sources.live import LiveSources
from logtui.sources.viewers import Hub, ViewerServer

STATUS_EVERY = 30.0   # seconds between serve's status lines
# Viewers get an update every SEND_EVERY (0.5 s), and counting a batch for them costs a few
# milliseconds whatever its size: counting what arrived each quarter second, rather than
# at every change, keeps a quiet aggregator idle and a busy one faster (bench/README.md).
INGEST_EVERY = 0.25


def wait_round(live: LiveSources, started: float) -> None:
    """Wait until INGEST_EVERY after `started`, unless an input has more to read at once."""
    while (left := started + INGEST_EVERY - time.monotonic()) > 0 and not live.has_more:
        live.wait(left)


def _endpoint(flag: str, text: str, default_host: str) -> tuple[str, int]:
    try:
        return parse_endpoint(text, default_host)
    except AddressError as error:
        raise UsageError(f"{flag} {error}") from None


def run_serve(args: argparse.Namespace, err: TextIO = sys.stderr) -> int:
    pipeline, _ = input_pipeline(args, compile_filter(""))
    listen = listen_options(args)
    host, port = _endpoint("--viewers", args.viewers, "127.0.0.1")
    if not is_loopback(host) and not args.shared_key:
        raise UsageError(f"--viewers {args.viewers}: viewers off loopback must authenticate; "
                         "give --shared-key")
    if not args.paths and listen is None:
        raise UsageError("serve: give files to follow, --listen for forwarded logs, or both")
    last_lines = DEFAULT_LAST_LINES if args.lines is None else args.lines
    hub = Hub()
    try:
        live = LiveSources(args.paths, pipeline, from_start=args.from_start,
                           last_lines=last_lines, listen=listen)
    except OSError as error:
        raise RuntimeFailure(listen_failure(listen, error)) from None
    viewers = ViewerServer(hub, host, port, shared_key=args.shared_key)
    try:
        viewers.start()
    except OSError as error:
        live.close()
        raise RuntimeFailure(f"--viewers {host}:{port}: "
                             f"{(error.strerror or str(error)).lower()}") from None
    inputs = [f"forward on {listen.host}:{live.listener.port}" if live.listener and listen
              else "", f"{len(args.paths)} file pattern(s)" if args.paths else ""]
    print(f"logtui serve: {', '.join(i for i in inputs if i)}; viewers on {host}:{viewers.port}",
          file=err, flush=True)
    next_status = time.monotonic() + STATUS_EVERY
    try:
        with live:
            while True:
                started = time.monotonic()
                live.hand_over(hub)
                if started >= next_status:
                    error = viewers.last_error
                    print(f"logtui serve: {hub.events} events, {viewers.connected} viewers"
                          + (f" (last viewer error: {error})" if error else ""),
                          file=err, flush=True)
                    next_status += STATUS_EVERY
                wait_round(live, started)
    except KeyboardInterrupt:
        return 0
    finally:
        viewers.close()


def json_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    """The panel data as `--no-ui` prints it."""
    out = {k: v for k, v in data.items()
           if k not in ("view", "stream", "sources") and not (k == "shadow" and v is None)}
    out["sources"] = [asdict(source) for source in data["sources"]]
    return out


def run_connect(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    view, bucket, interval, theme = view_options(args)
    if view.window is None or view.window > RETAINED:
        flag = "--view" if args.view else f"--window {args.window}"
        raise UsageError(f"{flag}: connect shows at most the last "
                         f"{format_duration(RETAINED)}, what aggregators keep")
    endpoints = {text: _endpoint("connect", text, "127.0.0.1") for text in args.endpoints}
    remote = RemoteDashboard(list(endpoints), view, bucket)

    def feed(_: object, stop: threading.Event) -> None:
        connect_all(remote, endpoints, args.shared_key, stop)

    if not args.no_ui and out.isatty():
        from logtui.ui.launch import open_dashboard

        return open_dashboard(remote, feed, theme=theme, top=args.top, geo=True)
    stop = threading.Event()
    thread = threading.Thread(target=feed, args=(remote, stop), name="logtui-connect",
                              daemon=True)
    thread.start()
    try:
        while True:
            time.sleep(interval)
            emit(json_snapshot(remote.snapshot(args.top)), out)
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()
        thread.join(5)
