"""`shadow` as users run it: one-line errors with the exit-code contract, a clean Ctrl-C, and
the addon loaded by plain mitmdump."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shadow_upstreams import (
    WAIT,
    Upstream,
    closed_port,
    json_answer,
    read_report,
    wait_until,
)

BIN = Path(sys.executable).parent
SHADOW = str(BIN / "shadow")
ADDON = str(Path(__file__).resolve().parents[2] / "shadow" / "addon.py")


def routes() -> dict[str, object]:
    return {"/": lambda s: json_answer({"path": s.path})}


@pytest.fixture
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    with Upstream(routes()) as production, Upstream(routes()) as staging:
        yield production, staging


def shadow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHADOW, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("shadow: "), result.stderr
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize(("flags", "parts"), [
    (["--primary", "prod:80", "--staging", "http://x"], ["--primary", "http://"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "nope"], ["--staging", "'nope'"]),
    (["--primary", "http://127.0.0.1:1/api", "--staging", "http://x"], ["--primary", "path"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--bogus"], ["--bogus"]),
    (["--staging", "http://x"], ["--primary"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--methods", "GET,POST"],
     ["--methods", "--allow-unsafe"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--listen", "here"],
     ["--listen", "port"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--forward", "24224"],
     ["--forward", "HOST:PORT"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--sample", "200"],
     ["--sample"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--timeout", "1x"],
     ["--timeout"]),
    (["--primary", "http://127.0.0.1:1", "--staging", "http://x", "--ignore", ""],
     ["--ignore"]),
])
def test_usage_errors_are_one_line_exit_2(flags: list[str], parts: list[str]) -> None:
    one_line_error(shadow("proxy", "run", *flags), 2, *parts)


def test_unreachable_production_is_one_line_exit_1() -> None:
    port = closed_port()
    result = shadow("proxy", "run", "--primary", f"http://127.0.0.1:{port}", "--staging",
                    "http://127.0.0.1:1", "--listen", "127.0.0.1:0")
    one_line_error(result, 1, "--primary", "cannot connect", "refused")


def test_listen_port_in_use_is_one_line_exit_1(upstreams: tuple[Upstream, Upstream]) -> None:
    production, staging = upstreams
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = shadow("proxy", "run", "--primary", production.url, "--staging", staging.url,
                        "--listen", f"127.0.0.1:{port}")
    one_line_error(result, 1, f"--listen 127.0.0.1:{port}", "in use")


def test_report_in_a_missing_folder_is_one_line_exit_1(
        upstreams: tuple[Upstream, Upstream], tmp_path: Path) -> None:
    production, staging = upstreams
    result = shadow("proxy", "run", "--primary", production.url, "--staging", staging.url,
                    "--listen", "127.0.0.1:0", "--report", str(tmp_path / "no" / "d.jsonl"))
    one_line_error(result, 1, "--report", "No such file or directory")


def test_run_mirror_and_stop_on_ctrl_c(upstreams: tuple[Upstream, Upstream],
                                       tmp_path: Path) -> None:
    production, staging = upstreams
    report = tmp_path / "diffs.jsonl"
    process = subprocess.Popen(
        [SHADOW, "proxy", "run", "--primary", production.url, "--staging", staging.url,
         "--listen", "127.0.0.1:0", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+) -> production", banner)
        assert match, banner
        with httpx.Client(base_url=f"http://127.0.0.1:{match[1]}", timeout=WAIT) as client:
            for n in range(5):
                assert client.get(f"/users/{n}").json() == {"path": f"/users/{n}"}
        wait_until(lambda: report.exists() and len(read_report(report)) == 5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=WAIT)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out == "" and "Traceback" not in err
    assert err.splitlines()[-1] == ("shadow: stopped; 5 mirrored, 0 dropped, 0 skipped, "
                                    "0 in flight | 0 regression, 0 diff, 0 fixed, "
                                    "0 both_error, 5 same")
    assert {r["verdict"] for r in read_report(report)} == {"same"}
    assert {r["endpoint"] for r in read_report(report)} == {"GET /users/{id}"}


def test_the_addon_runs_in_plain_mitmdump(upstreams: tuple[Upstream, Upstream],
                                          tmp_path: Path) -> None:
    production, staging = upstreams
    report = tmp_path / "diffs.jsonl"
    port = closed_port()
    process = subprocess.Popen(
        [str(BIN / "mitmdump"), "-q", "-s", ADDON, "--mode", f"reverse:{production.url}",
         "--listen-host", "127.0.0.1", "--listen-port", str(port),
         "--set", f"shadow_staging={staging.url}", "--set", f"shadow_report={report}",
         "--set", "shadow_ignore=$.path"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        def listening() -> bool:
            assert process.poll() is None, process.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
            except OSError:
                return False
            return True
        wait_until(listening)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as client:
            wait_until(lambda: client.get("/warm").status_code == 200 and report.exists()
                       and len(read_report(report)) >= 1)
            assert client.get("/users/1").json() == {"path": "/users/1"}
            client.post("/users/1", content=b"{}")
        wait_until(lambda: any(r["path"] == "/users/1" for r in read_report(report)))
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=WAIT)
    finally:
        process.kill()
    records = read_report(report)
    assert {r["method"] for r in records} == {"GET"}  # the POST was not mirrored
    assert [r["verdict"] for r in records if r["path"] == "/users/1"] == ["same"]


def test_python_dash_m_shadow() -> None:
    result = subprocess.run([sys.executable, "-m", "shadow", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("shadow ")
