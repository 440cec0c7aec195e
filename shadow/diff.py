"""Compare production's answer with staging's: a verdict, differences by field path, noise
cancellation and endpoint templates. Pure: no I/O, no event loop, no mitmproxy."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from logtui.core.endpoints import template
from logtui.core.shadow import VERDICTS

# the verdicts, most alarming first: the order reports and logtui's Shadow panel list them
REGRESSION, DIFF, FIXED, BOTH_ERROR, SAME = VERDICTS

# Headers that differ between any two answers by design (time, per-response ids, tracing,
# caches) or only in framing (equal decoded bodies can be sent chunked, compressed or not).
VOLATILE_HEADERS = frozenset({
    "date", "set-cookie", "etag", "last-modified", "expires", "age", "server-timing",
    "x-request-id", "x-correlation-id", "x-amzn-trace-id", "x-trace-id", "x-b3-traceid",
    "x-b3-spanid", "traceparent", "tracestate", "x-runtime", "x-response-time", "cf-ray",
    "x-cache", "x-cache-hits", "x-served-by", "x-timer", "via", "report-to", "nel",
    "content-security-policy", "content-length", "transfer-encoding", "content-encoding",
    "connection", "keep-alive",
})
MAX_DIFFERENCES = 200
SHOWN_CHARS = 120


@dataclass(frozen=True)
class Reply:
    """What one upstream answered: a status, headers and decoded body, or a failure."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    latency: float | None = None
    error: str | None = None
    truncated: bool = False

    @classmethod
    def failure(cls, error: str, latency: float | None = None) -> Reply:
        return cls(status=None, error=error, latency=latency)


@dataclass(frozen=True)
class Difference:
    """One field that differs; `kind` is changed, type, missing, extra or size."""

    path: str
    kind: str
    production: str
    staging: str


@dataclass(frozen=True)
class Comparison:
    verdict: str
    differences: tuple[Difference, ...]
    noise: frozenset[str] = frozenset()
    # Paths where production differed from the secondary instance; None without one.
    secondary_paths: tuple[str, ...] | None = None


class IgnoreRules:
    """Fields never compared: JSON paths and header names, with glob wildcards.

    `$.meta.request_id` or `meta.request_id`; `items[*].id` (any index); `*.updated_at`
    (any key at one level); `**.updated_at` (any depth); `header:x-build` or `header:x-*`;
    `status` and `body` (a non-JSON body). Ignoring a path ignores everything under it.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        volatile = [f"header:{name}" for name in VOLATILE_HEADERS]
        regexes = [_pattern_regex(p) for p in (*volatile, *patterns)]
        self._regex = re.compile("|".join(f"(?:{r})" for r in regexes) or r"(?!)")

    def __contains__(self, path: str) -> bool:
        return self._regex.fullmatch(path) is not None


def _pattern_regex(pattern: str) -> str:
    pattern = pattern.strip()
    if pattern.lower().startswith("header:"):
        name = pattern[len("header:"):].strip().lower()
        return re.escape("header:") + re.escape(name).replace(r"\*", ".*")
    if pattern in ("status", "body"):
        return re.escape(pattern)
    regex = re.escape(_rooted(pattern))
    regex = regex.replace(r"\.\*\*", r"(?:\.[^.\[]+|\[[^\]]*\])*")
    regex = regex.replace(r"\[\*\]", r"\[\d+\]")
    return regex.replace(r"\*", r"[^.\[]*")


def _rooted(pattern: str) -> str:
    """A JSON path pattern from the document's root: 'meta.id' and 'items[*]' are
    '$.meta.id' and '$items[*]'."""
    if pattern.startswith("$"):
        return pattern
    return "$" + ("" if pattern.startswith("[") else ".") + pattern


# What a JSON path pattern may hold after its '$': .key, .* and .** steps, [N], [*] and
# ["key"] (child_path's form for keys that are not plain words).
_PATH_PATTERN = re.compile(r'(?:\.(?:\*\*|[^.\[\]]+)|\[(?:\d+|\*|"(?:[^"\\]|\\.)*")\])*')


def check_pattern(pattern: str) -> None:
    """Raise ValueError when an --ignore pattern cannot match any field."""
    text = pattern.strip()
    if text.lower().startswith("header:"):
        valid = bool(text[len("header:"):].strip())
    elif text in ("status", "body"):
        valid = True
    else:
        steps = _rooted(text).removeprefix("$")
        valid = bool(steps) and _PATH_PATTERN.fullmatch(steps) is not None
    if not valid:
        raise ValueError("expected a JSON path like $.meta.id, items[*].ts, or header:NAME")


# -- verdicts ---------------------------------------------------------------------------

def _errs(reply: Reply, other: Reply) -> bool:
    """A failure, a 5xx, or a 4xx where the other side succeeded."""
    if reply.status is None or reply.status >= 500:
        return True
    return reply.status >= 400 and other.status is not None and other.status < 400


def error_verdict(production: Reply, staging: Reply) -> str | None:
    """regression, fixed or both_error; None when the content must be compared."""
    staging_errs, production_errs = _errs(staging, production), _errs(production, staging)
    if staging_errs and production_errs:
        return BOTH_ERROR
    if staging_errs:
        return REGRESSION
    if production_errs:
        return FIXED
    return None


# -- differences --------------------------------------------------------------------------

def diff_replies(production: Reply, staging: Reply, ignore: IgnoreRules) -> list[Difference]:
    """Status, header and body differences of two successful answers, ignored paths left out."""
    out: list[Difference] = []
    if production.status != staging.status and "status" not in ignore:
        out.append(Difference("status", "changed", str(production.status), str(staging.status)))
    _diff_headers(production.headers, staging.headers, ignore, out)
    _diff_bodies(production, staging, ignore, out)
    return out[:MAX_DIFFERENCES]


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, list[str]] = defaultdict(list)
    for name, value in headers:
        merged[name.lower()].append(value)
    return {name: ", ".join(values) for name, values in merged.items()}


def _diff_headers(production: Sequence[tuple[str, str]], staging: Sequence[tuple[str, str]],
                  ignore: IgnoreRules, out: list[Difference]) -> None:
    left, right = _header_map(production), _header_map(staging)
    for path, a, b in _shared_keys(sorted(left.keys() | right.keys()), left, right,
                                   lambda name: f"header:{name}", _clip, ignore, out):
        if a != b:
            out.append(Difference(path, "changed", _clip(a), _clip(b)))


def _shared_keys(keys: Iterable[str], left: Mapping[str, Any], right: Mapping[str, Any],
                 path_of: Callable[[str], str], show: Callable[[Any], str],
                 ignore: IgnoreRules, out: list[Difference]) -> Iterator[tuple[str, Any, Any]]:
    """(path, left value, right value) for the keys both sides have, in `keys` order; a key
    only one side has is recorded as missing or extra. Ignored paths are left out."""
    for key in keys:
        path = path_of(key)
        if path in ignore:
            continue
        if key not in right:
            out.append(Difference(path, "missing", show(left[key]), ""))
        elif key not in left:
            out.append(Difference(path, "extra", "", show(right[key])))
        else:
            yield path, left[key], right[key]


_MISSING = object()


def _parse_json(body: bytes) -> Any:
    stripped = body.lstrip()
    if not stripped or stripped[:1] not in b'{["-0123456789tfn':
        return _MISSING
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return _MISSING


def _diff_bodies(production: Reply, staging: Reply, ignore: IgnoreRules,
                 out: list[Difference]) -> None:
    if production.body == staging.body and production.truncated == staging.truncated:
        return
    left, right = _parse_json(production.body), _parse_json(staging.body)
    if left is not _MISSING and right is not _MISSING and not (
            production.truncated or staging.truncated):
        if "$" not in ignore:
            _walk("$", left, right, ignore, out)
    elif "body" not in ignore:
        out.append(_text_difference(production, staging))


def _text_difference(production: Reply, staging: Reply) -> Difference:
    """Where two bodies part: the first differing line of text, else sizes or digests."""
    if production.truncated or staging.truncated:
        return Difference("body", "size", _size(production), _size(staging))
    left, right = _text(production.body), _text(staging.body)
    if left is not None and right is not None:
        for number, (a, b) in enumerate(zip(left.splitlines(), right.splitlines(),
                                            strict=False), start=1):
            if a != b:
                return Difference("body", "changed", f"line {number}: {_clip(a)}",
                                  f"line {number}: {_clip(b)}")
    if len(production.body) != len(staging.body):
        return Difference("body", "size", _size(production), _size(staging))
    return Difference("body", "changed", _digest(production.body), _digest(staging.body))


def _text(body: bytes) -> str | None:
    if b"\x00" in body:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _digest(body: bytes) -> str:
    return f"{len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:12]}"


def _size(reply: Reply) -> str:
    if reply.truncated:
        return f"over {len(reply.body)} bytes (cut at the size cap)"
    return f"{len(reply.body)} bytes"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def child_path(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def _walk(path: str, left: Any, right: Any, ignore: IgnoreRules,
          out: list[Difference]) -> None:
    if len(out) >= MAX_DIFFERENCES:
        return
    kind = _kind(left)
    if kind != _kind(right):
        out.append(Difference(path, "type", _show(left), _show(right)))
    elif kind == "object":
        keys = [*left, *(k for k in right if k not in left)]
        for sub, a, b in _shared_keys(keys, left, right, lambda key: child_path(path, key),
                                      _show, ignore, out):
            _walk(sub, a, b, ignore, out)
    elif kind == "array":
        if len(left) != len(right):
            out.append(Difference(path, "size", str(len(left)), str(len(right))))
        for index, (a, b) in enumerate(zip(left, right, strict=False)):
            if (sub := f"{path}[{index}]") not in ignore:
                _walk(sub, a, b, ignore, out)
    elif left != right:
        out.append(Difference(path, "changed", _show(left), _show(right)))


def _show(value: Any) -> str:
    return _clip(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _clip(text: str, limit: int = SHOWN_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- noise cancellation -------------------------------------------------------------------

@dataclass
class EndpointNoise:
    raw: Counter[str] = field(default_factory=Counter)
    noise: Counter[str] = field(default_factory=Counter)


class NoiseFilter:
    """Diffy's noise cancellation with a significance test, per endpoint and field.

    For every request compared with both staging and a secondary production instance, a
    field counts once in `raw` if production and staging differ on it and once in `noise`
    if production and the secondary do. The field is a finding only when the excess
    r - s is both significant and large: r - s >= z * sqrt(r + s) (a z-sigma excess: under
    "staging differs only as much as production does", r - s has a standard deviation of
    at most sqrt(r + s)) and r - s >= relative * (r + s) (Diffy's relative threshold).
    With z = 3 a field needs at least 9 differing requests before it is reported, and a
    field that varies at random on both production instances is reported with a
    probability well under 0.2 % per check. Diffy's absolute threshold (the excess as a
    share of all requests) is left out: a field broken for a few users is still broken.
    While nothing is known of an endpoint's noise (its secondary never answered),
    differences are reported as they would be without a secondary.
    """

    def __init__(self, *, relative: float = 0.2, z: float = 3.0) -> None:
        self.relative = relative
        self.z = z
        self.endpoints: dict[str, EndpointNoise] = defaultdict(EndpointNoise)

    def observe(self, endpoint: str, raw: Iterable[str], noise: Iterable[str]) -> None:
        counts = self.endpoints[endpoint]
        counts.raw.update(set(raw))
        counts.noise.update(set(noise))

    def is_noise(self, endpoint: str, path: str) -> bool:
        counts = self.endpoints.get(endpoint)
        if counts is None:
            return False
        raw, noise = counts.raw[path], counts.noise[path]
        excess = raw - noise
        return not (excess > 0 and excess >= self.z * math.sqrt(raw + noise)
                    and excess >= self.relative * (raw + noise))


class Comparator:
    """Turns three answers into a Comparison, learning each endpoint's noise as it goes."""

    def __init__(self, ignore: IgnoreRules | None = None, noise: NoiseFilter | None = None
                 ) -> None:
        self.ignore = ignore or IgnoreRules()
        self.noise = noise or NoiseFilter()

    def compare(self, endpoint: str, production: Reply, staging: Reply,
                secondary: Reply | None = None) -> Comparison:
        verdict = error_verdict(production, staging)
        if verdict is not None:
            status = Difference("status", "changed", _status(production), _status(staging))
            return Comparison(verdict, (status,) if status.production != status.staging else ())
        differences = tuple(diff_replies(production, staging, self.ignore))
        if secondary is None:
            return Comparison(SAME if not differences else DIFF, differences)
        secondary_paths: tuple[str, ...] | None = None
        if error_verdict(production, secondary) is None:
            secondary_paths = tuple(d.path for d in diff_replies(production, secondary,
                                                                 self.ignore))
            self.noise.observe(endpoint, (d.path for d in differences), secondary_paths)
        noise = frozenset(d.path for d in differences if self.noise.is_noise(endpoint, d.path))
        reported = any(d.path not in noise for d in differences)
        return Comparison(DIFF if reported else SAME, differences, noise, secondary_paths)


def _status(reply: Reply) -> str:
    return str(reply.status) if reply.status is not None else reply.error or "failed"


# -- endpoints ----------------------------------------------------------------------------

def endpoint_of(method: str, path: str) -> str:
    """`GET /users/123?x=1` -> `GET /users/{id}`, grouped as logtui's panels group paths."""
    return f"{method.upper()} {template(path)}"
