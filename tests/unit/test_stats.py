import copy

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtui.core.event import conform
from logtui.core.stats import MAX_BUCKETS, TOP_CAPACITY, RollingStats, fold


def frame(times: list[float], statuses: list[int | None] | None = None,
          paths: list[str] | None = None, latencies: list[float | None] | None = None,
          bots: list[str | None] | None = None) -> pl.DataFrame:
    n = len(times)
    return conform(pl.DataFrame({
        "time": times,
        "parsed": [s is not None for s in statuses] if statuses else [True] * n,
        "status": statuses or [200] * n,
        "path": paths or ["/"] * n,
        "latency": latencies or [0.1] * n,
        "bot": bots or [None] * n,
        "bytes": [10] * n,
    }, strict=False))


def test_a_snapshot_counts_statuses_classes_bytes_and_bots() -> None:
    stats = RollingStats(None, 10)
    stats.add(frame([1, 2, 3, 15], [200, 404, 503, None], ["/a", "/b", "/a", "/c"],
                    bots=["Googlebot", None, "Googlebot", None]))
    snap = stats.snapshot()
    assert snap["total"] == 4 and snap["unparsed"] == 1 and snap["parsed"] == 3
    assert snap["status"] == {"200": 1, "404": 1, "503": 1}
    assert snap["classes"] == {"1xx": 0, "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 1}
    assert snap["bytes"] == 40
    assert snap["bots"] == {"Googlebot": 2}
    assert snap["crawlers"][0]["errors"] == 1
    assert snap["top_paths"][0] == {"path": "/a", "count": 2}
    assert [point["total"] for point in snap["series"]] == [3, 1]


def test_fold_keeps_each_buckets_misra_gries_counters_however_ties_fall() -> None:
    """Over capacity, every counter drops by the (capacity+1)-th largest count, and the
    keys at it go: here five paths seen 3 times, of which only two rank in the top 101."""
    counts = {f"/busy/{i}": 10 for i in range(TOP_CAPACITY - 1)} | {
        f"/tied/{i}": 3 for i in range(5)}
    paths = [path for path, n in counts.items() for _ in range(n)]
    [bucket] = fold(frame([1.0] * len(paths), paths=paths), 60.0).values()
    assert bucket.tops["paths"].counts == {f"/busy/{i}": 7 for i in range(TOP_CAPACITY - 1)}
    assert bucket.tops["paths"].total == len(paths)
    # within capacity, the counts are exact
    [bucket] = fold(frame([1.0] * 6, paths=["/a"] * 4 + ["/b"] * 2), 60.0).values()
    assert bucket.tops["paths"].counts == {"/a": 4, "/b": 2}


def test_the_window_ends_at_the_newest_event_in_batch_mode_and_drops_old_buckets() -> None:
    stats = RollingStats(60, 10)
    stats.add(frame([0, 5, 100, 130, 150]))
    snap = stats.snapshot()
    # window (90, 150]: buckets starting at 100, 130 and 150 remain
    assert snap["total"] == 3
    assert len(snap["series"]) == 6
    stats.add(frame([1.0]))
    assert stats.late == 1 + 2  # the late event, and the two evicted buckets never merged


def test_live_mode_ends_the_window_at_the_clock() -> None:
    now = [1000.0]
    stats = RollingStats(60, 10, clock=lambda: now[0])
    stats.add(frame([990.0, 995.0]))
    assert stats.snapshot()["total"] == 2
    now[0] = 1100.0
    assert stats.snapshot()["total"] == 0


def test_a_live_window_drops_events_far_ahead_of_the_clock() -> None:
    now = [1000.0]
    stats = RollingStats(300, 10, clock=lambda: now[0])
    stats.add(frame([990.0, 995.0, 1000.0 + 60]))        # a minute ahead: a skewed sender
    stats.add(frame([2.0**31]))                          # decades ahead: garbage
    snapshot = stats.snapshot()
    # the window still ends now: the current events count, the early one waits its turn
    assert (snapshot["total"], snapshot["late"], snapshot["end"]) == (2, 1, 1000.0)
    now[0] = 1065.0
    assert stats.snapshot()["total"] == 3


def test_window_all_coarsens_instead_of_growing() -> None:
    stats = RollingStats(None, 1)
    times = [float(t) for t in range(0, 10_000, 3)]
    stats.add(frame(times))
    assert len(stats.buckets) <= MAX_BUCKETS
    assert stats.snapshot()["total"] == len(times)
    assert sum(point["total"] for point in stats.snapshot()["series"]) == len(times)


def test_a_long_window_spans_at_most_max_buckets_of_a_wider_width() -> None:
    thirty_days = 30 * 86400.0
    stats = RollingStats(thirty_days, 10)
    times = [thirty_days - t for t in (0.0, 5.0, 86400.0, 20 * 86400.0)]
    stats.add(frame(times))
    snapshot = stats.snapshot()
    assert stats.width == 10 * 1024 and thirty_days / stats.width <= MAX_BUCKETS
    assert len(snapshot["series"]) <= MAX_BUCKETS + 1
    assert snapshot["total"] == sum(point["total"] for point in snapshot["series"]) == 4
    assert RollingStats(3600.0, 10).width == 10   # the dashboard's longest window: as given


ROWS = st.lists(st.tuples(st.floats(0, 500), st.sampled_from([200, 301, 404, 500]),
                          st.sampled_from(["/a", "/b", "/c"]), st.floats(0.0001, 5)),
                min_size=1, max_size=60)


@settings(max_examples=40, deadline=None)
@given(ROWS, st.integers(min_value=0, max_value=60))
def test_statistics_of_split_input_merge_to_those_of_the_whole(
        rows: list[tuple[float, int, str, float]], cut: int) -> None:
    times, statuses, paths, latencies = (list(column) for column in zip(*rows, strict=True))
    whole = RollingStats(None, 10)
    whole.add(frame(times, statuses, paths, latencies))  # type: ignore[arg-type]
    parts = RollingStats(None, 10)
    for part in (slice(0, cut), slice(cut, None)):
        if times[part]:
            parts.add(frame(times[part], statuses[part], paths[part], latencies[part]))  # type: ignore[arg-type]
    a, b = whole.snapshot(), parts.snapshot()
    for key in ("total", "status", "classes", "bytes", "top_paths", "series"):
        assert a[key] == b[key], key
    for key in ("count", "p50", "p95", "p99", "min", "max"):
        assert a["latency"][key] == b["latency"][key]


def test_window_all_bounds_the_series_when_events_are_years_apart() -> None:
    stats = RollingStats(None, 10)
    stats.add(frame([1_480_000_000.0, 1_590_000_000.0]))
    series = stats.snapshot()["series"]
    assert len(series) <= MAX_BUCKETS
    assert sum(point["total"] for point in series) == 2


def test_status_table_trend_and_slowest_endpoints() -> None:
    stats = RollingStats(40, 10)
    stats.add(frame([0, 5, 12, 25, 35, 36], [200, 200, 200, 200, 500, 500],
                    ["/u/1", "/u/2", "/u/3", "/a", "/a", "/a"], [0.1, 0.3, 0.2, 1.0, 2.0, 3.0]))
    snap = stats.snapshot()
    codes = {row["code"]: row for row in snap["status_codes"]}
    assert codes[200]["count"] == 4 and codes[200]["share"] == 4 / 6
    # the newest quarter of the window (one bucket of four) holds both 500s and no 200
    assert codes[500]["trend"] == 4.0 and codes[200]["trend"] == 0.0
    assert snap["endpoints"] == [
        {"endpoint": "/a", "count": 3, "errors": 2, "mean": 2.0, "max": 3.0},
        {"endpoint": "/u/{id}", "count": 3, "errors": 0, "mean": pytest.approx(0.2),
         "max": 0.3},
    ]


def test_a_shorter_span_narrows_the_snapshot() -> None:
    stats = RollingStats(3600, 10)
    stats.add(frame([0.0, 3000.0, 3590.0]))
    assert stats.snapshot()["total"] == 3
    narrowed = stats.snapshot(span=60)
    assert narrowed["total"] == 1 and narrowed["window"] == 60 and len(narrowed["series"]) == 6


def test_changed_buckets_stay_within_the_window() -> None:
    stats = RollingStats(60, 10)
    for start in range(0, 10_000, 100):
        stats.add(frame([float(start)]))
    assert stats.changed <= set(stats.buckets)
    assert [b.start for b in stats.take_changed()] == sorted(b.start for b in
                                                             stats.buckets.values())
    assert stats.changed == set()


@settings(max_examples=50, deadline=None)
@given(ROWS)
def test_a_bucket_copy_is_equal_and_independent(
        rows: list[tuple[float, int, str, float]]) -> None:
    times, statuses, paths, latencies = (list(column) for column in zip(*rows, strict=True))
    for bucket in fold(frame(times, statuses, paths, latencies, ["GPTBot"] * len(times)),  # type: ignore[arg-type]
                       10).values():
        original = copy.deepcopy(bucket)
        copied = bucket.copy()
        assert copied == bucket
        copied.merge(bucket)     # growing the copy leaves the original as it was
        assert copied.total == 2 * bucket.total and copied != bucket
        assert bucket == original
