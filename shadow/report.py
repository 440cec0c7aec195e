"""The comparison report: a JSON line per request while proxying, summed up by `shadow report`."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from logtui.core.sanitize import printable
from logtui.core.sketch import LatencySketch
from shadow.diff import DIFF, REGRESSION, SAME, VERDICTS, NoiseFilter

TOP_FIELDS = 5
TOP_CAUSES = 3


class ReportWriter:
    """Appends records as JSON lines, flushed one by one so `tail -f` and a crash lose nothing."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    @classmethod
    def open(cls, path: str | Path) -> ReportWriter:
        return cls(open(path, "a", encoding="utf-8"))

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class Cause:
    """One way staging failed (a status or an error) and an example of it."""

    count: int
    path: str
    sample: str


@dataclass
class FieldTally:
    count: int
    kind: str
    production: str
    staging: str


@dataclass
class EndpointSummary:
    endpoint: str
    verdicts: Counter[str] = field(default_factory=Counter)
    production: LatencySketch = field(default_factory=LatencySketch)
    staging: LatencySketch = field(default_factory=LatencySketch)
    causes: dict[str, Cause] = field(default_factory=dict)
    fields: dict[str, FieldTally] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.verdicts.values())

    def rank(self) -> tuple[int, int, int]:
        return (-self.verdicts[REGRESSION], -self.verdicts[DIFF], -self.total)

    def to_dict(self) -> dict[str, Any]:
        latency = {side: {"p50": sketch.quantile(0.5), "p95": sketch.quantile(0.95)}
                   for side, sketch in (("production", self.production),
                                        ("staging", self.staging))}
        causes = sorted(self.causes.items(), key=lambda item: -item[1].count)[:TOP_CAUSES]
        fields = sorted(self.fields.items(), key=lambda item: -item[1].count)[:TOP_FIELDS]
        return {
            "endpoint": self.endpoint, "total": self.total,
            "verdicts": {v: self.verdicts[v] for v in VERDICTS},
            "latency": latency,
            "regressions": [{"staging": name, "count": c.count, "example": c.path,
                             "sample": c.sample} for name, c in causes],
            "fields": [{"path": path, "count": t.count, "kind": t.kind,
                        "production": t.production, "staging": t.staging}
                       for path, t in fields],
        }


class Summariser:
    """Two passes over the records: learn each endpoint's noise, then count with it.

    The proxy judges noise with what it has seen so far; the report judges every request
    with everything, so a field's early differences count once it proves to be real.
    """

    def __init__(self) -> None:
        self.noise = NoiseFilter()
        self.endpoints: dict[str, EndpointSummary] = {}
        self.records = 0

    def learn(self, record: dict[str, Any]) -> None:
        secondary = record.get("secondary_fields")
        if secondary is not None and record["verdict"] in (SAME, DIFF):
            self.noise.observe(record["endpoint"], (f["path"] for f in record["fields"]),
                               secondary)

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        endpoint = record["endpoint"]
        summary = self.endpoints.setdefault(endpoint, EndpointSummary(endpoint))
        verdict = record["verdict"]
        fields = record["fields"]
        if record.get("secondary_fields") is not None and verdict in (SAME, DIFF):
            fields = [f for f in fields if not self.noise.is_noise(endpoint, f["path"])]
            verdict = DIFF if fields else SAME
        elif verdict == DIFF:
            fields = [f for f in fields if not f.get("noise")]
        summary.verdicts[verdict] += 1
        for side in ("production", "staging"):
            if (latency := record.get(f"{side}_latency")) is not None:
                getattr(summary, side).add(latency)
        if verdict == REGRESSION:
            status = record.get("staging_status")
            name = str(status) if status is not None else _error_name(record.get("staging_error"))
            sample = str(record.get("samples", {}).get("staging") or "")
            cause = summary.causes.setdefault(name, Cause(0, record.get("path", ""), sample))
            cause.count += 1
        elif verdict == DIFF:
            for f in fields:
                tally = summary.fields.setdefault(
                    f["path"], FieldTally(0, f["kind"], f["production"], f["staging"]))
                tally.count += 1

    def summary(self, malformed: int = 0) -> dict[str, Any]:
        endpoints = sorted(self.endpoints.values(), key=EndpointSummary.rank)
        totals = Counter[str]()
        for e in endpoints:
            totals.update(e.verdicts)
        return {"records": self.records, "malformed": malformed,
                "verdicts": {v: totals[v] for v in VERDICTS},
                "endpoints": [e.to_dict() for e in endpoints]}


def _error_name(error: str | None) -> str:
    """`ConnectError: [Errno 111] ...` -> `ConnectError`: group failures by their kind."""
    if not error:
        return "failed"
    return "timeout" if error.startswith("timeout") else error.split(":", 1)[0]


def read_records(path: str | Path) -> Iterator[dict[str, Any] | None]:
    """Each line's record, or None for a line that is not one (counted as malformed)."""
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                yield None
                continue
            yield record if is_record(record) else None


def is_record(record: Any) -> bool:
    """Whether `record` has what summing up reads, of the types the proxy writes: a line
    edited by hand or cut by a crash is skipped and counted, not a traceback."""
    if not (isinstance(record, dict) and isinstance(record.get("endpoint"), str)
            and record.get("verdict") in VERDICTS and isinstance(record.get("path", ""), str)):
        return False
    fields, secondary = record.get("fields"), record.get("secondary_fields")
    samples = record.get("samples", {})
    return (isinstance(fields, list)
            and all(isinstance(f, dict) and isinstance(f.get("path"), str)
                    and isinstance(f.get("kind"), str) for f in fields)
            and (secondary is None
                 or (isinstance(secondary, list) and all(isinstance(p, str) for p in secondary)))
            and isinstance(samples, dict)
            and isinstance(record.get("staging_status"), int | None)
            and isinstance(record.get("staging_error"), str | None)
            and all(_is_seconds(record.get(f"{side}_latency"))
                    for side in ("production", "staging")))


def _is_seconds(value: Any) -> bool:
    """A latency as written: a finite number of seconds, or nothing."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                             and math.isfinite(value))


def summarise_file(path: str | Path) -> dict[str, Any]:
    summariser = Summariser()
    for record in read_records(path):
        if record is not None:
            summariser.learn(record)
    malformed = 0
    for record in read_records(path):
        if record is None:
            malformed += 1
        else:
            summariser.add(record)
    return summariser.summary(malformed)


def render_text(summary: dict[str, Any]) -> str:
    verdicts = summary["verdicts"]
    lines = [f"{summary['records']} comparisons, {len(summary['endpoints'])} endpoints: "
             + ", ".join(f"{verdicts[v]} {v}" for v in VERDICTS)]
    if summary["malformed"]:
        lines.append(f"({summary['malformed']} lines were not shadow records and were skipped)")
    if not summary["endpoints"]:
        return "\n".join(lines) + "\n"
    header = ["endpoint", "total", *VERDICTS, "p50 prod→staging", "p95 prod→staging"]
    rows = [[e["endpoint"], str(e["total"]), *(str(e["verdicts"][v]) for v in VERDICTS),
             _latency_pair(e["latency"], "p50"), _latency_pair(e["latency"], "p95")]
            for e in summary["endpoints"]]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines.append("")
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                           strict=True))]
        lines.append("  ".join(cells).rstrip())
    regressions = [(e["endpoint"], r) for e in summary["endpoints"] for r in e["regressions"]]
    if regressions:
        lines += ["", "Top regressions"]
        for endpoint, r in sorted(regressions, key=lambda item: -item[1]["count"]):
            sample = f"  {r['sample']!r}" if r["sample"] else ""
            lines.append(f"  {endpoint}  staging {r['staging']} ×{r['count']}  "
                         f"e.g. {r['example']}{sample}")
    differing = [(e["endpoint"], f) for e in summary["endpoints"] for f in e["fields"]]
    if differing:
        lines += ["", "Differing fields"]
        for endpoint, f in sorted(differing, key=lambda item: -item[1]["count"]):
            lines.append(f"  {endpoint}  {f['path']} ({f['kind']}) ×{f['count']}  "
                         f"e.g. {f['production'] or '∅'} → {f['staging'] or '∅'}")
    # endpoints, paths and samples are what clients sent and services answered
    return "\n".join(printable(line) for line in lines) + "\n"


def _latency_pair(latency: dict[str, dict[str, float | None]], quantile: str) -> str:
    return f"{_ms(latency['production'][quantile])} → {_ms(latency['staging'][quantile])}"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f}ms" if seconds >= 0.01 else f"{seconds * 1000:.1f}ms"
