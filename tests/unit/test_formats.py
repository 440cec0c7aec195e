import json
from datetime import datetime

import polars as pl
import pytest

from logtui.core.formats import AutoFormat, LogFormatError, UnknownFormat, get_format


def parse(spec: str, *lines: str) -> list[dict]:
    return get_format(spec).parse(pl.Series(list(lines), dtype=pl.String), "t").to_dicts()


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


COMBINED = ('203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326 '
            '"http://ref.example/" "Mozilla/5.0 (X11)"')


def test_combined_fields_and_time_zone() -> None:
    [row] = parse("combined", COMBINED)
    assert row["parsed"] and row["ip"] == "203.0.113.9"
    assert (row["method"], row["path"], row["status"], row["bytes"]) == ("GET", "/a?b=1", 200, 2326)
    assert row["referer"] == "http://ref.example/" and row["ua"] == "Mozilla/5.0 (X11)"
    assert row["time"] == epoch("2000-10-10T13:55:36-07:00")
    assert json.loads(row["fields"]) == {"remote_user": "alice"}


def test_dash_means_missing_not_zero() -> None:
    [row] = parse("combined", '::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 - "-" "-"')
    assert row["parsed"] and row["status"] == 408
    assert row["bytes"] is None and row["method"] is None and row["path"] is None
    assert row["referer"] is None and row["ua"] is None and row["fields"] is None


def test_a_trailing_request_time_becomes_latency() -> None:
    [row] = parse("combined", COMBINED + " 0.057")
    assert row["latency"] == 0.057
    [row] = parse("combined", COMBINED + ' "-" 1.250')
    assert row["latency"] == 1.25


def test_common_vhost_and_forwarded_client_lists() -> None:
    [row] = parse("common",
                  '::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 209')
    assert (row["ip"], row["status"], row["bytes"]) == ("::1", 404, 209)
    [row] = parse("vhost", "example.com:80 " + COMBINED)
    assert row["host"] == "example.com" and row["ip"] == "203.0.113.9"
    [row] = parse("combined", COMBINED.replace("203.0.113.9", '"10.5.1.2, 199.96.1.1" 10.2.1.185'))
    assert row["ip"] == "10.5.1.2"


def test_nginx_log_format_compiles_every_variable_and_keeps_unknown_ones() -> None:
    spec = ('nginx:$remote_addr [$time_iso8601] "$request_method $request_uri" $status '
            '$body_bytes_sent $request_time $upstream_response_time "$http_x_trace" $pipe')
    [row] = parse(spec, '10.0.0.1 [2024-05-01T10:00:00+02:00] "POST /api/v1" 502 0 0.250 '
                        '0.100, 0.120 "abc def" p')
    assert (row["method"], row["path"], row["status"], row["latency"]) == (
        "POST", "/api/v1", 502, 0.25)
    assert row["time"] == epoch("2024-05-01T10:00:00+02:00")
    assert json.loads(row["fields"]) == {"http_x_trace": "abc def", "pipe": "p"}


def test_upstream_time_stands_in_for_latency_and_sums_retries() -> None:
    [row] = parse("nginx:$remote_addr $status $upstream_response_time", "1.2.3.4 200 0.100, 0.004")
    assert row["latency"] == pytest.approx(0.104)


def test_msec_epoch_and_braced_variables() -> None:
    [row] = parse("nginx:${msec} ${status}", "1700000000.123 204")
    assert row["time"] == pytest.approx(1700000000.123) and row["status"] == 204


def test_a_log_format_without_variables_is_an_error() -> None:
    with pytest.raises(LogFormatError):
        get_format("nginx:just text")
    with pytest.raises(UnknownFormat, match="unknown format 'apache'"):
        get_format("apache")


def test_json_aliases_and_unit_suffixes() -> None:
    rows = parse(
        "json",
        '{"ts": 1700000000, "client_ip": "1.1.1.1", "request": "GET /x HTTP/2", '
        '"status_code": 503, "duration_ms": 250, "user_agent": "curl/8"}',
        '{"@timestamp": "2024-01-01T00:00:00Z", "ip": "2.2.2.2", "method": "PUT", "uri": "/y", '
        '"code": "201", "latency_us": 1500, "level": "warn", "extra": {"a": 1}}',
        '{"time": 1712790000100000000, "ClientIP": "3.3.3.3", "EdgeResponseStatus": 404, '
        '"OriginResponseDurationMs": 12}',
    )
    assert [r["status"] for r in rows] == [503, 201, 404]
    assert [r["latency"] for r in rows] == [0.25, 0.0015, 0.012]
    assert (rows[0]["method"], rows[0]["path"], rows[0]["ua"]) == ("GET", "/x", "curl/8")
    assert rows[1]["time"] == epoch("2024-01-01T00:00:00+00:00") and rows[1]["level"] == "warn"
    assert json.loads(rows[1]["fields"]) == {"extra": {"a": 1}}
    assert rows[2]["time"] == pytest.approx(1712790000.1) and rows[2]["ip"] == "3.3.3.3"


def test_a_country_the_source_logs_is_kept() -> None:
    rows = parse(
        "json",
        '{"ClientIP": "3.3.3.3", "ClientCountry": "ru", "EdgeResponseStatus": 200}',
        '{"ip": "4.4.4.4", "geoip": {"country_code2": "DE", "city_name": "Berlin"}}',
        '{"ip": "5.5.5.5", "country": "Netherlands"}',
        '{"ip": "6.6.6.6", "country": "-"}',
    )
    assert [r["country"] for r in rows] == ["RU", "DE", "Netherlands", None]
    assert json.loads(rows[1]["fields"]) == {"geoip": {"country_code2": "DE",
                                                       "city_name": "Berlin"}}
    [row] = parse("ltsv", "host:127.0.0.1\tstatus:200\tcountry:jp")
    assert row["country"] == "JP"


def test_nested_ecs_objects_give_their_fields_not_their_text() -> None:
    [row] = parse("json", json.dumps({
        "@timestamp": "2024-05-01T10:00:00Z", "url": {"path": "/ecs", "domain": "x.example"},
        "user_agent": {"original": "Mozilla/5.0 x"}, "source": {"ip": "1.2.3.4"},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
        "event": {"duration": 250_000_000}}))   # ECS durations are nanoseconds
    assert (row["path"], row["ua"], row["ip"], row["method"], row["status"], row["host"]) == (
        "/ecs", "Mozilla/5.0 x", "1.2.3.4", "GET", 200, "x.example")
    assert row["latency"] == 0.25


def test_caddy_nested_request() -> None:
    [row] = parse("json", json.dumps({
        "ts": 1716723772.6, "status": 200, "size": 446, "duration": 0.000724,
        "request": {"client_ip": "10.10.10.134", "method": "GET", "host": "m.example",
                    "uri": "/res", "headers": {"User-Agent": ["AhrefsBot/7.0"]}}}))
    assert (row["ip"], row["method"], row["host"], row["path"], row["ua"]) == (
        "10.10.10.134", "GET", "m.example", "/res", "AhrefsBot/7.0")
    assert row["latency"] == 0.000724 and row["bytes"] == 446


def test_json_after_a_compose_prefix_and_broken_json() -> None:
    rows = parse("json", 'caddy  | {"level":"info","ts":1.5,"msg":"x"}', '{"level": "info"',
                 "[1, 2]")
    assert [r["parsed"] for r in rows] == [True, False, False]
    assert rows[0]["level"] == "info"


def test_ltsv_labels_from_ltsv_org() -> None:
    [row] = parse("ltsv", "host:127.0.0.1\tident:-\tuser:frank\ttime:[10/Oct/2000:13:55:36 -0700]"
                          '\treq:GET /apache_pb.gif HTTP/1.0\tstatus:200\tsize:2326\t'
                          "referer:http://www.example.com/start.html\tua:Mozilla/4.08\t"
                          "reqtime:0.020\tvhost:www.example.com")
    assert (row["ip"], row["method"], row["path"], row["status"], row["bytes"]) == (
        "127.0.0.1", "GET", "/apache_pb.gif", 200, 2326)
    assert row["latency"] == 0.02 and row["host"] == "www.example.com"
    assert row["time"] == epoch("2000-10-10T13:55:36-07:00")


def test_ltsv_microseconds_and_apptime() -> None:
    rows = parse("ltsv", "status:200\treqtime_microsec:1500", "status:200\tapptime:0.5")
    assert [r["latency"] for r in rows] == [0.0015, 0.5]


def test_auto_detects_per_file_and_falls_back_per_line() -> None:
    auto = AutoFormat()
    lines = [COMBINED] * 3 + ['{"status": 500, "path": "/j"}', "garbage", ""]
    rows = auto.parse(pl.Series(lines), "t").to_dicts()
    assert auto.chosen is not None and auto.chosen.name == "combined"
    assert [r["parsed"] for r in rows] == [True, True, True, True, False, False]
    assert rows[3]["status"] == 500 and rows[3]["path"] == "/j"
    assert [r["line"] for r in rows] == lines


def test_auto_prefers_the_format_most_lines_match() -> None:
    auto = AutoFormat()
    auto.parse(pl.Series(["status:200\tsize:1", "status:404\tsize:2"]), "t")
    assert auto.chosen is not None and auto.chosen.name == "ltsv"
