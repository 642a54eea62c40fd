"""The default backend (the embedded model) on the development set: wall time per article
(process start and, where the model is asked, model load included), seconds per 10,000
visible characters, and quality against the gold.

    python bench/local_seeds.py                       # seeds + corpus
    python bench/local_seeds.py --articles fixtures/articles [--assist-margin 0.2]

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

from service.clean import clean
from service.evaluate import grade, load_gold, micro
from service.ingest import read_bytes

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=Path, action="append",
                    help="article folder with gold in ../gold (repeatable; default: seeds and corpus)")
    ap.add_argument("--assist-margin", default=None, help="passed on to reportsum")
    args = ap.parse_args()
    folders = args.articles or [ROOT / "fixtures/articles", ROOT / "fixtures/corpus/articles"]
    extra = ["--assist-margin", args.assist_margin] if args.assist_margin else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    times, per_10k, scores = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for path in [p for folder in folders for p in sorted(folder.glob("*.txt"))]:
            out = Path(tmp) / f"{path.stem}.json"
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "service", "summarize", "--no-cache", "-q", str(path),
                                   "-o", str(out), *extra], env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t
            if proc.returncode:
                print(f"{path.name}: FAILED {proc.stderr.strip()}")
                continue
            digest = json.loads(out.read_text(encoding="utf-8"))
            text = read_bytes(path.read_bytes(), path.name)
            visible = sum(len(b.text) for b in clean(text).blocks)
            times.append(wall)
            per_10k.append(wall / max(visible, 1) * 10_000)
            score = grade(text, digest, load_gold(path.parent.parent / "gold" / f"{path.stem}.json"), name=path.stem)
            scores.append(score)
            print(f"{path.name[:40]:40s} backend {digest['meta']['backend']} calls {digest['meta']['llm_calls']:>3} "
                  f"visible {visible:6d}  wall {wall:6.1f} s ({per_10k[-1]:5.1f} s/10k)  "
                  f"recall {score.recall or 0:.2f} precision {score.precision or 0:.2f}")
    m = micro(scores)
    print(f"median wall {statistics.median(times):.1f} s (max {max(times):.1f} s; "
          f"max {max(per_10k):.1f} s per 10,000 visible characters); "
          f"micro recall {m['recall']:.3f} precision {m['precision']:.3f} (in-sample: the shipped labeller saw these)")


if __name__ == "__main__":
    main()
