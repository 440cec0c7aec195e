"""Regenerate docs/dashboard.svg: the dashboard on five minutes of synthetic traffic.

    .venv/bin/python docs/screenshot.py
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from logtui.core.dashboard import Dashboard, SourceState
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.synthetic import TrafficModel, combined_line
from logtui.ui.app import LogtuiApp
from logtui.ui.themes import load_themes

END = 1_700_000_300.0
OUT = Path(__file__).with_name("dashboard.svg")


def traffic() -> list[str]:
    model = TrafficModel(seed=11)
    lines = [combined_line(r) for r in model.requests(27_000, END - 300, 100)]
    model.error_boost, model.incident_path = 0.9, "/api/v1/orders"   # an incident at the end
    lines += [combined_line(r) for r in model.requests(3_000, END - 30, 100)]
    return lines


async def main() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    dashboard = Dashboard(clock=lambda: END)
    source = Pipeline("auto", Enricher.default(), compile_filter("")).source("access.log")
    dashboard.ingest(source.events(traffic(), END))
    dashboard.update_sources([SourceState("/var/log/nginx/access.log", format="auto:combined")])
    app = LogtuiApp(dashboard, themes=load_themes(), refresh=3600)
    async with app.run_test(size=(140, 44)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot(str(OUT))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
