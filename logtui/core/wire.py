"""The viewer protocol between `logtui serve` and `logtui connect`, sans-I/O.

The framing is the forward protocol's: a stream of msgpack arrays `[kind, body]` (and the
same HELO/PING/PONG handshake when a shared key is set). A viewer subscribes with a view;
the server answers with its statistics for that view as mergeable buckets, then sends the
buckets that changed, the matching log lines (from a bounded queue that drops the oldest
and says how many), and its sources' states.

  viewer -> server   ["subscribe", {"view": "logtui:f=...", "bucket": 10.0, "since": t}]
                     ["view", {"view": "logtui:..."}]
  server -> viewer   ["stats", {"width": 10.0, "replace": bool, "buckets": [...],
                                "late": n, "since": t}]
                     ["lines", {"lines": [[time, tag, line, status, parsed, record]...],
                                "dropped": n}]
                     ["sources", [[tag, state, format, lines], ...]]
                     ["error", "reason"]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgpack

from logtui.core.dashboard import SourceState, StreamLine
from logtui.core.sketch import LatencySketch
from logtui.core.stats import BotStats, Bucket, EndpointStats
from logtui.core.topk import TopK

MAX_MESSAGE = 64 << 20   # a full stats message for an hour of buckets stays far below this


class WireError(ValueError):
    """A peer sent something that is not this protocol: the connection closes."""


def encode(kind: str, body: Any) -> bytes:
    return msgpack.packb([kind, body], use_bin_type=True)


class MessageDecoder:
    """`feed(bytes) -> [(kind, body)]`; any split of the same bytes gives the same result."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False,
                                         max_buffer_size=max_message)

    def feed(self, data: bytes) -> list[tuple[str, Any]]:
        try:
            self.unpacker.feed(data)
            messages = list(self.unpacker)
        except (msgpack.exceptions.BufferFull, ValueError) as error:
            raise WireError(f"bad message: {error}") from None
        out = []
        for message in messages:
            if not (isinstance(message, list) and len(message) == 2
                    and isinstance(message[0], str)):
                raise WireError(f"expected [kind, body], got {str(message)[:60]}")
            out.append((message[0], message[1]))
        return out


# --- buckets ----------------------------------------------------------------------------------

def bucket_to_wire(bucket: Bucket) -> dict[str, Any]:
    return {
        "start": bucket.start, "total": bucket.total, "unparsed": bucket.unparsed,
        "bytes": bucket.bytes, "newest": bucket.newest, "status": bucket.status,
        "latency": bucket.latency.to_dict(),
        "bots": {name: [b.hits, b.errors, b.last_seen] for name, b in bucket.bots.items()},
        "tops": {name: [list(top.counts.items()), top.total]
                 for name, top in bucket.tops.items()},
        "endpoints": {name: [e.count, e.errors, e.timed, e.latency_total, e.latency_max]
                      for name, e in bucket.endpoints.items()},
    }


def bucket_from_wire(data: dict[str, Any]) -> Bucket:
    try:
        bucket = Bucket(start=float(data["start"]), total=int(data["total"]),
                        unparsed=int(data["unparsed"]), bytes=int(data["bytes"]),
                        newest=float(data["newest"]),
                        status={int(code): int(n) for code, n in data["status"].items()},
                        latency=LatencySketch.from_dict(data["latency"]))
        bucket.bots = {name: BotStats(int(h), int(e), float(last))
                       for name, (h, e, last) in data["bots"].items()}
        for name, (counts, total) in data["tops"].items():
            if name in bucket.tops:
                top = bucket.tops[name]
                bucket.tops[name] = TopK(top.capacity, {key: int(n) for key, n in counts},
                                         int(total))
        bucket.endpoints = {name: EndpointStats(int(c), int(e), int(t), float(s), float(m))
                            for name, (c, e, t, s, m) in data["endpoints"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise WireError(f"bad bucket: {error!r}") from None
    return bucket


# --- lines and sources ---------------------------------------------------------------------------

def lines_to_wire(lines: Iterable[StreamLine]) -> list[list[Any]]:
    return [[line.time, line.tag, line.line, line.status, line.parsed, line.record]
            for line in lines]


def lines_from_wire(rows: list[Any]) -> list[StreamLine]:
    try:
        return [StreamLine(float(t), str(tag), str(text), status, bool(parsed), dict(record))
                for t, tag, text, status, parsed, record in rows]
    except (TypeError, ValueError) as error:
        raise WireError(f"bad lines: {error!r}") from None


def sources_to_wire(states: Iterable[SourceState]) -> list[list[Any]]:
    return [[s.tag, s.state, s.format, s.lines] for s in states]


def sources_from_wire(rows: list[Any], prefix: str) -> list[SourceState]:
    try:
        return [SourceState(f"{prefix}{tag}", str(state), str(fmt), int(lines))
                for tag, state, fmt, lines in rows]
    except (TypeError, ValueError) as error:
        raise WireError(f"bad sources: {error!r}") from None
