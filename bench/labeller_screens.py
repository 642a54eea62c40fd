"""Quick screens of labeller changes: every gold source group held out in turn, the shipped
file's choices in every fold (not nested: a screen says whether a change is worth the nested
run of ``bench/labeller_cv.py``, never what it scores).

    python bench/labeller_screens.py                  # the shipped choices, as they are
    python bench/labeller_screens.py --c 1 16         # other regularisation strengths
    python bench/labeller_screens.py --silver 2 3     # silver documents weighed more
    python bench/labeller_screens.py --doc-weight 0.5 1   # documents weighed (mean units / units) ** a
    python bench/labeller_screens.py --join           # neighbouring clauses joined into one claim
    python bench/labeller_screens.py --part-ll        # the part prior's weight by held-out likelihood
    python bench/labeller_screens.py --stack          # a second stage over the probabilities in context

``--join`` fits, on the other groups' gold, a logistic regression saying whether two
neighbouring units of one sentence that both match gold match the same item (the separator
between them, their lengths, figures, the second one's first characters), and joins two
neighbours with the same decision when it says so at 0.5, 0.6 or 0.7. ``--part-ll`` picks the
part prior's weight (0 to 4) that gives the held-out units' labels the highest likelihood,
inside each outer fold, instead of the F1 the selection uses. ``--stack`` fits a second logistic
regression over the labeller's probabilities in context (the unit's, its neighbours', its
sentence's, paragraph's and section's means, the part prior's ratios) on the inner folds'
held-out probabilities, and decides the outer fold with it at several "other" biases.
Figures as of 2026-12-03 are in docs/labeller-history.md ("Screened and dropped on 2026-12-03").
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import replace

import numpy as np

from service import train
from service.features import UnitRef
from service.labeller import load, reweigh

from oracle_units import gold_hits, neighbours  # bench/ is on the path when this script runs

_DIGIT = re.compile(r"\d")


def shipped_config() -> train.Config:
    return train.Config.from_json(load().meta["config"])


def held_out_scores(docs, cfg: train.Config, decide=None) -> dict[str, list]:
    """Scores per gold group, each group held out of a fit under ``cfg`` (``decide(doc,
    decisions, left_out)`` may rewrite the decisions: the join screen)."""
    fits = train.Fits(docs)
    out = {}
    for g in sorted({d.group for d in docs if not d.silver}):
        model = train._apply(fits.get((g,), cfg), cfg)
        held = [d for d in docs if d.group == g]
        out[g] = []
        for d in held:
            decisions = model.decide(model.predict_proba(d.feats))
            out[g].append(decide(d, decisions, g) if decide else train.score(d, decisions))
    return out


def line(name: str, by_group: dict[str, list]) -> str:
    every = [s for ss in by_group.values() for s in ss]
    return f"{name:18s} ALL {train.rp(every)} | " + " | ".join(f"{g[:10]} {train.rp(ss)}" for g, ss in by_group.items())


# ------------------------------------------------------------------------------ joining


def pair_features(text: str, a: UnitRef, b: UnitRef) -> dict[str, float]:
    sep = text[a.end:b.start].strip() or "_"
    return {"sep=" + sep[-1]: 1, "len_a": math.log1p(a.end - a.start), "len_b": math.log1p(b.end - b.start),
            "a_figure": float(bool(_DIGIT.search(a.text))), "b_figure": float(bool(_DIGIT.search(b.text))),
            "b_opens_on_figure": float(bool(_DIGIT.match(b.text))), "a_first": float(a.index_in_sentence == 0),
            "b1=" + b.text[:1]: 1, "b2=" + b.text[:2]: 1, "a_last=" + a.text[-1:]: 1}


def join_training(docs) -> tuple[list[dict], list[bool]]:
    xs, ys = [], []
    for d in docs:
        hits = gold_hits(d)
        cats = [{d.gold.items[i].category for i in h} for h in hits]
        for k in range(1, len(d.units)):
            a, b = d.units[k - 1], d.units[k]
            if neighbours(a, b) and hits[k - 1] and hits[k] and cats[k - 1] & cats[k]:
                xs.append(pair_features(d.text, a, b))
                ys.append(bool(hits[k - 1] & hits[k]))
    return xs, ys


def joined(doc, decisions, model, vec, threshold: float):
    units, out = [], []
    for u, c in zip(doc.units, decisions):
        if units and c and out[-1] == c and neighbours(units[-1], u):
            p = units[-1]
            if model.predict_proba(vec.transform([pair_features(doc.text, p, u)]))[0, 1] >= threshold:
                units[-1] = UnitRef(p.start, u.end, doc.text[p.start:u.end], p.sentence_text, p.para, p.context,
                                    p.heading_task, p.index_in_sentence)
                continue
        units.append(u)
        out.append(c)
    return units, out


def screen_join(docs, cfg: train.Config) -> None:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    from service.evaluate import grade
    from service.pipeline import assemble

    gold = [d for d in docs if not d.silver]
    joiners = {}
    for g in sorted({d.group for d in gold}):
        xs, ys = join_training([d for d in gold if d.group != g])
        vec = DictVectorizer()
        joiners[g] = (LogisticRegression(C=1.0, max_iter=2000).fit(vec.fit_transform(xs), ys), vec)
    for threshold in (0.5, 0.6, 0.7):
        def decide(d, decisions, g, threshold=threshold):
            units, dec = joined(d, decisions, *joiners[g], threshold)
            items, _ = assemble(d.text, units, dec, [])
            digest = {c: [it.model_dump(mode="json") for it in items[c]] for c in ("achievements", "problems", "plans")}
            return grade(d.text, digest, d.gold, name=d.name)
        print(line(f"join at {threshold}", held_out_scores(docs, cfg, decide)), flush=True)


# ------------------------------------------------------------------ part prior by likelihood


def _targets(doc) -> np.ndarray:
    y = np.zeros((len(doc.units), len(train.LABELS)))
    for i, t in enumerate(doc.targets):
        for c in (sorted(t) or ["other"]):
            y[i, train.LABELS.index(c)] = 1 / max(len(t), 1)
    return y


def screen_part_ll(docs, cfg: train.Config) -> None:
    weights = np.arange(0, 4.01, 0.25)
    fits = train.Fits(docs)
    gold = [d for d in docs if not d.silver]
    groups = sorted({d.group for d in gold})
    for outer in [None, *groups]:
        total = np.zeros(len(weights))
        for h in (g for g in groups if g != outer):
            model = fits.get(tuple(x for x in (outer, h) if x), cfg)
            for d in (d for d in gold if d.group == h):
                p, shift, y = model.predict_proba(d.feats), train._near(d) @ model.part_prior.log_ratio, _targets(d)
                total += [(y * np.log(np.maximum(reweigh(p, w * shift, train.LABELS), 1e-12))).sum() for w in weights]
        print(f"outer fold {outer or '(none)'}: weight {weights[total.argmax()]:.2f} by likelihood "
              f"(log-likelihood at 0 / 1 / 2: {total[0]:.0f} / {total[4]:.0f} / {total[8]:.0f})", flush=True)


# ----------------------------------------------------------------------------- stacking


def _mean_by(ids: np.ndarray, p: np.ndarray) -> np.ndarray:
    ids = np.unique(ids, return_inverse=True)[1]  # dense: a heading's paragraph id has no unit
    sums = np.zeros((ids.max() + 1, p.shape[1]))
    np.add.at(sums, ids, p)
    return (sums / np.bincount(ids)[:, None])[ids]


def stack_features(doc, proba: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A unit's first-stage log probabilities, its neighbours', the mean probabilities of its
    sentence, paragraph and section, and the part prior's log ratios."""
    lp = np.log(np.maximum(proba, 1e-6))
    edge = np.full((1, lp.shape[1]), np.log(1 / lp.shape[1]))
    sentence = np.cumsum([u.index_in_sentence == 0 for u in doc.units])
    sections: dict[tuple, int] = {}
    section = np.array([sections.setdefault(tuple(u.context), len(sections)) for u in doc.units])
    return np.hstack([lp, np.vstack([edge, lp[:-1]]), np.vstack([lp[1:], edge]), _mean_by(sentence, proba),
                      _mean_by(doc.feats.para, proba), _mean_by(section, proba), shift])


def screen_stack(docs, cfg: train.Config, biases=(-0.5, 0.0, 0.5, 1.0)) -> None:
    """A second logistic regression over the labeller's probabilities in context, trained on
    the inner folds' held-out probabilities of the other gold groups (silver is always trained
    on, so it has none), applied to the outer fold's."""
    from sklearn.linear_model import LogisticRegression

    fits, fitted = train.Fits(docs), cfg.fitted()
    gold = [d for d in docs if not d.silver]
    groups = sorted({d.group for d in gold})
    by_bias: dict[float, dict[str, list]] = {b: {} for b in biases}

    def first_stage(model, d):
        return stack_features(d, model.predict_proba(d.feats), train._near(d) @ model.part_prior.log_ratio)

    for g in groups:
        xs, ys, ws = [], [], []
        for h in (h for h in groups if h != g):
            model = fits.get((g, h), fitted)
            for d in (d for d in gold if d.group == h):
                y = _targets(d)
                unit, label = np.nonzero(y)  # a unit in two categories: two rows, half weight each
                xs.append(first_stage(model, d)[unit])
                ys.append(label)
                ws.append(y[unit, label])
        second = LogisticRegression(C=1.0, max_iter=3000).fit(np.vstack(xs), np.concatenate(ys),
                                                              sample_weight=np.concatenate(ws))
        model = fits.get((g,), fitted)
        for d in (d for d in gold if d.group == g):
            q = second.predict_proba(first_stage(model, d))
            for b in biases:
                decisions = train._decide(q, b, cfg.second_threshold)
                by_bias[b].setdefault(g, []).append(train.score(d, decisions))
    for b in biases:
        print(line(f"stacked, bias {b:+g}", by_bias[b]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--c", type=float, nargs="*", default=[], help="regularisation strengths to screen")
    ap.add_argument("--silver", type=float, nargs="*", default=[], help="silver weights to screen")
    ap.add_argument("--doc-weight", type=float, nargs="*", default=[], help="exponents a of (mean units / units)")
    ap.add_argument("--join", action="store_true")
    ap.add_argument("--part-ll", action="store_true")
    ap.add_argument("--stack", action="store_true", help="a second stage over the probabilities in context")
    args = ap.parse_args()
    started = time.perf_counter()
    docs, cfg = train.load_all(), shipped_config()
    print(f"shipped choices in every fold: {cfg.to_json()}")
    print(line("shipped", held_out_scores(docs, cfg)), flush=True)
    for c in args.c:
        print(line(f"C {c:g}", held_out_scores(docs, replace(cfg, c=c))), flush=True)
    for w in args.silver:
        print(line(f"silver x{w:g}", held_out_scores(docs, replace(cfg, silver_weight=w))), flush=True)
    mean_units = np.mean([len(d.units) for d in docs])
    for a in args.doc_weight:
        for d in docs:
            d.weight = (mean_units / max(len(d.units), 1)) ** a * (cfg.silver_weight if d.silver else 1.0)
        print(line(f"doc weight {a:g}", held_out_scores(docs, cfg)), flush=True)
        for d in docs:
            d.weight = None
    if args.join:
        screen_join(docs, cfg)
    if args.part_ll:
        screen_part_ll(docs, cfg)
    if args.stack:
        screen_stack(docs, cfg)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
