"""Aggregators and viewers: `logtui serve` x2 merged by `logtui connect --no-ui`, a slow
viewer that does not slow ingestion, and a wrong shared key refused."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fluent import sender

from logtui.core.dashboard import View
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.core.remote import RemoteDashboard
from logtui.core.wire import MessageDecoder, encode
from logtui.sources.connect import connect_all
from logtui.sources.viewers import Hub, ViewerServer

LOGTUI = str(Path(sys.executable).with_name("logtui"))
STARTED = re.compile(r"forward on [\d.]+:(\d+); viewers on [\d.]+:(\d+)")


def wait_for(condition, timeout: float = 40.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def aggregators() -> Iterator[list[tuple[int, int]]]:
    """Two `logtui serve` processes on loopback; yields their (forward, viewers) ports."""
    processes, ports = [], []
    try:
        for _ in range(2):
            process = subprocess.Popen(
                [LOGTUI, "serve", "--listen", "127.0.0.1:0", "--viewers", "127.0.0.1:0"],
                stderr=subprocess.PIPE, text=True)
            processes.append(process)
            assert process.stderr is not None
            match = STARTED.search(process.stderr.readline())
            assert match, "serve did not start"
            ports.append((int(match.group(1)), int(match.group(2))))
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def send(port: int, statuses: list[int], path: str = "/x") -> None:
    client = sender.FluentSender("web.access", host="127.0.0.1", port=port)
    for status in statuses:
        assert client.emit("", {"remote_addr": "10.0.0.1", "status": status, "path": path,
                                "request_time": 0.05})
    client.close()


def test_connect_merges_two_aggregators_exactly(aggregators: list[tuple[int, int]]) -> None:
    (forward_a, viewers_a), (forward_b, viewers_b) = aggregators
    send(forward_a, [200] * 30 + [404] * 4)
    send(forward_b, [200] * 10 + [503] * 6)
    connect = subprocess.Popen(
        [LOGTUI, "connect", f"127.0.0.1:{viewers_a}", f"127.0.0.1:{viewers_b}", "--no-ui",
         "--interval", "0.2s"], stdout=subprocess.PIPE, text=True)
    try:
        assert connect.stdout is not None
        deadline = time.monotonic() + 20
        snapshot: dict = {}
        for line in connect.stdout:
            snapshot = json.loads(line)
            if snapshot["total"] == 50 or time.monotonic() > deadline:
                break
        assert snapshot["total"] == 50
        assert snapshot["status"] == {"200": 40, "404": 4, "503": 6}
        assert snapshot["top_paths"] == [{"path": "/x", "count": 50}]
        states = {s["tag"]: s["state"] for s in snapshot["sources"]}
        assert states[f"127.0.0.1:{viewers_a}"] == "connected"
        assert states[f"127.0.0.1:{viewers_b}"] == "connected"
    finally:
        connect.terminate()
        connect.wait(timeout=10)


def test_a_filter_is_applied_by_the_aggregators_and_changes_live(
        aggregators: list[tuple[int, int]]) -> None:
    (forward_a, viewers_a), (forward_b, viewers_b) = aggregators
    send(forward_a, [200] * 5 + [500] * 2)
    send(forward_b, [502] * 3)
    remote = RemoteDashboard([f"a:{viewers_a}", f"b:{viewers_b}"], View(filter="status:5xx"))
    stop = threading.Event()
    thread = threading.Thread(target=connect_all, args=(
        remote, {f"a:{viewers_a}": ("127.0.0.1", viewers_a),
                 f"b:{viewers_b}": ("127.0.0.1", viewers_b)}, None, stop), daemon=True)
    thread.start()
    try:
        wait_for(lambda: remote.snapshot()["total"] == 5)
        assert remote.snapshot()["status"] == {"500": 2, "502": 3}
        remote.set_filter("status:200")
        wait_for(lambda: remote.snapshot()["status"] == {"200": 5})
        send(forward_b, [200] * 2)   # new events are counted live under the new view
        wait_for(lambda: remote.snapshot()["total"] == 7)
    finally:
        stop.set()
        thread.join(10)


def read_messages(sock: socket.socket, decoder: MessageDecoder, kind: str) -> list:
    found = []
    sock.settimeout(20)
    while not found:
        data = sock.recv(1 << 16)
        assert data, "closed"
        found = [body for k, body in decoder.feed(data) if k == kind]
    return found


def test_a_slow_viewer_loses_lines_not_ingestion_and_says_how_many() -> None:
    # a small line queue, so that a batch of 1,000 overflows it whatever the timing
    hub = Hub(outbox_lines=100)
    server = ViewerServer(hub, "127.0.0.1", 0, send_every=0.05)
    server.start()
    pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
    source = pipeline.source("web")
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(encode("subscribe", {"view": "logtui:w=5m", "bucket": 10.0}))
        wait_for(lambda: server.connected == 1)
        # while the slow viewer reads nothing, 20,000 events arrive
        for batch in range(20):
            records = [{"status": 200, "path": f"/p/{batch}/{i}", "remote_addr": "10.0.0.2"}
                       for i in range(1000)]
            hub.ingest(source.records(records, [time.time()] * 1000))
        assert hub.events == 20_000   # ingestion did not wait for the viewer
        # a fresh viewer still gets complete numbers while the slow one is stuck
        remote = RemoteDashboard(["fresh"], View())
        stop = threading.Event()
        thread = threading.Thread(target=connect_all, args=(
            remote, {"fresh": ("127.0.0.1", server.port)}, None, stop), daemon=True)
        thread.start()
        wait_for(lambda: remote.snapshot()["total"] == 20_000)
        stop.set()
        thread.join(10)
        # when the slow viewer reads at last, it learns how many lines it lost
        decoder = MessageDecoder()
        dropped = 0
        deadline = time.monotonic() + 40
        while dropped == 0 and time.monotonic() < deadline:
            dropped += sum(body["dropped"] for body in read_messages(slow, decoder, "lines"))
        assert dropped > 0
        slow.close()
    finally:
        server.close()


def connect_until(port: int, shared_key: str | None, reached: Callable[[str], bool]) -> None:
    """Attach one viewer with `shared_key` and wait until its connection state is `reached`."""
    remote = RemoteDashboard(["agg"], View())
    stop = threading.Event()
    thread = threading.Thread(target=connect_all, args=(
        remote, {"agg": ("127.0.0.1", port)}, shared_key, stop), daemon=True)
    thread.start()
    try:
        wait_for(lambda: reached(remote.replicas["agg"].state))
    finally:
        stop.set()
        thread.join(10)


def test_a_wrong_or_missing_shared_key_is_refused() -> None:
    server = ViewerServer(Hub(), "127.0.0.1", 0, shared_key="right")
    server.start()
    try:
        connect_until(server.port, "wrong",
                      lambda state: state.startswith("retrying") and "refused" in state)
        assert server.refused >= 1 and server.connected == 0
        connect_until(server.port, None, lambda state: "requires a shared key" in state)
        connect_until(server.port, "right", lambda state: state == "connected")
    finally:
        server.close()


def test_forwarded_shadow_comparisons_reach_viewers_apart_from_traffic(
        aggregators: list[tuple[int, int]]) -> None:
    (forward, viewers), _ = aggregators
    client = sender.FluentSender("shadow", host="127.0.0.1", port=forward)
    for verdict in ("regression", "regression", "same"):
        assert client.emit("diff", {"time": time.time(), "method": "GET", "path": "/u/1",
                                    "endpoint": "/u/{id}", "verdict": verdict,
                                    "production_status": 200, "staging_status": 502,
                                    "fields": []})
    client.close()
    send(forward, [200] * 3)
    remote = RemoteDashboard(["agg"], View())
    stop = threading.Event()
    thread = threading.Thread(target=connect_all, args=(
        remote, {"agg": ("127.0.0.1", viewers)}, None, stop), daemon=True)
    thread.start()
    try:
        wait_for(lambda: (remote.snapshot()["shadow"] or {}).get("compared") == 3)
        board = remote.snapshot()["shadow"]
        assert board["endpoints"][0]["endpoint"] == "/u/{id}"
        assert board["verdicts"]["regression"] == 2
        # the comparisons are not web traffic: only the three requests are counted
        wait_for(lambda: remote.snapshot()["total"] == 3)
        assert remote.snapshot()["status"] == {"200": 3}
    finally:
        stop.set()
        thread.join(10)


def test_a_key_for_an_aggregator_without_one_is_explained() -> None:
    server = ViewerServer(Hub(), "127.0.0.1", 0)   # no shared key: it sends no HELO
    server.start()
    try:
        connect_until(server.port, "unneeded", lambda state: "leave out --shared-key" in state)
    finally:
        server.close()
