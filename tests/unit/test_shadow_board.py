from logtui.core.shadow import ShadowBoard, is_shadow


def record(endpoint: str, verdict: str, t: float = 1.0) -> dict:
    return {"time": t, "method": "GET", "path": endpoint.replace("{id}", "7"),
            "endpoint": endpoint, "verdict": verdict, "production_status": 200,
            "staging_status": 500 if verdict == "regression" else 200,
            "fields": [{"path": "$.price", "kind": "changed"}]}


def test_counts_by_endpoint_regressions_first_and_latest_differences() -> None:
    board = ShadowBoard()
    board.add([record("/a", "same"), record("/a", "same"), record("/b/{id}", "regression", 2),
               record("/c", "diff", 3), {"not": "a comparison"}])
    snapshot = board.snapshot()
    assert snapshot["compared"] == 4
    assert snapshot["verdicts"]["regression"] == 1 and snapshot["verdicts"]["same"] == 2
    assert [row["endpoint"] for row in snapshot["endpoints"]] == ["/b/{id}", "/c", "/a"]
    assert [entry["verdict"] for entry in snapshot["latest"]] == ["diff", "regression"]
    assert snapshot["latest"][1]["staging"] == 500
    assert snapshot["latest"][0]["fields"] == ["$.price"]


def test_boards_merge_and_travel() -> None:
    a, b = ShadowBoard(), ShadowBoard()
    a.add([record("/a", "regression", 1)])
    b.add([record("/a", "regression", 2), record("/a", "same", 3)])
    merged = ShadowBoard.from_wire(a.to_wire())
    merged.merge(ShadowBoard.from_wire(b.to_wire()))
    row = merged.snapshot()["endpoints"][0]
    assert (row["regression"], row["same"], row["total"]) == (2, 1, 3)
    assert [e["time"] for e in merged.snapshot()["latest"]] == [2.0, 1.0]
    assert is_shadow("shadow.diff") and not is_shadow("shadow.diffs") and not is_shadow("web")


def test_comparisons_with_fields_of_the_wrong_type_are_counted_as_far_as_they_go() -> None:
    board = ShadowBoard()
    board.add([{"verdict": "regression", "endpoint": "/x", "time": "abc"},
               {"verdict": "regression", "endpoint": "/x", "fields": 5, "time": float("nan")},
               {"verdict": "diff", "endpoint": "/y", "production_status": b"x"}])
    snapshot = board.snapshot()
    assert snapshot["verdicts"]["regression"] == 2 and snapshot["verdicts"]["diff"] == 1
    assert [entry["time"] for entry in snapshot["latest"]] == [0.0, 0.0, 0.0]
    assert snapshot["latest"][0]["production"] == "b'x'"
