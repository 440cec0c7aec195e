"""GeoIP lookups and every way a --geoip database can be unusable, on MaxMind's test DBs."""

import os
from collections.abc import Iterator
from pathlib import Path

import geoip2.database
import polars as pl
import pytest

from logtui.core.crawlers import default_matcher
from logtui.core.enrich import Enricher
from logtui.core.event import conform
from logtui.core.geo import GeoDatabaseError, GeoLookup

MAXMIND = Path(__file__).parent.parent / "fixtures" / "maxmind"
CITY = MAXMIND / "GeoIP2-City-Test.mmdb"
COUNTRY = MAXMIND / "GeoLite2-Country-Test.mmdb"


@pytest.fixture
def city() -> Iterator[GeoLookup]:
    with GeoLookup.open(CITY) as lookup:
        yield lookup


@pytest.fixture
def country() -> Iterator[GeoLookup]:
    with GeoLookup.open(COUNTRY) as lookup:
        yield lookup


def test_city_database_gives_countries_and_cities(city: GeoLookup) -> None:
    assert city.database_type == "GeoIP2-City" and city.has_city
    assert [city.country(ip) for ip in ("81.2.69.142", "2001:218::1", "175.16.199.1",
                                        "67.43.156.1")] == ["GB", "JP", "CN", "BT"]
    assert (city.city("81.2.69.142"), city.city("175.16.199.1")) == ("London", "Changchun")
    assert city.city("2001:218::1") is None  # a country-level network


def test_country_database(country: GeoLookup) -> None:
    assert country.database_type == "GeoLite2-Country" and not country.has_city
    assert [country.country(ip) for ip in ("81.2.69.142", "2001:218::1", "67.43.156.1",
                                           "::ffff:81.2.69.142")] == ["GB", "JP", "BT", "GB"]
    # 175.16.199.1 is in the City test databases only; GeoLite2-Country-Test lacks it.
    assert country.country("175.16.199.1") is None
    assert country.city("81.2.69.142") is None


def test_unknown_and_invalid_addresses_are_none_and_counted(city: GeoLookup) -> None:
    assert city.country(None) is None and city.country("") is None
    assert city.lookup_errors == 0
    for ip in ("8.8.8.8", "10.0.0.1", "unix:", "localhost", "1.2.3.4:80", "-"):
        assert city.country(ip) is None
        assert city.city(ip) is None  # the second ask of an IP comes from the cache
    assert (city.not_found, city.invalid, city.corrupt) == (2, 4, 0)
    assert city.lookup_errors == 6


def test_corruption_found_at_run_time_is_counted_not_raised() -> None:
    # The probe at open rejects this file; built without it, it stands for a database
    # whose damage lies where no probe looked.
    path = MAXMIND / "GeoIP2-City-Test-Broken-Double-Format.mmdb"
    lookup = GeoLookup(geoip2.database.Reader(str(path)), str(path))
    try:
        assert lookup.country("81.2.69.142") is None
        assert (lookup.corrupt, lookup.lookup_errors) == (1, 1)
        assert lookup.countries(pl.Series(["81.2.69.142", "175.16.199.1"])).to_list() == [
            None, None]
        assert lookup.corrupt == 2
    finally:
        lookup.close()


def test_countries_is_computed_per_distinct_ip(city: GeoLookup) -> None:
    ips = pl.Series("ip", ["81.2.69.142", "2001:218::1", None, "unix:", "67.43.156.1"] * 20_000)
    countries = city.countries(ips)
    assert countries.dtype == pl.String and len(countries) == len(ips)
    assert countries[:5].to_list() == ["GB", "JP", None, None, "BT"]
    assert city.cache_info().misses == 4
    assert city.cities(ips)[:5].to_list() == ["London", None, None, None, None]
    assert city.countries(pl.Series("ip", [None, None])).to_list() == [None, None]


def one_line_error(path: Path | str) -> str:
    with pytest.raises(GeoDatabaseError) as caught:
        GeoLookup.open(path)
    message = str(caught.value)  # the CLI prints "logtui: --geoip " + message
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert caught.value.path == str(path)
    return caught.value.cause


@pytest.mark.parametrize(("name", "cause"), [
    # Fails to open: a search tree larger than the file.
    ("GeoIP2-City-Test-Invalid-Node-Count.mmdb",
     "corrupt MaxMind database (invalid metadata or search tree)"),
    ("cyclic-data-structure.mmdb", "corrupt MaxMind database (invalid metadata or search tree)"),
    ("libmaxminddb-metadata-marker-only.mmdb",
     "corrupt MaxMind database (invalid metadata or search tree)"),
    # Opens, then the probe lookup decodes a bad double.
    ("GeoIP2-City-Test-Broken-Double-Format.mmdb",
     "corrupt MaxMind database (lookup of 81.2.69.142 failed: data section contains bad data "
     "(unknown data type or corrupt data))"),
    ("GeoLite2-ASN-Test.mmdb",
     "database type 'GeoLite2-ASN' has no country data (use a City or Country database)"),
])
def test_unusable_databases(name: str, cause: str) -> None:
    assert one_line_error(MAXMIND / name) == cause


def test_paths_that_are_no_database(tmp_path: Path) -> None:
    assert one_line_error(tmp_path / "missing.mmdb") == "no such file"
    assert one_line_error(tmp_path) == "is a directory, not a database file"
    (tmp_path / "empty.mmdb").write_bytes(b"")
    assert one_line_error(tmp_path / "empty.mmdb") == "empty file, not a MaxMind database"
    (tmp_path / "notes.mmdb").write_text("not a database\n" * 100)
    assert one_line_error(tmp_path / "notes.mmdb") == (
        "not a MaxMind database (no metadata section)")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.mmdb"
    path.write_bytes(CITY.read_bytes())
    path.chmod(0)
    assert one_line_error(path) == "permission denied"


def test_enricher_fills_country_only_where_missing(city: GeoLookup) -> None:
    frame = conform(pl.DataFrame({
        "ip": ["81.2.69.142", "175.16.199.1", "unix:", None, "2001:218::1"],
        "ua": ["curl/8.0.1", None, None, None, "Googlebot-Image/1.0"],
        # A JSON source that logs its own country (Cloudflare's ClientCountry) keeps it.
        "country": [None, None, None, "KR", "US"],
    }))
    enriched = Enricher(default_matcher(), city).apply(frame)
    assert enriched.schema == frame.schema
    assert enriched["country"].to_list() == ["GB", "CN", None, "KR", "US"]
    assert enriched["bot"].to_list() == ["curl", None, None, None, "Googlebot-Image"]
    assert city.cache_info().misses == 3  # 2001:218::1 already had a country: not looked up
    only_geo = Enricher(None, city).apply(frame)
    assert only_geo["bot"].to_list() == [None] * 5
    assert Enricher(None, city).apply(pl.DataFrame({"ip": ["67.43.156.1"]}))[
        "country"].to_list() == ["BT"]
