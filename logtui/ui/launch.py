"""Start the dashboard for `logtui tail`: the dashboard model, themes and the feeder."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import BinaryIO

from logtui.cli import TailOptions, listen_failure
from logtui.command import RuntimeFailure, UsageError
from logtui.core.dashboard import Dashboard
from logtui.core.filters import compile_filter
from logtui.sources.live import dashboard_feeder
from logtui.ui.app import DashboardModel, Feeder, LogtuiApp
from logtui.ui.themes import DEFAULT_THEME, ThemeError, load_themes


def keys_from_terminal() -> BinaryIO:
    """When the log comes on standard input, keys must come from the terminal: move the
    log to another descriptor and put /dev/tty where Textual reads keys."""
    try:
        terminal = os.open("/dev/tty", os.O_RDONLY)
    except OSError as error:
        raise RuntimeFailure(f"no terminal to read keys from ({error.strerror}); "
                             "use --no-ui with standard input") from None
    log = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    os.dup2(terminal, sys.stdin.fileno())
    os.close(terminal)
    return log


def run_dashboard(options: TailOptions) -> int:
    stdin = keys_from_terminal() if "-" in options.paths else None
    # the dashboard filters itself (and refilters when the view changes): read everything
    pipeline = replace(options.pipeline, filter=compile_filter(""))
    dashboard = Dashboard(bucket=options.bucket, view=options.view)
    try:
        feeder = dashboard_feeder(options.paths, pipeline, from_start=options.from_start,
                                  last_lines=options.last_lines, stdin=stdin,
                                  listen=options.listen)
    except OSError as error:
        raise RuntimeFailure(listen_failure(options.listen, error)) from None
    return open_dashboard(dashboard, feeder, theme=options.theme, top=options.top,
                          geo=options.geo)


def open_dashboard(model: DashboardModel, feeder: Feeder, *, theme: str | None, top: int,
                   geo: bool) -> int:
    """Run the dashboard until it quits; `theme` None is the default one."""
    try:
        themes = load_themes()
    except ThemeError as error:   # a broken file in the user's theme folder
        raise UsageError(f"themes: {error}") from None
    LogtuiApp(model, feeder=feeder, themes=themes, theme=theme or DEFAULT_THEME, top=top,
              geo=geo).run()
    return 0
