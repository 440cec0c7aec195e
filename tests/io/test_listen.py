"""`tail --listen`: forwarded events reach the same statistics as file lines."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import msgpack
import polars as pl
from fluent import sender

from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.core.stats import RollingStats
from logtui.sources.listen import ListenOptions
from logtui.sources.live import LiveSources

LINE = ('5.6.7.8 - - [26/Nov/2026:10:00:00 +0000] "GET /y HTTP/1.1" 503 5 "-" '
        '"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"')


def test_forwarded_records_and_lines_join_the_file_events(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(LINE.replace("/y", "/from-file") + "\n")
    pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
    live = LiveSources([str(log)], pipeline, from_start=True, last_lines=0,
                       listen=ListenOptions("127.0.0.1", 0))
    assert live.listener is not None
    batches: list[pl.DataFrame] = []
    with live:
        client = sender.FluentSender("nginx.access", host="127.0.0.1", port=live.listener.port,
                                     nanosecond_precision=True)
        for status in (200, 201, 404):
            assert client.emit("", {"remote_addr": "1.2.3.4", "status": status, "path": "/x",
                                    "request_time": 0.25})
        assert client.emit("", {"log": LINE})   # a tail input's raw line
        client.close()
        deadline = time.monotonic() + 10
        while sum(b.height for b in batches) < 5 and time.monotonic() < deadline:
            batches += live.poll()
            live.wait(0.05)
        states = {state.tag: state for state in live.states()}
    stats = RollingStats(None, 10)
    for batch in batches:
        stats.add(batch)
    snapshot = stats.snapshot()
    assert snapshot["total"] == 5
    assert snapshot["status"] == {"200": 1, "201": 1, "404": 1, "503": 2}
    assert snapshot["bots"] == {"Googlebot": 2}
    assert {p["path"] for p in snapshot["top_paths"]} == {"/x", "/y", "/from-file"}
    forward = next(state for tag, state in states.items() if tag.startswith("forward"))
    assert forward.lines == 4 and forward.state.startswith("listening")


def test_hostile_records_are_counted_and_the_input_goes_on() -> None:
    """Records no JSON sender makes (bytes, keys that are not text, NaN, a time far
    ahead), then well-behaved ones: every one is counted and nothing stalls. (Frames the
    protocol itself rejects, such as a NaN time, close their connection: test_forward_server.)"""
    pipeline = Pipeline("auto", Enricher.default(), compile_filter(""))
    live = LiveSources([], pipeline, from_start=True, last_lines=0,
                       listen=ListenOptions("127.0.0.1", 0))
    assert live.listener is not None
    now = time.time()
    hostile: list[tuple[float, object]] = [
        (now, {1: 2, "status": 500}), (now, {b"status": 501}), (now, {None: 1}),
        (now, {"log": b"not a line"}), (now, {"request": {1: 2}}),
        (now, {"log": '{"a":' + "[" * 5000 + "]" * 5000 + "}"}),
        (now, {"status": 502, "request_time": float("nan"), "time": float("inf")}),
        (2**64 - 1, {"status": 503}),   # an EventTime the protocol takes, 500 billion years on
    ]
    batches: list[pl.DataFrame] = []
    with live:
        with socket.create_connection(("127.0.0.1", live.listener.port), timeout=10) as raw:
            for at, record in hostile:
                raw.sendall(msgpack.packb(["app", at, record]))
        client = sender.FluentSender("app", host="127.0.0.1", port=live.listener.port)
        for status in (200, 201):
            assert client.emit("", {"status": status, "path": "/ok"})
        client.close()
        deadline = time.monotonic() + 10
        while sum(b.height for b in batches) < 10 and time.monotonic() < deadline:
            batches += live.poll()
            live.wait(0.05)
    frame = pl.concat(batches)
    assert frame.height == 10
    assert sorted(frame["status"].drop_nulls()) == [200, 201, 500, 501, 502, 503]
    assert frame["time"].is_finite().all() and frame["latency"].null_count() == 10
    stats = RollingStats(300, 10, clock=lambda: now)
    stats.add(frame)
    assert stats.snapshot()["total"] == 10
