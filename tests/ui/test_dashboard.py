"""The dashboard driven as a user drives it (Pilot): every key, drill-down and drill-up, the
mouse, and after each step every panel's numbers checked against the stats core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from harness import (
    NOW,
    TAG,
    app_for,
    apply_filter,
    assert_panels,
    dashboard,
    events,
    expected,
    settle,
    spread,
    static,
    summary,
    table,
    traffic,
)
from rich.segment import Segment
from textual.widgets import DataTable

from logtui.cli import main
from logtui.core.dashboard import SourceState, View
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.sources.live import dashboard_feeder
from logtui.synthetic import combined_line
from logtui.ui import format as fmt
from logtui.ui.screens.help import HELP, HelpScreen
from logtui.ui.screens.record import RecordScreen
from logtui.ui.themes import load_themes, shipped_dir
from logtui.ui.widgets.drill_table import DrillTable
from logtui.ui.widgets.filter_bar import FilterBar, FilterInput
from logtui.ui.widgets.log_stream import LogStream

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
EVIL = "\x1b]0;x\x07\x1b[2J"          # retitles the terminal, then clears it
SHOWN_EVIL = "\\x1b]0;x\\x07\\x1b[2J"  # what the user must see instead


async def test_the_panels_show_the_stats_cores_figures() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert_panels(app, traffic(), View())
        # the figures are not trivially empty: every panel has rows to check
        want = expected(traffic(), View())
        assert want["total"] > 500 and want["unparsed"] == 2
        assert len(want["status_codes"]) > 4 and len(want["crawlers"]) == 5
        assert "● access.log auto:combined" in summary(app)
        # the stream follows the tail from the first batch on: the newest line at the bottom
        stream = app.query_one(LogStream)
        bottom = stream.render_line(stream.size.height - 1).text
        assert bottom.startswith("22:13:20 ") and stream.lines[-1].line[:80] in bottom


async def test_a_filter_changes_every_panel() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        before = summary(app)
        await pilot.press("slash")
        assert app.query_one(FilterBar).has_class("-open")
        assert app.focused is app.query_one(FilterInput)
        await pilot.press(*"status:5xx")
        assert "Enter applies" in static(app, "#filter-status")
        await pilot.press("enter")
        await settle(pilot)
        assert not app.query_one(FilterBar).has_class("-open")
        assert app.focused is app.query_one("#status DrillTable")
        assert_panels(app, traffic(), View(filter="status:5xx"))
        assert summary(app) != before
        codes = [row[0] for row in table(app, "#status")]
        assert codes and all(code.startswith("5") for code in codes)


async def test_an_invalid_filter_says_why_and_the_previous_filter_stays() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await apply_filter(pilot, "status:5xx")
        await pilot.press("slash")
        assert app.query_one(FilterInput).value == "status:5xx"   # the bar starts from it
        await pilot.press(*" bad:x")
        status = app.query_one("#filter-status")
        assert status.has_class("-invalid")
        assert static(app, "#filter-status") == (
            "at column 12: unknown field 'bad' (quote the word to search for it as text)")
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(FilterBar).has_class("-open")       # still there to fix it
        assert_panels(app, traffic(), View(filter="status:5xx"))
        # what looks like markup is shown as typed, and cannot break the screen
        await pilot.press("ctrl+u", *"status:[/x]")
        assert static(app, "#filter-status") == "at column 8: bad number '[/x]'"
        await pilot.press("escape")
        await settle(pilot)
        assert not app.query_one(FilterBar).has_class("-open")
        assert app.focused is app.query_one("#status DrillTable")
        assert_panels(app, traffic(), View(filter="status:5xx"))


async def test_up_and_down_walk_the_filter_history() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await apply_filter(pilot, "status:5xx")
        await apply_filter(pilot, "method:POST")
        assert_panels(app, traffic(), View(filter="method:POST"))
        await pilot.press("slash", "ctrl+u")
        field = app.query_one(FilterInput)
        values = []
        for key in ("up", "up", "up", "down", "down"):
            await pilot.press(key)
            values.append(field.value)
        assert values == ["method:POST", "status:5xx", "status:5xx", "method:POST", ""]
        await pilot.press("up", "up", "enter")
        await settle(pilot)
        assert_panels(app, traffic(), View(filter="status:5xx"))


# panel, snapshot list, the field in it, and the term a drill on that value must add
DRILLS = [
    ("status", "status_codes", "code", lambda v: f"status:{v}"),
    ("latency", "endpoints", "endpoint", lambda v: f"endpoint:={v}"),
    ("crawlers", "crawlers", "name", lambda v: f"bot:={v}"),
    ("paths", "top_paths", "path", lambda v: f"path:={v}"),
    ("clients", "top_ips", "ip", lambda v: f"ip:{v}"),
    ("agents", "top_uas", "ua", lambda v: f'ua:="{v}"'),   # spaces: quoted
]


@pytest.mark.parametrize(("panel", "key", "field", "term"), DRILLS,
                         ids=[drill[0] for drill in DRILLS])
async def test_enter_on_a_row_drills_down_and_backspace_drills_up(
        panel: str, key: str, field: str, term: Callable[[object], str]) -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(f"#{panel} DrillTable").focus()
        await pilot.press("down", "enter")    # the second row
        await settle(pilot)
        value = expected(traffic(), View())[key][1][field]
        assert app.dashboard.view.filter == term(value)
        assert_panels(app, traffic(), View(filter=term(value), focus=panel))
        assert expected(traffic(), View(filter=term(value)))["total"] > 0
        await pilot.press("backspace")
        await settle(pilot)
        assert_panels(app, traffic(), View())


async def test_drilling_narrows_term_by_term_and_drilling_up_retraces_it() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")            # the status table has the focus at start
        await settle(pilot)
        assert_panels(app, traffic(), View(filter="status:200"))
        app.query_one("#paths DrillTable").focus()
        await pilot.press("enter")
        await settle(pilot)
        top_path = expected(traffic(), View(filter="status:200"))["top_paths"][0]["path"]
        narrowed = f"status:200 path:={top_path}"
        assert_panels(app, traffic(), View(filter=narrowed))
        app.query_one("#crawlers DrillTable").focus()
        await pilot.press("enter")
        await settle(pilot)
        bot = expected(traffic(), View(filter=narrowed))["crawlers"][0]["name"]
        assert_panels(app, traffic(), View(filter=f"{narrowed} bot:={bot}"))
        for filter_text in (narrowed, "status:200", ""):
            await pilot.press("backspace")
            await settle(pilot)
            assert_panels(app, traffic(), View(filter=filter_text))
        await pilot.press("backspace")        # nothing left to remove
        await settle(pilot)
        assert_panels(app, traffic(), View())


async def test_the_mouse_selects_panels_and_drills() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        paths = app.query_one("#paths DrillTable", DrillTable)
        assert await pilot.click(paths, offset=(2, 3))   # under the header: the third row
        await pilot.pause()
        assert app.focused is paths and paths.cursor == 2
        assert app.dashboard.view.focus == "paths"
        await pilot.press("enter")
        await settle(pilot)
        path = expected(traffic(), View())["top_paths"][2]["path"]
        assert_panels(app, traffic(), View(filter=f"path:={path}"))
        await pilot.press("backspace")
        await settle(pilot)
        # a second click on the highlighted row drills, as Enter does
        clients = app.query_one("#clients DrillTable", DrillTable)
        await pilot.click(clients, offset=(2, 2))
        await pilot.click(clients, offset=(2, 2))
        await settle(pilot)
        ip = expected(traffic(), View())["top_ips"][1]["ip"]
        assert_panels(app, traffic(), View(filter=f"ip:{ip}"))
        assert app.dashboard.view.focus == "clients"


async def test_p_pauses_the_display_while_reading_goes_on() -> None:
    board = dashboard(traffic())
    app = app_for(board)
    later = events([combined_line(r) for r in spread(5, 40, NOW - 20, NOW)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert summary(app).splitlines()[1].startswith("PAUSED")
        shown = summary(app)
        board.ingest(later)
        app.refresh_panels()                  # what the refresh timer does
        await settle(pilot)
        assert summary(app) == shown
        assert board.snapshot()["total"] == expected(traffic(), View())["total"] + 40
        await pilot.press("p")
        await settle(pilot)
        assert "PAUSED" not in summary(app)
        assert_panels(app, pl.concat([traffic(), later]), View())


async def test_w_cycles_the_window() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        totals = []
        for window in (900.0, 3600.0, None, 60.0, 300.0):
            await pilot.press("w")
            await settle(pilot)
            assert_panels(app, traffic(), View(window=window))
            totals.append(expected(traffic(), View(window=window))["total"])
        assert totals[3] < totals[4] < totals[0] < totals[1] < totals[2]   # 1m < ... < all


async def test_b_cycles_bots_all_hide_only() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        bots = sum(expected(traffic(), View())["bots"].values())
        await pilot.press("b")
        await settle(pilot)
        assert_panels(app, traffic(), View(bots="hide"))
        assert table(app, "#crawlers") == []
        await pilot.press("b")
        await settle(pilot)
        assert_panels(app, traffic(), View(bots="only"))
        assert expected(traffic(), View(bots="only"))["total"] == bots
        assert "bots 100.0%" in static(app, "#bot-share")
        await pilot.press("b")
        await settle(pilot)
        assert_panels(app, traffic(), View())


async def test_t_cycles_the_logtui_themes() -> None:
    themes = load_themes(shipped_dir())
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        seen = [app.theme]
        for _ in themes:
            await pilot.press("t")
            await pilot.pause()
            seen.append(app.theme)
            # the theme's status colours are what the panels paint with
            variables = themes[app.theme].variables
            assert app.get_css_variables()["status-5xx"] == variables["status-5xx"]
        assert seen == ["logtui-dark", "logtui-high-contrast", "logtui-light", "logtui-dark"]


async def test_y_copies_a_view_that_opens_the_same_view() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await apply_filter(pilot, 'status:>=400 -path:"/wp-login.php"')
        await pilot.press("w", "b")
        app.query_one("#paths DrillTable").focus()
        await settle(pilot)
        await pilot.press("y")
        copied = app.clipboard
        assert copied == app.dashboard.view.to_string()
        assert View.from_string(copied) == app.dashboard.view == View(
            filter='status:>=400 -path:"/wp-login.php"', window=900.0, bots="hide",
            focus="paths")


async def test_a_view_string_opens_its_filter_window_bots_and_panel() -> None:
    view = View.from_string("logtui:f=status%3A%3E%3D400&w=1h&b=only&p=crawlers")
    assert view == View(filter="status:>=400", window=3600.0, bots="only", focus="crawlers")
    app = app_for(dashboard(traffic(), view=view))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert_panels(app, traffic(), view)
        assert app.focused is app.query_one("#crawlers DrillTable")


async def test_question_mark_opens_the_help_and_escape_closes_it() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        for key in ("/", "Enter", "Backspace", "p", "w", "b", "t", "y", "?", "q"):
            assert f"| `{key}` |" in HELP, key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        assert app.focused is app.query_one("#status DrillTable")


async def test_enter_on_a_log_line_shows_its_record() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        stream = app.query_one(LogStream)
        stream.focus()
        await pilot.press("up", "up", "up", "enter")
        line = stream.lines[-4]
        assert isinstance(app.screen, RecordScreen) and app.screen.line is line
        cells = app.screen.query_one(DataTable)
        fields = {cells.get_row_at(row)[0].plain: cells.get_row_at(row)[1].plain
                  for row in range(cells.row_count)}
        row = traffic().filter(pl.col("line") == line.line).row(0, named=True)
        assert fields["tag"] == TAG and fields["parsed"] == "yes"
        assert fields["time"] == fmt.clock(row["time"])
        for name in ("ip", "method", "path", "status", "bytes", "latency", "ua"):
            assert fields[name] == str(row[name]), name
        await pilot.press("escape")
        assert not isinstance(app.screen, RecordScreen)
        assert stream.cursor == len(stream.lines) - 4 and not stream.following


async def test_q_quits() -> None:
    app = app_for(dashboard(traffic()))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        assert not app.is_running
    assert app.return_code == 0


def _escape_free(segments: list[Segment]) -> str:
    text = "".join(segment.text for segment in segments)
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    return text


async def test_terminal_escapes_in_log_lines_show_as_text() -> None:
    line = (f'10.9.9.9 - - [14/Nov/2023:22:13:20 +0000] "GET /evil{EVIL} HTTP/1.1" 200 5 '
            f'"-" "curl/8.5.0 {EVIL}" 0.001')
    frame = pl.concat([traffic(), events([line])])
    app = app_for(dashboard(frame))
    async with app.run_test(size=(240, 50)) as pilot:   # wide enough to show the whole path
        await settle(pilot)
        stream = app.query_one(LogStream)
        rendered = [_escape_free(list(stream.render_line(y))) for y in range(stream.size.height)]
        assert any(f"GET /evil{SHOWN_EVIL} HTTP/1.1" in text for text in rendered)
        await apply_filter(pilot, "ip:10.9.9.9")
        assert_panels(app, frame, View(filter="ip:10.9.9.9"))
        for panel in ("#paths", "#agents"):
            cells = app.query_one(f"{panel} DrillTable", DrillTable)
            rendered = [_escape_free(list(cells.render_line(y))) for y in range(3)]
            assert any(SHOWN_EVIL in text for text in rendered), (panel, rendered)
        # drilling into the value keeps the raw characters in the filter, to match them...
        app.query_one("#paths DrillTable").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.dashboard.view.filter == f"ip:10.9.9.9 path:=/evil{EVIL}"
        assert_panels(app, frame, app.dashboard.view)
        # ...but neither the header nor the filter input ever send them to the terminal
        assert f"filter ip:10.9.9.9 path:=/evil{SHOWN_EVIL}" in summary(app)
        await pilot.press("slash")
        _escape_free(list(app.query_one(FilterInput).render_line(0)))
        assert "\x1b" not in app.export_screenshot()


async def test_source_problems_are_shown_in_the_header() -> None:
    sources = [SourceState("/var/log/nginx/access.log", format="auto:combined"),
               SourceState("/var/log/nginx/gone.log", state="missing"),
               SourceState("/var/log/nginx/secret.log", state="error: permission denied")]
    app = app_for(dashboard(traffic(), sources=sources))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert summary(app).splitlines()[0] == (
            "● /var/log/nginx/access.log auto:combined  ? /var/log/nginx/gone.log (missing)  "
            "! /var/log/nginx/secret.log (error: permission denied)")


async def test_a_missing_file_is_reported_by_the_live_feeder(tmp_path: Path) -> None:
    present, missing = tmp_path / "access.log", tmp_path / "gone.log"
    present.write_text("".join(line + "\n" for line in
                               [combined_line(r) for r in spread(6, 30, NOW - 60, NOW)]))
    pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
    feeder = dashboard_feeder([str(present), str(missing)], pipeline, from_start=True,
                              last_lines=0)
    app = app_for(dashboard(sources=()), feeder=feeder, refresh=0.05)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):                  # the feeder polls files in its own thread
            await pilot.pause(0.02)
            if "total 30" in summary(app) and "(missing)" in summary(app):
                break
        assert summary(app).splitlines()[0] == (
            f"● {present} auto:combined  ? {missing} (missing)")
        assert "total 30" in summary(app)


@pytest.mark.parametrize(("args", "message"), [
    (["--filter", "bad:x"], "logtui: --filter 'bad:x': at column 1: unknown field 'bad'"),
    (["--theme", "nope"], "logtui: --theme: unknown theme 'nope': expected one of dark, "),
    (["--view", "garbage"], "logtui: --view: 'garbage': a view starts with 'logtui:'"),
    (["--view", "logtui:w=5x"], "logtui: --view: window '5x': expected a duration"),
])
def test_bad_dashboard_arguments_exit_2_with_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
        message: str) -> None:
    (tmp_path / "access.log").write_text("")
    assert main(["tail", str(tmp_path / "access.log"), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith(message), err


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux 'script' for a tty")
def test_on_a_terminal_a_bad_filter_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "access.log").write_text("")
    logtui = Path(sys.executable).with_name("logtui")
    command = f"{logtui} tail {tmp_path / 'access.log'} --filter 'bad:x'"
    result = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True,
                            timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    output = result.stdout.decode().replace("\r\n", "\n")
    assert output.startswith("logtui: --filter 'bad:x': at column 1: unknown field 'bad'")
    assert output.count("\n") == 1 and "Traceback" not in output
