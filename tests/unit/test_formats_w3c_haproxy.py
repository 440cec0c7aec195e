"""W3C extended (IIS, CloudFront) and HAProxy httplog formats, inline and on the lnav logs."""

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from logtui.core.formats import AutoFormat, LineFormat, get_format
from logtui.core.lines import decode_lines

LNAV = Path(__file__).parent.parent / "fixtures" / "lnav"
W3C_FILE = LNAV / "logfile_w3c_big.0"
HAPROXY_FILE = LNAV / "logfile_haproxy.0"


def rows(fmt: LineFormat, *lines: str) -> list[dict]:
    return fmt.parse(pl.Series(list(lines), dtype=pl.String), "t").to_dicts()


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


# --- W3C ---------------------------------------------------------------------------------

FIELDS = ("#Fields: date time s-computername c-ip cs-method cs-uri-stem cs-uri-query sc-status "
          "sc-bytes time-taken cs(User-Agent) cs(Referer) cs-host")
LINE = ("2015-01-13 00:32:17 WEB01 157.55.39.146 GET /search q=a+b 200 1405 283 "
        "Mozilla/5.0+(compatible;+bingbot/2.0;++http://www.bing.com/bingbot.htm) "
        "http://ref.example/?x=1 www.example.com")


def test_w3c_maps_every_field_and_keeps_the_others() -> None:
    _, row = rows(get_format("w3c"), FIELDS, LINE)
    assert row["parsed"] and row["level"] is None
    assert row["time"] == utc("2015-01-13T00:32:17")
    assert (row["ip"], row["method"], row["path"]) == ("157.55.39.146", "GET", "/search?q=a+b")
    assert (row["status"], row["bytes"], row["latency"]) == (200, 1405, 0.283)
    assert row["ua"] == "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
    assert row["referer"] == "http://ref.example/?x=1" and row["host"] == "www.example.com"
    assert json.loads(row["fields"]) == {"s-computername": "WEB01"}


def test_w3c_dash_is_missing_and_a_dash_query_adds_no_question_mark() -> None:
    line = "2015-01-13 00:32:17 - 10.0.0.1 GET / - 404 - - - - -"
    _, row = rows(get_format("w3c"), FIELDS, line)
    assert row["parsed"] and row["path"] == "/" and row["status"] == 404
    assert row["bytes"] is None and row["latency"] is None and row["ua"] is None
    assert row["referer"] is None and row["host"] is None
    assert json.loads(row["fields"]) == {"s-computername": None}


def test_w3c_directives_are_parsed_events_without_a_status() -> None:
    lines = ["#Software: Microsoft Internet Information Services 8.5", "#Version: 1.0",
             "#Date: 2015-01-13 00:32:17", FIELDS, "#Remark: hello", "#NotADirective: x"]
    out = rows(get_format("w3c"), *lines)
    assert [r["parsed"] for r in out] == [True] * 5 + [False]
    assert [r["level"] for r in out[:5]] == ["directive"] * 5
    assert all(r["status"] is None for r in out)
    assert out[2]["time"] == utc("2015-01-13T00:32:17") and out[0]["time"] is None
    assert json.loads(out[0]["fields"]) == {
        "directive": "Software", "value": "Microsoft Internet Information Services 8.5"}


def test_w3c_data_before_any_fields_line_or_of_the_wrong_width_is_unparsed() -> None:
    fmt = get_format("w3c")
    assert not fmt.matches(LINE) and fmt.matches(FIELDS)
    out = rows(fmt, LINE, FIELDS, LINE + " extra", LINE)
    assert [r["parsed"] for r in out] == [False, True, False, True]
    assert fmt.matches(LINE)  # the instance now knows the layout


def test_w3c_fields_change_mid_stream_and_across_batches() -> None:
    fmt = get_format("w3c")
    first = rows(fmt, "#Fields: date time sc-status", "2024-01-01 10:00:00 200",
                 "#Fields: sc-status time-taken c-ip", "503 1500 10.0.0.9")
    assert [r["status"] for r in first] == [None, 200, None, 503]
    assert first[3]["latency"] == 1.5 and first[3]["ip"] == "10.0.0.9"
    # the next batch of the same source goes on with the last layout
    [later] = rows(fmt, "404 7 10.0.0.8")
    assert (later["status"], later["latency"], later["ip"]) == (404, 0.007, "10.0.0.8")
    # a new source gets a fresh instance that has seen no layout
    [fresh] = rows(get_format("w3c"), "404 7 10.0.0.8")
    assert not fresh["parsed"]


def test_w3c_time_taken_milliseconds_iis_versus_seconds_cloudfront() -> None:
    # CloudFront separates values with tabs and writes time-taken in seconds.
    out = rows(get_format("w3c"), "#Fields: date time c-ip sc-status time-taken cs(Host) "
                                  "x-host-header",
               "2019-12-04\t21:02:31\t192.0.2.100\t200\t0.001\td1.cloudfront.net\twww.example",
               "2019-12-04 21:02:31 192.0.2.100 200 1 - -")
    assert [r["latency"] for r in out[1:]] == [0.001, 0.001]
    assert out[1]["time"] == utc("2019-12-04T21:02:31")
    # the site is the viewer's Host header, not the distribution's name
    assert out[1]["host"] == "www.example" and out[1]["fields"] is None


def test_w3c_plus_decoding_of_the_user_agent() -> None:
    out = rows(get_format("w3c"), "#Fields: cs(User-Agent)",
               "Mozilla/4.0+(compatible;+MSIE+8.0)", "Googlebot/2.1+(++http://g.co/bot.html)")
    assert [r["ua"] for r in out[1:]] == ["Mozilla/4.0 (compatible; MSIE 8.0)",
                                          "Googlebot/2.1 ( +http://g.co/bot.html)"]


def test_w3c_cs_uri_and_an_explicit_layout() -> None:
    fmt = get_format("w3c:date time cs-uri sc-status")
    [row] = rows(fmt, "2024-01-01 10:00:00.5 /a?b=1 301")
    assert (row["path"], row["status"]) == ("/a?b=1", 301)
    assert row["time"] == utc("2024-01-01T10:00:00.5")


# --- HAProxy -----------------------------------------------------------------------------

REQUEST = ('141.35.244.171:53332 [25/Feb/2019:16:19:48.143] prod_http_in~ bk_admin/nginx_sonst '
           '0/0/7/1457/1487 200 11394 - - ---- 2/1/0/0/0 0/0 {Mozilla/5.0 (X11; rv:65.0)} {} '
           '"GET /admin/colt?survey=130&ajax=1 HTTP/1.1"')
SYSLOG = "Feb 25 16:19:49 192.168.4.2 haproxy[7]: "


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """HAProxy writes local time: pin the zone (with DST) for exact expectations."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("berlin")
def test_haproxy_maps_every_field_with_and_without_the_syslog_prefix() -> None:
    out = rows(get_format("haproxy"), SYSLOG + REQUEST, "haproxy[7]: " + REQUEST, REQUEST)
    assert all(r["parsed"] for r in out)
    assert all({**r, "line": ""} == {**out[2], "line": ""} for r in out)
    row = out[0]
    assert row["time"] == datetime.fromisoformat("2019-02-25T16:19:48.143+01:00").timestamp()
    assert (row["ip"], row["method"], row["path"]) == (
        "141.35.244.171", "GET", "/admin/colt?survey=130&ajax=1")
    assert (row["status"], row["bytes"], row["latency"]) == (200, 11394, 1.487)
    assert row["ua"] is None  # captured headers stay in fields: their meaning is configured
    assert json.loads(row["fields"]) == {
        "client_port": "53332", "frontend": "prod_http_in", "backend": "bk_admin",
        "server": "nginx_sonst", "TR": "0", "Tw": "0", "Tc": "7", "Tr": "1457",
        "termination_state": "----", "actconn": "2", "feconn": "1", "beconn": "0",
        "srv_conn": "0", "retries": "0", "srv_queue": "0", "backend_queue": "0",
        "request_cookie": None, "response_cookie": None,
        "request_headers": "Mozilla/5.0 (X11; rv:65.0)", "response_headers": None}


@pytest.mark.usefixtures("berlin")
def test_haproxy_accept_date_is_local_time_across_dst() -> None:
    [row] = rows(get_format("haproxy"), REQUEST.replace("25/Feb/2019", "25/Jul/2019"))
    assert row["time"] == datetime.fromisoformat("2019-07-25T16:19:48.143+02:00").timestamp()


def test_haproxy_minus_one_timers_are_missing() -> None:
    line = ('10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/<NOSRV> -1/-1/-1/-1/-1 '
            '503 212 - - SC-- 0/0/0/0/3 0/0 "GET /index.html HTTP/1.1"')
    [row] = rows(get_format("haproxy"), line)
    assert row["parsed"] and row["status"] == 503 and row["latency"] is None
    fields = json.loads(row["fields"])
    assert [fields[t] for t in ("TR", "Tw", "Tc", "Tr")] == [None] * 4
    assert (fields["server"], fields["retries"]) == ("<NOSRV>", "3")
    assert fields["request_headers"] is None


def test_haproxy_logasap_plus_signs_and_two_header_blocks() -> None:
    line = ('10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 9/0/7/14/+30 200 '
            '+243 - - ---- 3/3/3/1/+2 0/0 {1wt.eu|Mozilla} {text/html} "GET /x HTTP/1.1"')
    [row] = rows(get_format("haproxy"), line)
    assert (row["latency"], row["bytes"]) == (0.03, 243)
    fields = json.loads(row["fields"])
    assert (fields["request_headers"], fields["response_headers"]) == ("1wt.eu|Mozilla",
                                                                       "text/html")
    assert fields["retries"] == "2"


def test_haproxy_non_request_lines_are_unparsed() -> None:
    out = rows(get_format("haproxy"), SYSLOG + "Proxy prod_http_in started.",
               SYSLOG + "95.216.197.33:56224 [25/Feb/2019:16:20:10.111] prod_http_in/sktst2: "
                        "SSL handshake failure",
               '::1 - - [26/Dec/2016:16:16:29 +0200] "GET / HTTP/1.1" 404 209')
    assert [r["parsed"] for r in out] == [False, False, False]


def test_haproxy_bad_request_keeps_the_status() -> None:
    line = ('10.0.0.1:1 [06/Feb/2009:12:14:14.655] fe fe/<NOSRV> -1/-1/-1/-1/0 400 187 - - '
            'PR-- 0/0/0/0/0 0/0 "<BADREQ>"')
    [row] = rows(get_format("haproxy"), line)
    assert row["parsed"] and row["status"] == 400 and row["method"] is None
    assert row["latency"] == 0.0


# --- the lnav test logs, against an independent count ------------------------------------

def shell(command: str, path: Path) -> str:
    return subprocess.run(["sh", "-c", command, "sh", str(path)], check=True,
                          capture_output=True, text=True).stdout


def summary(fmt: LineFormat, path: Path, batches: int = 1) -> tuple[int, int, Counter[int]]:
    lines = decode_lines(path.read_bytes().removesuffix(b"\n"))
    step = -(-len(lines) // batches)
    frames = [fmt.parse(pl.Series(lines[i:i + step], dtype=pl.String), str(path))
              for i in range(0, len(lines), step)]
    frame = pl.concat(frames)
    status = Counter(s for s in frame["status"].to_list() if s is not None)
    return len(frame), int((~frame["parsed"]).sum()), status


def expected_counts(awk_status: str, path: Path) -> tuple[int, Counter[int]]:
    total = int(shell('wc -l < "$1"', path))
    status = Counter({int(code): int(count) for count, code in
                      (line.split() for line in shell(awk_status, path).splitlines())})
    return total, status


# The sc-status column is found by name in each #Fields line, as a reader of the spec would.
W3C_AWK = ("""awk '/^#Fields:/ { n = NF - 1; for (i = 2; i <= NF; i++) if ($i == "sc-status") """
           """s = i - 1; next } /^#/ { next } NF == n { print $s }' "$1" | sort | uniq -c""")
W3C_UNPARSED = """awk '/^#Fields:/ { n = NF - 1; next } /^#/ { next } NF != n' "$1" | wc -l"""
HAPROXY_REQUEST = "'[0-9]+/[0-9]+/[0-9]+/-?[0-9]+/-?[0-9]+ [0-9]{3} '"
HAPROXY_STATUS = f"grep -oE {HAPROXY_REQUEST} \"$1\" | awk '{{print $2}}' | sort | uniq -c"


@pytest.mark.parametrize("fmt", [AutoFormat, lambda: get_format("w3c")])
@pytest.mark.parametrize("batches", [1, 4])
def test_w3c_big_counts_match_awk(fmt: Callable[[], LineFormat], batches: int) -> None:
    total, status = expected_counts(W3C_AWK, W3C_FILE)
    unparsed = int(shell(W3C_UNPARSED, W3C_FILE))
    parser = fmt()
    assert summary(parser, W3C_FILE, batches) == (total, unparsed, status)
    assert (total, unparsed, status) == (254, 0, {404: 202, 200: 8})
    if isinstance(parser, AutoFormat):
        assert parser.chosen is not None and parser.chosen.name == "w3c"


@pytest.mark.parametrize("fmt", [AutoFormat, lambda: get_format("haproxy")])
def test_haproxy_counts_match_grep(fmt: Callable[[], LineFormat]) -> None:
    total, status = expected_counts(HAPROXY_STATUS, HAPROXY_FILE)
    requests = int(shell(f'grep -cE {HAPROXY_REQUEST} "$1"', HAPROXY_FILE))
    parser = fmt()
    assert summary(parser, HAPROXY_FILE) == (total, total - requests, status)
    assert (total, total - requests, status) == (17, 4, {200: 13})
    if isinstance(parser, AutoFormat):
        assert parser.chosen is not None and parser.chosen.name == "haproxy"
