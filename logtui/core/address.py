"""`[HOST:]PORT` arguments (`24224`, `:24224`, `0.0.0.0:24224`, `[::1]:24225`,
`logs.example:24224`), for logtui's and shadow's command lines alike."""

from __future__ import annotations

import ipaddress


class AddressError(ValueError):
    pass


def parse_endpoint(text: str, default_host: str | None) -> tuple[str, int]:
    """(host, port). A bare `PORT` or `:PORT` takes `default_host` ("" for every
    interface); with `default_host=None` the host is required."""
    host, _, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:24224")
    if not host:
        if default_host is None:
            raise AddressError(f"{text!r}: expected HOST:PORT")
        host = default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AddressError(f"{text!r}: expected [HOST:]PORT with a port from 0 to 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
