"""Grouped, nested validation of the labeller, with the plain baseline beside it.

    python bench/labeller_cv.py                       # figures only
    python bench/labeller_cv.py --write service/data/labeller.json   # and ship the model

Each gold source group (national reports, provincial reports, policy HTML, CME & hospital
pages, health news, local bureau pages, seeds) is held out in turn; the labeller is trained
on the other gold groups plus all silver, with every choice (structure features, silver
weight, the section path's weight, "other" bias, second-category threshold, the part prior's
and the paragraph tense's weights) made by the same grouped validation inside
the training groups. The plain baseline (TF-IDF n-grams, position, cue words; silver at
weight 1; argmax) is fitted on the same folds. Scores: ``service.evaluate.grade`` / ``micro``.

Then the issue's other checks: each national silver report held out of training (plans and
achievements recall against its silver items), the seeds and all documents with the shipped
configuration (contract violations and figure faults), and the time taken.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


from service import train
from service.evaluate import micro, standard_errors

NATIONAL_SILVER = ("s12", "s13", "s14", "s15", "s16", "s17", "s18", "s32", "s33")


def rp(scores) -> str:
    return train.rp(scores)


def se(m: dict) -> str:
    r, p = standard_errors(m)
    return f"±{r or 0:.3f} / ±{p or 0:.3f}"


def table(res: train.GroupedResult) -> None:
    print(f"\n{'document':36s} {'group':22s} {'labeller R / P':>15s}   {'baseline R / P':>15s}")
    for d, a, b in zip(res.docs, res.labeller, res.baseline):
        print(f"{d.name[:36]:36s} {d.group[:22]:22s} {a.recall or 0:6.2f} / {a.precision or 0:4.2f}   "
              f"{b.recall or 0:6.2f} / {b.precision or 0:4.2f}")
    # what perfect labels on the same units would score (bench/oracle_units.py --groups): a
    # group whose gold joins our clauses into one claim has a lower precision ceiling
    ceiling = [train.score(d, [tuple(sorted(t)) for t in d.targets]) for d in res.docs]
    # the labeller's binomial standard errors: a floor on how far each figure moves by chance
    print("\nper group (micro R / P)          labeller          baseline   perfect labels   labeller SE")
    worst = 1.0
    for g in sorted({d.group for d in res.docs}):
        idx = [i for i, d in enumerate(res.docs) if d.group == g]
        a = micro([res.labeller[i] for i in idx])
        worst = min(worst, a["recall"] or 0, a["precision"] or 0)
        print(f"  {g:30s} {rp([res.labeller[i] for i in idx]):>16s}  {rp([res.baseline[i] for i in idx]):>16s}"
              f"  {rp([ceiling[i] for i in idx]):>15s}   {se(a)}")
    a, b = micro(res.labeller), micro(res.baseline)
    print(f"  {'ALL (micro)':30s} {rp(res.labeller):>16s}  {rp(res.baseline):>16s}  {rp(ceiling):>15s}   {se(a)}")
    print(f"\ndone-when: micro >= 0.75/0.75: {(a['recall'] or 0) >= 0.75 and (a['precision'] or 0) >= 0.75}; "
          f"no group < 0.60: {worst >= 0.60} (lowest {worst:.3f}); "
          f">= +0.03 over baseline on both: {(a['recall'] - b['recall']):+.3f} / {(a['precision'] - b['precision']):+.3f}")
    flips = [(d.name, f) for d, fs in zip(res.docs, res.labeller_flipped) for f in fs]
    base_flips = sum(map(len, res.baseline_flipped))
    print(f"\nparts read against their heading, held out (>= 5 items, < 20% of the part's category): "
          f"labeller {len(flips)}, baseline {base_flips}")
    for name, (title, kind, n, share) in flips:
        print(f"  {name[:36]:36s} {kind:8s} {title[:24]:24s} {n:3d} items, {share:.0%} its category")


def national_held_out(fits: train.Fits, cfg: train.Config) -> None:
    """Each national silver report out of training, scored against its own silver items."""
    print("\nnational silver reports held out (recall against their silver items)")
    print(f"  {'document':28s} {'plans R':>8s} {'achiev R':>9s}  all R / P    parts read against their heading")
    for doc in [d for d in fits.docs if d.name[:3] in NATIONAL_SILVER]:
        model = train._apply(train.fit([d for d in fits.docs if d is not doc],
                                       cfg.fitted(),
                                       init=fits.gold_fit(cfg)), cfg)
        decisions = model.decide(model.predict_proba(doc.feats))
        s = train.score(doc, decisions)
        pc = s.per_category
        print(f"  {doc.name[:28]:28s} {pc['plans'].recall or 0:8.2f} {pc['achievements'].recall or 0:9.2f}  "
              f"{s.recall or 0:.2f} / {s.precision or 0:.2f}  {len(train.flipped(doc, decisions)):4d}", flush=True)


def in_sample(model, docs) -> None:
    scores = {d.name: train.score(d, model.decide(model.predict_proba(d.feats))) for d in docs}
    seeds = [scores[d.name] for d in docs if d.group == "seeds"]
    m = micro(list(scores.values()))
    print(f"\nshipped model: seeds {rp(seeds)} (in sample); gold+silver contract violations {m['violations']}, "
          f"figure faults {m['figure_faults']}, items from noise {m['noise_items']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", type=Path, help="also write the shipped labeller file here")
    ap.add_argument("--no-national", action="store_true", help="skip the national silver held-out check")
    args = ap.parse_args()
    started = time.perf_counter()
    docs = train.load_all()
    print(f"{len(docs)} documents ({sum(d.silver for d in docs)} silver), loaded in {time.perf_counter() - started:.0f} s")
    fits = train.Fits(docs, log=lambda s: print(s, flush=True))
    model, res = train.build(fits, with_cv=True)
    table(res)
    print(f"\nshipped configuration (chosen over all gold groups): {model.meta['config']}")
    if args.write:
        train.write(model, args.write)
        print(f"wrote {args.write}")
    in_sample(model, docs)
    if not args.no_national:
        national_held_out(fits, train.Config.from_json(model.meta["config"]))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
