"""What the dashboard looks like, pinned as SVG snapshots (pytest-textual-snapshot): fixed
traffic, a frozen clock in UTC, and no refresh timer, so each screen is the same every run.
Review a change with `pytest tests/ui --snapshot-report`, accept it with --snapshot-update."""

from __future__ import annotations

from collections.abc import Callable

from harness import TAG, app_for, apply_filter, dashboard, settle, traffic
from textual.pilot import Pilot
from textual.widgets import Markdown

from logtui.core.dashboard import SourceState
from logtui.ui.screens.help import HelpScreen

SIZE = (120, 40)
Compare = Callable[..., bool]


def test_main_screen(snap_compare: Compare) -> None:
    assert snap_compare(app_for(dashboard(traffic())), terminal_size=SIZE, run_before=settle)


def test_help_screen(snap_compare: Compare) -> None:
    async def open_help(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(pilot.app.screen, HelpScreen)
        help_text = pilot.app.screen.query_one(Markdown)
        for _ in range(100):                  # the Markdown widget mounts its blocks itself
            if help_text.query("MarkdownTable"):
                break
            await pilot.pause()
        await pilot.pause()

    assert snap_compare(app_for(dashboard(traffic())), terminal_size=SIZE, run_before=open_help)


def test_filtered_view(snap_compare: Compare) -> None:
    async def filter_5xx(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await apply_filter(pilot, "status:5xx -bot:*")

    assert snap_compare(app_for(dashboard(traffic())), terminal_size=SIZE,
                        run_before=filter_5xx)


def test_light_theme(snap_compare: Compare) -> None:
    app = app_for(dashboard(traffic()), theme="logtui-light")
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_an_empty_source(snap_compare: Compare) -> None:
    board = dashboard(sources=[SourceState(TAG, format="auto")])
    assert snap_compare(app_for(board), terminal_size=SIZE, run_before=settle)


def test_a_missing_file(snap_compare: Compare) -> None:
    board = dashboard(sources=[SourceState("/var/log/nginx/access.log", state="missing")])
    assert snap_compare(app_for(board), terminal_size=SIZE, run_before=settle)
