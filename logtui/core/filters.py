"""The filter language (the '/' key, --filter, viewer subscriptions) compiled to polars.

Text goes through a tokenizer and a recursive-descent parser into term nodes; each node
builds its own boolean expression. The drill helpers edit filter text one term at a time.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import polars as pl
from polars.exceptions import PolarsError

from logtui.core.event import NUMERIC_FIELDS, text_of

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

__all__ = ["FIELDS", "Filter", "FilterError", "add_term", "compile_filter", "remove_last_term",
           "term_for"]

# How a plain value (no glob characters) matches each text field, and whether case matters.
_TEXT_FIELDS: dict[str, tuple[str, bool]] = {
    "tag": ("equals", True),
    "ip": ("equals", True),
    "path": ("equals", True),
    "endpoint": ("equals", True),   # the path's template, /users/{id}: filled by the pipeline
    "method": ("equals", False),
    "host": ("equals", False),
    "country": ("equals", False),
    "level": ("equals", False),
    "bot": ("prefix", False),
    "ua": ("contains", False),
    "referer": ("contains", False),
}
# Field names a term may use; any record field is reachable as field.NAME besides these.
FIELDS = (*_TEXT_FIELDS, *NUMERIC_FIELDS)

_KEY = re.compile(r"([A-Za-z_][\w.-]*):(=?)")
_UNIT = "s|ms|us|µs|μs"
_UNITS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "µs": 1e6, "μs": 1e6}
_NUMBER = re.compile(rf"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)({_UNIT})?")
_RANGE = re.compile(rf"(\d+(?:\.\d*)?(?:{_UNIT})?)-(\d+(?:\.\d*)?(?:{_UNIT})?)")
_CLASS = re.compile(r"(\d+)([xX]+)")
_COMPARISON = re.compile(r"(>=|<=|>|<)(.*)", re.DOTALL)
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}
_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")
_GLOB = frozenset("*?")


class FilterError(ValueError):
    """A filter that does not parse; `position` is the 0-based column the reason is about."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"at column {position + 1}: {reason}")
        self.position = position
        self.reason = reason


@dataclass(frozen=True)
class Filter:
    text: str
    terms: tuple[str, ...]  # source text of each top-level term, for drill-up
    expr: pl.Expr = dataclasses.field(compare=False, repr=False)  # boolean, never null

    @property
    def is_empty(self) -> bool:
        return not self.terms

    def apply(self, frame: Frame) -> Frame:
        return frame if self.is_empty else frame.filter(self.expr)

    def mask(self, frame: pl.DataFrame) -> pl.Series:
        # with_columns, not select: it broadcasts the literal True of the empty filter.
        return frame.with_columns(self.expr.alias("match")).get_column("match")


def compile_filter(text: str) -> Filter:
    parser = _Parser(text)
    expr = pl.lit(True) if parser.node is None else parser.node.expr()
    return Filter(text, tuple(text[start:end] for start, end in parser.spans), expr)


def add_term(text: str, term: str) -> str:
    """Drill-down: `text` narrowed by `term` (whose value is quoted if it has to be)."""
    parser = _Parser(text)
    term = _as_one_term(term)
    base = text.strip()
    if not base:
        return term
    # Appending to `a OR b` would bind to `b` only; the new term must narrow the whole view.
    return f"({base}) {term}" if parser.top_ors else f"{base} {term}"


def remove_last_term(text: str) -> str:
    """Drill-up: `text` without its last top-level term (and an OR left dangling by that)."""
    parser = _Parser(text)
    if not parser.spans:
        return ""
    rest = text[:parser.spans[-1][0]].rstrip()
    if parser.top_ors and parser.top_ors[-1] + len("OR") == len(rest):
        rest = rest[:parser.top_ors[-1]]
    rest = rest.strip()
    # Undo the parentheses add_term puts around a top-level OR, so that drilling down then
    # up gives back the same text.
    if rest.startswith("(") and len(_Parser(rest).spans) == 1 and _Parser(rest[1:-1]).top_ors:
        rest = rest[1:-1].strip()
    return rest


def term_for(field: str, value: object) -> str:
    """The term selecting exactly the rows whose `field` equals `value` (None: is missing)."""
    if value is None:
        return f"-{field}:*"
    if field in NUMERIC_FIELDS:
        return f"{field}:{value}"
    text = str(value)
    # A plain ip value compares exactly, and a plain country ignores only case, which geo
    # lookups never vary; every other field needs := to rule out prefix, substring, glob or
    # case-insensitive matches.
    if field in ("ip", "country") and not _needs_quotes(text) and not set("*?/") & set(text):
        return f"{field}:{text}"
    return f"{field}:={_quote(text) if _needs_quotes(text) else text}"


# --- term nodes ---------------------------------------------------------------------------

class Node(Protocol):
    def expr(self) -> pl.Expr: ...


@dataclass(frozen=True, eq=False)
class Search:
    """The text matches a (Rust syntax) regex."""

    source: pl.Expr
    pattern: str

    def expr(self) -> pl.Expr:
        return self.source.str.contains(self.pattern).fill_null(False)


@dataclass(frozen=True, eq=False)
class Equals:
    source: pl.Expr
    value: str

    def expr(self) -> pl.Expr:
        return self.source.eq(self.value).fill_null(False)


@dataclass(frozen=True, eq=False)
class Present:
    source: pl.Expr

    def expr(self) -> pl.Expr:
        return self.source.is_not_null()


@dataclass(frozen=True, eq=False)
class Compare:
    source: pl.Expr
    op: str
    number: float

    def expr(self) -> pl.Expr:
        return _OPERATORS[self.op](self.source, self.number).fill_null(False)


@dataclass(frozen=True, eq=False)
class InNetwork:
    """The address lies in a network; parsed once per distinct value, then matched by is_in."""

    source: pl.Expr
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def expr(self) -> pl.Expr:
        return self.source.map_batches(self._mask, return_dtype=pl.Boolean,
                                       is_elementwise=True).fill_null(False)

    def _mask(self, ips: pl.Series) -> pl.Series:
        inside = [ip for ip in ips.unique().drop_nulls() if _address_in(ip, self.network)]
        return ips.is_in(inside)


@dataclass(frozen=True, eq=False)
class Not:
    term: Node

    def expr(self) -> pl.Expr:
        return ~self.term.expr()


@dataclass(frozen=True, eq=False)
class All:
    terms: tuple[Node, ...]

    def expr(self) -> pl.Expr:
        return pl.all_horizontal([term.expr() for term in self.terms])


@dataclass(frozen=True, eq=False)
class AnyOf:
    terms: tuple[Node, ...]

    def expr(self) -> pl.Expr:
        return pl.any_horizontal([term.expr() for term in self.terms])


# --- tokenizer ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Token:
    kind: str               # "word", "regex", "(", ")", "-" or "OR"
    start: int
    end: int
    text: str = ""          # a word's value (quotes decoded) or a regex's pattern
    key: str | None = None  # the field of a key:value word
    exact: bool = False     # key:=value
    value_start: int = 0
    quoted: bool = False    # the value had quotes, so it may be empty


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
            continue
        if char in "()":
            token = _Token(char, index, index + 1)
        elif char == "-":
            if index + 1 == len(text) or text[index + 1].isspace() or text[index + 1] == ")":
                raise FilterError(index, "'-' must be followed by a term")
            token = _Token("-", index, index + 1)
        elif char == "/":
            token = _read_regex(text, index)
        else:
            token = _read_word(text, index)
        tokens.append(token)
        index = token.end
    return tokens


def _read_word(text: str, start: int) -> _Token:
    key, exact, value_start = None, False, start
    if match := _KEY.match(text, start):
        key, exact, value_start = match[1], bool(match[2]), match.end()
    parts: list[str] = []
    quoted = False
    depth = 0  # parentheses inside a word, as in path:/a(b), do not end it
    index = value_start
    while index < len(text):
        char = text[index]
        if char.isspace() or (char == ")" and depth == 0):
            break
        if char == '"':
            part, index = _read_quoted(text, index)
            parts.append(part)
            quoted = True
            continue
        depth += (char == "(") - (char == ")")
        parts.append(char)
        index += 1
    value = "".join(parts)
    kind = "OR" if key is None and not quoted and value == "OR" else "word"
    return _Token(kind, start, index, value, key, exact, value_start, quoted)


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    parts: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == '"':
            return "".join(parts), index + 1
        if char == "\\" and text[index + 1:index + 2] in ('"', "\\"):
            index += 1
            char = text[index]
        parts.append(char)
        index += 1
    raise FilterError(start, "unterminated quote")


def _read_regex(text: str, start: int) -> _Token:
    parts: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "/":
            end = index + 1
            if end < len(text) and not (text[end].isspace() or text[end] == ")"):
                raise FilterError(end, "text after /regex/ (write '/' inside a regex as '\\/')")
            return _Token("regex", start, end, "".join(parts))
        if char == "\\" and index + 1 < len(text):
            # \/ is a slash; any other escape is the regex's own and stays as written
            parts.append("/" if text[index + 1] == "/" else text[index:index + 2])
            index += 2
            continue
        parts.append(char)
        index += 1
    raise FilterError(start, "unterminated /regex/ (close it with '/', or quote the text)")


# --- parser -------------------------------------------------------------------------------

MAX_NESTING = 100   # parentheses and negations around one term


class _Parser:
    """alternatives := conjunction ('OR' conjunction)*;  conjunction := unary+;
    unary := '-' unary | '(' alternatives ')' | word | regex."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.spans: list[tuple[int, int]] = []  # source span of each top-level term
        self.top_ors: list[int] = []            # where each top-level OR starts
        self.depth = 0                          # '(' and '-' open around this token
        self.node = self._parse() if self.tokens else None

    def _parse(self) -> Node:
        node = self._alternatives(top=True)
        if self.index < len(self.tokens):  # only a ')' stops the top level early
            raise FilterError(self.tokens[self.index].start, "unmatched ')'")
        return node

    def _next_kind(self) -> str | None:
        return self.tokens[self.index].kind if self.index < len(self.tokens) else None

    def _alternatives(self, top: bool) -> Node:
        options = [self._conjunction(top)]
        while self._next_kind() == "OR":
            token = self.tokens[self.index]
            self.index += 1
            if self._next_kind() in (None, "OR", ")"):
                raise FilterError(token.start, "'OR' needs a term on each side")
            if top:
                self.top_ors.append(token.start)
            options.append(self._conjunction(top))
        return options[0] if len(options) == 1 else AnyOf(tuple(options))

    def _conjunction(self, top: bool) -> Node:
        terms: list[Node] = []
        while self._next_kind() not in (None, "OR", ")"):
            start = self.tokens[self.index].start
            terms.append(self._unary())
            if top:
                self.spans.append((start, self.tokens[self.index - 1].end))
        if terms:
            return terms[0] if len(terms) == 1 else All(tuple(terms))
        # Callers make sure a term or the end follows, so this is an OR or ')' at a level's start.
        token = self.tokens[self.index]
        if token.kind == "OR":
            raise FilterError(token.start, "'OR' needs a term on each side")
        raise FilterError(token.start, "unmatched ')'")

    def _unary(self) -> Node:
        token = self.tokens[self.index]
        self.index += 1
        if token.kind in ("-", "("):
            # the parser recurses: a pasted wall of '(' must be an error, not a crash
            if self.depth == MAX_NESTING:
                raise FilterError(token.start, f"nested more than {MAX_NESTING} deep")
            self.depth += 1
            node = self._negation(token) if token.kind == "-" else self._group(token)
            self.depth -= 1
            return node
        if token.kind == "regex":
            return Search(text_of(), _checked_regex(token.text, token.start))
        if token.key is None:
            return Search(text_of(), "(?i)" + _escape(token.text))
        return _field_term(token, token.key)

    def _negation(self, token: _Token) -> Node:
        if self._next_kind() == "OR":  # the tokenizer already refused a space or ')' after '-'
            raise FilterError(token.start, "'-' must be followed by a term")
        return Not(self._unary())

    def _group(self, token: _Token) -> Node:
        if self._next_kind() is None:
            raise FilterError(token.start, "unclosed '('")
        if self._next_kind() == ")":
            raise FilterError(token.start, "empty parentheses")
        node = self._alternatives(top=False)
        if self._next_kind() is None:
            raise FilterError(token.start, "unclosed '('")
        self.index += 1  # the ')'
        return node


# --- field terms --------------------------------------------------------------------------

def _field_term(token: _Token, key: str) -> Node:
    record = key.startswith("field.")
    if not record and key not in FIELDS:
        raise FilterError(token.start, _unknown_field(key))
    value, at = token.text, token.value_start
    if not value and not token.quoted:
        raise FilterError(at, f"missing value after '{key}:'")
    source = _record_field(key, token.start) if record else pl.col(key)
    if value == "*" and not token.exact:
        return Present(source)
    if key in NUMERIC_FIELDS:
        return _numeric_term(source, value, at, token.exact, units=key == "latency")
    if token.exact:
        return Equals(source, value)
    if record:
        if value.startswith((">", "<")):
            return _numeric_term(source.cast(pl.Float64, strict=False), value, at, False, False)
        return _text_term(source, value, "equals", case_sensitive=True)
    if key == "ip" and "/" in value:
        try:
            return InNetwork(source, ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise FilterError(at, f"bad CIDR '{value}'") from None
    return _text_term(source, value, *_TEXT_FIELDS[key])


def _record_field(key: str, at: int) -> pl.Expr:
    names = key.split(".")[1:]
    if not all(names):
        raise FilterError(at, f"empty record field name in '{key}'")
    # Bracket notation, so that names like user-agent or 0 need no escaping.
    return pl.col("fields").str.json_path_match("$" + "".join(f"['{name}']" for name in names))


def _numeric_term(source: pl.Expr, value: str, at: int, exact: bool, units: bool) -> Node:
    if not exact:
        if match := _COMPARISON.fullmatch(value):
            return Compare(source, match[1], _number(match[2], at + len(match[1]), units))
        if match := _CLASS.fullmatch(value):
            size = 10 ** len(match[2])
            low = int(match[1]) * size
            return All((Compare(source, ">=", low), Compare(source, "<", low + size)))
        if match := _RANGE.fullmatch(value):
            low = _number(match[1], at, units)
            high = _number(match[2], at + match.start(2), units)
            if low > high:
                raise FilterError(at, f"empty range: {match[1]} is above {match[2]}")
            return All((Compare(source, ">=", low), Compare(source, "<=", high)))
    return Compare(source, "==", _number(value, at, units))


def _number(text: str, at: int, units: bool) -> float:
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise FilterError(at, f"bad number '{text}'" if text else "missing number")
    digits, unit = match.groups()
    if unit and not units:
        raise FilterError(at, f"unit '{unit}' only applies to latency")
    # Integers stay exact: a float loses precision on byte counts above 2**53.
    number = int(digits) if digits.lstrip("+-").isdigit() else float(digits)
    return number / _UNITS_PER_SECOND[unit] if unit else number


def _text_term(source: pl.Expr, value: str, mode: str, case_sensitive: bool) -> Node:
    if _GLOB & set(value):
        body = "".join(".*" if char == "*" else "." if char == "?" else _escape(char)
                       for char in value)
        mode = "equals"  # a glob is anchored at both ends
    elif mode == "equals" and case_sensitive:
        return Equals(source, value)
    else:
        body = _escape(value)
    pattern = {"equals": f"^{body}$", "prefix": f"^{body}", "contains": body}[mode]
    return Search(source, ("(?s)" if case_sensitive else "(?is)") + pattern)


def _escape(text: str) -> str:
    return "".join(f"\\{char}" if char in _REGEX_META else char for char in text)


def _checked_regex(pattern: str, at: int) -> str:
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except PolarsError as error:
        # The Rust message spans lines (pattern, caret, "error: ..."); keep the reason.
        lines = str(error).splitlines()
        reason = next((line.removeprefix("error: ") for line in lines
                       if line.startswith("error: ")), lines[0])
        raise FilterError(at, f"bad regex: {reason}") from None
    return pattern


def _address_in(text: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    # A dual-stack listener logs IPv4 clients as ::ffff:a.b.c.d.
    mapped = getattr(address, "ipv4_mapped", None)
    return address in network or (mapped is not None and mapped in network)


def _unknown_field(key: str) -> str:
    guess = difflib.get_close_matches(key, (*FIELDS, "field"), n=1)
    if not guess:
        return f"unknown field '{key}' (quote the word to search for it as text)"
    suggestion = "field.NAME" if guess[0] == "field" else guess[0]
    return f"unknown field '{key}' (did you mean '{suggestion}'?)"


# --- drill helpers ------------------------------------------------------------------------

def _as_one_term(term: str) -> str:
    """`term` if it is one term; else the same with its value (or all of it) quoted."""
    term = term.strip()
    try:
        if len(_Parser(term).spans) == 1:
            return term
    except FilterError:
        pass
    negation = "-" if term.startswith("-") else ""
    rest = term.removeprefix(negation)
    key = match[0] if (match := _KEY.match(rest)) else ""
    quoted = f"{negation}{key}{_quote(rest[len(key):])}"
    _Parser(quoted)  # still refused (an unknown field, a bad number): say why here
    return quoted


def _needs_quotes(value: str) -> bool:
    return not value or any(char.isspace() or char in '"()' for char in value)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
