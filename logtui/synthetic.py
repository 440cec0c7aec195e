"""Deterministic, realistic synthetic web traffic: benchmarks and the demo share it.

A `TrafficModel` draws clients (Zipf-weighted, some in the MaxMind test networks),
endpoints with their own latency and error profiles, browsers and crawlers, and renders
each request as an nginx combined line with `$request_time`, a JSON line or LTSV.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
)
CRAWLERS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
)
# Networks present in the MaxMind test databases (shared/data/maxmind-test-dbs).
GEO_CLIENTS = ("81.2.69.142", "81.2.69.160", "175.16.199.1", "2001:218::1", "67.43.156.1",
               "89.160.20.112", "216.160.83.56", "2a02:cf40::1")


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str        # "{id}" is replaced by a number
    weight: float
    latency_median: float
    error_rate: float    # share of 5xx
    missing_rate: float  # share of 404
    size: int


ENDPOINTS = (
    Endpoint("GET", "/", 20, 0.012, 0.001, 0.0, 18_000),
    Endpoint("GET", "/static/app.{id}.js", 18, 0.002, 0.0, 0.01, 250_000),
    Endpoint("GET", "/products/{id}", 16, 0.045, 0.004, 0.05, 32_000),
    Endpoint("GET", "/api/v1/users/{id}", 12, 0.030, 0.006, 0.03, 1_400),
    Endpoint("GET", "/search?q=term{id}", 8, 0.180, 0.01, 0.0, 12_000),
    Endpoint("POST", "/api/v1/orders", 5, 0.220, 0.02, 0.0, 600),
    Endpoint("POST", "/login", 4, 0.090, 0.003, 0.0, 300),
    Endpoint("GET", "/robots.txt", 1, 0.001, 0.0, 0.0, 120),
    Endpoint("HEAD", "/healthz", 2, 0.001, 0.0005, 0.0, 0),
    Endpoint("GET", "/wp-login.php", 1, 0.001, 0.0, 1.0, 150),
)


@dataclass
class Request:
    time: float
    ip: str
    method: str
    path: str
    status: int
    size: int
    referer: str
    ua: str
    latency: float


class TrafficModel:
    def __init__(self, seed: int = 1, clients: int = 5000, bot_share: float = 0.12) -> None:
        self.random = random.Random(seed)
        rnd = self.random
        self.clients = [f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}."
                        f"{rnd.randrange(1, 255)}" for _ in range(clients)] + list(GEO_CLIENTS)
        # Zipf-like: a few clients make most requests (cumulative weights: O(log n) draws)
        self.client_weights = list(accumulate(1 / (rank + 1) ** 0.8
                                              for rank in range(len(self.clients))))
        self.endpoint_weights = list(accumulate(e.weight for e in ENDPOINTS))
        self.bot_share = bot_share
        self.crawlers: tuple[str, ...] = CRAWLERS
        self.error_boost = 0.0      # the demo raises these to stage incidents
        self.latency_boost = 1.0
        self.incident_path: str | None = None

    def request(self, at: float) -> Request:
        rnd = self.random
        endpoint = rnd.choices(ENDPOINTS, cum_weights=self.endpoint_weights)[0]
        is_bot = rnd.random() < self.bot_share
        ua = rnd.choice(self.crawlers) if is_bot else rnd.choice(BROWSERS)
        path = endpoint.template.replace("{id}", str(int(rnd.paretovariate(1.2) * 10)))
        latency = rnd.lognormvariate(0, 0.6) * endpoint.latency_median * self.latency_boost
        error_rate = endpoint.error_rate
        if self.incident_path is None or path.startswith(self.incident_path):
            error_rate += self.error_boost
        roll = rnd.random()
        if roll < error_rate:
            status = rnd.choice((500, 502, 503, 504))
            latency *= 3
        elif roll < error_rate + endpoint.missing_rate:
            status = 404
        elif endpoint.method == "POST":
            status = rnd.choice((200, 201, 201, 302))
        else:
            status = 304 if rnd.random() < 0.08 else 200
        size = 0 if status == 304 or endpoint.method == "HEAD" else int(
            endpoint.size * rnd.uniform(0.5, 1.5))
        referer = "-" if is_bot or rnd.random() < 0.4 else "https://www.example.com/"
        client = rnd.choices(self.clients, cum_weights=self.client_weights)[0]
        return Request(at, client, endpoint.method, path, status, size, referer, ua,
                       round(latency, 3))

    def requests(self, count: int, start: float, rate: float) -> Iterator[Request]:
        """`count` requests from `start` at about `rate` per second (Poisson arrivals)."""
        at = start
        for _ in range(count):
            at += self.random.expovariate(rate)
            yield self.request(at)


def clf_time(epoch: float) -> str:
    t = time.gmtime(epoch)
    return (f"{t.tm_mday:02d}/{MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


def combined_line(r: Request) -> str:
    """nginx combined followed by $request_time."""
    return (f'{r.ip} - - [{clf_time(r.time)}] "{r.method} {r.path} HTTP/1.1" {r.status} '
            f'{r.size} "{r.referer}" "{r.ua}" {r.latency:.3f}')


def json_line(r: Request) -> str:
    return json.dumps({"time": round(r.time, 3), "remote_addr": r.ip, "method": r.method,
                       "path": r.path, "status": r.status, "body_bytes_sent": r.size,
                       "http_referer": r.referer, "http_user_agent": r.ua,
                       "request_time": r.latency})


def ltsv_line(r: Request) -> str:
    return "\t".join((f"time:[{clf_time(r.time)}]", f"host:{r.ip}",
                      f"req:{r.method} {r.path} HTTP/1.1", f"status:{r.status}",
                      f"size:{r.size}", f"referer:{r.referer}", f"ua:{r.ua}",
                      f"reqtime:{r.latency:.3f}"))


RENDERERS = {"combined": combined_line, "json": json_line, "ltsv": ltsv_line}
