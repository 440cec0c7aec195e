"""Batch throughput and peak memory of `logtui tail FILE --once`, next to GoAccess on the same
file: `python bench/throughput.py [--lines 1000000 5000000] [--runs 3]`. Prints figures only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MIB = 1 << 20
SEED = 1
GOACCESS_FORMAT = [
    '--log-format=%h %^[%d:%t %^] "%r" %s %b "%R" "%u" %T',
    "--date-format=%d/%b/%Y",
    "--time-format=%H:%M:%S",
]
# The issue's targets.
TARGET_SPEEDUP = 10.0  # logtui lines/s over GoAccess lines/s, at every size
# The GoAccess 1.7 figure the issue quotes for this machine (1M lines, 86 MiB). How fast
# GoAccess reads depends on the log: 97k lines/s on the low-variety log, 40k on the busy one.
ISSUE_GOACCESS_LINES_PER_S = 33_000
TARGET_RSS_MIB = 150.0  # logtui peak RSS at every size...
FLAT_TOLERANCE = 0.10  # ...and "flat": the largest size at most 10% above the smallest


@dataclass
class Run:
    seconds: float
    peak_rss: int  # bytes
    returncode: int


@dataclass
class Result:
    lines: int
    file_bytes: int
    tool: str
    runs: list[Run]

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def lines_per_s(self) -> float:
        return statistics.median(self.lines / run.seconds for run in self.runs)

    @property
    def mib_per_s(self) -> float:
        return statistics.median(self.file_bytes / MIB / run.seconds for run in self.runs)

    @property
    def rss_mib(self) -> float:
        return statistics.median(run.peak_rss / MIB for run in self.runs)

    @property
    def worst_rss_mib(self) -> float:
        return max(run.peak_rss / MIB for run in self.runs)


def load_generate() -> Callable[..., None]:
    """`generate` from bench/generate.py (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_generate", BENCH / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def log_file(out: Path, lines: int, variety: str) -> Path:
    """The generated log for `lines`, reused when present (same seed, same bytes)."""
    suffix = "" if variety == "low" else f"-{variety}"
    path = out / f"combined-{lines}-seed{SEED}{suffix}.log"
    if not path.exists():
        note(f"generating {path} ({lines:,} lines)...")
        partial = path.with_suffix(".partial")
        load_generate()(partial, lines, "combined", SEED, variety=variety)
        partial.replace(path)  # an interrupted run never leaves a short file to reuse
    return path


def measure(command: list[str], stdout: Path | None) -> Run:
    """Wall time and peak RSS of one child: os.wait4 returns that child's own rusage."""
    with stdout.open("wb") if stdout else open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Run(seconds, usage.ru_maxrss * 1024, child.returncode)  # ru_maxrss is KiB on Linux


def logtui_command() -> list[str]:
    script = Path(sys.executable).parent / "logtui"
    return [str(script)] if script.exists() else [sys.executable, "-m", "logtui"]


def bench_tool(
    tool: str,
    command: list[str],
    stdout: Path | None,
    report: Path,
    lines: int,
    path: Path,
    runs: int,
) -> Result:
    """`runs` timed runs of one tool on one file, then a check of what it counted."""
    result = Result(lines, path.stat().st_size, tool, [])
    for index in range(runs):
        report.unlink(missing_ok=True)  # a report left by an earlier run must not count
        run = measure(command, stdout)
        result.runs.append(run)
        note(
            f"  {tool} {lines:,} lines, run {index + 1}/{runs}: {run.seconds:.2f} s, "
            f"peak RSS {run.peak_rss / MIB:.1f} MiB, exit {run.returncode}"
        )
        if run.returncode != 0:
            note(f"  WARNING: {tool} exited with {run.returncode}: its figures are not valid")
    check_counts(tool, report, lines)
    return result


def check_counts(tool: str, report_path: Path, lines: int) -> None:
    """Say so when a tool did not count every line: its speed would not compare."""
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        total, failed = (
            (report["total"], report["unparsed"])
            if tool == "logtui"
            else (report["general"]["total_requests"], report["general"]["failed_requests"])
        )
    except (OSError, ValueError, KeyError) as error:
        note(f"  WARNING: {tool} wrote no readable report ({error}); see {report_path}")
        return
    if total != lines or failed:
        note(f"  WARNING: {tool} counted {total:,} lines ({failed:,} unparsed), expected {lines:,}")


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def version(command: list[str]) -> str:
    try:
        run = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError:
        return "?"
    return (run.stdout or run.stderr).strip().splitlines()[0] if (run.stdout or run.stderr) else "?"


def print_table(results: list[Result]) -> None:
    header = (
        f"{'lines':>11}  {'file MiB':>8}  {'tool':<8}  {'median s':>8}  {'lines/s':>11}  "
        f"{'MiB/s':>7}  {'peak RSS MiB':>12}  {'logtui/goaccess':>15}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        ratio = speedup(results, result.lines)
        ratio_text = f"{ratio:.1f}x" if ratio is not None and result.tool == "logtui" else ""
        print(
            f"{result.lines:>11,}  {result.file_bytes / MIB:>8.1f}  {result.tool:<8}  "
            f"{result.seconds:>8.2f}  {result.lines_per_s:>11,.0f}  {result.mib_per_s:>7.1f}  "
            f"{result.rss_mib:>12.1f}  {ratio_text:>15}"
        )


def speedup(results: list[Result], lines: int) -> float | None:
    by_tool = {r.tool: r for r in results if r.lines == lines}
    if "logtui" not in by_tool or "goaccess" not in by_tool:
        return None
    return by_tool["logtui"].lines_per_s / by_tool["goaccess"].lines_per_s


def print_targets(results: list[Result], sizes: list[int]) -> None:
    print()
    print("Targets (from the issue):")
    ratios = [(n, speedup(results, n)) for n in sizes]
    if any(ratio is None for _, ratio in ratios):
        print(
            f"  logtui >= {TARGET_SPEEDUP:.0f}x GoAccess lines/s on the same file: not measured "
            "(goaccess not installed)"
        )
    else:
        met = all(ratio >= TARGET_SPEEDUP for _, ratio in ratios if ratio is not None)
        figures = ", ".join(f"{n:,} lines: {ratio:.1f}x" for n, ratio in ratios)
        print(
            f"  logtui >= {TARGET_SPEEDUP:.0f}x GoAccess lines/s on the same file: {figures} -> "
            f"{'MET' if met else 'NOT MET'}"
        )
    logtui = [r for r in results if r.tool == "logtui"]
    wanted = TARGET_SPEEDUP * ISSUE_GOACCESS_LINES_PER_S
    figures = ", ".join(f"{r.lines:,} lines: {r.lines_per_s:,.0f}" for r in logtui)
    print(
        f"  logtui >= {TARGET_SPEEDUP:.0f}x the issue's GoAccess figure "
        f"({ISSUE_GOACCESS_LINES_PER_S:,} lines/s), i.e. {wanted:,.0f} lines/s: {figures} -> "
        f"{'MET' if all(r.lines_per_s >= wanted for r in logtui) else 'NOT MET'}"
    )
    # A limit on a peak is judged on the worst run, not the median.
    under = all(r.worst_rss_mib <= TARGET_RSS_MIB for r in logtui)
    figures = ", ".join(
        f"{r.lines:,} lines: {r.rss_mib:.1f} MiB (worst run {r.worst_rss_mib:.1f})" for r in logtui
    )
    print(
        f"  logtui peak RSS <= {TARGET_RSS_MIB:.0f} MiB at every size: {figures} -> "
        f"{'MET' if under else 'NOT MET'}"
    )
    rss = [(r.lines, r.rss_mib) for r in logtui]
    if len(rss) < 2:
        print("  logtui peak RSS flat across sizes: not measured (needs two sizes)")
        return
    (small, small_mib), (large, large_mib) = rss[0], rss[-1]
    growth = large_mib / small_mib - 1
    print(
        f"  logtui peak RSS flat from {small:,} to {large:,} lines (at most "
        f"+{FLAT_TOLERANCE:.0%}): {growth:+.1%} -> "
        f"{'MET' if growth <= FLAT_TOLERANCE else 'NOT MET'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--lines",
        type=int,
        nargs="+",
        default=[1_000_000, 5_000_000],
        help="file sizes in lines (default: 1000000 5000000)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and size (median)")
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH / "out",
        help="where generated logs and reports go, reused (default: bench/out)",
    )
    parser.add_argument(
        "--variety",
        choices=["low", "high"],
        default="low",
        help="distinct clients, URLs and agents in the generated log: low (the default, "
        "5,000 clients) or high (a busy public site; see bench/generate.py)",
    )
    args = parser.parse_args()
    if args.runs < 1 or any(n < 1 for n in args.lines):
        parser.error("--runs and --lines must be positive")
    sizes = sorted(set(args.lines))
    args.out.mkdir(parents=True, exist_ok=True)
    goaccess = shutil.which("goaccess")

    print(f"logtui throughput bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    print(f"logtui: {' '.join(logtui_command())} tail FILE --once")
    if goaccess:
        print(
            f"goaccess: {version([goaccess, '--version'])} ({goaccess} FILE "
            "--no-global-config --no-progress <combined + $request_time> -o report.json)"
        )
    else:
        print("goaccess: not installed, so no comparison (apt-get install goaccess)")
    print(f"generated combined logs, {args.variety} variety of clients, URLs and agents")
    print(f"medians of {args.runs} run(s); peak RSS is the child's own ru_maxrss (os.wait4)")
    print()
    sys.stdout.flush()  # the header first, then progress on stderr, then the table

    results: list[Result] = []
    for lines in sizes:
        path = log_file(args.out, lines, args.variety)
        summary = args.out / f"logtui-{path.stem}.json"
        command = [*logtui_command(), "tail", str(path), "--once"]
        results.append(bench_tool("logtui", command, summary, summary, lines, path, args.runs))
        if goaccess:
            report = args.out / f"goaccess-{path.stem}.json"
            command = [
                goaccess,
                str(path),
                "--no-global-config",
                "--no-progress",
                *GOACCESS_FORMAT,
                "-o",
                str(report),
            ]
            results.append(bench_tool("goaccess", command, None, report, lines, path, args.runs))
    print_table(results)
    print_targets(results, sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
