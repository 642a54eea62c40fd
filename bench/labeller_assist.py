"""What the embedded model adds to the labeller, measured leave-one-document-out.

    python bench/labeller_assist.py [--margin 0.2] [--docs c5,c6,00]

For every held-out document: the labeller trained on the other documents labels its units;
the units whose top two probabilities lie closer than --margin go to the model
(``prompts/classify.md``, one sentence per call, as ``reportsum summarize`` does); the model's
label wins when the labeller ranks it in its top two (``pipeline.combine``). Prints micro
recall/precision with and without the model, calls, and model seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from service import train
from service.backends import make_backend
from service.config import Settings
from service.evaluate import grade, micro
from service.pipeline import _label_with_model, _sentence_of, assist_targets, combine
from service.extract import Usage


async def assisted(backend, doc, model, margin, usage):
    proba = model.predict_proba(doc.feats)
    base = model.decide(proba)
    todo = assist_targets(proba, margin)
    sentences = doc.structure.sentences
    sem = asyncio.Semaphore(1)
    for i in todo:
        s = _sentence_of(doc.units[i], sentences)
        previous = sentences[s.index - 1].text if s.index else None
        label = await _label_with_model(backend, s, previous, f"{doc.name} unit {i}", sem, usage, [])
        proba[i] = combine(proba[i], label, model.labels)
    return base, model.decide(proba), len(todo)


async def main_async(args) -> None:
    docs = train.load_docs()
    chosen = [i for i, d in enumerate(docs) if not args.docs or any(d.name.startswith(p) for p in args.docs.split(","))]
    backend = make_backend(Settings(backend="local"))
    without, with_model, calls, seconds = [], [], 0, 0.0
    try:
        for i in chosen:
            held = docs[i]
            model = train.fit([d for j, d in enumerate(docs) if j != i])
            started = time.perf_counter()
            base, helped, n = await assisted(backend, held, model, args.margin, Usage())
            spent = time.perf_counter() - started
            calls, seconds = calls + n, seconds + spent
            a = grade(held.text, train.digest_of(held, base), held.gold, name=held.name)
            b = grade(held.text, train.digest_of(held, helped), held.gold, name=held.name)
            without.append(a)
            with_model.append(b)
            print(f"{held.name[:36]:36s} calls {n:4d} {spent:6.1f}s  labeller {a.recall or 0:.2f}/{a.precision or 0:.2f}"
                  f"  +model {b.recall or 0:.2f}/{b.precision or 0:.2f}", flush=True)
    finally:
        await backend.aclose()
    m0, m1 = micro(without), micro(with_model)
    print(f"\nlabeller alone   R {m0['recall']:.3f} P {m0['precision']:.3f}")
    print(f"labeller + model R {m1['recall']:.3f} P {m1['precision']:.3f}   ({calls} calls, {seconds:.0f} s of model time)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--docs", default="", help="comma list of document name prefixes (default: all)")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
