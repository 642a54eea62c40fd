"""Are the items the deterministic overview names right? Held out by source group.

    python bench/overview_bench.py

The learned strategy's overview names ``overview.PLAIN_ITEMS`` items per category. Each gold
document is labelled by the labeller fitted without its source group (with the choices the
shipped labeller file records; silver always in training),
its items are assembled as the pipeline does, and the overview's picks are graded against the
gold items of the same category (``evaluate.spans_match``). Printed per category, for the two
ways of picking: the first items of the report, and the most confident ones (the labeller's
probability of the item's category, what ``pipeline`` passes to ``overview.plain``).
"""

from __future__ import annotations

import time
from collections import Counter

from service import overview, train
from service.evaluate import spans_match
from service.labeller import shipped
from service.models import CATEGORIES
from service.pipeline import assemble, item_confidence


def main() -> None:
    started = time.perf_counter()
    cfg = train.Config.from_json(shipped().meta["config"])
    docs = train.load_all()
    fits = train.Fits(docs)
    gold = [d for d in docs if not d.silver]
    right: Counter = Counter()
    shown: Counter = Counter()
    for group in sorted({d.group for d in gold}):
        model = train._apply(fits.get((group,), cfg), cfg)
        for doc in (d for d in gold if d.group == group):
            proba = model.predict_proba(doc.feats)
            items, _ = assemble(doc.text, doc.units, model.decide(proba), [])
            confidence = item_confidence(items, doc.units, proba, model.labels)
            for cat in CATEGORIES:
                spans = [g.span for g in doc.gold.category(cat) if g.span is not None]
                for way, conf in (("first", None), ("confident", confidence[cat])):
                    picked = overview._leading(items[cat], cat == "achievements", conf)
                    shown[cat, way] += len(picked)
                    right[cat, way] += sum(any(spans_match(it.span, s) for s in spans) for it in picked)
    print(f"{len(gold)} gold documents, each labelled with its source group held out ({cfg.to_json()})")
    print(f"{'category':14s} {'first items':>14s} {'most confident':>16s}")
    for cat in (*CATEGORIES, "all"):
        cats = CATEGORIES if cat == "all" else (cat,)
        cells = []
        for way in ("first", "confident"):
            r, n = sum(right[c, way] for c in cats), sum(shown[c, way] for c in cats)
            cells.append(f"{r}/{n} {r / max(n, 1):.0%}")
        print(f"{cat:14s} {cells[0]:>14s} {cells[1]:>16s}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
