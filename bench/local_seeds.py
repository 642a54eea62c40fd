"""The embedded model on the seed articles: wall time per article (model load included)
and quality against the gold, as issue 4 measures it.

    python bench/local_seeds.py [--articles fixtures/articles] [--gold fixtures/gold]

Each article runs as its own `reportsum summarize --backend local --no-cache` process, so
every figure includes starting Python and loading the model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service.evaluate import grade, load_gold, micro

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=Path, default=ROOT / "fixtures/articles")
    ap.add_argument("--gold", type=Path, default=ROOT / "fixtures/gold")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    times, scores = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(args.articles.glob("*.txt")):
            out = Path(tmp) / f"{path.stem}.json"
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "service", "summarize", "--no-cache", "-q", str(path),
                                   "-o", str(out)], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if proc.returncode:
                print(f"{path.name}: FAILED {proc.stderr.strip()}")
                continue
            digest = json.loads(out.read_text(encoding="utf-8"))
            times.append(wall)
            score = grade(path.read_text(encoding="utf-8"), digest, load_gold(args.gold / f"{path.stem}.json"),
                          name=path.stem)
            scores.append(score)
            print(f"{path.name}: backend {digest['meta']['backend']} calls {digest['meta']['llm_calls']:>3} "
                  f"wall {wall:6.1f} s  recall {score.recall:.2f} precision {score.precision:.2f}")
    m = micro(scores)
    print(f"median wall {statistics.median(times):.1f} s (max {max(times):.1f} s); "
          f"micro recall {m['recall']:.3f} precision {m['precision']:.3f}")


if __name__ == "__main__":
    main()
