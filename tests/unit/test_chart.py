from logtui.ui.widgets.chart import columns_for, stack_cells


def point(ok: int = 0, errors: int = 0) -> dict[str, int]:
    return {"2xx": ok, "3xx": 0, "1xx": 0, "4xx": 0, "5xx": errors}


def test_buckets_merge_to_fit_the_width_keeping_the_newest_on_the_right() -> None:
    series = [point(ok=n) for n in range(1, 8)]      # 7 buckets into 3 columns of <= 3
    columns = columns_for(series, 3)
    assert [c["2xx"] for c in columns] == [1, 2 + 3 + 4, 5 + 6 + 7]
    assert columns_for(series, 10) == [point(ok=n) for n in range(1, 8)]


def test_a_column_stacks_errors_on_top_in_eighths() -> None:
    cells = stack_cells(point(ok=2, errors=2), height=2, peak=4)
    assert cells == [("█", "2xx"), ("█", "5xx")]
    half = stack_cells(point(ok=1), height=2, peak=4)
    assert half == [("▄", "2xx"), (" ", None)]
    assert stack_cells(point(ok=1), height=1, peak=8) == [("▁", "2xx")]
    assert stack_cells(point(), height=3, peak=0) == [(" ", None)] * 3
