"""Write a deterministic synthetic access log: `python bench/generate.py OUT --lines 1000000`.

The same seed always gives the same bytes, so figures from different runs compare.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from pathlib import Path

from logtui.synthetic import BROWSERS, RENDERERS, Request, TrafficModel

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z
# "low": the model's 5,000 clients, a few thousand URLs and nine user agents (1M lines:
# 5,008 IPs, 5,557 paths). "high": a busy public site (1M lines: ~170,000 IPs, ~500,000
# paths, 2,000+ agents), where tools that keep every distinct value slow down.
VARIETIES = ("low", "high")


def _high_variety(requests: Iterator[Request], seed: int) -> Iterator[Request]:
    """Half the requests carry campaign query strings; browsers come in many builds."""
    rng = random.Random(seed + 1)
    builds = [agent.replace("124.0.0.0", f"{rng.randrange(90, 130)}.0."
                                         f"{rng.randrange(5000)}.{rng.randrange(200)}")
              for agent in BROWSERS for _ in range(500)]
    for request in requests:
        if rng.random() < 0.5:
            request.path += f"?utm_source=x{rng.randrange(100_000)}&ref={rng.randrange(1000)}"
        if request.ua in BROWSERS:
            request.ua = rng.choice(builds)
        yield request


def generate(out: Path, lines: int, fmt: str = "combined", seed: int = 1,
             rate: float = 200.0, variety: str = "low") -> None:
    render = RENDERERS[fmt]
    model = TrafficModel(seed, clients=200_000 if variety == "high" else 5000)
    requests = model.requests(lines, START, rate)
    if variety == "high":
        requests = _high_variety(requests, seed)
    with out.open("w", encoding="utf-8") as stream:
        batch: list[str] = []
        for request in requests:
            batch.append(render(request))
            if len(batch) == 10_000:
                stream.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            stream.write("\n".join(batch) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--format", choices=sorted(RENDERERS), default="combined")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--variety", choices=VARIETIES, default="low",
                        help="how many distinct clients, URLs and agents (default: low)")
    args = parser.parse_args()
    generate(args.out, args.lines, args.format, args.seed, args.rate, args.variety)
    print(f"wrote {args.lines} lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
