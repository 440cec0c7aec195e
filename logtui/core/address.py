"""`[HOST:]PORT` arguments: `24224`, `0.0.0.0:24224`, `[::1]:24225`, `logs.example:24224`."""

from __future__ import annotations

import ipaddress


class AddressError(ValueError):
    pass


def parse_endpoint(text: str, default_host: str) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = default_host, text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:24224")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise AddressError(f"{text!r}: expected [HOST:]PORT with a port from 0 to 65535")
    if not host:
        raise AddressError(f"{text!r}: the host before ':' is empty")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
