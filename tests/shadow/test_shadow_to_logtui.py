"""End to end: shadow forwards its comparisons to a `logtui serve` aggregator, and a
viewer attached to it sees them in the Shadow panel's numbers."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from shadow_upstreams import Answer, Upstream, json_answer, running_proxy, wait_until

from logtui.core.dashboard import View
from logtui.core.remote import RemoteDashboard
from logtui.sources.connect import connect_all

LOGTUI = str(Path(sys.executable).with_name("logtui"))
STARTED = re.compile(r"forward on [\d.]+:(\d+); viewers on [\d.]+:(\d+)")
USER = {"id": 7, "name": "Ada"}


def test_a_viewer_of_the_aggregator_sees_shadow_comparisons() -> None:
    serve = subprocess.Popen([LOGTUI, "serve", "--listen", "127.0.0.1:0", "--viewers",
                              "127.0.0.1:0", "--shared-key", "k"],
                             stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    try:
        assert serve.stderr is not None
        match = STARTED.search(serve.stderr.readline())
        assert match, "logtui serve did not start"
        forward, viewers = int(match.group(1)), int(match.group(2))
        remote = RemoteDashboard(["agg"], View())
        viewer = threading.Thread(target=connect_all, args=(
            remote, {"agg": ("127.0.0.1", viewers)}, "k", stop), daemon=True)
        viewer.start()
        production = {"/ok": lambda s: json_answer(USER),
                      "/users/": lambda s: json_answer(USER)}
        staging = {"/ok": lambda s: json_answer(USER),
                   "/users/": lambda s: Answer(502, b"bad gateway")}
        with Upstream(production) as primary, Upstream(staging) as stage, \
                running_proxy(primary.url, stage.url, forward=f"127.0.0.1:{forward}",
                              shared_key="k") as proxy, \
                httpx.Client(base_url=proxy.url, timeout=30) as client:
            for path in ("/ok", "/ok", "/users/1", "/users/2", "/users/3"):
                assert client.get(path).status_code == 200   # production answered
            proxy.settle(5)

            def compared() -> int:
                board = remote.snapshot()["shadow"] or {}
                return int(board.get("compared", 0))

            wait_until(lambda: compared() == 5)
        board = remote.snapshot()["shadow"]
        assert board is not None and board["compared"] == 5
        assert board["verdicts"]["regression"] == 3 and board["verdicts"]["same"] == 2
        top = board["endpoints"][0]
        assert (top["endpoint"], top["regression"]) == ("GET /users/{id}", 3)
        assert [entry["staging"] for entry in board["latest"]] == [502, 502, 502]
        assert remote.snapshot()["total"] == 0   # comparisons are not counted as traffic
    finally:
        stop.set()
        serve.terminate()
        serve.wait(10)
