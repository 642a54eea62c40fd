"""Figure integrity over every development, silver and seed document: what segmentation does
to numbers, before any label (issue 23). Prints, per document and in total, the units that
begin or end inside a number, the numbers of kept sentences that lie whole in no unit, and
the excluded blocks that are a bare number or a piece of a kept sentence. All must be 0.

    python bench/figure_integrity.py [-v]      # -v lists every finding
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service import integrity  # noqa: E402
from service.clean import clean  # noqa: E402
from service.evaluate import read_article_text  # noqa: E402
from service.segment import segment  # noqa: E402

SETS = {
    "seeds": ROOT / "fixtures/articles",
    "corpus": ROOT / "fixtures/corpus/articles",
    "silver": ROOT / "fixtures/silver/articles",
}


def documents() -> list[tuple[str, Path]]:
    return [(name, p) for name, d in SETS.items() if d.is_dir() for p in sorted(d.iterdir()) if p.is_file()]


def check_file(path: Path) -> integrity.Report:
    raw = read_article_text(path)
    cleaned = clean(raw)
    return integrity.check(raw, cleaned, segment(raw, cleaned.blocks))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    totals = {"cut_units": 0, "lost_numbers": 0, "excluded_parts": 0}
    docs = documents()
    for name, path in docs:
        report = check_file(path)
        counts = report.counts()
        for k, v in counts.items():
            totals[k] += v
        if any(counts.values()) or args.verbose:
            print(f"{name:7s} {path.stem[:48]:48s} " + "  ".join(f"{k}={v}" for k, v in counts.items()))
        if args.verbose:
            for k in totals:
                for finding in getattr(report, k):
                    print(f"    {k}: {finding}")
    print(f"{len(docs)} documents: " + "  ".join(f"{k}={v}" for k, v in totals.items()))
    return 0 if not any(totals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
