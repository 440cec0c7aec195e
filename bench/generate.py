"""Write a deterministic synthetic access log: `python bench/generate.py OUT --lines 1000000`.

The same seed always gives the same bytes, so figures from different runs compare.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from logtui.synthetic import RENDERERS, TrafficModel

START = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def generate(out: Path, lines: int, fmt: str = "combined", seed: int = 1,
             rate: float = 200.0) -> None:
    render = RENDERERS[fmt]
    model = TrafficModel(seed)
    with out.open("w", encoding="utf-8") as stream:
        batch: list[str] = []
        for request in model.requests(lines, START, rate):
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
    args = parser.parse_args()
    generate(args.out, args.lines, args.format, args.seed, args.rate)
    print(f"wrote {args.lines} lines to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
