"""Country and city of client IPs from a MaxMind or DB-IP City/Country database (--geoip)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geoip2.database
import geoip2.errors
import maxminddb
import polars as pl

from logtui.core.enrich import map_distinct

CACHE_SIZE = 100_000
# The section a MaxMind DB ends with (spec: within the last 128 KiB of the file).
_METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
_METADATA_WINDOW = 128 * 1024
# Probed at open so that a corrupt database fails at start, not on the first request.
# These are networks of the MaxMind test databases, plus common addresses of every range.
PROBE_IPS = ("81.2.69.142", "175.16.199.1", "67.43.156.1", "2001:218::1", "2a02:cf40::",
             "1.1.1.1", "8.8.8.8", "255.255.255.255")


class GeoDatabaseError(Exception):
    """The --geoip database cannot be used: str() is "PATH: cause", one line.

    The CLI prefixes it ("logtui: --geoip tests/x.mmdb: no such file").
    """

    def __init__(self, path: str, cause: str) -> None:
        self.path = path
        self.cause = " ".join(cause.split())  # one line, whatever the library said
        super().__init__(f"{path}: {self.cause}")


def _country_and_city(model: Any) -> tuple[str | None, str | None]:
    city = getattr(model, "city", None)
    return model.country.iso_code, (city.name if city is not None else None)


class GeoLookup:
    """Lookups in one open database, cached per IP (bounded LRU); never raises per IP."""

    def __init__(self, reader: geoip2.database.Reader, path: str,
                 cache_size: int = CACHE_SIZE) -> None:
        self.path = path
        self._reader = reader
        self.database_type: str = reader.metadata().database_type
        method = _lookup_method(reader, self.database_type)
        if method is None:
            raise GeoDatabaseError(
                path, f"database type {self.database_type!r} has no country data "
                      "(use a City or Country database)")
        self._method: Callable[[str], Any] = method
        self.has_city = "City" in self.database_type or "Enterprise" in self.database_type
        # Counted once per distinct IP while it stays cached, not once per request.
        self.lookup_errors = 0
        self.not_found = 0      # valid address, not in the database (private ranges, ...)
        self.invalid = 0        # not an IP address at all ("unix:", hostnames, "-")
        self.corrupt = 0        # the database failed while decoding this address
        self._cached = functools.lru_cache(maxsize=cache_size)(self._lookup)

    @classmethod
    def open(cls, path: str | os.PathLike[str], cache_size: int = CACHE_SIZE) -> GeoLookup:
        """Open and check a database; any problem is a GeoDatabaseError naming the cause."""
        shown = os.fspath(path)
        file = Path(shown)
        if not file.exists():
            raise GeoDatabaseError(shown, "no such file")
        if file.is_dir():
            raise GeoDatabaseError(shown, "is a directory, not a database file")
        try:
            if file.stat().st_size == 0:
                raise GeoDatabaseError(shown, "empty file, not a MaxMind database")
            reader = geoip2.database.Reader(shown)
        except GeoDatabaseError:
            raise
        except PermissionError:
            raise GeoDatabaseError(shown, "permission denied") from None
        except OSError as error:
            raise GeoDatabaseError(shown, error.strerror or str(error)) from None
        except maxminddb.InvalidDatabaseError:
            raise GeoDatabaseError(shown, _why_invalid(file)) from None
        except Exception as error:  # the C reader can fail in other ways on garbage
            raise GeoDatabaseError(shown, f"cannot read database ({error})") from None
        try:
            lookup = cls(reader, shown, cache_size)
            lookup._probe()
        except BaseException:
            reader.close()
            raise
        return lookup

    def _probe(self) -> None:
        for ip in PROBE_IPS:
            try:
                self._method(ip)
            except (geoip2.errors.AddressNotFoundError, ValueError):
                continue  # absent, or an IPv6 probe in an IPv4-only database: both fine
            except Exception as error:
                # maxminddb says "Error while looking up data for IP. The MaxMind DB file's
                # data section contains bad data (...)": keep the part that names the fault.
                reason = str(error).partition("The MaxMind DB file's ")[2] or str(error)
                cause = f"corrupt MaxMind database (lookup of {ip} failed: {reason})"
                raise GeoDatabaseError(self.path, cause) from None

    def _lookup(self, ip: str) -> tuple[str | None, str | None]:
        try:
            return _country_and_city(self._method(ip.strip()))
        except geoip2.errors.AddressNotFoundError:
            self.not_found += 1
        except ValueError:
            self.invalid += 1
        except Exception:  # InvalidDatabaseError mid-file, or a record of the wrong shape
            self.corrupt += 1
        self.lookup_errors += 1
        return None, None

    def country(self, ip: str | None) -> str | None:
        """ISO 3166 code of the country of `ip`, or None."""
        return self._cached(ip)[0] if ip else None

    def city(self, ip: str | None) -> str | None:
        """English city name of `ip` (City databases only), or None."""
        return self._cached(ip)[1] if ip else None

    def countries(self, ips: pl.Series) -> pl.Series:
        """`country` over a column: looked up once per distinct IP, then mapped back."""
        return self._map(ips, 0)

    def cities(self, ips: pl.Series) -> pl.Series:
        return self._map(ips, 1)

    def _map(self, ips: pl.Series, field: int) -> pl.Series:
        return map_distinct(ips, lambda ip: self._cached(ip)[field] if ip else None)

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> GeoLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lookup_method(reader: geoip2.database.Reader,
                   database_type: str) -> Callable[[str], Any] | None:
    # geoip2 picks its model by a substring of the type, which DB-IP follows too
    # ("DBIP-City-Lite", "DBIP-Country-Lite", "DBIP-Location-ISP (compat=Enterprise)").
    if "City" in database_type:
        return reader.city
    if "Enterprise" in database_type:
        return reader.enterprise
    if "Country" in database_type:
        return reader.country
    return None


def _why_invalid(file: Path) -> str:
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            handle.seek(max(0, size - _METADATA_WINDOW))
            tail = handle.read()
    except OSError as error:
        return error.strerror or str(error)
    if _METADATA_MARKER not in tail:
        return "not a MaxMind database (no metadata section)"
    return "corrupt MaxMind database (invalid metadata or search tree)"
