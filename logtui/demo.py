"""`logtui demo`: realistic synthetic traffic written live to a temporary log.

A script of phases replays what operators meet: steady browsing, a Googlebot/GPTBot
crawl wave, a burst of 5xx on one endpoint, a latency spike, and a log rotation, then
starts over. The last minutes are written up front so the panels fill at once. A shadow
pair compares a sample of the traffic with a staging build, for the Shadow panel.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logtui.core.endpoints import template
from logtui.synthetic import CRAWLERS, Request, TrafficModel, combined_line

TICK = 0.1          # seconds between writes
HISTORY = 300.0     # seconds of traffic written before the dashboard opens
MIRRORED = 0.1      # share of safe requests the demo's shadow compares


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


def comparison(request: Request, phase: Phase, rnd: random.Random) -> dict[str, Any]:
    """What `shadow` would report for this request mirrored to a staging build in which
    product prices moved to a new field and the users API fails during the 5xx burst."""
    endpoint = template(request.path)
    record: dict[str, Any] = {
        "time": request.time, "method": request.method, "path": request.path,
        "endpoint": endpoint, "verdict": "same", "production_status": request.status,
        "staging_status": request.status, "production_latency": request.latency,
        "staging_latency": request.latency * rnd.uniform(0.9, 1.3), "fields": []}
    if endpoint == "/products/{id}" and request.status == 200:
        record["verdict"] = "diff"
        record["fields"] = [{"path": "$.price", "kind": "missing", "production": "19.99",
                             "staging": None}]
    if phase.error_boost and endpoint == "/api/v1/users/{id}" and request.status < 500:
        record.update(verdict="regression", staging_status=503)
    return record


class DemoTraffic:
    """Writes the script's traffic to `access.log`; `compared` receives what shadow would
    report for a sample of it (the demo's shadow pair)."""

    def __init__(self, directory: Path, rate: float = 120.0, seed: int = 7,
                 compared: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
        self.path = directory / "access.log"
        self.rate = rate
        self.model = TrafficModel(seed)
        self.compared = compared
        self.sample = random.Random(seed)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="logtui-demo", daemon=True)

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
        requests = list(self.model.requests(count, start, self.rate))
        with self.path.open("a", encoding="utf-8") as log:
            log.write("".join(combined_line(r) + "\n" for r in requests))
        if self.compared is not None:
            mirrored = [r for r in requests if r.method in ("GET", "HEAD")
                        and self.sample.random() < MIRRORED]
            self.compared([comparison(r, phase, self.sample) for r in mirrored])

    def _rotate(self) -> None:
        """logrotate's default: rename, and the server reopens a new file."""
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


def run_demo(theme: str | None, rate: float) -> int:
    from logtui.core.dashboard import Dashboard
    from logtui.core.enrich import Enricher
    from logtui.core.filters import compile_filter
    from logtui.core.pipeline import Pipeline
    from logtui.sources.live import dashboard_feeder
    from logtui.ui.launch import open_dashboard

    with tempfile.TemporaryDirectory(prefix="logtui-demo-") as directory:
        dashboard = Dashboard()
        traffic = DemoTraffic(Path(directory), rate, compared=dashboard.ingest_shadow)
        traffic.start()
        try:
            pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
            feeder = dashboard_feeder([str(traffic.path)], pipeline, from_start=True,
                                      last_lines=0)
            open_dashboard(dashboard, feeder, theme=theme, top=10, geo=False)
        finally:
            traffic.close()
    return 0
