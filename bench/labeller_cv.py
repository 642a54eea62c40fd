"""Leave-one-document-out cross-validation of the labeller over seeds + corpus.

    python bench/labeller_cv.py                 # the shipped configuration, per document and genre
    python bench/labeller_cv.py --ablation      # plus: without macro-structure, cues, section, stacking
    python bench/labeller_cv.py --sweep         # C and second-category threshold

Each document is labelled by a model trained on all the others, then scored by
``service.evaluate.grade`` - the same scorer as ``reportsum eval``. The ceiling column labels the same units with the gold (a perfect labeller).
"""

from __future__ import annotations

import argparse
import time

from service import train
from service.evaluate import grade, micro
from service.features import FAMILIES


def run(docs, *, families=FAMILIES, c=train.C, threshold=train.SECOND_THRESHOLD, min_prob=train.MIN_PROB):
    if tuple(families) != FAMILIES:
        docs = [train.Doc(d.name, d.genre, d.text, d.units, train.features(d.structure, d.units, families),
                          d.targets, d.gold, d.structure) for d in docs]
    scores = []
    for i, held in enumerate(docs):
        model = train.fit([d for j, d in enumerate(docs) if j != i], c, threshold, families, min_prob=min_prob)
        decisions = model.decide(model.predict_proba(held.feats))
        scores.append(grade(held.text, train.digest_of(held, decisions), held.gold, name=held.name))
    return scores


def ceiling(docs):
    return [grade(d.text, train.digest_of(d, [tuple(sorted(t)) for t in d.targets]), d.gold, name=d.name)
            for d in docs]


def rp(scores) -> str:
    m = micro(scores)
    return f"{m['recall'] or 0:.3f} / {m['precision'] or 0:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    started = time.perf_counter()
    docs = train.load_docs()
    top = ceiling(docs)
    scores = run(docs)
    print(f"{'document':40s} {'genre':28s} {'R':>5s} {'P':>5s}   ceiling R / P")
    for d, s, o in zip(docs, scores, top):
        print(f"{d.name[:40]:40s} {d.genre[:28]:28s} {s.recall or 0:5.2f} {s.precision or 0:5.2f}   "
              f"{o.recall or 0:.2f} / {o.precision or 0:.2f}")
    print("\nper genre (micro R / P; ceiling)")
    for genre in sorted({d.genre for d in docs}):
        idx = [i for i, d in enumerate(docs) if d.genre == genre]
        print(f"  {genre:34s} {rp([scores[i] for i in idx])}   ceiling {rp([top[i] for i in idx])}")
    seeds = [i for i, d in enumerate(docs) if d.genre.startswith("seed")]
    corpus = [i for i, d in enumerate(docs) if not d.genre.startswith("seed")]
    print(f"\nseeds  {rp([scores[i] for i in seeds])}   ceiling {rp([top[i] for i in seeds])}")
    print(f"corpus {rp([scores[i] for i in corpus])}   ceiling {rp([top[i] for i in corpus])}")
    print(f"ALL    {rp(scores)}   ceiling {rp(top)}   ({len(docs)} documents, {time.perf_counter() - started:.0f} s)")
    if args.ablation:
        print("\nablation (leave-one-document-out micro R / P)")
        print(f"  shipped                      {rp(scores)}")
        for fam in ("macro", "cues", "section", "ngrams", "shape"):
            print(f"  without {fam:20s} {rp(run(docs, families=[f for f in FAMILIES if f != fam]))}")
    if args.sweep:
        print("\nsweep")
        for c in (0.3, 1.0, 3.0):
            for th in (0.3, 0.35, 0.4, 1.0):
                for mp in (0.0, 0.4, 0.45, 0.55):
                    print(f"  C={c:<4} second>={th:<4} min_prob={mp:<5} {rp(run(docs, c=c, threshold=th, min_prob=mp))}")


if __name__ == "__main__":
    main()
