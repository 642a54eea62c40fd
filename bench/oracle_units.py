"""Upper bound of the segmentation: label every unit with the gold category it overlaps
best (a perfect classifier) and score with the one-to-one matching rule.

    python bench/oracle_units.py [--min-chars 8]
    python bench/oracle_units.py --groups      # every gold document, per source group

If this number is low, no classifier can fix it: the units do not follow claim structure.

``--groups`` labels the pipeline's own units (task headings too) with the categories of the
gold items they match, through the pipeline's assembly and ``service.evaluate.grade``, for
every gold document by source group; beside it, of the pairs of neighbouring units in one
sentence that both match a gold item, the share that match the same one: how often that
group's gold takes two of our clauses for one claim. A group where that share is high has a
precision ceiling below the others' (one claim, two items), whatever the labels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.optimize import linear_sum_assignment
import numpy as np

from service.clean import clean
from service.segment import PAIR_MAX, segment

ROOT = Path(__file__).resolve().parent.parent
CATS = ("achievements", "problems", "plans")


def overlaps(a, b) -> bool:
    ov = min(a[1], b[1]) - max(a[0], b[0])
    return ov > 0 and 2 * ov >= min(a[1] - a[0], b[1] - b[0])


def match(items, golds) -> int:
    if not items or not golds:
        return 0
    m = np.array([[1 if overlaps(i, g) else 0 for g in golds] for i in items])
    r, c = linear_sum_assignment(-m)
    return int(m[r, c].sum())


def gold_hits(doc) -> list[set[int]]:
    """For each unit of a ``train.Doc``, the gold items it matches (``evaluate.spans_match``)."""
    from service.evaluate import spans_match

    return [{i for i, g in enumerate(doc.gold.items) if g.span and spans_match((u.start, u.end), g.span)}
            for u in doc.units]


def neighbours(a, b) -> bool:
    """Two units side by side in one sentence (task headings are units of their own)."""
    return a.sentence_text == b.sentence_text and a.para == b.para and not (a.heading_task or b.heading_task)


def same_claim_pairs(doc) -> tuple[int, int]:
    """(pairs of neighbouring units of one sentence that both match gold, of them inside one item)."""
    hits = gold_hits(doc)
    pairs = same = 0
    for k in range(1, len(doc.units)):
        if neighbours(doc.units[k - 1], doc.units[k]) and hits[k - 1] and hits[k]:
            pairs += 1
            same += bool(hits[k - 1] & hits[k])
    return pairs, same


def by_group() -> None:
    from service import train

    docs = train.load_docs(train.GOLD_SETS)
    groups: dict[str, list] = {}
    for d in docs:
        groups.setdefault(d.group, []).append(d)
    print(f"{'group':24s} {'docs':>4s}  {'ceiling R / P':>15s}  same-claim pairs")
    every = []
    for g, ds in sorted(groups.items()):
        scores = [train.score(d, [tuple(sorted(t)) for t in d.targets]) for d in ds]
        every += scores
        pairs, same = map(sum, zip(*(same_claim_pairs(d) for d in ds)))
        print(f"{g:24s} {len(ds):4d}  {train.rp(scores):>15s}  {same}/{pairs} ({same / max(pairs, 1):.0%})")
    print(f"{'ALL (micro)':24s} {len(docs):4d}  {train.rp(every):>15s}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--min-chars", type=int, default=8)
    ap.add_argument("--pair-max", type=int, default=PAIR_MAX)
    ap.add_argument("--groups", action="store_true", help="every gold document, per source group")
    args = ap.parse_args()
    if args.groups:
        by_group()
        return
    tot = {"gold": 0, "items": 0, "matched": 0}
    for art in sorted((ROOT / "fixtures/articles").glob("*.txt")):
        raw = art.read_text(encoding="utf-8")
        gold = json.loads((ROOT / "fixtures/gold" / (art.stem + ".json")).read_text(encoding="utf-8"))
        gspans = {c: [(raw.find(g["evidence"]), raw.find(g["evidence"]) + len(g["evidence"])) for g in gold[c]
                      if raw.find(g["evidence"]) >= 0] for c in CATS}
        units = [(u.start, u.end) for s in segment(raw, clean(raw).blocks, args.min_chars, args.pair_max).sentences for u in s.units]
        labelled = {c: [] for c in CATS}
        for u in units:
            best = max(((min(u[1], g[1]) - max(u[0], g[0]), c) for c in CATS for g in gspans[c] if overlaps(u, g)),
                       default=None)
            if best:
                labelled[best[1]].append(u)
        m = sum(match(labelled[c], gspans[c]) for c in CATS)
        n_items = sum(len(v) for v in labelled.values())
        n_gold = sum(len(v) for v in gspans.values())
        print(f"{art.stem}: units {len(units)} labelled {n_items} gold {n_gold} R {m / n_gold:.2f} P {m / max(n_items, 1):.2f}")
        tot["gold"] += n_gold
        tot["items"] += n_items
        tot["matched"] += m
    print(f"ORACLE micro recall {tot['matched'] / tot['gold']:.3f} precision {tot['matched'] / tot['items']:.3f}")


if __name__ == "__main__":
    main()
