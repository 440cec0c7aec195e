import ipaddress
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logtui.core.dashboard import stream_lines
from logtui.core.endpoints import with_endpoints
from logtui.core.enrich import Enricher
from logtui.core.event import SCHEMA, conform
from logtui.core.filters import (
    Filter,
    FilterError,
    add_term,
    compile_filter,
    remove_last_term,
    term_for,
)
from logtui.core.pipeline import Pipeline

FRAME = conform(pl.DataFrame({
    "tag": ["nginx.access", "nginx.access", "nginx.error", "app", "nginx.access",
            "nginx.access", "apache"],
    "line": ["GET /api/users HTTP/1.1 200", "POST /login 404 Error page",
             "GET /a b 503 upstream timed out", "payment failed for order 17",
             "HEAD /api/v2/items?id=1 301", "DELETE /API/users 499", 'GET /q"x*(1) 400 said "hi"'],
    "parsed": [True, True, True, False, True, True, True],
    "ip": ["10.1.2.3", "10.200.0.9", "192.168.1.7", None, "2001:db8::1", "::ffff:10.9.9.9",
           "172.16.0.1"],
    "method": ["GET", "post", "GET", None, "HEAD", "DELETE", "GET"],
    "path": ["/api/users", "/login", "/a b", None, "/api/v2/items?id=1", "/API/users",
             '/q"x*(1)'],
    "status": [200, 404, 503, None, 301, 499, 400],
    "bytes": [512, 2000, 0, None, 1500, None, 100],
    "latency": [0.05, 0.6, 2.5, None, 0.0005, None, 0.25],
    "ua": ["Mozilla/5.0 (X11; Linux)", "curl/8.5.0", "Googlebot-Image/1.0", None, "GPTBot/1.0",
           None, "Mozilla/5.0"],
    "referer": ["https://www.google.com/search", None, None, None, "https://duckduckgo.com/",
                None, None],
    "host": ["example.com", "Example.COM", "api.example.com", None, "example.com", None,
             "other.org"],
    "level": [None, None, "error", None, "warn", "ERROR", None],
    "bot": [None, "Googlebot", "Googlebot-Image", None, "GPTBot", None, None],
    "country": ["KR", "kr", "US", None, "DE", None, None],
    "fields": ['{"upstream_status": "200", "user": {"name": "ann"}, "user-agent": "x"}',
               '{"upstream_status": 502}', '{"upstream_status": "504"}', None, None,
               '{"upstream_status": "-"}', "{}"],
}))
EVERY_ROW = list(range(FRAME.height))


def rows(text: str, frame: pl.DataFrame = FRAME) -> list[int]:
    return [index for index, hit in enumerate(compile_filter(text).mask(frame)) if hit]


def mask(text: str, frame: pl.DataFrame) -> list[bool]:
    return compile_filter(text).mask(frame).to_list()


@pytest.mark.parametrize(("text", "expected"), [
    ("", EVERY_ROW),
    ("   ", EVERY_ROW),
    # numbers: class, equality, comparisons, inclusive ranges, presence
    ("status:5xx", [2]),
    ("status:4XX", [1, 5, 6]),
    ("status:404", [1]),
    ("status:>=400", [1, 2, 5, 6]),
    ("status:>400", [1, 2, 5]),
    ("status:<500", [0, 1, 4, 5, 6]),
    ("status:<=399", [0, 4]),
    ("status:400-499", [1, 5, 6]),
    ("status:*", [0, 1, 2, 4, 5, 6]),
    ("status:=404", [1]),
    ("bytes:>1000", [1, 4]),
    ("bytes:0", [2]),
    ("latency:>0.5", [1, 2]),
    ("latency:>500ms", [1, 2]),
    ("latency:>2s", [2]),
    ("latency:<1ms", [4]),
    ("latency:<=500us", [4]),
    ("latency:<=500µs", [4]),
    ("latency:0.1-1", [1, 6]),
    ("latency:100ms-1s", [1, 6]),
    # text fields
    ("method:POST", [1]),
    ("method:get", [0, 2, 6]),
    ("method:=post", [1]),
    ("method:=POST", []),
    ("path:/api/*", [0, 4]),
    ("path:/api/users", [0]),
    ("path:/api/user?", [0]),
    ("path:/API/users", [5]),
    ("path:/api", []),
    ('path:="/a b"', [2]),
    ('path:"/a b"', [2]),
    ("path:=/api/*", []),
    ('path:="/q\\"x*(1)"', [6]),
    ("host:example.com", [0, 1, 4]),
    ("host:*.example.com", [2]),
    ("host:=example.com", [0, 4]),
    ("ip:10.0.0.0/8", [0, 1, 5]),
    ("ip:10.1.2.3/32", [0]),
    ("ip:2001:db8::/32", [4]),
    ("ip:::ffff:0:0/96", [5]),
    ("ip:10.1.2.3", [0]),
    ("ip:10.1", []),
    ("ip:10.*", [0, 1]),
    ("ip:2001:db8::1", [4]),
    ("bot:google", [1, 2]),
    ("bot:Googlebot", [1, 2]),
    ("bot:gpt", [4]),
    ("bot:*", [1, 2, 4]),
    ("-bot:*", [0, 3, 5, 6]),
    ("bot:=Googlebot", [1]),
    ("bot:=googlebot", []),
    ("bot:*image", [2]),
    ("country:KR", [0, 1]),
    ("country:us", [2]),
    ("country:=KR", [0]),
    ("tag:nginx.*", [0, 1, 2, 4, 5]),
    ("tag:nginx.access", [0, 1, 4, 5]),
    ("tag:NGINX.*", []),
    ("level:error", [2, 5]),
    ("ua:curl", [1]),
    ("ua:GOOGLEBOT", [2]),
    ("ua:*/1.0", [2, 4]),
    ('ua:"(X11;"', [0]),
    ("referer:google", [0]),
    ("referer:*.com/", [4]),
    # record fields
    ("field.upstream_status:502", [1]),
    ("field.upstream_status:50*", [1, 2]),
    ("field.upstream_status:>=500", [1, 2]),
    ("field.upstream_status:<300", [0]),
    ("field.upstream_status:=200", [0]),
    ("field.upstream_status:*", [0, 1, 2, 5]),
    ("-field.upstream_status:*", [3, 4, 6]),
    ("field.user.name:ann", [0]),
    ("field.user.name:Ann", []),
    ("field.user-agent:x", [0]),
    # text search in the raw line
    ("api", [0, 4, 5]),
    ("API users", [0, 5]),
    ('"upstream timed out"', [2]),
    ('"said \\"hi\\""', [6]),
    ('"10:30"', []),
    ("10:30", []),
    ("payment", [3]),
    ("-payment", [0, 1, 2, 4, 5, 6]),
    ("or", [1, 3]),  # lower-case "or" is a word: "Error", "for"
    ("/\\d{3}$/", [0, 4, 5]),
    ("/GET \\/a b/", [2]),
    ("/(?i)^delete/", [5]),
    # precedence, grouping and negation
    ("method:GET status:200 OR status:404", [0, 1]),
    ("status:404 OR method:GET status:200", [0, 1]),
    ("method:GET (status:200 OR status:404)", [0]),
    ("-(method:GET OR bot:*)", [3, 5]),
    ("status:4xx -bot:*", [5, 6]),
    ("--bot:*", [1, 2, 4]),
    ("(path:/a(b) OR status:200)", [0]),
    ("-status:5xx", [0, 1, 3, 4, 5, 6]),
])
def test_term(text: str, expected: list[int]) -> None:
    assert rows(text) == expected


@pytest.mark.parametrize(("text", "position", "reason"), [
    ("stauts:500", 0, "unknown field 'stauts' (did you mean 'status'?)"),
    ("-bot:* stauts:500", 7, "unknown field 'stauts' (did you mean 'status'?)"),
    ("Method:GET", 0, "unknown field 'Method' (did you mean 'method'?)"),
    ("field:x", 0, "unknown field 'field' (did you mean 'field.NAME'?)"),
    ("http://example.com", 0, "unknown field 'http' (quote the word to search for it as text)"),
    ("field..x:1", 0, "empty record field name in 'field..x'"),
    ("status:", 7, "missing value after 'status:'"),
    ("path:= x", 6, "missing value after 'path:'"),
    ("status:>=abc", 9, "bad number 'abc'"),
    ("status:>=", 9, "missing number"),
    ("status:abc", 7, "bad number 'abc'"),
    ("bytes:12kb", 6, "bad number '12kb'"),
    ("status:=5xx", 8, "bad number '5xx'"),
    ("status:>1s", 8, "unit 's' only applies to latency"),
    ("field.upstream_status:>1ms", 23, "unit 'ms' only applies to latency"),
    ("latency:2s-1s", 8, "empty range: 2s is above 1s"),
    ("ip:10.0.0.0/33", 3, "bad CIDR '10.0.0.0/33'"),
    ("ip:10.0.0/8", 3, "bad CIDR '10.0.0/8'"),
    ('ua:"curl', 3, "unterminated quote"),
    ('a "b c', 2, "unterminated quote"),
    ("(status:5xx", 0, "unclosed '('"),
    ("a (b OR (c)", 2, "unclosed '('"),
    ("a (", 2, "unclosed '('"),
    ("(" * 500 + "a", 100, "nested more than 100 deep"),
    ("-(" * 60 + "a", 100, "nested more than 100 deep"),
    ("status:5xx)", 10, "unmatched ')'"),
    (") a", 0, "unmatched ')'"),
    ("()", 0, "empty parentheses"),
    ("a OR", 2, "'OR' needs a term on each side"),
    ("OR a", 0, "'OR' needs a term on each side"),
    ("a OR OR b", 2, "'OR' needs a term on each side"),
    ("(a OR) b", 3, "'OR' needs a term on each side"),
    ("(OR a)", 1, "'OR' needs a term on each side"),
    ("-", 0, "'-' must be followed by a term"),
    ("a - b", 2, "'-' must be followed by a term"),
    ("(a -)", 3, "'-' must be followed by a term"),
    ("-OR a", 0, "'-' must be followed by a term"),
    ("x /(a/", 2, "bad regex: unclosed group"),
    ("/abc", 0, "unterminated /regex/ (close it with '/', or quote the text)"),
    ("/a/b", 3, "text after /regex/ (write '/' inside a regex as '\\/')"),
])
def test_error(text: str, position: int, reason: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert (caught.value.position, caught.value.reason) == (position, reason)
    assert str(caught.value) == f"at column {position + 1}: {reason}"
    assert isinstance(caught.value, ValueError)


def test_regex_errors_keep_the_engine_reason() -> None:
    with pytest.raises(FilterError, match=r"^at column 1: bad regex: look-around"):
        compile_filter("/(?<=a)b/")


def test_filter_object() -> None:
    empty = compile_filter("  ")
    assert empty.is_empty and empty.terms == ()
    assert empty.apply(FRAME) is FRAME
    assert empty.mask(FRAME).to_list() == [True] * FRAME.height
    fltr = compile_filter("method:GET  -(status:5xx OR bot:*) api")
    assert not fltr.is_empty
    assert fltr.terms == ("method:GET", "-(status:5xx OR bot:*)", "api")
    assert fltr.apply(FRAME)["path"].to_list() == ["/api/users"]
    assert fltr == compile_filter("method:GET  -(status:5xx OR bot:*) api")
    assert isinstance(fltr, Filter)
    # the expression works anywhere polars takes one, lazy frames included
    assert FRAME.lazy().filter(fltr.expr).collect().height == 1


def test_cidr_parses_each_distinct_address_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    original = ipaddress.ip_address

    def counting(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        parsed.append(text)
        return original(text)

    monkeypatch.setattr(ipaddress, "ip_address", counting)
    frame = conform(pl.DataFrame({"ip": ["10.0.0.1", "8.8.8.8", None] * 1000}))
    assert compile_filter("ip:10.0.0.0/8").mask(frame).sum() == 1000
    assert sorted(parsed) == ["10.0.0.1", "8.8.8.8"]


# --- drill-down and drill-up --------------------------------------------------------------

def test_term_for_examples() -> None:
    assert term_for("status", 404) == "status:404"
    assert term_for("path", "/a b") == 'path:="/a b"'
    assert term_for("bot", "Googlebot") == "bot:=Googlebot"
    assert term_for("ip", "1.2.3.4") == "ip:1.2.3.4"
    assert term_for("country", "KR") == "country:KR"
    assert term_for("latency", 0.25) == "latency:0.25"
    assert term_for("bot", None) == "-bot:*"
    assert term_for("path", 'say "hi"\\') == 'path:="say \\"hi\\"\\\\"'


TRICKY = conform(pl.DataFrame({
    "path": ["/a b", '/q"x', "/x*y", "/x?y", "/p(1)", "/a)b", "(", "/back\\slash", "",
             "OR", "-x", "/é", "/x*y", None, "/a", "/a/b"],
    "ip": ["1.2.3.4", "2001:db8::1", "::ffff:1.2.3.4", "*", "unknown", "10.0.0.0/8",
           "1.2.3.4", None, "1.2.3.40", "2001:DB8::1", "a b", "", "fe80::1%eth0", "10.*", "1",
           "1.2.3.4"],
    "method": ["GET", "get", "POST", None] * 4,
    "host": ["example.com", "Example.com", "*.example.com", None] * 4,
    "bot": ["Googlebot", "Googlebot-Image", "GPTBot", None] * 4,
    "ua": ["curl/8", "Mozilla/5.0 (X11; Linux)", "curl/8 extra", None] * 4,
    "country": ["KR", "US", None, "DE"] * 4,
    "tag": ["nginx.access", "nginx.access.x", "nginx.*", None] * 4,
    "status": [200, 404, None, 503] * 4,
    "latency": [0.1, 1e-05, 2.5, None] * 4,
    "bytes": [0, 2**60 + 1, 2**60, None] * 4,
}))


@pytest.mark.parametrize("field",
                         ["path", "ip", "method", "host", "bot", "ua", "country", "tag", "status",
                          "latency", "bytes"])
def test_term_for_selects_exactly_the_rows_with_that_value(field: str) -> None:
    for value in TRICKY[field].unique().to_list():
        term = term_for(field, value)
        expected = TRICKY.select(pl.col(field).eq_missing(value)).to_series().to_list()
        assert mask(term, TRICKY) == expected, term
        assert compile_filter(term).terms == (term,)


def test_add_term() -> None:
    assert add_term("", "status:404") == "status:404"
    assert add_term("  status:5xx ", "bot:=Googlebot") == "status:5xx bot:=Googlebot"
    assert add_term("a OR b", "c") == "(a OR b) c"
    assert add_term("(a OR b)", "c") == "(a OR b) c"
    # values that need quotes get them
    assert add_term("status:5xx", "path:=/a b") == 'status:5xx path:="/a b"'
    assert add_term("", "ua:Mozilla/5.0 (X11)") == 'ua:"Mozilla/5.0 (X11)"'
    assert add_term("", 'path:=/a"b') == 'path:="/a\\"b"'
    assert add_term("", "hello world") == '"hello world"'
    assert add_term("", "-hello world") == '-"hello world"'
    with pytest.raises(FilterError, match="unknown field 'stauts'"):
        add_term("", "stauts:a b")
    with pytest.raises(FilterError, match="'OR' needs a term"):
        add_term("a OR", "b")


def test_remove_last_term() -> None:
    assert remove_last_term("") == ""
    assert remove_last_term("status:5xx") == ""
    assert remove_last_term("status:5xx  path:/x ") == "status:5xx"
    assert remove_last_term("a b OR c") == "a b"
    assert remove_last_term("a OR b c") == "a OR b"
    assert remove_last_term("a OR b") == "a"
    assert remove_last_term("(a OR b) c") == "a OR b"
    assert remove_last_term("(a b) c") == "(a b)"
    assert remove_last_term("x -(a OR b)") == "x"
    assert remove_last_term('ua:"x OR y" "a OR"') == 'ua:"x OR y"'
    with pytest.raises(FilterError):
        remove_last_term("(a")


# --- the algebra, on random frames --------------------------------------------------------

TERMS = [
    "status:5xx", "status:>=400", "status:404", "status:400-499", "status:*", "bytes:>1000",
    "latency:>0.5", "latency:<300ms", "method:POST", "path:/api/*", 'path:="/a b"',
    "ip:10.0.0.0/8", "ip:2001:db8::1", "bot:google", "bot:*", "-bot:*", "bot:=GPTBot",
    "country:KR", "level:error", "ua:curl", "field.upstream:>=500", "field.user:ann", "api",
    '"a b"', "/\\d{3}/", "(status:404 OR bot:*)", "-(method:GET path:/)",
]
ROW = st.fixed_dictionaries({
    "line": st.sampled_from([None, "GET /api 200", "a b 503", "POST /x", "x"]),
    "status": st.sampled_from([None, 200, 301, 404, 499, 500, 503]),
    "bytes": st.sampled_from([None, 0, 999, 1000, 1001, 50_000]),
    "latency": st.sampled_from([None, 0.0001, 0.3, 0.5, 0.51, 3.0]),
    "method": st.sampled_from([None, "GET", "post", "POST", "HEAD"]),
    "path": st.sampled_from([None, "/", "/api/users", "/api/v2/x", "/a b", "/API"]),
    "ip": st.sampled_from([None, "10.1.2.3", "192.168.0.1", "2001:db8::1", "::ffff:10.0.0.1",
                           "garbage"]),
    "bot": st.sampled_from([None, "Googlebot", "Googlebot-Image", "GPTBot", "bingbot"]),
    "country": st.sampled_from([None, "KR", "kr", "US"]),
    "level": st.sampled_from([None, "error", "INFO"]),
    "ua": st.sampled_from([None, "curl/8", "Mozilla/5.0"]),
    "fields": st.sampled_from([None, "{}", '{"upstream": 502, "user": "ann"}',
                               '{"upstream": "x"}', '{"upstream": "200", "user": "bob"}']),
})
FRAMES = st.lists(ROW, max_size=12).map(lambda rows: conform(pl.DataFrame(
    {name: pl.Series(name, [row[name] for row in rows], dtype=SCHEMA[name]) for name in ROW_KEYS}
)))
ROW_KEYS = ["line", "status", "bytes", "latency", "method", "path", "ip", "bot", "country",
            "level", "ua", "fields"]
term = st.sampled_from(TERMS)


def both(left: list[bool], right: list[bool], combine: Any) -> list[bool]:
    return [combine(a, b) for a, b in zip(left, right, strict=True)]


@settings(max_examples=150, deadline=None)
@given(FRAMES, term, term, term)
def test_algebra(frame: pl.DataFrame, a: str, b: str, c: str) -> None:
    ma, mb, mc = mask(a, frame), mask(b, frame), mask(c, frame)
    assert len(ma) == frame.height and None not in ma
    assert mask(f"-{a}", frame) == [not hit for hit in ma]
    assert mask(f"{a} {b}", frame) == both(ma, mb, lambda x, y: x and y)
    assert mask(f"{a} OR {b}", frame) == both(ma, mb, lambda x, y: x or y)
    a_and_b = both(ma, mb, lambda x, y: x and y)
    assert mask(f"{a} {b} OR {c}", frame) == both(a_and_b, mc, lambda x, y: x or y)
    assert mask(f"-({a} OR {b})", frame) == both(ma, mb, lambda x, y: not x and not y)


TEXTS = st.lists(term, max_size=4).flatmap(lambda terms: st.sampled_from(
    [" ".join(terms), " OR ".join(terms), f"({' '.join(terms)})" if terms else ""]))


@settings(max_examples=150, deadline=None)
@given(FRAMES, TEXTS, term)
def test_drill_down_narrows_and_drill_up_restores(frame: pl.DataFrame, text: str,
                                                  extra: str) -> None:
    narrowed = add_term(text, extra)
    assert mask(narrowed, frame) == both(mask(text, frame), mask(extra, frame),
                                         lambda x, y: x and y)
    assert compile_filter(narrowed).terms[-1] == extra
    restored = remove_last_term(narrowed)
    # (a OR b) c is both add_term("a OR b", c) and add_term("(a OR b)", c); drill-up gives
    # the first back, the same filter without its redundant parentheses.
    assert restored == text or f"({restored})" == text
    assert mask(restored, frame) == mask(text, frame)


def test_endpoint_terms_match_path_templates() -> None:
    frame = with_endpoints(conform(pl.DataFrame({
        "path": ["/users/1", "/users/22?page=2", "/a", None], "parsed": [True] * 4})))
    term = term_for("endpoint", "/users/{id}")
    assert compile_filter(term).mask(frame).to_list() == [True, True, False, False]
    assert compile_filter("endpoint:/users/*").mask(frame).to_list() == [True, True, False, False]


def test_a_record_sent_without_a_line_is_searched_and_shown_by_its_written_out_text() -> None:
    source = Pipeline("auto", Enricher(None, None), compile_filter("")).source("app")
    frame = source.records([{"remote_addr": "10.0.0.1", "method": "GET", "path": "/cart",
                             "status": 502, "user": "ada"},
                            {"remote_addr": "10.0.0.2", "path": "/", "status": 200},
                            {"msg": "started"}], [1.0, 2.0, 3.0])
    assert frame["line"].to_list() == [None] * 3   # the store keeps no copy as text
    assert compile_filter('"ada"').apply(frame)["path"].to_list() == ["/cart"]
    assert compile_filter("/GET \\/cart/").apply(frame).height == 1
    shown = [line.line for line in stream_lines(frame, 10)]
    assert shown == ['10.0.0.1 "GET /cart" 502 - - - {"user":"ada"}', '10.0.0.2 "/" 200 - - - -',
                     '- - - - - - {"msg":"started"}']
