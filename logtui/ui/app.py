"""The logtui dashboard: panels over a `Dashboard`, refreshed in batches on a timer.

Inputs are read by a feeder in a worker thread, which hands parsed batches to the
`Dashboard`; the UI thread never reads files or parses. Every `refresh` seconds the
snapshot is computed in a worker too, and applied to all panels in one batch update.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.theme import Theme

from logtui.core.dashboard import Dashboard
from logtui.core.filters import FilterError, add_term, remove_last_term
from logtui.core.remote import RemoteDashboard
from logtui.ui.colors import STATUS_DEFAULTS
from logtui.ui.screens.help import HelpScreen
from logtui.ui.screens.record import RecordScreen
from logtui.ui.themes import DEFAULT_THEME
from logtui.ui.widgets.crawlers_panel import CrawlersPanel
from logtui.ui.widgets.drill_table import DrillTable
from logtui.ui.widgets.filter_bar import FilterBar
from logtui.ui.widgets.footer import KeyFooter
from logtui.ui.widgets.latency_panel import LatencyPanel
from logtui.ui.widgets.log_stream import LogStream
from logtui.ui.widgets.shadow_panel import ShadowPanel
from logtui.ui.widgets.status_panel import StatusPanel
from logtui.ui.widgets.summary import Summary
from logtui.ui.widgets.top_panel import TopPanel

IDLE_REFRESH = 1.0   # seconds between repaints when nothing changes
# The log stream repaints on every refresh; the numbers at most this often (and at once
# when the view changes). Numbers that change ten times a second cannot be read anyway,
# and repainting every panel is most of the UI thread's work.
PANEL_REFRESH = 0.25

# What the panels read: a local Dashboard, or a RemoteDashboard merging aggregators.
DashboardModel = Dashboard | RemoteDashboard
# Reads inputs into the dashboard until the event is set (runs in a worker thread).
Feeder = Callable[[Any, threading.Event], None]


class LogtuiApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "logtui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("backspace", "drill_up", "Drill up"),
        Binding("p", "pause", "Pause"),
        Binding("w", "window", "Window"),
        Binding("b", "bots", "Bots"),
        Binding("t", "next_theme", "Theme"),
        Binding("y", "copy_view", "Copy view"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, dashboard: DashboardModel, *, feeder: Feeder | None = None,
                 themes: dict[str, Theme] | None = None, theme: str = DEFAULT_THEME,
                 refresh: float = 0.1, top: int = 10, geo: bool = False) -> None:
        super().__init__()
        self.dashboard = dashboard
        self.feeder = feeder
        self.stop = threading.Event()
        self.logtui_themes = themes or {}
        self.initial_theme = theme
        self.refresh_every = refresh
        self.top = top
        self.geo = geo
        self.paused = False
        self.view_changes = 0     # view changes still being counted in workers
        self.shown_version, self.shown_at = -1, 0.0
        self.latest: dict[str, Any] | None = None          # the newest snapshot shown
        self.panels_shown: dict[str, Any] | None = None    # the one the panels show
        self.panels_at = 0.0                                # and when they showed it
        self.shown_taken = 0.0                # when the snapshot on screen was taken

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **STATUS_DEFAULTS}

    def compose(self) -> ComposeResult:
        yield Summary()
        with Container(id="panels"):
            yield StatusPanel(id="status", classes="panel")
            yield LatencyPanel(id="latency", classes="panel")
            yield CrawlersPanel(id="crawlers", classes="panel")
            yield TopPanel("top_paths", "path", "path", id="paths", classes="panel")
            yield TopPanel("top_ips", "ip", "client", id="clients", classes="panel")
            if self.geo:
                yield TopPanel("countries", "country", "country", id="countries",
                               classes="panel")
            else:
                yield TopPanel("top_uas", "ua", "user agent", id="agents", classes="panel")
        with Horizontal(id="bottom"):
            with Vertical(id="stream-box", classes="panel"):
                yield LogStream()
            yield ShadowPanel(id="shadow", classes="panel")
        yield FilterBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        for theme in self.logtui_themes.values():
            self.register_theme(theme)
        if self.initial_theme in self.available_themes:
            self.theme = self.initial_theme
        titles = {"status": "status codes", "latency": "latency", "crawlers": "crawlers",
                  "paths": "top paths", "clients": "top clients", "countries": "countries",
                  "agents": "user agents", "stream-box": "log stream",
                  "shadow": "shadow: staging vs production"}
        for widget_id, title in titles.items():
            for widget in self.query(f"#{widget_id}"):
                widget.border_title = title
        if self.feeder is not None:
            self.feed()
        self.set_interval(self.refresh_every, self.refresh_panels)
        self.refresh_panels()
        self.focus_panel(self.dashboard.view.focus)

    def on_unmount(self) -> None:
        self.stop.set()

    @work(thread=True, exclusive=True, group="feeder")
    def feed(self) -> None:
        assert self.feeder is not None
        self.feeder(self.dashboard, self.stop)

    # --- refreshing -----------------------------------------------------------------------

    def refresh_panels(self) -> None:
        """Repaint when something changed, and at least every second (the window slides
        with the clock even when nothing arrives). Not while a view change is counted:
        the old view is stale, and repainting it would slow the new one down."""
        if self.paused or self.view_changes:
            return
        now = time.monotonic()
        if (self.dashboard.version != self.shown_version or now - self.shown_at >= IDLE_REFRESH
                or (self.latest is not self.panels_shown
                    and now - self.panels_at >= PANEL_REFRESH)):
            self.shown_version, self.shown_at = self.dashboard.version, now
            self.take_snapshot()

    @work(thread=True, exclusive=True, group="snapshot")
    def take_snapshot(self) -> None:
        taken = time.monotonic()
        self.call_from_thread(self.show, self.dashboard.snapshot(self.top), taken)

    def show(self, snapshot: dict[str, Any], taken: float) -> None:
        if not self.is_running:
            return   # quitting: a snapshot taken just before may find the panels gone
        if taken < self.shown_taken:
            return   # taken before the one on screen (say, before a view change)
        self.shown_taken = taken
        self.latest = snapshot
        now = time.monotonic()
        painted = self.panels_shown
        with self.batch_update():
            self.query_one(LogStream).show(snapshot["stream"])
            # a new view at once, the same view at most every PANEL_REFRESH
            if (painted is None or snapshot["view"] != painted["view"]
                    or now - self.panels_at >= PANEL_REFRESH):
                self.panels_shown, self.panels_at = snapshot, now
                self.show_panels(snapshot)

    def show_panels(self, snapshot: dict[str, Any]) -> None:
        self.query_one(Summary).show(snapshot, self.paused)
        self.query_one(StatusPanel).show(snapshot)
        self.query_one(LatencyPanel).show(snapshot)
        self.query_one(CrawlersPanel).show(snapshot)
        for panel in self.query(TopPanel):
            panel.show(snapshot)
        if snapshot.get("shadow"):
            shadow = self.query_one(ShadowPanel)
            shadow.add_class("-active")
            shadow.show(snapshot["shadow"])

    # --- the view -------------------------------------------------------------------------

    def change_view(self, change: Callable[[], None]) -> None:
        self.view_changes += 1
        self.count_view(change)

    @work(thread=True, group="view")
    def count_view(self, change: Callable[[], None]) -> None:
        """Recompute in a worker (it may read many retained events), then take the
        snapshot there too: one hop back to the screen instead of two."""
        try:
            change()
        except FilterError as error:
            self.call_from_thread(self.notify, str(error), title="filter", severity="error",
                                  markup=False)
        finally:
            taken = time.monotonic()
            self.call_from_thread(self.view_counted, self.dashboard.snapshot(self.top), taken)

    def view_counted(self, snapshot: dict[str, Any], taken: float) -> None:
        self.view_changes -= 1
        self.show(snapshot, taken)

    def apply_filter(self, text: str) -> None:
        self.change_view(lambda: self.dashboard.set_filter(text))

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        self.apply_filter(message.text)

    def on_filter_bar_closed(self, _: FilterBar.Closed) -> None:
        self.focus_panel(self.dashboard.view.focus)

    def on_drill_table_drill_down(self, message: DrillTable.DrillDown) -> None:
        self.apply_filter(add_term(self.dashboard.view.filter, message.term))

    def on_log_stream_selected(self, message: LogStream.Selected) -> None:
        self.push_screen(RecordScreen(message.line))

    def on_descendant_focus(self) -> None:
        for panel in self.query(".panel"):
            if panel.has_focus_within and panel.id:
                self.dashboard.set_focus("stream" if panel.id == "stream-box" else panel.id)

    def focus_panel(self, name: str) -> None:
        target = self.query(f"#{'stream-box' if name == 'stream' else name}")
        if target:
            focusable = target.first().query("DrillTable, LogStream")
            if focusable:
                focusable.first().focus()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open(self.dashboard.view.filter)

    def action_drill_up(self) -> None:
        if self.dashboard.view.filter.strip():
            self.apply_filter(remove_last_term(self.dashboard.view.filter))

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.latest is not None:
            self.query_one(Summary).show(self.latest, self.paused)
        self.refresh_panels()

    def action_window(self) -> None:
        self.dashboard.cycle_window()
        self.take_snapshot()

    def action_bots(self) -> None:
        self.change_view(self.dashboard.cycle_bots)

    def action_next_theme(self) -> None:
        names = sorted(self.logtui_themes) or sorted(self.available_themes)
        current = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(current + 1) % len(names)]
        self.notify(f"theme {self.theme}", timeout=2)
        self.query_one(StatusPanel).refresh(recompose=False)

    def action_copy_view(self) -> None:
        view = self.dashboard.view.to_string()
        self.copy_to_clipboard(view)
        self.notify(f"copied {view}\nopen it with: logtui tail ... --view '{view}'",
                    title="view", timeout=6)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())
