"""Acceptance check on 1,000,000 generated lines: `tail --once` against exact, independent
counts (numpy percentiles, awk status counts) and against GoAccess when it is installed."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
LINES = 1_000_000
GOACCESS_FORMAT = [
    '--log-format=%h %^[%d:%t %^] "%r" %s %b "%R" "%u" %T',
    "--date-format=%d/%b/%Y",
    "--time-format=%H:%M:%S",
]


def load_generate() -> Callable[..., None]:
    """`generate` from bench/generate.py, which is a script folder, not a package."""
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def logtui_command() -> list[str]:
    """The `logtui` installed beside this interpreter (the venv's), else `python -m logtui`."""
    script = Path(sys.executable).parent / "logtui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "logtui"]


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accuracy") / "access.log"
    load_generate()(path, LINES)
    return path


@pytest.fixture(scope="module")
def summary(log_file: Path) -> dict[str, Any]:
    run = subprocess.run(
        [*logtui_command(), "tail", str(log_file), "--once"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_percentiles_within_one_percent_of_exact(log_file: Path, summary: dict[str, Any]) -> None:
    # Independent parse: the trailing field of each line is $request_time in seconds.
    with log_file.open(encoding="utf-8") as stream:
        latencies = np.fromiter(
            (float(line.rsplit(" ", 1)[1]) for line in stream), dtype=np.float64, count=LINES
        )
    latency = summary["latency"]
    assert latency["count"] == LINES
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        exact = float(np.percentile(latencies, q))
        assert latency[name] == pytest.approx(exact, rel=0.01), f"{name}: exact {exact}"


def test_total_and_status_match_awk(log_file: Path, summary: dict[str, Any]) -> None:
    # The generated lines carry IPs without spaces, so the status is awk's field 9.
    program = '{count[$9]++} END {for (code in count) print code, count[code]; print "total", NR}'
    run = subprocess.run(
        ["awk", program, str(log_file)], capture_output=True, text=True, timeout=120, check=True
    )
    counts = {key: int(value) for key, value in (row.split() for row in run.stdout.splitlines())}
    total = counts.pop("total")
    assert total == LINES
    assert summary["total"] == total
    assert summary["parsed"] == total
    assert summary["unparsed"] == 0
    assert summary["status"] == counts


def test_goaccess_agrees(log_file: Path, summary: dict[str, Any], tmp_path: Path) -> None:
    goaccess = shutil.which("goaccess")
    if goaccess is None:
        pytest.skip("goaccess not installed (CI installs it: apt-get install goaccess)")
    report = tmp_path / "report.json"
    subprocess.run(
        [
            goaccess,
            str(log_file),
            "--no-global-config",
            "--no-progress",
            *GOACCESS_FORMAT,
            "-o",
            str(report),
        ],
        stdin=subprocess.DEVNULL,  # with a non-tty stdin goaccess waits for its EOF
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    data = json.loads(report.read_text(encoding="utf-8"))
    general = data["general"]
    assert general["total_requests"] == summary["total"]
    assert general["failed_requests"] == 0 == summary["unparsed"]
    # Each status class item lists its codes as "404 - Not Found: ..." with their hits.
    hits = {
        item["data"].split(" ", 1)[0]: item["hits"]["count"]
        for status_class in data["status_codes"]["data"]
        for item in status_class["items"]
    }
    assert hits == summary["status"]
