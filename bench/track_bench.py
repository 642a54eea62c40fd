"""Retrieval recall of ``reportsum track``: can the reader cite the gold later evidence?

For each development pair (fixtures/tracking), the earlier report's commitments matched to
gold ones, and each gold ``later_evidence``: is it among the candidates shown to the model
(the shortlist, ``service.track.shortlist``), and at which rank of the whole ranked list
(review part first, as ``rank`` orders it)? The model can only cite what it is shown, so the
shortlist recall bounds the later-evidence recall measured with an endpoint.

    python bench/track_bench.py [--misses] [--dir fixtures/tracking]

No model, no network; scoring is ``service.evaluate.retrieval_recall``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.evaluate import load_track_gold, retrieval_recall  # noqa: E402
from service.track import prepare, shortlist, statement_span  # noqa: E402

CUTOFFS = (1, 2, 4, 6, 8, 10, 20, 40)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "fixtures" / "tracking")
    ap.add_argument("--misses", action="store_true", help="list each gold later evidence not shown to the model")
    args = ap.parse_args(argv)
    totals = {"shown": [0, 0], "own": [0, 0], **{k: [0, 0] for k in CUTOFFS}}
    for pair in sorted(p.parent for p in args.dir.glob("*/links.json")):
        gold = load_track_gold(pair / "links.json")
        earlier = (pair / gold.earlier).read_text(encoding="utf-8")
        later = (pair / gold.later).read_text(encoding="utf-8")
        p = prepare(earlier, later)
        spans = [c.span for c in p.commitments]
        shown = retrieval_recall(earlier, later, spans, [[statement_span(c) for c in shortlist(cands)]
                                                         for cands in p.shown], gold, (10_000,))
        # the same shortlist ranked by the commitment's own words alone (the rule-free decision's ranking)
        own = retrieval_recall(earlier, later, spans, [[statement_span(c) for c in shortlist(cands)]
                                                       for cands in p.candidates], gold, (10_000,))
        totals["own"][0] += own["found"][10_000]
        ranked = retrieval_recall(earlier, later, spans, [[statement_span(c) for c in cands]
                                                          for cands in p.shown], gold, CUTOFFS)
        n = shown["later_gold"]
        totals["shown"][0] += shown["found"][10_000]
        totals["shown"][1] += n
        for k in CUTOFFS:
            totals[k][0] += ranked["found"][k]
            totals[k][1] += n
        at = "  ".join(f"@{k} {ranked['recall'][k]:.2f}" for k in CUTOFFS)
        print(f"{pair.name}: {n} gold later evidence; shown to the model {shown['recall'][10_000]:.3f} "
              f"(own words only {own['recall'][10_000]:.3f}); ranked {at}")
        if args.misses:
            ranks = {(r["commitment"], r["evidence"]): r["rank"] for r in ranked["ranks"]}
            for r in shown["ranks"]:
                if r["rank"] is None:
                    c = gold.commitments[r["commitment"]]
                    where = "unmatched commitment" if not r["matched"] else f"rank {ranks[(r['commitment'], r['evidence'])]}"
                    print(f"  miss [{where}] {c.evidence[:40]} -> {r['evidence'][:50]}")
    shown_n = totals["shown"]
    at = "  ".join(f"@{k} {totals[k][0] / totals[k][1]:.2f}" for k in CUTOFFS)
    print(f"MICRO: shown to the model {shown_n[0]}/{shown_n[1]} = {shown_n[0] / shown_n[1]:.3f} "
          f"(own words only {totals['own'][0] / shown_n[1]:.3f}); ranked {at}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
