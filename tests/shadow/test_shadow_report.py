"""The report: records written by the proxy, summed up by `shadow report` (text and JSON)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from shadow.cli import main
from shadow.diff import Comparator, Reply
from shadow.mirror import RequestSnapshot, make_record
from shadow.report import ReportWriter, render_text, summarise_file


def reply(body: object, status: int = 200, latency: float = 0.01) -> Reply:
    return Reply(status, (("Content-Type", "application/json"),), json.dumps(body).encode(),
                 latency)


def write(path: Path, comparisons: list[tuple[str, Reply, Reply, Reply | None]]) -> None:
    comparator = Comparator()
    writer = ReportWriter.open(path)
    for number, (request_path, production, staging, secondary) in enumerate(comparisons):
        request = RequestSnapshot(str(number), 1_700_000_000 + number, "GET", request_path,
                                  (), b"")
        endpoint = f"GET {request_path.rsplit('/', 1)[0]}/{{id}}"
        comparison = comparator.compare(endpoint, production, staging, secondary)
        writer.write(make_record(request, endpoint, comparison, production, staging,
                                 secondary))
    writer.close()


def test_summary_by_endpoint_and_verdict_regressions_first(tmp_path: Path) -> None:
    path = tmp_path / "diffs.jsonl"
    comparisons = []
    for n in range(20):
        comparisons.append((f"/users/{n}", reply({"n": n}, latency=0.010),
                            reply({"n": n}, latency=0.030), None))
    for n in range(5):
        comparisons.append((f"/orders/{n}", reply({"n": n}), Reply(500, (), b"boom", 0.01), None))
        comparisons.append((f"/orders/{n}", reply({"n": n}),
                            Reply.failure("timeout after 10s", 10.0), None))
        comparisons.append((f"/carts/{n}", reply({"total": 1}), reply({"total": 2}), None))
    write(path, comparisons)
    summary = summarise_file(path)
    assert summary["records"] == 35 and summary["malformed"] == 0
    assert summary["verdicts"]["regression"] == 10 and summary["verdicts"]["diff"] == 5
    assert [e["endpoint"] for e in summary["endpoints"]] == [
        "GET /orders/{id}", "GET /carts/{id}", "GET /users/{id}"]
    orders, carts, users = summary["endpoints"]
    assert {r["staging"]: r["count"] for r in orders["regressions"]} == {"500": 5,
                                                                         "timeout": 5}
    assert orders["regressions"][0]["example"] == "/orders/0"
    assert carts["fields"] == [{"path": "$.total", "count": 5, "kind": "changed",
                                "production": "1", "staging": "2"}]
    assert users["verdicts"]["same"] == 20
    assert users["latency"]["production"]["p50"] == pytest.approx(0.010, rel=0.01)
    assert users["latency"]["staging"]["p95"] == pytest.approx(0.030, rel=0.01)
    text = render_text(summary)
    assert text.splitlines()[0] == ("35 comparisons, 3 endpoints: 10 regression, 5 diff, "
                                    "0 fixed, 0 both_error, 20 same")
    assert "GET /orders/{id}  staging 500 ×5  e.g. /orders/0  'boom'" in text
    assert "GET /carts/{id}  $.total (changed) ×5  e.g. 1 → 2" in text
    assert "10ms → 30ms" in text


def test_the_report_judges_noise_with_every_record(tmp_path: Path) -> None:
    """Early on the proxy cannot tell a real change from noise; the report can."""
    rng = random.Random(3)
    path = tmp_path / "diffs.jsonl"

    def answer(version: int) -> Reply:
        return reply({"request_id": rng.getrandbits(32), "version": version})

    write(path, [(f"/v/{n}", answer(1), answer(2), answer(1)) for n in range(30)])
    live = [json.loads(line)["verdict"] for line in path.read_text().splitlines()]
    assert live[:8] == ["same"] * 8
    [endpoint] = summarise_file(path)["endpoints"]
    assert endpoint["verdicts"]["diff"] == 30
    assert [f["path"] for f in endpoint["fields"]] == ["$.version"]


def test_lines_that_are_not_records_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "diffs.jsonl"
    write(path, [("/a/1", reply(1), reply(1), None)])
    with path.open("a") as file:
        file.write("not json\n[1, 2]\n\n{\"endpoint\": \"x\"}\n")
    summary = summarise_file(path)
    assert (summary["records"], summary["malformed"]) == (1, 3)


def test_records_of_the_wrong_shape_are_skipped_and_text_is_shown_escaped(
        tmp_path: Path) -> None:
    path = tmp_path / "diffs.jsonl"
    write(path, [("/a/1\x1b]0;title\x07", reply(1), reply(1, 502), None)])
    good = json.loads(path.read_text())
    damaged = [{**good, "production_latency": "nan"}, {**good, "endpoint": 5},
               {**good, "fields": 5}, {**good, "fields": [{"path": 1}]},
               {**good, "secondary_fields": 5}, {**good, "staging_status": "x"},
               {**good, "verdict": "maybe"}, {**good, "staging_error": 5}]
    with path.open("a") as file:
        file.writelines(json.dumps(record) + "\n" for record in damaged)
    summary = summarise_file(path)
    assert (summary["records"], summary["malformed"]) == (1, len(damaged))
    text = render_text(summary)
    assert "\x1b" not in text and "/a/1\\x1b]0;title\\x07" in text


def test_shadow_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "diffs.jsonl"
    write(path, [("/a/1", reply(1), reply(1, 502), None)])
    assert main(["report", str(path)]) == 0
    assert "1 comparisons, 1 endpoints: 1 regression" in capsys.readouterr().out
    assert main(["report", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdicts"]["regression"] == 1
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 1
    assert capsys.readouterr().err == (
        f"shadow: {tmp_path / 'missing.jsonl'}: No such file or directory\n")
