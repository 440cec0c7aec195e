"""Which production requests go to staging (the policy, run in the proxy) and how they are
replayed there and compared (the mirror, run in the worker)."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from mitmproxy.net.encoding import decode as encoding_decode
from mitmproxy.utils.human import parse_size

from logtui.core.durations import DurationError, parse_duration
from shadow.diff import (
    SAME,
    VERDICTS,
    Comparator,
    Comparison,
    IgnoreRules,
    Reply,
    check_pattern,
    endpoint_of,
)
from shadow.transport import MirrorTransport

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MARKER = ("X-Shadow-Request", "1")
# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection; httpx writes its own Host
# and Content-Length for the staging URL and body.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-authorization", "host",
                        "content-length"})
SAMPLE_CHARS = 200
MAX_FIELDS = 50


class ConfigError(ValueError):
    """A setting that cannot work; `setting` names it (the CLI flag or addon option maps it)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class Upstream:
    url: str

    @classmethod
    def parse(cls, setting: str, text: str) -> Upstream:
        try:
            parts = urlsplit(text.strip())   # raises on a broken [IPv6] host
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(setting, f"{text!r}: expected an http:// or https:// URL")
        if parts.username is not None or parts.password is not None:
            raise ConfigError(setting, f"{text!r}: a URL with credentials is not supported "
                                       "(staging's can go in --set-header Authorization:...)")
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError:
            raise ConfigError(setting, f"{text!r}: the port is not a number from 0 to 65535"
                              ) from None
        if parts.query or parts.fragment:
            raise ConfigError(setting, f"{text!r}: a base URL takes no query or fragment")
        return cls(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}")

    def url_for(self, path: str) -> str:
        return self.url + (path if path.startswith("/") else "/" + path)


@dataclass(frozen=True)
class SampleKey:
    """Sample by a hash of this header or query parameter, so one user is always in or out."""

    source: str
    name: str

    @classmethod
    def parse(cls, text: str) -> SampleKey:
        source, _, name = text.partition(":")
        if source not in ("header", "param") or not name.strip():
            raise ConfigError("sample_key", f"{text!r}: expected header:NAME or param:NAME")
        return cls(source, name.strip())

    def value(self, path: str, headers: Sequence[tuple[str, str]]) -> str | None:
        if self.source == "header":
            wanted = self.name.lower()
            return next((v for n, v in headers if n.lower() == wanted), None)
        query = urlsplit(path).query
        return next((v for n, v in parse_qsl(query, keep_blank_values=True)
                     if n == self.name), None)


@dataclass(frozen=True)
class MirrorConfig:
    staging: Upstream
    secondary: Upstream | None = None
    sample: float = 100.0
    sample_key: SampleKey | None = None
    methods: frozenset[str] = SAFE_METHODS
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    strip_headers: frozenset[str] = frozenset()
    set_headers: tuple[tuple[str, str], ...] = ()
    max_body: int = 1024 * 1024
    timeout: float = 10.0
    max_in_flight: int = 100
    ignore: tuple[str, ...] = ()
    verify: bool = True

    @classmethod
    def parse(cls, *, staging: str, secondary: str | None = None, sample: str = "100",
              sample_key: str | None = None, methods: str | None = None,
              allow_unsafe: bool = False, allow: Sequence[str] = (), deny: Sequence[str] = (),
              strip_header: Sequence[str] = (), set_header: Sequence[str] = (),
              max_body: str = "1m", timeout: str = "10s", max_in_flight: str = "100",
              ignore: Sequence[str] = (), insecure: bool = False) -> MirrorConfig:
        """Validate settings as users type them; a bad one raises ConfigError naming it."""
        if not staging:
            raise ConfigError("staging", "is required: the base URL to mirror requests to")
        for pattern in ignore:
            try:
                check_pattern(pattern)
            except (ValueError, re.error) as error:
                raise ConfigError("ignore", f"{pattern!r}: {error}") from None
        return cls(
            staging=Upstream.parse("staging", staging),
            secondary=Upstream.parse("secondary", secondary) if secondary else None,
            sample=_percent(sample),
            sample_key=SampleKey.parse(sample_key) if sample_key else None,
            methods=_methods(methods, allow_unsafe),
            allow=tuple(_glob("allow", p) for p in allow),
            deny=tuple(_glob("deny", p) for p in deny),
            strip_headers=frozenset(_header_name("strip_header", h) for h in strip_header),
            set_headers=tuple(_header_pair(h) for h in set_header),
            max_body=_size(max_body),
            timeout=_timeout(timeout),
            max_in_flight=_positive("max_in_flight", max_in_flight),
            ignore=tuple(ignore),
            verify=not insecure,
        )


def _percent(text: str) -> float:
    try:
        value = float(str(text).strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise ConfigError("sample", f"{text!r}: expected a percentage from 0 to 100")
    return value


def _methods(text: str | None, allow_unsafe: bool) -> frozenset[str]:
    if text is None:
        return SAFE_METHODS
    methods = frozenset(m.strip().upper() for m in text.split(",") if m.strip())
    if not methods or any(not re.fullmatch(r"[A-Z]+", m) for m in methods):
        raise ConfigError("methods", f"{text!r}: expected HTTP methods like GET,HEAD")
    unsafe = sorted(methods - SAFE_METHODS)
    if unsafe and not allow_unsafe:
        raise ConfigError("methods", f"{','.join(unsafe)} may change staging's data; "
                                     "add --allow-unsafe to mirror them anyway")
    return methods


def _glob(setting: str, pattern: str) -> str:
    if not pattern.startswith("/"):
        raise ConfigError(setting, f"{pattern!r}: expected a path pattern like /api/*")
    return pattern


def _header_name(setting: str, name: str) -> str:
    name = name.strip()
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise ConfigError(setting, f"{name!r}: not a header name")
    return name.lower()


def _header_pair(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon:
        raise ConfigError("set_header", f"{text!r}: expected NAME:VALUE")
    value = value.strip()
    # RFC 9110 field-value: visible characters, spaces and tabs; a CR or LF would start
    # another header (or end the head) in every mirrored request
    if not re.fullmatch(r"[\t\x20-\x7e\x80-\xff]*", value):
        raise ConfigError("set_header", f"{text!r}: a header value cannot hold control "
                                        "characters such as CR or LF")
    return _header_name("set_header", name), value


def _size(text: str) -> int:
    try:
        size = parse_size(str(text).strip())
    except ValueError:
        size = None
    if size is None or size < 0:
        raise ConfigError("max_body", f"{text!r}: expected a size like 512k, 1m or 65536")
    return size


def _timeout(text: str) -> float:
    try:
        return parse_duration(str(text))
    except DurationError as error:
        raise ConfigError("timeout", str(error)) from None


def _positive(setting: str, text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(setting, f"{text!r}: expected a whole number, 1 or more")
    return value


@dataclass(frozen=True)
class RequestSnapshot:
    """The client's request as production received it, before any proxy rewrote it."""

    id: str
    time: float
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Production:
    """Production's answer as the proxy passed it on: the body still content-encoded."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    latency: float | None = None
    error: str | None = None

    def reply(self) -> Reply:
        if self.status is None:
            return Reply.failure(self.error or "no response", self.latency)
        encoding = next((v.strip().lower() for n, v in self.headers
                         if n.lower() == "content-encoding"), "identity")
        body = self.body
        if encoding not in ("identity", ""):
            try:
                decoded = encoding_decode(body, encoding)
            except ValueError:
                pass  # compared as sent: staging's copy then differs, which is worth seeing
            else:
                body = decoded if isinstance(decoded, bytes) else decoded.encode()
        return Reply(self.status, self.headers, body, self.latency)


@dataclass
class MirrorStats:
    mirrored: int = 0
    dropped: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    completed: int = 0

    @property
    def in_flight(self) -> int:
        return self.mirrored - self.completed

    def line(self) -> str:
        errors = f", {self.verdicts['error']} failed to compare" if self.verdicts["error"] else ""
        return (f"{self.mirrored} mirrored, {self.dropped} dropped, "
                f"{sum(self.skipped.values())} skipped, {self.in_flight} in flight | "
                + ", ".join(f"{self.verdicts[v]} {v}" for v in VERDICTS) + errors)


class Policy:
    """Decides which requests are mirrored; every no comes with its reason."""

    def __init__(self, config: MirrorConfig, chance: Callable[[], float] = random.random
                 ) -> None:
        self.config = config
        self._chance = chance

    def skip_reason(self, method: str, path: str, headers: Sequence[tuple[str, str]],
                    body: bytes | None) -> str | None:
        config = self.config
        if method.upper() not in config.methods:
            return "method"
        if any(n.lower() == "upgrade" for n, _ in headers):
            return "upgrade"  # a WebSocket or h2c handshake is a connection, not a request
        route = path.split("?", 1)[0]
        if any(fnmatch.fnmatchcase(route, p) for p in config.deny):
            return "denied"
        if config.allow and not any(fnmatch.fnmatchcase(route, p) for p in config.allow):
            return "not_allowed"
        if body is None:
            return "streamed"
        if len(body) > config.max_body:
            return "body_too_large"
        if not self.sampled(path, headers):
            return "sampled_out"
        return None

    def sampled(self, path: str, headers: Sequence[tuple[str, str]]) -> bool:
        percent = self.config.sample
        if percent >= 100:
            return True
        key = self.config.sample_key
        value = key.value(path, headers) if key else None
        if value is None:
            # Requests without the key are anonymous: sampled at random at the same rate.
            return self._chance() * 100 < percent
        digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
        return int.from_bytes(digest) % 10_000 < percent * 100


def staging_headers(request: RequestSnapshot, config: MirrorConfig) -> list[tuple[str, str]]:
    connection_tokens = {t.strip().lower() for n, v in request.headers
                         if n.lower() == "connection" for t in v.split(",")}
    replaced = {name for name, _ in config.set_headers}
    dropped = HOP_BY_HOP | connection_tokens | config.strip_headers | replaced | {
        MARKER[0].lower()}
    kept = [(n, v) for n, v in request.headers if n.lower() not in dropped]
    return [*kept, *config.set_headers, MARKER]


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass   # the one way httpx's client stores what a response set


_NO_COOKIES = _NoCookies()   # stays empty, so every client and response can share it


class _CookielessClient(httpx.AsyncClient):
    """httpx's client, keeping no cookies. Its own keeps the cookies responses set and
    sends them with later requests: the session staging gives one user would ride along
    on the next user's replay. Each replay carries its own client's Cookie header only.
    (A jar that stores nothing would do that too, but httpx still builds a urllib request
    for it from every response: a tenth of the worker's time per replay.)"""

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass   # the client's constructor sets an empty jar: there is nothing to keep


class Mirror:
    """Replays one request against staging (and the secondary) and compares the answers."""

    def __init__(self, config: MirrorConfig) -> None:
        self.config = config
        self.comparator = Comparator(IgnoreRules(config.ignore))
        # No timeout of httpx's own: `_send` bounds each exchange as a whole.
        self._client = _CookielessClient(
            timeout=None, follow_redirects=False,
            transport=MirrorTransport(verify=config.verify))

    async def compare(self, request: RequestSnapshot, production: Production) -> dict[str, Any]:
        """The report record of one request: staging's answer next to production's."""
        secondary: Reply | None = None
        if self.config.secondary:
            staging, secondary = await asyncio.gather(
                self._send(self.config.staging, request),
                self._send(self.config.secondary, request))
        else:   # awaited in this task: gather would start one more
            staging = await self._send(self.config.staging, request)
        primary = production.reply()
        endpoint = endpoint_of(request.method, request.path)
        comparison = self.comparator.compare(endpoint, primary, staging, secondary)
        return make_record(request, endpoint, comparison, primary, staging, secondary)

    async def _send(self, upstream: Upstream, request: RequestSnapshot) -> Reply:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.config.timeout):
                # Built as it is, not by the client: that would add default headers
                # (Accept, User-Agent...) the client never sent.
                outgoing = httpx.Request(
                    request.method, upstream.url_for(request.path),
                    headers=staging_headers(request, self.config), content=request.body or None)
                response = await self._client.send(outgoing, stream=True)
                try:
                    body, truncated = await _read_capped(response, self.config.max_body)
                finally:
                    await response.aclose()
        except TimeoutError:
            return Reply.failure(f"timeout after {self.config.timeout:g}s",
                                 time.perf_counter() - started)
        except httpx.HTTPError as error:
            return Reply.failure(_describe(error), time.perf_counter() - started)
        return Reply(response.status_code, tuple(response.headers.multi_items()), body,
                     time.perf_counter() - started, truncated=truncated)

    async def aclose(self) -> None:
        await self._client.aclose()


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        if size + len(chunk) > cap:
            chunks.append(chunk[:cap - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def _describe(error: Exception) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def make_record(request: RequestSnapshot, endpoint: str, comparison: Comparison,
                production: Reply, staging: Reply, secondary: Reply | None) -> dict[str, Any]:
    """One report line: flat, so logtui filters (verdict:regression) can address it."""
    fields = [{"path": d.path, "kind": d.kind, "production": d.production,
               "staging": d.staging, "noise": d.path in comparison.noise}
              for d in comparison.differences[:MAX_FIELDS]]
    record: dict[str, Any] = {
        "id": request.id, "time": request.time, "method": request.method,
        "path": request.path, "endpoint": endpoint, "verdict": comparison.verdict,
        **_side("production", production), **_side("staging", staging),
        # staging's extra time on this very request (negative: staging was faster)
        "latency_delta": (staging.latency - production.latency
                          if staging.latency is not None and production.latency is not None
                          else None),
        "fields": fields, "fields_total": len(comparison.differences),
    }
    if secondary is not None:
        record.update(_side("secondary", secondary))
        record["secondary_fields"] = (list(comparison.secondary_paths)
                                      if comparison.secondary_paths is not None else None)
    if comparison.verdict != SAME:
        record["samples"] = {"production": _sample(production), "staging": _sample(staging)}
    return record


def _side(name: str, reply: Reply) -> dict[str, Any]:
    return {f"{name}_status": reply.status, f"{name}_latency": reply.latency,
            f"{name}_error": reply.error, f"{name}_bytes": len(reply.body)}


def _sample(reply: Reply) -> str:
    if reply.status is None:
        return reply.error or ""
    text = reply.body[:SAMPLE_CHARS * 4].decode("utf-8", "replace")
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS - 1] + "…"
