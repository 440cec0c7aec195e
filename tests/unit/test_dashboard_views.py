"""View changes on a dashboard: the counts of a view the user left are kept, and coming
back to it counts only what arrived meanwhile, with the same result as counting afresh."""

from typing import Any

import polars as pl

from logtui.core.dashboard import Dashboard, View
from logtui.core.enrich import Enricher
from logtui.core.filters import compile_filter
from logtui.core.pipeline import Pipeline
from logtui.synthetic import TrafficModel, combined_line

NOW = 1_700_000_600.0
NUMBERS = ("total", "unparsed", "status", "classes", "latency", "bots", "top_paths", "top_ips",
           "top_uas", "series", "endpoints", "status_codes", "crawlers")


def batches(count: int, size: int) -> list[pl.DataFrame]:
    requests = TrafficModel(3).requests(count * size, NOW - 500, count * size / 500)
    lines = [combined_line(r) for r in requests]
    source = Pipeline("combined", Enricher.default(), compile_filter("")).source("a")
    return [source.events(lines[i:i + size], NOW) for i in range(0, len(lines), size)]


def shown(board: Dashboard) -> dict[str, Any]:
    snapshot = board.snapshot(10)
    return {**{key: snapshot[key] for key in NUMBERS},
            "stream": [line.line for line in snapshot["stream"]]}


def afresh(board: Dashboard) -> dict[str, Any]:
    """The same view counted from scratch over the same retained batches."""
    return shown(Dashboard(bucket=10, view=board.view, clock=lambda: NOW, store=board.store))


def test_coming_back_to_a_view_counts_only_what_arrived_and_matches_a_recount() -> None:
    parts = batches(6, 300)
    board = Dashboard(bucket=10, view=View(window=None), clock=lambda: NOW)
    board.ingest(parts[0])
    board.set_filter("status:>=400")
    assert list(board.kept) == [("", "all")]
    left = board.kept[("", "all")]
    board.ingest(parts[1])
    board.set_filter("")                       # back: parts[1] is counted into the kept view
    assert list(board.kept) == [("status:>=400", "all")]
    assert board.stats is left.stats           # the kept counts, not a recount
    assert board.counted_through == board.store.added
    assert shown(board) == afresh(board)
    board.ingest(parts[2])
    board.set_filter("status:>=400")
    assert shown(board) == afresh(board)
    for part in parts[3:]:                     # `b` round its three modes (recounted)
        board.ingest(part)
        board.cycle_bots()
        assert shown(board) == afresh(board)
    assert len(board.kept) == 1                # the last view left, and only that one
    assert shown(board)["total"] > 0


def test_a_kept_view_whose_batches_were_let_go_is_counted_again() -> None:
    parts = batches(5, 200)
    board = Dashboard(bucket=10, view=View(window=None), clock=lambda: NOW, retained_rows=400)
    board.ingest(parts[0])
    board.set_filter("status:200")
    for part in parts[1:]:                     # the store keeps two batches: parts[1] goes
        board.ingest(part)
    board.set_filter("")
    assert board.store.rows == 400 and board.filtered_since == board.store.oldest
    assert shown(board) == afresh(board)
    assert shown(board)["total"] == 400
