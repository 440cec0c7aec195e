"""The pure diff engine: verdicts, structural differences, ignore rules, noise, endpoints."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.diff import (
    Comparator,
    Difference,
    IgnoreRules,
    NoiseFilter,
    Reply,
    check_pattern,
    child_path,
    diff_replies,
    endpoint_of,
    error_verdict,
)


def ok(body: object, status: int = 200, **headers: str) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, tuple(headers.items()), data)


FAILED = Reply.failure("ConnectError: [Errno 111] Connection refused")


@pytest.mark.parametrize(("production", "staging", "verdict"), [
    (200, 200, None), (200, 500, "regression"), (200, 404, "regression"),
    (301, 403, "regression"), (200, None, "regression"), (500, 200, "fixed"),
    (404, 200, "fixed"), (None, 200, "fixed"), (500, 503, "both_error"),
    (None, None, "both_error"), (404, 404, None), (404, 400, None), (200, 302, None),
    (None, 404, "fixed"),
])
def test_error_verdicts(production: int | None, staging: int | None,
                        verdict: str | None) -> None:
    def reply(status: int | None) -> Reply:
        return FAILED if status is None else ok({}, status)
    assert error_verdict(reply(production), reply(staging)) == verdict


def test_structural_json_differences_by_path() -> None:
    production = {"user": {"name": "Ada", "age": 36, "tags": ["a", "b"], "gone": 1},
                  "items": [{"id": 1}, {"id": 2}], "n": 1, "odd key": True}
    staging = {"user": {"name": "Bob", "age": "36", "tags": ["a"], "new": None},
               "items": [{"id": 1}, {"id": 3}], "n": 1.0, "odd key": False}
    found = {(d.path, d.kind) for d in diff_replies(ok(production), ok(staging),
                                                    IgnoreRules())}
    assert found == {("$.user.name", "changed"), ("$.user.age", "type"),
                     ("$.user.tags", "size"), ("$.user.gone", "missing"),
                     ("$.user.new", "extra"), ("$.items[1].id", "changed"),
                     ('$["odd key"]', "changed")}


def test_values_are_shown_as_json() -> None:
    [difference] = diff_replies(ok({"a": "x"}), ok({"a": 2}), IgnoreRules())
    assert difference == Difference("$.a", "type", '"x"', "2")


def test_ignore_rules() -> None:
    production = {"meta": {"id": 1, "ts": 2}, "items": [{"ts": 1, "v": 1}],
                  "deep": {"a": {"updated_at": 1}}, "updated_at": 5}
    staging = {"meta": {"id": 9, "ts": 3}, "items": [{"ts": 2, "v": 1}],
               "deep": {"a": {"updated_at": 2}}, "updated_at": 6}
    rules = IgnoreRules(["$.meta", "items[*].ts", "**.updated_at"])
    assert diff_replies(ok(production), ok(staging), rules) == []
    partial = IgnoreRules(["meta.id", "*.ts"])
    found = {d.path for d in diff_replies(ok(production), ok(staging), partial)}
    assert found == {"$.items[0].ts", "$.deep.a.updated_at", "$.updated_at"}


def test_volatile_and_ignored_headers() -> None:
    production = ok({}, **{"Date": "Mon", "Set-Cookie": "a=1", "ETag": "1", "X-Build": "1",
                           "Content-Type": "application/json", "X-Trace": "a"})
    staging = ok({}, **{"Date": "Tue", "Set-Cookie": "a=2", "ETag": "2", "X-Build": "2",
                        "Content-Type": "text/html", "X-New": "1"})
    found = {(d.path, d.kind) for d in diff_replies(production, staging,
                                                    IgnoreRules(["header:x-b*"]))}
    assert found == {("header:content-type", "changed"), ("header:x-trace", "missing"),
                     ("header:x-new", "extra")}
    assert diff_replies(production, staging, IgnoreRules(["header:*"])) == []


def test_text_and_binary_bodies() -> None:
    [line] = diff_replies(ok(b"one\ntwo\nthree"), ok(b"one\n2\nthree"), IgnoreRules())
    assert line == Difference("body", "changed", "line 2: two", "line 2: 2")
    [size] = diff_replies(ok(b"\x00\x01"), ok(b"\x00\x01\x02"), IgnoreRules())
    assert (size.path, size.kind) == ("body", "size")
    [kind] = diff_replies(ok({"a": 1}), ok(b"<html>oops</html>"), IgnoreRules())
    assert kind.path == "body"
    assert diff_replies(ok(b"same"), ok(b"same"), IgnoreRules()) == []
    assert diff_replies(ok(b"a"), ok(b"b"), IgnoreRules(["body"])) == []


def test_a_body_cut_at_the_cap_is_a_size_difference() -> None:
    cut = Reply(200, (), b"x" * 10, truncated=True)
    [difference] = diff_replies(ok(b"x" * 10), cut, IgnoreRules())
    assert (difference.path, difference.kind) == ("body", "size")


def test_status_difference_within_the_same_class() -> None:
    assert [d.path for d in diff_replies(ok({}, 200), ok({}, 201), IgnoreRules())] == \
        ["status"]
    assert diff_replies(ok({}, 200), ok({}, 201), IgnoreRules(["status"])) == []


@pytest.mark.parametrize("pattern", ["", "   ", "$", "$.[[", "items[", "a..b", "header:",
                                     "$.a[x]"])
def test_bad_ignore_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        check_pattern(pattern)


@pytest.mark.parametrize("pattern", ["$.meta.request_id", "items[*].ts", "**.updated_at",
                                     "header:x-build", "status", "body", "*.ts", "$[0].id",
                                     '$["a b"].c', "meta.id", "$.items[*]"])
def test_good_ignore_patterns(pattern: str) -> None:
    check_pattern(pattern)


@pytest.mark.parametrize(("path", "endpoint"), [
    ("/users/123", "GET /users/{id}"), ("/users/456?x=1", "GET /users/{id}"),
    ("/orders/9f1c2a44-5e6b-4c3d-8e7f-0a1b2c3d4e5f/items", "GET /orders/{uuid}/items"),
    ("/blobs/5f2b6c0d9e8a7b6c5d4e3f21", "GET /blobs/{hex}"),
    ("/v2/users/me", "GET /v2/users/me"), ("/", "GET /"), ("/files/coffee", "GET /files/coffee"),
])
def test_endpoint_templates(path: str, endpoint: str) -> None:
    assert endpoint_of("get", path) == endpoint


def test_comparator_without_secondary_reports_every_difference() -> None:
    comparator = Comparator()
    comparison = comparator.compare("GET /a", ok({"v": 1}), ok({"v": 2}))
    assert comparison.verdict == "diff" and [d.path for d in comparison.differences] == ["$.v"]
    assert not comparison.noise
    assert comparator.compare("GET /a", ok({"v": 1}), ok({"v": 1})).verdict == "same"
    regression = comparator.compare("GET /a", ok({"v": 1}), ok({"v": 1}, 500))
    assert regression.verdict == "regression"
    assert [(d.path, d.production, d.staging) for d in regression.differences] == [
        ("status", "200", "500")]


def test_noise_cancellation_end_to_end() -> None:
    """A per-request id differs everywhere (noise); `version` changed in staging only."""
    comparator = Comparator()
    rng = random.Random(1)
    verdicts = []
    for _ in range(40):
        def reply(version: int) -> Reply:
            return ok({"request_id": rng.getrandbits(64), "version": version})
        comparison = comparator.compare("GET /v", reply(1), reply(2), reply(1))
        verdicts.append(comparison.verdict)
        assert "$.request_id" in comparison.noise
    # reported once the evidence is in (9 requests at z = 3), never before
    assert verdicts[:8] == ["same"] * 8 and set(verdicts[9:]) == {"diff"}
    assert not comparator.noise.is_noise("GET /v", "$.version")


def test_a_failing_secondary_teaches_nothing() -> None:
    comparator = Comparator()
    comparison = comparator.compare("GET /v", ok({"a": 1}), ok({"a": 2}),
                                    ok({"a": 1}, 500))
    assert comparison.secondary_paths is None and "GET /v" not in comparator.noise.endpoints
    # nothing known of the endpoint's noise: reported as without a secondary
    assert comparison.verdict == "diff"


values = st.integers(min_value=2, max_value=60)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(cardinality=values, skew=st.floats(min_value=0.0, max_value=3.0),
       requests=st.integers(min_value=1, max_value=300), seed=st.integers(0, 2**32 - 1))
def test_a_field_random_on_both_production_instances_is_never_reported(
        cardinality: int, skew: float, requests: int, seed: int) -> None:
    """Primary, secondary and staging draw the field from the same distribution."""
    rng = random.Random(seed)
    weights = [1 / (k + 1) ** skew for k in range(cardinality)]
    noise = NoiseFilter()

    def draw() -> int:
        return rng.choices(range(cardinality), weights)[0]

    for _ in range(requests):
        primary, secondary, staging = draw(), draw(), draw()
        noise.observe("GET /x", ["$.f"] if staging != primary else [],
                      ["$.f"] if secondary != primary else [])
        assert noise.is_noise("GET /x", "$.f")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(cardinality=st.integers(min_value=1, max_value=60),
       requests=st.integers(min_value=9, max_value=300), seed=st.integers(0, 2**32 - 1))
def test_a_field_changed_only_in_staging_is_reported(cardinality: int, requests: int,
                                                     seed: int) -> None:
    """Production instances agree (the field is deterministic); staging always differs.

    Beside it, a field random on every instance, which must not mask it."""
    rng = random.Random(seed)
    noise = NoiseFilter()
    for _ in range(requests):
        differs = rng.randrange(cardinality) != rng.randrange(cardinality)
        noise.observe("GET /x", ["$.changed", *(["$.noisy"] if differs else [])],
                      ["$.noisy"] if rng.randrange(cardinality) != 0 else [])
    assert not noise.is_noise("GET /x", "$.changed")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=4), children, max_size=4),
                    max_leaves=20))
def test_a_document_never_differs_from_itself(document: object) -> None:
    assert diff_replies(ok(document), ok(document), IgnoreRules()) == []


@pytest.mark.parametrize(("key", "path"), [
    ("a", "$.a"), ("_x1", "$._x1"), ("a-b", "$.a-b"), ("1a", '$["1a"]'),
    ("\u00e9", '$["\\u00e9"]'), ("", '$[""]'), ("odd key", '$["odd key"]'),
    ("a.b", '$["a.b"]')])
def test_child_path_notation(key: str, path: str) -> None:
    # a key that could be read as more than one step is quoted
    assert child_path("$", key) == path


@given(st.dictionaries(st.text(max_size=4), st.integers(), max_size=6),
       st.dictionaries(st.text(max_size=4), st.integers(), max_size=6))
def test_differences_are_symmetric(left: dict[str, int], right: dict[str, int]) -> None:
    forward = {(d.path, d.kind) for d in diff_replies(ok(left), ok(right), IgnoreRules())}
    backward = {(d.path, {"missing": "extra", "extra": "missing"}.get(d.kind, d.kind))
                for d in diff_replies(ok(right), ok(left), IgnoreRules())}
    assert forward == backward
    # the paths are written as child_path writes them (its notation is tested on its own)
    assert {p for p, _ in forward} == {child_path("$", k)
                                       for k in left.keys() ^ right.keys()
                                       | {k for k in left.keys() & right.keys()
                                          if left[k] != right[k]}}
