"""The `logtui tail` command as users run it: exit codes, one-line errors, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logtui.cli import main
from logtui.synthetic import TrafficModel, combined_line

LOGTUI = str(Path(sys.executable).with_name("logtui"))
COMBINED = ('10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" {status} 100 "-" '
            '"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)" 0.125')


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def access_log(tmp_path: Path) -> Path:
    path = tmp_path / "access.log"
    lines = [COMBINED.format(status=s) for s in (200, 200, 404, 503)] + ["garbage", ""]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_once_prints_one_json_summary(capsys: pytest.CaptureFixture[str],
                                      access_log: Path) -> None:
    code, out, err = run(capsys, "tail", str(access_log), "--once")
    assert code == 0 and err == ""
    [line] = out.splitlines()
    summary = json.loads(line)
    assert summary["total"] == 6 and summary["unparsed"] == 2
    assert summary["status"] == {"200": 2, "404": 1, "503": 1}
    assert summary["classes"]["2xx"] == 2 and summary["classes"]["5xx"] == 1
    assert summary["latency"]["p50"] == pytest.approx(0.125, rel=0.01)
    assert summary["bots"] == {"Googlebot": 4}
    assert summary["sources"] == [{"tag": str(access_log), "format": "auto:combined",
                                   "lines": 6, "truncated": 0}]
    assert {"top_paths", "top_ips", "countries", "series"} <= summary.keys()


def test_once_with_a_filter_counts_only_matching_events(capsys: pytest.CaptureFixture[str],
                                                        access_log: Path) -> None:
    code, out, _ = run(capsys, "tail", str(access_log), "--once", "--filter", "status:>=400")
    assert code == 0
    assert json.loads(out)["status"] == {"404": 1, "503": 1}


def test_a_filter_may_start_with_a_negated_term(capsys: pytest.CaptureFixture[str],
                                                access_log: Path) -> None:
    # argparse alone would read '-status:200' as an unknown option
    code, out, err = run(capsys, "tail", str(access_log), "--once", "--filter", "-status:200")
    assert (code, err) == (0, "")
    assert json.loads(out)["status"] == {"404": 1, "503": 1}


def test_a_fixed_window_with_nothing_counted_is_an_empty_summary(
        capsys: pytest.CaptureFixture[str], access_log: Path) -> None:
    code, out, err = run(capsys, "tail", str(access_log), "--once", "--window", "5m",
                         "--filter", "status:999")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert (summary["total"], summary["series"], summary["end"]) == (0, [], None)


def test_once_counts_what_a_view_selects(capsys: pytest.CaptureFixture[str],
                                         access_log: Path) -> None:
    # the view's filter and its bots mode ('hide': the log's one agent is Googlebot)
    code, out, _ = run(capsys, "tail", str(access_log), "--once",
                       "--view", "logtui:f=status%3A%3E%3D400&w=1h")
    assert code == 0 and json.loads(out)["status"] == {"404": 1, "503": 1}
    code, out, _ = run(capsys, "tail", str(access_log), "--once", "--view", "logtui:b=hide")
    assert code == 0 and json.loads(out)["status"] == {}


def test_nan_infinite_and_far_off_numbers_are_missing_values(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text('{"status": 200, "time": 1700000000, "request_time": 0.5}\n'
                    '{"status": 201, "time": "nan", "request_time": "inf"}\n'
                    '{"status": 202, "time": 99999999999, "request_time": 1e400}\n'
                    '{"status": 203, "time": 1700000001, "request_time": "NaN"}\n')
    code, out, err = run(capsys, "tail", str(path), "--once")
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["status"] == {"200": 1, "201": 1, "202": 1, "203": 1}
    assert summary["latency"]["count"] == 1 and summary["end"] == 1700000001


def test_once_last_lines(capsys: pytest.CaptureFixture[str], access_log: Path) -> None:
    code, out, _ = run(capsys, "tail", str(access_log), "--once", "--lines", "3")
    assert code == 0
    assert json.loads(out)["total"] == 3


@pytest.mark.parametrize("count", [1, 6, 40])
def test_once_last_lines_of_an_iis_log_reads_its_layout_first(
        capsys: pytest.CaptureFixture[str], count: int) -> None:
    """The `#Fields:` header is above the last lines; without it none of them parse."""
    log = Path(__file__).parents[1] / "fixtures" / "lnav" / "logfile_w3c_big.0"
    last = log.read_text().splitlines()[-count:]
    statuses: dict[str, int] = {}
    for line in last:
        if not line.startswith("#"):
            status = line.split()[11]     # sc-status in the file's one layout
            statuses[status] = statuses.get(status, 0) + 1
    code, out, _ = run(capsys, "tail", str(log), "--once", "--lines", str(count),
                       "--window", "all")
    summary = json.loads(out)
    assert code == 0 and summary["sources"][0]["format"] == "auto:w3c"
    assert summary["unparsed"] == 0 and summary["status"] == statuses


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--format", "apache"], 2, "logtui: --format: unknown format 'apache'"),
    (["--format", "nginx:no variables"], 2, "logtui: --format: log_format 'no variables'"),
    (["--format", "nginx:$1 $status"], 2, "log_format '$1 $status': $1 is no variable name"),
    (["--filter", "stauts:5xx"], 2, "unknown field 'stauts' (did you mean 'status'?)"),
    (["--filter", "status:>=abc"], 2, "logtui: --filter 'status:>=abc': at column"),
    (["--window", "5x"], 2, "logtui: --window '5x': expected a duration like 30s, 5m, 1h"),
    (["--bucket", "0"], 2, "logtui: --bucket '0'"),
    (["--lines", "-1"], 2, "logtui: --lines -1"),
    (["--bucket", "0.0001ms"], 2, "logtui: --bucket 0.0001ms: expected at least 1ms"),
    (["--frmat", "json"], 2, "unrecognized arguments: --frmat json (see 'logtui tail --help')"),
    (["--geoip", "/nonexistent.mmdb"], 2, "logtui: --geoip /nonexistent.mmdb:"),
    (["--once", "--no-ui"], 2, "not allowed with argument"),
    (["--view", "logtui:w=1h", "--filter", "status:200"], 2,
     "logtui: --view: it holds its own filter and window"),
    (["--window", "5m", "--bucket", "10m"], 2,
     "logtui: --bucket 10m: longer than the window (5m)"),
    (["--shared-key", "k"], 2, "logtui: --shared-key goes with --listen"),
    (["--filter", "--top", "3"], 2, "argument --filter: expected one argument"),
    (["--filter", "-"], 2, "logtui: --filter '-': at column 1: '-' must be followed by a term"),
])
def test_bad_arguments_give_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                access_log: Path, args: list[str], code: int,
                                                message: str) -> None:
    status, out, err = run(capsys, "tail", str(access_log), "--once", *args)
    assert status == code
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("last", [[], ["--lines", "5"]])
def test_unreadable_inputs_are_reported_and_the_rest_still_counted(
        capsys: pytest.CaptureFixture[str], access_log: Path, tmp_path: Path,
        last: list[str]) -> None:
    code, out, err = run(capsys, "tail", str(access_log), str(tmp_path / "missing.log"),
                         str(tmp_path), str(tmp_path / "none-*.log"), "--once", *last)
    assert code == 1
    summary = json.loads(out)
    assert summary["total"] == (5 if last else 6)
    assert [source.get("state") for source in summary["sources"]] == [
        None, "error: no such file or directory", "error: is a directory", "no files match"]
    assert err.splitlines() == [
        f"logtui: {tmp_path / 'missing.log'}: no such file or directory",
        f"logtui: {tmp_path}: is a directory",
        f"logtui: {tmp_path / 'none-*.log'}: no files match",
    ]


def test_a_file_name_is_shown_escaped_in_errors(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    (tmp_path / "a\x1b]0;title\x07").mkdir()
    code, _, err = run(capsys, "tail", str(tmp_path / "a*"), "--once")
    assert code == 1 and "\x1b" not in err and "a\\x1b]0;title\\x07: is a directory" in err


def test_stdin_and_no_traceback_from_a_subprocess(access_log: Path) -> None:
    result = subprocess.run([LOGTUI, "tail", "-", "--once"], input=access_log.read_bytes(),
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0
    assert json.loads(result.stdout)["total"] == 6
    bad = subprocess.run([LOGTUI, "tail", "-", "--once", "--window", "soon"],
                         capture_output=True, timeout=60, check=False)
    assert bad.returncode == 2 and b"Traceback" not in bad.stderr
    assert bad.stderr.decode().count("\n") == 1


def test_no_ui_follows_through_a_rename_rotation(tmp_path: Path) -> None:
    """Lines appended while `--no-ui` runs, across a logrotate-style rename, are all counted."""
    path = tmp_path / "access.log"
    model = TrafficModel(seed=3)
    now = time.time()
    first = [combined_line(r) for r in model.requests(300, now - 30, 50)]
    second = [combined_line(r) for r in model.requests(200, now - 20, 50)]
    path.write_text("\n".join(first[:100]) + "\n")
    process = subprocess.Popen(
        [LOGTUI, "tail", str(path), "--no-ui", "--interval", "0.2s", "--window", "5m"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        snapshots = iter(process.stdout)
        assert json.loads(next(snapshots))["total"] <= 100
        with path.open("a") as log:
            log.write("\n".join(first[100:]) + "\n")
        os.rename(path, tmp_path / "access.log.1")
        path.write_text("\n".join(second) + "\n")
        deadline = time.monotonic() + 20
        total = 0
        while time.monotonic() < deadline and total < 500:
            snapshot = json.loads(next(snapshots))
            total = snapshot["total"]
        assert total == 500
        assert snapshot["sources"][0]["state"] == "following"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_w3c_layout_change_applies_to_the_right_lines_across_chunks(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """W3C carries its #Fields layout between chunks, so its chunks are parsed in order."""
    path = tmp_path / "u_ex.log"
    first = "#Fields: date time c-ip cs-method cs-uri-stem sc-status time-taken\n"
    second = "#Fields: date time c-ip cs-method cs-uri-stem time-taken sc-status\n"
    with path.open("w") as log:   # ~5 MiB: several batch chunks on either side of the change
        log.write(first + "".join(f"2015-01-13 00:32:17 1.2.3.4 GET /a/{i} 200 12\n"
                                  for i in range(60_000)))
        log.write(second + "".join(f"2015-01-13 00:32:18 1.2.3.4 GET /b/{i} 12 404\n"
                                   for i in range(60_000)))
    assert main(["tail", str(path), "--once"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sources"][0]["format"] == "auto:w3c"
    assert summary["total"] == 120_002 and summary["unparsed"] == 0
    assert summary["status"] == {"200": 60_000, "404": 60_000}


@pytest.mark.parametrize(("args", "message"), [
    (["serve", "--listen", "127.0.0.1:0", "--viewers", "0.0.0.0:0"],
     "viewers off loopback must authenticate; give --shared-key"),
    (["serve"], "serve: give files to follow, --listen for forwarded logs, or both"),
    (["serve", "--listen", "nope"], "--listen 'nope': expected [HOST:]PORT"),
    (["connect", "host"], "connect 'host': expected [HOST:]PORT"),
    (["connect", "127.0.0.1:1", "--window", "all"],
     "--window all: connect shows at most the last 1h, what aggregators keep"),
    (["connect", "127.0.0.1:1", "--window", "2h"], "--window 2h: connect shows at most"),
    (["connect", "127.0.0.1:1", "--filter", "status:"], "--filter 'status:'"),
    (["tail", "x", "--tls-cert", "c.pem"], "--tls-cert goes with --listen"),
    (["tail", "--listen", "127.0.0.1:0", "--once"], "--listen: forwarded events arrive"),
    (["tail", "--listen", "127.0.0.1:0", "--tls-client-ca", "ca.pem"],
     "--tls-client-ca goes with --tls-cert and --tls-key"),
])
def test_aggregator_arguments_are_checked(capsys: pytest.CaptureFixture[str], args: list[str],
                                          message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_missing_client_ca_is_named(capsys: pytest.CaptureFixture[str],
                                     certificate: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = certificate
    code, _, err = run(capsys, "tail", "--listen", "127.0.0.1:0", "--tls-cert", str(cert),
                       "--tls-key", str(key), "--tls-client-ca", str(tmp_path / "nope.pem"))
    assert code == 2
    assert err.startswith(f"logtui: --tls-client-ca {tmp_path / 'nope.pem'}: ") and \
        len(err.splitlines()) == 1, err


def test_a_port_in_use_is_a_one_line_runtime_error(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "tail", "--listen", f"127.0.0.1:{port}", "--no-ui")
    assert code == 1
    assert err.startswith(f"logtui: --listen 127.0.0.1:{port}: ") and len(err.splitlines()) == 1
