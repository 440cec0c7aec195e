"""`logtui demo`: realistic synthetic traffic written live to a temporary log.

A script of phases replays what operators meet: steady browsing, a Googlebot/GPTBot
crawl wave, a burst of 5xx on one endpoint, a latency spike, and a log rotation, then
starts over. The last minutes are written up front so the panels fill at once.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from logtui.synthetic import CRAWLERS, TrafficModel, combined_line

TICK = 0.1          # seconds between writes
HISTORY = 300.0     # seconds of traffic written before the dashboard opens


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    bot_share: float = 0.08
    crawlers: tuple[str, ...] = CRAWLERS
    error_boost: float = 0.0
    incident_path: str | None = None
    latency_boost: float = 1.0
    rotate_after: bool = False


SCRIPT = (
    Phase("steady browsing", 25),
    Phase("crawl wave", 20, bot_share=0.55, crawlers=CRAWLERS[0:3:2]),   # Googlebot, GPTBot
    Phase("5xx burst on /api/v1/orders", 15, error_boost=0.7, incident_path="/api/v1/orders"),
    Phase("steady browsing", 10),
    Phase("latency spike", 15, latency_boost=6.0, rotate_after=True),
)


class DemoTraffic:
    def __init__(self, directory: Path, rate: float = 120.0, seed: int = 7) -> None:
        self.path = directory / "access.log"
        self.rate = rate
        self.model = TrafficModel(seed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="logtui-demo", daemon=True)
        self.rotations = 0

    def start(self) -> None:
        now = time.time()
        self._write(now - HISTORY, now, SCRIPT[0])
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _apply(self, phase: Phase) -> None:
        model = self.model
        model.bot_share, model.crawlers = phase.bot_share, phase.crawlers
        model.error_boost, model.incident_path = phase.error_boost, phase.incident_path
        model.latency_boost = phase.latency_boost

    def _write(self, start: float, end: float, phase: Phase) -> None:
        self._apply(phase)
        count = max(0, round((end - start) * self.rate))
        lines = [combined_line(r) for r in self.model.requests(count, start, self.rate)]
        with self.path.open("a", encoding="utf-8") as log:
            log.write("".join(line + "\n" for line in lines))

    def _rotate(self) -> None:
        """logrotate's default: rename, and the server reopens a new file."""
        self.rotations += 1
        os.replace(self.path, self.path.with_name("access.log.1"))
        self.path.touch()

    def _run(self) -> None:
        last = time.time()
        while not self.stop.is_set():
            for phase in SCRIPT:
                ends = time.time() + phase.seconds
                while time.time() < ends:
                    if self.stop.wait(TICK):
                        return
                    now = time.time()
                    self._write(last, now, phase)
                    last = now
                if phase.rotate_after:
                    self._rotate()


def run_demo(theme: str, rate: float) -> int:
    from logtui.core.dashboard import Dashboard
    from logtui.core.enrich import Enricher
    from logtui.core.filters import compile_filter
    from logtui.core.pipeline import Pipeline
    from logtui.sources.live import dashboard_feeder
    from logtui.ui.app import LogtuiApp
    from logtui.ui.themes import load_themes

    with tempfile.TemporaryDirectory(prefix="logtui-demo-") as directory:
        traffic = DemoTraffic(Path(directory), rate)
        traffic.start()
        try:
            pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
            feeder = dashboard_feeder([str(traffic.path)], pipeline, from_start=True,
                                      last_lines=0)
            LogtuiApp(Dashboard(), feeder=feeder, themes=load_themes(), theme=theme).run()
        finally:
            traffic.close()
    return 0
