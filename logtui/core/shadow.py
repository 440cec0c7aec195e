"""The Shadow panel's numbers: `shadow` comparison records (forward tag `shadow.diff`)
counted by endpoint and verdict, with the latest differences.

Kept apart from the web-traffic statistics: a comparison is not a request to this site.
Boards merge (counts add, the latest lists interleave by time), so `connect` can show
several aggregators' comparisons together.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SHADOW_TAG = "shadow.diff"
VERDICTS = ("regression", "diff", "fixed", "both_error", "same")
LATEST = 50
MAX_ENDPOINTS = 500


def is_shadow(tag: str) -> bool:
    return tag == SHADOW_TAG or tag.startswith(SHADOW_TAG + ".")


def latest_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the panel lists for one comparison (the report record, trimmed). Records come
    from the network: a field of the wrong type is left out, not trusted."""
    fields = record.get("fields")
    return {
        "time": _seconds(record.get("time")),
        "method": str(record.get("method") or ""),
        "path": str(record.get("path") or ""),
        "endpoint": str(record.get("endpoint") or ""),
        "verdict": str(record.get("verdict") or ""),
        "production": _answer(record.get("production_status") or record.get("production_error")),
        "staging": _answer(record.get("staging_status") or record.get("staging_error")),
        "fields": [str(f.get("path")) for f in (fields if isinstance(fields, list) else [])[:3]
                   if isinstance(f, Mapping)],
    }


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if math.isfinite(seconds) else 0.0


def _answer(value: Any) -> int | str | None:
    """A status code or an error's text."""
    return value if value is None or isinstance(value, int | str) else str(value)


@dataclass
class ShadowBoard:
    endpoints: dict[str, Counter[str]] = field(default_factory=dict)
    latest: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LATEST))

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            verdict = record.get("verdict")
            endpoint = record.get("endpoint") or record.get("path")
            if not isinstance(verdict, str) or not isinstance(endpoint, str):
                continue
            if endpoint not in self.endpoints and len(self.endpoints) >= MAX_ENDPOINTS:
                endpoint = "(other endpoints)"
            self.endpoints.setdefault(endpoint, Counter())[verdict] += 1
            if verdict != "same":
                self.latest.append(latest_entry(record))

    def merge(self, other: ShadowBoard) -> None:
        for endpoint, counts in other.endpoints.items():
            self.endpoints.setdefault(endpoint, Counter()).update(counts)
        self.latest = deque(sorted([*self.latest, *other.latest], key=lambda e: e["time"]),
                            maxlen=LATEST)

    def __bool__(self) -> bool:
        return bool(self.endpoints)

    def snapshot(self, top: int = 10) -> dict[str, Any]:
        rows = [{"endpoint": endpoint, "total": sum(counts.values()),
                 **{verdict: counts.get(verdict, 0) for verdict in VERDICTS}}
                for endpoint, counts in self.endpoints.items()]
        rows.sort(key=lambda r: (-r["regression"], -r["diff"], -r["total"], r["endpoint"]))
        totals = Counter[str]()
        for counts in self.endpoints.values():
            totals.update(counts)
        return {"compared": sum(totals.values()),
                "verdicts": {verdict: totals.get(verdict, 0) for verdict in VERDICTS},
                "endpoints": rows[:top], "latest": list(reversed(self.latest))}

    def to_wire(self) -> dict[str, Any]:
        return {"endpoints": {e: dict(c) for e, c in self.endpoints.items()},
                "latest": list(self.latest)}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ShadowBoard:
        board = cls()
        board.endpoints = {str(e): Counter({str(v): int(n) for v, n in counts.items()})
                           for e, counts in data.get("endpoints", {}).items()}
        board.latest.extend(dict(entry) for entry in data.get("latest", []))
        return board
