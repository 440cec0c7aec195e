"""A real mitmproxy reverse proxy with the mirror addon in front of real local servers: whatever
staging does, the client gets production's bytes and the report holds the right verdict."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shadow_upstreams import (
    HANG,
    RESET,
    WAIT,
    Answer,
    Seen,
    Upstream,
    closed_port,
    json_answer,
    read_report,
    running_proxy,
    wait_until,
)

from logtui.core.event import Event
from logtui.sources.forward import ForwardServer
from shadow.breaker import FAILURES
from shadow.report import summarise_file
from shadow.worker import UNAVAILABLE

USER = {"id": 7, "name": "Ada", "roles": ["admin"], "active": True}


def production_routes() -> dict[str, object]:
    return {
        "/same": lambda s: json_answer(USER, **{"X-Build": "1"}),
        "/changed": lambda s: json_answer(USER),
        "/broken": lambda s: json_answer(USER),
        "/gone": lambda s: json_answer(USER),
        "/fixed": lambda s: Answer(500, b"production bug"),
        "/both": lambda s: Answer(503, b"down"),
        "/slow": lambda s: Answer(200, b"plain text\nsecond line\n",
                                  {"Content-Type": "text/plain"}),
        "/users/": lambda s: json_answer({"path": s.path}),
        "/echo": lambda s: Answer(200, s.method.encode() + b" " + s.body),
    }


def staging_routes() -> dict[str, object]:
    return {
        "/same": lambda s: json_answer(USER, **{"X-Build": "1"}),
        "/changed": lambda s: json_answer({**USER, "name": "Bob", "roles": []}),
        "/broken": lambda s: Answer(500, b"Traceback: KeyError 'name'"),
        "/gone": lambda s: Answer(404, b"not found"),
        "/fixed": lambda s: json_answer(USER),
        "/both": lambda s: Answer(500, b"still down"),
        "/slow": lambda s: Answer(200, b"plain text\nsecond line\n",
                                  {"Content-Type": "text/plain"}, delay=0.3),
        "/users/": lambda s: json_answer({"path": s.path}),
    }


def expected_bytes(path: str, method: str = "GET", body: bytes = b"") -> tuple[int, bytes]:
    answer = production_routes()[next(p for p in sorted(production_routes(), key=len,
                                                        reverse=True) if path.startswith(p))](
        Seen(method, path, {}, body))
    return answer.status, answer.body


@pytest.fixture
def production() -> Upstream:
    with Upstream(production_routes()) as server:
        yield server


def test_every_request_gets_productions_answer_and_the_right_verdict(
        production: Upstream, tmp_path: Path) -> None:
    report = tmp_path / "diffs.jsonl"
    paths = ["/same", "/changed", "/broken", "/gone", "/fixed", "/both", "/slow",
             "/users/12", "/users/9f1c2a44-5e6b-4c3d-8e7f-0a1b2c3d4e5f"]
    with Upstream(staging_routes()) as staging, \
            running_proxy(production.url, staging.url, report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for path in paths:
            response = client.get(path)
            assert (response.status_code, response.content) == expected_bytes(path)
        stats = proxy.settle(len(paths))
        assert stats.dropped == 0 and not stats.skipped
        staged = [s for s in staging.seen]
    records = {r["path"]: r for r in read_report(report)}
    assert {p: r["verdict"] for p, r in records.items()} == {
        "/same": "same", "/changed": "diff", "/broken": "regression", "/gone": "regression",
        "/fixed": "fixed", "/both": "both_error", "/slow": "same", "/users/12": "same",
        "/users/9f1c2a44-5e6b-4c3d-8e7f-0a1b2c3d4e5f": "same"}
    changed = records["/changed"]
    assert {(f["path"], f["kind"]) for f in changed["fields"]} == {("$.name", "changed"),
                                                                   ("$.roles", "size")}
    assert changed["samples"]["staging"].startswith('{"id": 7')
    broken = records["/broken"]
    assert (broken["production_status"], broken["staging_status"]) == (200, 500)
    assert broken["samples"]["staging"] == "Traceback: KeyError 'name'"
    assert records["/users/12"]["endpoint"] == "GET /users/{id}"
    assert records["/users/9f1c2a44-5e6b-4c3d-8e7f-0a1b2c3d4e5f"]["endpoint"] == \
        "GET /users/{uuid}"
    slow = records["/slow"]
    # staging's route sleeps 0.3 s and production's does not: a bound no timing can
    # break, and one that production's latency in staging's place would fail
    assert slow["staging_latency"] >= 0.3
    assert slow["latency_delta"] == pytest.approx(slow["staging_latency"]
                                                  - slow["production_latency"])
    # staging saw the client's request, marked, with its own Host
    marked = next(s for s in staged if s.path == "/same")
    assert marked.headers["x-shadow-request"] == "1"
    assert marked.headers["host"] == f"127.0.0.1:{staging.port}"
    # every record carries the contract's fields
    assert {"id", "time", "method", "path", "endpoint", "verdict", "production_status",
            "staging_status", "production_latency", "staging_latency", "fields"} <= \
        records["/same"].keys()


def test_unsafe_methods_reach_production_only(production: Upstream, tmp_path: Path) -> None:
    report = tmp_path / "diffs.jsonl"
    with Upstream(staging_routes()) as staging, \
            running_proxy(production.url, staging.url, report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = client.request(method, "/echo", content=b"payload")
            assert response.content == method.encode() + b" payload"
        assert client.get("/same").status_code == 200
        stats = proxy.settle(1)
        assert stats.skipped["method"] == 4
        assert [(s.method, s.path) for s in staging.seen] == [("GET", "/same")]
    assert [r["method"] for r in read_report(report)] == ["GET"]
    assert [s.method for s in production.seen] == ["POST", "PUT", "PATCH", "DELETE", "GET"]


def test_unsafe_methods_are_mirrored_when_allowed(production: Upstream) -> None:
    with Upstream({"/echo": lambda s: Answer(200, s.method.encode() + b" " + s.body)}) as \
            staging, running_proxy(production.url, staging.url, methods="POST",
                                   allow_unsafe=True) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        client.post("/echo", content=b"payload")
        stats = proxy.settle(1)
        assert stats.verdicts["same"] == 1
        assert [(s.method, s.body) for s in staging.seen] == [("POST", b"payload")]


def test_a_hanging_staging_never_holds_up_production(production: Upstream) -> None:
    """Structural: production's answers arrive while staging still holds mirrored requests."""
    with Upstream({"/": lambda s: HANG}) as staging, \
            running_proxy(production.url, staging.url, max_in_flight=3,
                          timeout="30s") as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        assert client.get("/same").content == expected_bytes("/same")[1]
        assert staging.entered.wait(WAIT)
        wait_until(lambda: staging.active == 1)
        for n in range(10):
            response = client.get(f"/users/{n}")
            assert response.json() == {"path": f"/users/{n}"}
            assert staging.active >= 1     # staging still holds the first one
        # three in flight at most; the rest dropped and counted, never queued
        wait_until(lambda: staging.active == 3)
        assert proxy.stats.mirrored == 3 and proxy.stats.dropped == 8
        staging.release.set()
        proxy.settle(3)


def test_staging_timeout_is_a_regression(production: Upstream, tmp_path: Path) -> None:
    report = tmp_path / "diffs.jsonl"
    with Upstream({"/": lambda s: HANG}) as staging, \
            running_proxy(production.url, staging.url, timeout="200ms",
                          report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        assert client.get("/same").status_code == 200
        proxy.settle(1)
        staging.release.set()
    [record] = read_report(report)
    assert record["verdict"] == "regression"
    assert record["staging_error"] == "timeout after 0.2s" and record["staging_status"] is None


@pytest.mark.parametrize("behaviour", ["down", "reset"])
def test_staging_down_or_resetting(production: Upstream, tmp_path: Path,
                                   behaviour: str) -> None:
    report = tmp_path / "diffs.jsonl"
    with broken_staging(behaviour) as staging_url, \
            running_proxy(production.url, staging_url, report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for path in ("/same", "/changed", "/same"):
            response = client.get(path)
            assert (response.status_code, response.content) == expected_bytes(path)
        proxy.settle(3)
    records = read_report(report)
    assert [r["verdict"] for r in records] == ["regression"] * 3
    assert all(r["staging_status"] is None and r["staging_error"] for r in records)


def test_mirroring_pauses_while_staging_does_not_answer(production: Upstream,
                                                       tmp_path: Path) -> None:
    """The breaker: after FAILURES unanswered comparisons in a row, requests are skipped
    (and counted) instead of mirrored; production answers every one of them as before."""
    report = tmp_path / "diffs.jsonl"
    with running_proxy(production.url, f"http://127.0.0.1:{closed_port()}",
                       report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for n in range(FAILURES + 40):
            assert client.get("/same").content == expected_bytes("/same")[1]
            if n < FAILURES:   # one at a time, so that the streak is known before the next
                proxy.settle(n + 1)
        stats = proxy.settle(FAILURES)
        worker = proxy.proxy.addon.worker
        assert worker is not None and worker.breaker.is_open
    assert FAILURES <= stats.mirrored < FAILURES + 40
    assert stats.skipped[UNAVAILABLE] == FAILURES + 40 - stats.mirrored
    assert [r["verdict"] for r in read_report(report)] == ["regression"] * stats.mirrored


@contextlib.contextmanager
def broken_staging(behaviour: str) -> Iterator[str]:
    if behaviour == "down":
        yield f"http://127.0.0.1:{closed_port()}"
        return
    with Upstream({"/": lambda s: RESET}) as staging:
        yield staging.url


def test_a_huge_staging_body_is_cut_at_the_cap(tmp_path: Path) -> None:
    report = tmp_path / "diffs.jsonl"
    huge = b"x" * (8 << 20)
    with Upstream({"/": lambda s: json_answer(USER, **{"X-Build": "1"})}) as production, \
            Upstream({"/": lambda s: Answer(200, huge, {"Content-Type": "application/json",
                                                        "X-Build": "1"})}) as staging, \
            running_proxy(production.url, staging.url, max_body="64k",
                          report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        assert client.get("/same").content == expected_bytes("/same")[1]
        proxy.settle(1)
    [record] = read_report(report)
    assert record["verdict"] == "diff" and record["staging_bytes"] == 64 * 1024
    assert [(f["path"], f["kind"]) for f in record["fields"]] == [("body", "size")]


def test_bodies_over_the_cap_are_not_mirrored(production: Upstream) -> None:
    big = b"y" * 4096
    with Upstream(staging_routes()) as staging, \
            running_proxy(production.url, staging.url, max_body="1k", methods="GET,POST",
                          allow_unsafe=True) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        assert client.post("/echo", content=big).content == b"POST " + big
        stats = proxy.stats
        assert stats.skipped["streamed"] + stats.skipped["body_too_large"] == 1
        assert production.seen[-1].body == big
        client.get("/same")       # mirrored: once it is compared, the big POST was not
        proxy.settle(1)
        assert [(s.method, s.path) for s in staging.seen] == [("GET", "/same")]


def test_sampling_by_header_is_consistent_per_user(production: Upstream) -> None:
    users = [f"user-{n}" for n in range(40)]
    with Upstream(staging_routes()) as staging, \
            running_proxy(production.url, staging.url, sample="50",
                          sample_key="header:X-User") as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for user, _ in itertools.product(users, range(3)):
            client.get("/same", headers={"X-User": user})
        proxy.settle(proxy.stats.mirrored)
        mirrored = [s.headers["x-user"] for s in staging.seen]
    counts = {user: mirrored.count(user) for user in users}
    assert set(counts.values()) <= {0, 3}, "a user was sampled on some requests only"
    assert 0 < sum(1 for c in counts.values() if c) < len(users)


def test_headers_stripped_and_set_for_staging(production: Upstream) -> None:
    with Upstream(staging_routes()) as staging, \
            running_proxy(production.url, staging.url, strip_header=["Authorization"],
                          set_header=["X-Env: staging"], deny=["/private/*"]) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for default in ("accept", "accept-encoding", "user-agent"):
            del client.headers[default]   # so that a mirror adding its own would show
        client.get("/same", headers={"Authorization": "Bearer prod", "X-Keep": "1"})
        client.get("/private/x")
        proxy.settle(1)
        [seen] = staging.seen
    assert "authorization" not in seen.headers and seen.headers["x-keep"] == "1"
    assert seen.headers["x-env"] == "staging"
    assert set(seen.headers) - set(production.seen[0].headers) == {"x-env", "x-shadow-request"}
    assert production.seen[0].headers["authorization"] == "Bearer prod"
    assert proxy.stats.skipped["denied"] == 1


def test_staging_cookies_are_not_kept_between_mirrored_requests(production: Upstream) -> None:
    # Each replay carries its own client's headers only: a session cookie staging sets for
    # one user must not ride along on the next user's request.
    routes = {**staging_routes(),
              "/same": lambda s: json_answer(USER, **{"X-Build": "1",
                                                      "Set-Cookie": "session=ada; Path=/"})}
    with Upstream(routes) as staging, running_proxy(production.url, staging.url) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        client.get("/same")
        proxy.settle(1)
        client.get("/users/2", headers={"Cookie": "theme=dark"})
        client.get("/users/3")
        proxy.settle(3)
    cookies = {seen.path: seen.headers.get("cookie") for seen in staging.seen}
    assert cookies == {"/same": None, "/users/2": "theme=dark", "/users/3": None}


def test_https_upstreams(tmp_path: Path, server_tls: ssl.SSLContext) -> None:
    tls = server_tls
    report = tmp_path / "diffs.jsonl"
    with Upstream(production_routes(), tls=tls) as production, \
            Upstream(staging_routes(), tls=tls) as staging, \
            running_proxy(production.url, staging.url, insecure=True,
                          report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        assert production.url.startswith("https://") and staging.url.startswith("https://")
        assert client.get("/same").content == expected_bytes("/same")[1]
        assert client.get("/broken").status_code == 200
        proxy.settle(2)
    assert {r["path"]: r["verdict"] for r in read_report(report)} == {
        "/same": "same", "/broken": "regression"}


def test_staging_certificates_are_verified_by_default(production: Upstream, tmp_path: Path,
                                                       server_tls: ssl.SSLContext) -> None:
    report = tmp_path / "diffs.jsonl"
    with Upstream(staging_routes(), tls=server_tls) as staging, \
            running_proxy(production.url, staging.url, report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        client.get("/same")
        proxy.settle(1)
    [record] = read_report(report)
    assert record["verdict"] == "regression" and "CERTIFICATE" in record["staging_error"]


def test_a_production_failure_is_compared_too(tmp_path: Path) -> None:
    report = tmp_path / "diffs.jsonl"
    with Upstream({"/": lambda s: RESET}) as production, \
            Upstream(staging_routes()) as staging, \
            running_proxy(production.url, staging.url, report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        assert client.get("/same").status_code == 502  # mitmproxy's own answer, as ever
        proxy.settle(1)
    [record] = read_report(report)
    assert record["verdict"] == "fixed" and record["production_error"]
    assert record["staging_status"] == 200


def test_noise_between_production_instances_is_not_reported(tmp_path: Path) -> None:
    """`--secondary`: a per-request id differs everywhere; staging changed `version` only."""
    report = tmp_path / "diffs.jsonl"
    ids = itertools.count()

    def api(version: int) -> dict[str, object]:
        return {"/": lambda s: json_answer({"request_id": next(ids), "version": version,
                                            "path": s.path})}

    with Upstream(api(1)) as production, Upstream(api(1)) as secondary, \
            Upstream(api(2)) as staging, \
            running_proxy(production.url, staging.url, secondary=secondary.url,
                          report=str(report)) as proxy, \
            httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
        for n in range(25):
            client.get(f"/items/{n}")
        proxy.settle(25)
    records = read_report(report)
    assert all(r["secondary_status"] == 200 for r in records)
    assert all("$.request_id" in r["secondary_fields"] for r in records)
    late = records[-1]
    assert late["verdict"] == "diff"
    assert {(f["path"], f["noise"]) for f in late["fields"]} == {("$.request_id", True),
                                                                 ("$.version", False)}
    [endpoint] = summarise_file(report)["endpoints"]
    assert endpoint["verdicts"]["diff"] == 25
    assert [f["path"] for f in endpoint["fields"]] == ["$.version"]


def test_comparisons_are_forwarded_to_logtui(production: Upstream) -> None:
    received: list[Event] = []
    loop = asyncio.new_event_loop()
    server = ForwardServer("127.0.0.1", 0, lambda events, peer: received.extend(events))
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with Upstream(staging_routes()) as staging, \
                running_proxy(production.url, staging.url,
                              forward=f"127.0.0.1:{server.port}") as proxy, \
                httpx.Client(base_url=proxy.url, timeout=WAIT) as client:
            for path in ("/same", "/broken", "/changed"):
                client.get(path)
            proxy.settle(3)
            wait_until(lambda: len(received) == 3)
            worker = proxy.proxy.addon.worker
            assert worker is not None and worker.forward is not None
            wait_until(lambda: worker.forward.sent == 3)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()
    assert {e.tag for e in received} == {"shadow.diff"}
    assert {e.record["path"]: e.record["verdict"] for e in received} == {
        "/same": "same", "/broken": "regression", "/changed": "diff"}
