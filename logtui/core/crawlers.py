"""Crawler detection over the crawler-user-agents patterns, with short readable bot names."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from logtui.core.enrich import map_distinct

CACHE_SIZE = 100_000
NAME_MAX = 40
_CHUNK = 25  # patterns per chunk when finding which patterns matched a known bot

# A pattern made only of literal characters and escaped punctuation (1468 of the 1504).
_LITERAL = re.compile(r"(?:[^\\.^$*+?()\[\]{}|]|\\[^A-Za-z0-9])+")
_UNESCAPE = re.compile(r"\\(.)")

# Characters that end a product token ("Name/1.0") inside a UA.
_DELIMS = frozenset(' ;(),"[]\t')
_HARD_DELIMS = re.compile(r"[;(),\"\[\]\t]")
# "-1.20-SNAPSHOT", "_2.6.3", "0.5.0", " v1.1" but not the "71" of "ltx71".
_VERSION = re.compile(r"(?:[-_ ][vV]?\d+(?:\.\d+)*|[vV]?\d+(?:\.\d+)+)(?:[-._][0-9A-Za-z]+)*$")
_BARE_VERSION = re.compile(r"[vV]?\d+(?:[._]\d+)*[a-z]?")
_URL = re.compile(r"^[+@]?(?:[a-z][a-z0-9+.-]*://|www\.)", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]@[\w-]+\.")
_HOST = re.compile(r"^[+]?(?:[a-z][a-z0-9+.-]*://)?(?:[^/@\s]*@)?(?:www\.)?([^/:?#\s]+)",
                   re.IGNORECASE)
# Browser and platform words that never name a bot: skipped when the pattern matched inside
# a URL and the name has to come from the neighbouring text instead.
_GENERIC = frozenset({
    "mozilla", "applewebkit", "chrome", "chromium", "safari", "firefox", "gecko", "version",
    "mobile", "edge", "edg", "opr", "opera", "khtml", "like", "compatible", "msie", "trident",
    "windows", "linux", "android", "iphone", "ipad", "ipod", "macintosh", "x11", "u", "i", "n",
    "wow64", "win64", "x64", "x86_64", "arm", "touch", "nokia", "lumia", "iemobile", "cpu",
    "intel", "ubuntu", "fedora", "cros", "webview", "wv", "sv1", "tablet", "media", "center",
    "nt", "mac", "os", "x",
})
# Words that may be part of a bot's name ("Speedy Spider") but are no name on their own.
_WEAK = frozenset({"bot", "robot", "crawler", "spider", "beta", "web", "search"})
_LOCALE = re.compile(r"^[a-z]{2}(?:[-_][A-Za-z]{2})?$|^rv:|Build/|^\.NET|^Win\d", re.IGNORECASE)


def _trie_regex(words: Iterable[str]) -> str:
    """One regex for many literals, as a character trie.

    Python's `re` tries every branch of an alternation at every position; a trie shares
    prefixes, which makes "is this any known bot" about 13x faster than the flat alternation.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            # A word ends here; a longer word may continue, so the rest is optional.
            return body + "?" if len(body) == 1 else f"(?:{body})?"
        return body

    return emit(root)


def _clean(token: str) -> str:
    """'+Googlebot-Image/1.0' -> 'Googlebot-Image': no version, no decoration."""
    token = token.strip().lstrip("+@")
    token = token.split("/", 1)[0].strip()
    stripped = _VERSION.sub("", token)
    if stripped:  # a token that is only a version ("008") keeps it
        token = stripped
    return token.strip(" .,:;-_!'|+=").strip()


def _is_url(token: str) -> bool:
    return bool(_URL.match(token) or _EMAIL.search(token))


def _is_version(word: str) -> bool:
    return bool(_BARE_VERSION.fullmatch(word.strip().lstrip("+").split("/", 1)[0].strip(" .,;")))


def _is_generic(text: str) -> bool:
    words = text.split()
    if not words:
        return True
    first = _clean(words[0])
    if not first or first.lower() in _GENERIC or _LOCALE.search(text.strip()):
        return True
    return all(_clean(word).lower() in _WEAK for word in words)


def _shorten(name: str) -> str:
    if len(name) <= NAME_MAX:
        return name
    cut = name[:NAME_MAX].rsplit(" ", 1)[0]
    return cut.rstrip(" .,:;-_!")


class CrawlerMatcher:
    """Case-sensitive matcher over a list of crawler patterns, built once."""

    def __init__(self, data: Sequence[Mapping[str, Any]] | None = None,
                 cache_size: int = CACHE_SIZE) -> None:
        if data is None:
            import crawleruseragents

            data = crawleruseragents.CRAWLER_USER_AGENTS_DATA
        self.patterns: list[str] = [entry["pattern"] for entry in data]
        literals: list[str] = []
        others: list[str] = []
        for pattern in self.patterns:
            if _LITERAL.fullmatch(pattern):
                literals.append(_UNESCAPE.sub(r"\1", pattern))
            else:
                others.append(f"(?:{pattern})")
        self._any = re.compile("|".join([_trie_regex(literals), *others]))
        # Which patterns matched is asked only for bots: chunked alternations skip most
        # patterns with one search per chunk, then the chunk's members are tried one by one.
        self._compiled = [re.compile(pattern) for pattern in self.patterns]
        self._chunks = [
            (re.compile("|".join(f"(?:{p})" for p in self.patterns[i:i + _CHUNK])),
             range(i, min(i + _CHUNK, len(self.patterns))))
            for i in range(0, len(self.patterns), _CHUNK)
        ]
        self._cached_name = functools.lru_cache(maxsize=cache_size)(self._name)

    def is_bot(self, ua: str | None) -> bool:
        if not ua:
            return False
        return self._any.search(ua) is not None

    def matching(self, ua: str) -> list[int]:
        """Indices of every pattern that matches `ua`."""
        if not self._any.search(ua):
            return []
        found: list[int] = []
        for chunk, indices in self._chunks:
            if chunk.search(ua):
                found.extend(i for i in indices if self._compiled[i].search(ua))
        return found

    def name(self, ua: str | None) -> str | None:
        """A short, version-free name for the crawler behind `ua`, or None for a human."""
        if not ua:
            return None
        return self._cached_name(ua)

    def cache_info(self) -> functools._CacheInfo:
        return self._cached_name.cache_info()

    def bot_names(self, uas: pl.Series) -> pl.Series:
        """`name` over a column: computed once per distinct UA, then mapped back."""
        # The Python work is per distinct UA (a few hundred per million rows in real logs);
        # the mapping back to every row runs inside polars.
        return map_distinct(uas, self.name)

    # -- naming -------------------------------------------------------------------------

    def _name(self, ua: str) -> str | None:
        best: tuple[bool, int, int, int, int] | None = None
        for index in self.matching(ua):
            for match in self._compiled[index].finditer(ua):
                start, end = match.span()
                while start < end and ua[start] in _DELIMS:
                    start += 1  # "(^| )PTST\/" matches the space before the name
                if end == start:
                    continue
                in_url = _is_url(_token_at(ua, start))
                # A product token names a bot better than a URL; then the most specific
                # (longest) match wins, so Googlebot-Image beats Googlebot.
                key = (not in_url, end - start, -start, start, end)
                if best is None or key > best:
                    best = key
        if best is None:
            return None
        in_product, _, _, start, end = best
        name = _name_at(ua, start, end) if in_product else _name_near_url(ua, start)
        return _shorten(name) or _shorten(_clean(ua[start:end])) or ua[start:end].strip()


def _token_bounds(ua: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and ua[start - 1] not in _DELIMS:
        start -= 1
    while end < len(ua) and ua[end] not in _DELIMS:
        end += 1
    return start, end


def _token_at(ua: str, pos: int) -> str:
    start, end = _token_bounds(ua, pos, pos)
    return ua[start:end]


def _name_at(ua: str, start: int, end: int) -> str:
    """The product token around a match: 'Mozilla/5.0 (compatible; AhrefsBot/7.0; ...)'."""
    left, right = _token_bounds(ua, start, end)
    text = ua[left:right]
    # A match that crossed "(" or ";" (e.g. 'SSL Labs (https://...') names only its head.
    hard = _HARD_DELIMS.search(text, start - left + 1)
    if hard:
        text = text[:hard.start()]
    # "Safari/605.1.15/Nutch-1.20" or "Jeeves/Teoma": the '/'-part where the match starts.
    offset = start - left
    parts = text.split("/")
    position = 0
    for part in parts:
        if offset < position + len(part) + 1:
            text = part if part.strip() else text
            break
        position += len(part) + 1
    return _clean(text)


def _enclosing_paren(ua: str, pos: int) -> int:
    """Index of the "(" whose group contains `pos` (nested groups skipped), or -1."""
    depth = 0
    for index in range(pos - 1, -1, -1):
        char = ua[index]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                return index
            depth -= 1
    return -1


def _product_words(text: str) -> str:
    """The last run of (at most 3) non-generic words in `text`: 'Speedy Spider'."""
    words: list[str] = []
    for word in reversed(text.split()):
        if _is_version(word):
            continue  # "Yanga WorldSearch Bot v1.1/beta", "VoilaBot BETA 1.2"
        cleaned = _clean(word)
        if _is_url(word) or word in "-|" or (cleaned and cleaned.lower() in _GENERIC):
            break
        if cleaned:
            words.insert(0, cleaned)
        if len(words) == 3:
            break
    if all(word.lower() in _WEAK for word in words):
        return ""
    return " ".join(words)


def _segment_name(group: str) -> str:
    """The nearest product-like ';'-segment of a parenthesised group, from its end."""
    for segment in reversed(group.split(";")):
        text = segment.strip().lstrip("+").strip()
        # More than three words is prose ("Crawl your own stuff with"), not a name.
        if text and not _is_url(text) and not _is_generic(text) and len(text.split()) <= 3:
            name = _clean(text)
            if name:
                return name
    return ""


def _name_near_url(ua: str, pos: int) -> str:
    """The pattern matched a URL or e-mail address: name the product that points to it.

    First the words just before the enclosing group ("Speedy Spider (http://...)"), then the
    group's segments before the URL ("(compatible; YandexBot/3.0; +http://yandex.com/bots)"),
    then the same one group further out; failing all that, the URL's host.
    """
    url_start, url_end = _token_bounds(ua, pos, pos)
    end = url_start
    while True:
        open_at = _enclosing_paren(ua, end)
        before = ua[:open_at] if open_at >= 0 else ua[:end]
        before = before[max(before.rfind(")"), before.rfind("("), before.rfind(";")) + 1:]
        name = _product_words(before)
        if name or open_at < 0:
            break
        name = _segment_name(ua[open_at + 1:end])
        if name:
            break
        end = open_at
    if name:
        return name
    host = _HOST.match(ua[url_start:url_end])
    return host.group(1) if host else ""


_default: CrawlerMatcher | None = None
_default_lock = threading.Lock()


def default_matcher() -> CrawlerMatcher:
    """The matcher over the installed data set, built on first use (~70 ms) once per process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = CrawlerMatcher()
        return _default


def bot_names(uas: pl.Series, matcher: CrawlerMatcher | None = None) -> pl.Series:
    """Readable bot names for a column of UAs (null for humans and missing UAs)."""
    return (matcher or default_matcher()).bot_names(uas)
