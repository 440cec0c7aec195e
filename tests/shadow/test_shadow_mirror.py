"""Mirroring policy and settings: what is sent to staging, how, and what is refused."""

from __future__ import annotations

import gzip
import itertools

import pytest

from shadow.mirror import (
    ConfigError,
    MirrorConfig,
    Policy,
    Production,
    RequestSnapshot,
    staging_headers,
)


def config(**settings: object) -> MirrorConfig:
    return MirrorConfig.parse(staging="http://staging:8080", **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("settings", "setting", "message"), [
    ({"staging": "staging:8080"}, "staging", "expected an http:// or https:// URL"),
    ({"staging": "http://host:99999"}, "staging", "port"),
    ({"staging": "http://host/?q=1"}, "staging", "no query"),
    ({"staging": "http://[::1"}, "staging", "expected an http:// or https:// URL"),
    ({"staging": "http://u:p@host"}, "staging", "a URL with credentials is not supported"),
    ({"secondary": "ftp://x"}, "secondary", "http://"),
    ({"sample": "150"}, "sample", "percentage"),
    ({"sample": "ten"}, "sample", "percentage"),
    ({"sample_key": "cookie:x"}, "sample_key", "header:NAME or param:NAME"),
    ({"methods": "GET,POST"}, "methods", "--allow-unsafe"),
    ({"methods": "G3T"}, "methods", "HTTP methods"),
    ({"allow": ["api/*"]}, "allow", "/api/*"),
    ({"set_header": ["X-Env"]}, "set_header", "NAME:VALUE"),
    ({"set_header": ["X-Env: a\r\nInjected: 1"]}, "set_header", "CR or LF"),
    ({"strip_header": ["bad header"]}, "strip_header", "not a header name"),
    ({"max_body": "lots"}, "max_body", "512k"),
    ({"max_body": "-1"}, "max_body", "512k"),
    ({"timeout": "soon"}, "timeout", "duration"),
    ({"max_in_flight": "0"}, "max_in_flight", "1 or more"),
    ({"ignore": [" "]}, "ignore", "JSON path"),
    ({"ignore": ["$.[["]}, "ignore", "JSON path"),
])
def test_settings_are_validated(settings: dict[str, object], setting: str,
                                message: str) -> None:
    arguments = {"staging": "http://staging:8080", **settings}
    with pytest.raises(ConfigError) as caught:
        MirrorConfig.parse(**arguments)  # type: ignore[arg-type]
    assert caught.value.setting == setting and message in str(caught.value)


def test_settings_as_typed() -> None:
    parsed = config(sample="12.5%", sample_key="param:uid", methods="get,post",
                    allow_unsafe=True, max_body="512k", timeout="500ms",
                    set_header=["X-Env: staging"], strip_header=["Cookie"])
    assert parsed.sample == 12.5 and parsed.sample_key is not None
    assert parsed.methods == {"GET", "POST"} and parsed.max_body == 512 * 1024
    assert parsed.timeout == 0.5 and parsed.set_headers == (("x-env", "staging"),)
    assert parsed.strip_headers == {"cookie"} and parsed.staging.url == "http://staging:8080"
    assert config().methods == {"GET", "HEAD", "OPTIONS"}


def test_policy_reasons() -> None:
    policy = Policy(config(allow=["/api/*"], deny=["/api/admin/*"], max_body="10"))
    assert policy.skip_reason("POST", "/api/x", (), b"") == "method"
    assert policy.skip_reason("GET", "/api/ws", (("Upgrade", "websocket"),), b"") == "upgrade"
    assert policy.skip_reason("GET", "/api/admin/users", (), b"") == "denied"
    assert policy.skip_reason("GET", "/static/app.js", (), b"") == "not_allowed"
    assert policy.skip_reason("GET", "/api/x?q=/static", (), None) == "streamed"
    assert policy.skip_reason("GET", "/api/x", (), b"x" * 11) == "body_too_large"
    assert policy.skip_reason("GET", "/api/x", (), b"") is None


def test_sampling_by_key_is_consistent_and_near_the_rate() -> None:
    policy = Policy(config(sample="30", sample_key="param:uid"))
    chosen = [policy.sampled(f"/x?uid=u{n}", ()) for n in range(2000)]
    assert 0.25 < sum(chosen) / len(chosen) < 0.35
    assert chosen == [policy.sampled(f"/x?uid=u{n}&other=1", ()) for n in range(2000)]
    header = Policy(config(sample="30", sample_key="header:X-User"))
    assert header.sampled("/x", (("x-user", "u1"),)) == header.sampled("/y",
                                                                        (("X-User", "u1"),))


def test_requests_without_the_key_are_sampled_at_random() -> None:
    coin = itertools.cycle([0.1, 0.9])
    policy = Policy(config(sample="50", sample_key="header:X-User"), chance=lambda: next(coin))
    assert [policy.sampled("/x", ()) for _ in range(4)] == [True, False, True, False]


def test_staging_headers() -> None:
    request = RequestSnapshot("1", 0.0, "GET", "/x", (
        ("Host", "prod.example"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"),
        ("Authorization", "secret"), ("Accept", "*/*"), ("X-Env", "production"),
        ("Content-Length", "0"), ("X-Shadow-Request", "forged")), b"")
    headers = staging_headers(request, config(strip_header=["authorization"],
                                              set_header=["X-Env: staging"]))
    assert headers == [("Accept", "*/*"), ("x-env", "staging"), ("X-Shadow-Request", "1")]


def test_production_bodies_are_decoded_for_comparison() -> None:
    production = Production(200, (("Content-Encoding", "gzip"),), gzip.compress(b"hello"),
                            0.01)
    assert production.reply().body == b"hello"
    broken = Production(200, (("Content-Encoding", "gzip"),), b"not gzip", 0.01)
    assert broken.reply().body == b"not gzip"
    failed = Production(None, error="Connection refused", latency=0.2).reply()
    assert failed.status is None and failed.error == "Connection refused"
