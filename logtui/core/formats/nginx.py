"""nginx `log_format` lines compiled to a column parser, and the classic formats.

`compile_log_format('$remote_addr - $remote_user [$time_local] "$request" ...')` turns
each `$variable` into a capture group shaped by the text that follows it, and maps the
standard variables onto the normalised columns. Variables with no column are kept as
record fields under their own names. combined, common and vhost_combined are the same
compiler applied to their well-known definitions.
"""

from __future__ import annotations

import re

from logtui.core.formats.regex import (
    RegexFormat,
    Target,
    as_float,
    as_int,
    first_address,
    strip_port,
    sum_of_times,
)

VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")

# Where each standard variable goes. Several may feed one column; the first present
# in this order wins (e.g. $request_time before $upstream_response_time).
TARGETS: dict[str, Target] = {
    "remote_addr": Target("ip", lenient_convert=first_address),
    "realip_remote_addr": Target("ip", lenient_convert=first_address),
    "http_x_real_ip": Target("ip", lenient_convert=first_address),
    "http_x_forwarded_for": Target("ip", lenient_convert=first_address),
    "binary_remote_addr": Target("ip", lenient_convert=first_address),
    "request": Target("request"),
    "request_method": Target("method"),
    "request_uri": Target("path"),
    "uri": Target("path"),
    "document_uri": Target("path"),
    "status": Target("status", as_int),
    "body_bytes_sent": Target("bytes", as_int),
    "bytes_sent": Target("bytes", as_int),
    "request_time": Target("latency", as_float),
    "upstream_response_time": Target("latency", sum_of_times),
    "http_user_agent": Target("ua"),
    "http_referer": Target("referer"),
    "host": Target("host"),
    "http_host": Target("host"),
    "server_name": Target("host"),
    "vhost": Target("host", strip_port),
    "time_local": Target("time", time_kind="clf"),
    "time_iso8601": Target("time", time_kind="iso8601"),
    "msec": Target("time", time_kind="epoch"),
}
PRIORITY = {name: rank for rank, name in enumerate(TARGETS)}

# Capture shapes for variables whose values have a known form; these keep format
# detection honest (a 3-digit status, digits for sizes) instead of matching anything.
SHAPES: dict[str, str] = {
    "status": r"\d{3}|-",
    "body_bytes_sent": r"\d+|-",
    "bytes_sent": r"\d+|-",
    "request_length": r"\d+|-",
    "request_time": r"\d+(?:\.\d+)?|-",
    "msec": r"\d+(?:\.\d+)?",
    "time_local": r"\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}",
    "time_iso8601": r"\d{4}-\d{2}-\d{2}T[^\s\"]+",
}
# $upstream_* list one value per upstream tried: "0.100, 0.004 : 0.2" (nginx docs).
UPSTREAM_LIST = r"[^\s,]+(?:(?:, | : )[^\s,]+)*"
SHAPES.update(dict.fromkeys(
    ("upstream_response_time", "upstream_connect_time", "upstream_header_time",
     "upstream_status", "upstream_addr", "upstream_response_length",
     "upstream_bytes_received", "upstream_bytes_sent"), UPSTREAM_LIST))
ADDRESS_VARIABLES = {"remote_addr", "realip_remote_addr", "http_x_forwarded_for",
                     "http_x_real_ip", "binary_remote_addr"}
# One address, or what proxies in front of nginx leave there: 'a, b, c', optionally
# quoted, and then possibly the connecting address: '"a, b" c' (as Filebeat accepts).
ADDRESS_LIST = r'(?:"[^"]*"|[^\s,"]+(?:, ?[^\s,"]+)+)(?: [^\s,"]+)?|[^\s,"]+'
SINGLE_ADDRESS = r'[^\s,"]+'
QUOTED = r'(?:[^"\\]|\\.)*'               # a quoted value may contain \" escapes

COMBINED = ('$remote_addr $remote_ident $remote_user [$time_local] "$request" $status '
            '$body_bytes_sent "$http_referer" "$http_user_agent"')
COMMON = '$remote_addr $remote_ident $remote_user [$time_local] "$request" $status $body_bytes_sent'
VHOST_COMBINED = f"$vhost {COMBINED}"
INGRESS = (f"{COMBINED} $request_length $request_time [$proxy_upstream_name] "
           "[$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length "
           "$upstream_response_time $upstream_status $req_id")


class LogFormatError(ValueError):
    """A log_format line that cannot be compiled."""


def _capture(name: str, before: str, after: str, allow_tail: bool, lenient: bool) -> str:
    if name in SHAPES:
        return SHAPES[name]
    if name in ADDRESS_VARIABLES and after.startswith(" "):
        return ADDRESS_LIST if lenient else SINGLE_ADDRESS
    if before.endswith('"') and after.startswith('"'):
        return QUOTED
    if not after:
        return r"\S*" if allow_tail else r".*"
    stop = re.escape(after[0])
    return rf"[^{stop}]*" if after[0] != " " else r"\S*"


def compile_log_format(spec: str, name: str = "nginx", *, allow_tail: bool = False) -> RegexFormat:
    """Compile an nginx log_format line; `allow_tail` accepts extra trailing fields."""
    pieces = VARIABLE.split(spec)
    # split() yields literal, {name}, name, literal, ... : regroup into (literal, variable) pairs
    literals = pieces[0::3]
    names = [braced or bare for braced, bare in zip(pieces[1::3], pieces[2::3], strict=True)]
    if not names:
        raise LogFormatError(f"log_format {spec!r} has no $variables")
    for variable in names:
        # $1 is a regex capture in nginx, and a leading '_' is ours (_matched, _tail)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", variable):
            raise LogFormatError(f"log_format {spec!r}: ${variable} is no variable name")
    tail = "_tail" if allow_tail else None

    def build(lenient: bool) -> str:
        pattern = [re.escape(literals[0])]
        for index, variable in enumerate(names):
            before, after = literals[index], literals[index + 1]
            capture = _capture(variable, before, after, allow_tail, lenient)
            # a repeated variable must not redefine its group
            first = names.index(variable) == index
            pattern.append(f"(?P<{variable}>{capture})" if first else f"(?:{capture})")
            pattern.append(re.escape(after))
        # One space, then everything: `\s+` before `.*` (or a lazy `.*?`) leaves the regex
        # engine ambiguous choices and makes it several times slower on every line.
        pattern.append(rf"(?: (?P<{tail}>.*))?$" if tail else r"\s*$")
        return "".join(pattern)

    strict, lenient = build(lenient=False), build(lenient=True)
    targets = {v: TARGETS[v] for v in sorted(set(names) & TARGETS.keys(), key=PRIORITY.__getitem__)}
    extras = tuple(v for v in names if v not in TARGETS and v not in _IGNORED)
    # Client lists ("a, b" c) make the pattern three times slower, so only the lines the
    # plain pattern misses are tried with them.
    return RegexFormat(name=name, pattern=strict, targets=targets,
                       extra_groups=tuple(dict.fromkeys(extras)), tail_group=tail,
                       lenient=lenient if lenient != strict else None)


# Placeholders of the classic formats that carry nothing worth a record field.
_IGNORED = {"remote_ident"}

BUILTIN_SPECS = {
    "combined": COMBINED,
    "common": COMMON,
    "vhost": VHOST_COMBINED,
    "ingress": INGRESS,
}


def builtin(name: str) -> RegexFormat:
    return compile_log_format(BUILTIN_SPECS[name], name, allow_tail=True)

