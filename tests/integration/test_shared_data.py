"""Every log in the test data, through `logtui tail --once`, against an independent count.

The expected totals and status counts come from awk (access logs, LTSV) or the standard
json module (JSON lines), never from logtui's own parsers.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from logtui.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures"

# An access-log line: tokens, two more tokens (ident, user), [time], "request", status.
ACCESS_AWK = r"""
{
  if (match($0, /\] "([^"\\]|\\.)*" [0-9][0-9][0-9] /) ||
      match($0, /\] "([^"\\]|\\.)*" [0-9][0-9][0-9]$/)) {
    status = substr($0, RSTART + RLENGTH - 4, 4)
    sub(/ /, "", status); sub(/ $/, "", status)
    if (substr($0, 1, RSTART) ~ / [^ ]+ [^ ]+ \[[^]]*\]$/) { count[status]++; next }
  }
  unparsed++
}
END { for (s in count) print s, count[s]; print "unparsed", unparsed + 0; print "total", NR }
"""
LTSV_AWK = r"""
BEGIN { FS = "\t" }
{
  ok = NF >= 2
  for (i = 1; i <= NF; i++) if ($i !~ /^[0-9A-Za-z_.-]+:/) ok = 0
  if (!ok) { unparsed++; next }
  for (i = 1; i <= NF; i++) if ($i ~ /^status:/) count[substr($i, 8)]++
}
END { for (s in count) print s, count[s]; print "unparsed", unparsed + 0; print "total", NR }
"""
STATUS_KEYS = ("status", "EdgeResponseStatus")


def awk_counts(program: str, path: Path) -> tuple[int, int, dict[str, int]]:
    result = subprocess.run(
        ["awk", program, str(path)], capture_output=True, text=True, check=True, timeout=30
    )
    counts = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    total, unparsed = int(counts.pop("total")), int(counts.pop("unparsed"))
    return total, unparsed, {code: int(n) for code, n in counts.items()}


def json_counts(path: Path) -> tuple[int, int, dict[str, int]]:
    lines = path.read_bytes().split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    unparsed, statuses = 0, Counter[str]()
    for raw in lines:
        text = raw.decode("utf-8", "replace")
        start = text.find("{")  # `docker compose logs` puts "caddy  | " first
        try:
            record = json.loads(text[start:]) if start >= 0 else None
        except ValueError:
            record = None
        if not isinstance(record, dict):
            unparsed += 1
            continue
        for key in STATUS_KEYS:
            if isinstance(record.get(key), int):
                statuses[str(record[key])] += 1
    return len(lines), unparsed, dict(statuses)


CASES = {
    # file: (format logtui should detect, independent counter)
    "alp/combined_access.log": ("auto:combined", "access"),
    "alp/json_access.log": ("auto:json", "json"),
    "alp/ltsv_access.log": ("auto:ltsv", "ltsv"),
    "beats/apache-access/darwin-2.4.23.log": ("auto:common", "access"),
    "beats/apache-access/ssl-request.log": ("auto", "access"),
    "beats/apache-access/test-vhost.log": ("auto:vhost", "access"),
    "beats/apache-access/test.log": ("auto:combined", "access"),
    "beats/nginx-access/access.log": ("auto:combined", "access"),
    "beats/nginx-access/test-with-host.log": ("auto:vhost", "access"),
    "beats/nginx-access/test.log": ("auto:combined", "access"),
    "beats/nginx-ingress-controller/test.log": ("auto:ingress", "access"),
    "lnav/logfile_access_log.0": ("auto:combined", "access"),
    "lnav/logfile_access_log.1": ("auto:combined", "access"),
    "lnav/logfile_bad_access_log.0": ("auto:combined", "access"),
    "lnav/logfile_regexp_access_log.0": ("auto:vhost", "access"),
    "lnav/logfile_syslog_with_access_log.0": ("auto", "access"),
    "lnav/logfile_caddy_log.0": ("auto:json", "json"),
    "lnav/logfile_caddy_log.1": ("auto:json", "json"),
    "lnav/logfile_cloudflare.1": ("auto:json", "json"),
    "lnav/logfile_cloudflare.json": ("auto:json", "json"),
    "lnav/logfile_invalid_json.json": ("auto:json", "json"),
    "lnav/logfile_json_invalid.json": ("auto:json", "json"),
    "lnav/logfile_crlf.0": ("auto", "access"),
    "lnav/logfile_empty.0": ("auto", "access"),
    "lnav/logfile_invalid_utf8.0": ("auto", "access"),
    "ltsv-org/ltsv_org_example.ltsv": ("auto:ltsv", "ltsv"),
}


def test_every_log_file_in_the_fixtures_is_covered() -> None:
    logs = {
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file()
        and p.suffix not in (".md", ".txt", ".mmdb", ".yml")
        and p.name not in ("LICENSE", "LICENSE-MIT", "LICENSE-APACHE")
    }
    assert logs - CASES.keys() - W3C_AND_HAPROXY == set()


# These two are checked against awk and grep in tests/unit/test_formats_w3c_haproxy.py.


W3C_AND_HAPROXY = {"lnav/logfile_w3c_big.0", "lnav/logfile_haproxy.0"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_totals_and_status_counts_equal_an_independent_count(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = FIXTURES / name
    expected_format, counter = CASES[name]
    if counter == "json":
        total, unparsed, statuses = json_counts(path)
    else:
        total, unparsed, statuses = awk_counts(
            ACCESS_AWK if counter == "access" else LTSV_AWK, path
        )
    assert main(["tail", str(path), "--once"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sources"][0]["format"] == expected_format
    assert (summary["total"], summary["unparsed"], summary["status"]) == (total, unparsed, statuses)
