"""Crawler detection and naming against the data set's own examples and the isbot fixtures."""

import json
from importlib.metadata import version
from pathlib import Path

import crawleruseragents
import polars as pl
import pytest

from logtui.core.crawlers import CrawlerMatcher, bot_names, default_matcher
from logtui.core.enrich import Enricher
from logtui.core.event import conform

FIXTURES = Path(__file__).parent.parent / "fixtures"
DATA = crawleruseragents.CRAWLER_USER_AGENTS_DATA


def load_isbot(name: str) -> list[str]:
    """The UAs of an isbot fixture: `group:` lines, then `  - UA` items, quoted or plain."""
    uas = []
    for line in (FIXTURES / "isbot" / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("  - "):
            item = line[4:]
            # The files only use plain scalars and JSON-compatible double-quoted ones.
            uas.append(json.loads(item) if item.startswith('"') else item)
    return uas


@pytest.fixture(scope="module")
def matcher() -> CrawlerMatcher:
    return default_matcher()


def test_every_instance_of_the_data_set_is_a_bot_named_after_its_own_pattern(
        matcher: CrawlerMatcher) -> None:
    instances = [(index, ua) for index, entry in enumerate(DATA)
                 for ua in entry.get("instances", [])]
    assert len(instances) > 2000
    for index, ua in instances:
        assert matcher.is_bot(ua), ua
        assert index in matcher.matching(ua), ua  # the chunked resolver misses no pattern
        assert matcher.name(ua), ua


def test_isbot_fixtures_give_the_figures_of_the_installed_data_set(
        matcher: CrawlerMatcher) -> None:
    browsers, crawlers = load_isbot("browsers.yml"), load_isbot("crawlers.yml")
    assert (len(browsers), len(crawlers)) == (555, 626)
    # The trie-compiled matcher answers exactly as the package's own is_crawler().
    for ua in browsers + crawlers:
        assert matcher.is_bot(ua) == crawleruseragents.is_crawler(ua), ua
        assert (matcher.name(ua) is not None) == matcher.is_bot(ua), ua
    # SOURCES.md: crawler-user-agents 1.67.0 flags 16 of 555 browsers (false positives)
    # and 341 of 626 crawlers; a newer data set is expected to move these numbers.
    assert version("crawler-user-agents") == "1.67.0"
    assert sum(map(matcher.is_bot, browsers)) == 16
    assert sum(map(matcher.is_bot, crawlers)) == 341


@pytest.mark.parametrize(("ua", "name"), [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
    ("Googlebot-Image/1.0", "Googlebot-Image"),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
     "+https://openai.com/gptbot)", "GPTBot"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot"),
    ("curl/8.0.1", "curl"),
    ("python-requests/2.31", "python-requests"),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", "AhrefsBot"),
    # The pattern only matches the URL ("yandex\.com\/bots", "bingbot" in a Bing URL):
    # the name comes from the product that points to it.
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "YandexBot"),
    ("Mozilla/5.0 (compatible; adidxbot/2.0; +http://www.bing.com/bingbot.htm)", "adidxbot"),
    ("Wotbox/2.0 (bot@wotbox.com; http://www.wotbox.com)", "Wotbox"),
    ("Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US) Speedy Spider "
     "(http://www.entireweb.com/about/search_tech/speedy_spider/)", "Speedy Spider"),
    # Only a URL and browser words: the host names it.
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77 "
     "Safari/537.36 https://linko.app/crawler", "linko.app"),
    # Match inside a longer token, behind a '/', across a space, after an anchor's space.
    ("Mozilla/5.0 (compatible; Alexabot/1.0; +http://www.alexa.com/help/certifyscan)",
     "Alexabot"),
    ("Mozilla/5.0 Safari/605.1.15/Nutch-1.20-SNAPSHOT", "Nutch"),
    ("Screaming Frog SEO Spider/19.0", "Screaming Frog SEO Spider"),
    ("SSL Labs (https://www.ssllabs.com/about/assessment.html)", "SSL Labs"),
    ("Mozilla/5.0 (X11; Linux x86_64) Chrome/96.0.4664.45 Safari/537.36 PTST/211202", "PTST"),
    ("ltx71 - (http://ltx71.com/)", "ltx71"),
])
def test_readable_names(matcher: CrawlerMatcher, ua: str, name: str) -> None:
    assert matcher.name(ua) == name


def patterns(matcher: CrawlerMatcher, ua: str) -> set[str]:
    return {DATA[i]["pattern"] for i in matcher.matching(ua)}


def test_the_most_specific_match_wins(matcher: CrawlerMatcher) -> None:
    ua = "SentryUptimeBot/1.0 (+http://docs.sentry.io/product/alerts/uptime-monitoring/)"
    assert patterns(matcher, ua) == {r"UptimeBot\/", r"SentryUptimeBot\/"}
    assert matcher.name(ua) == "SentryUptimeBot"
    ua = "W3C-checklink/4.5 [4.160] libwww-perl/5.823"
    assert patterns(matcher, ua) == {"libwww-perl", "W3C-checklink"}
    assert matcher.name(ua) == "W3C-checklink"
    # A product token beats a longer match inside an e-mail address or URL.
    ua = "Mozilla/5.0 (compatible; Go-http-client/1.1; +centurybot9@gmail.com)"
    assert patterns(matcher, ua) == {"Go-http-client", "centurybot"}
    assert matcher.name(ua) == "Go-http-client"
    assert matcher.name("Googlebot-Video/1.0") == "Googlebot-Video"


def test_names_do_not_depend_on_versions(matcher: CrawlerMatcher) -> None:
    for template, name in [("Mozilla/5.0 (compatible; Googlebot/{}; +http://www.google.com/bot.html)",
                            "Googlebot"),
                           ("Mozilla/5.0 (compatible; MJ12bot/v{}; http://mj12bot.com/)",
                            "MJ12bot"),
                           ("heritrix/{}-SNAPSHOT-20091120.021634", "heritrix"),
                           ("Wget/{}", "Wget")]:
        assert {matcher.name(template.format(v)) for v in ("1.0", "2.1", "3.14.159")} == {name}


def test_humans_and_missing_uas_are_not_bots(matcher: CrawlerMatcher) -> None:
    for ua in ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:142.0) Gecko/20100101 Firefox/142.0",
               "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15",
               "-", "", None):
        assert matcher.name(ua) is None
        assert not matcher.is_bot(ua)


def test_names_of_the_lnav_caddy_fixture(matcher: CrawlerMatcher) -> None:
    lines = (FIXTURES / "lnav" / "logfile_caddy_log.1").read_text().splitlines()
    uas = [json.loads(line)["request"]["headers"]["User-Agent"][0] for line in lines]
    assert [matcher.name(ua) for ua in uas] == [
        "facebookexternalhit", "AhrefsBot", "bingbot", "HeadlessChrome"]


def test_bot_names_is_computed_per_distinct_ua() -> None:
    matcher = CrawlerMatcher()
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:142.0) Gecko/20100101 Firefox/142.0"
    uas = pl.Series("ua", [googlebot, firefox, None, "curl/8.0.1"] * 25_000)
    names = matcher.bot_names(uas)
    assert names.dtype == pl.String and len(names) == len(uas)
    assert names[:4].to_list() == ["Googlebot", None, None, "curl"]
    assert set(names.to_list()) == {"Googlebot", "curl", None}
    assert matcher.cache_info().misses == 3  # three distinct UAs, however many rows
    assert bot_names(pl.Series("ua", [None, None], dtype=pl.String), matcher).to_list() == [
        None, None]
    assert bot_names(pl.Series("ua", [], dtype=pl.String)).to_list() == []


def test_cache_is_bounded_and_data_can_be_supplied() -> None:
    matcher = CrawlerMatcher([{"pattern": "ExampleBot"}, {"pattern": r"^probe\/"}], cache_size=2)
    assert matcher.name("ExampleBot/1.2 (+https://example.com/bot)") == "ExampleBot"
    assert matcher.name("probe/0.1") == "probe"
    assert matcher.name("xprobe/0.1") is None  # patterns are regexes: the anchor holds
    assert matcher.name("examplebot/1.0") is None  # and case-sensitive, as the data set says
    assert matcher.cache_info().maxsize == 2 and matcher.cache_info().currsize == 2


def test_enricher_fills_bot_and_keeps_what_the_source_had() -> None:
    frame = conform(pl.DataFrame({
        "ua": ["curl/8.0.1", "Mozilla/5.0 (X11; Linux x86_64) Firefox/142.0", None,
               "Googlebot-Image/1.0"],
        "bot": [None, None, None, "upstream-name"],
    }))
    enriched = Enricher(default_matcher(), None).apply(frame)
    assert enriched.schema == frame.schema
    assert enriched["bot"].to_list() == ["curl", None, None, "upstream-name"]
    assert enriched["country"].to_list() == [None] * 4
    assert Enricher(None, None).apply(frame).equals(frame)
    assert Enricher.default().crawlers is default_matcher()
    # A bare frame without the derived columns gets them.
    assert Enricher.default().apply(pl.DataFrame({"ua": ["curl/8"]}))["bot"].to_list() == [
        "curl"]
