"""What ``reportsum distill`` buys on a genre the labeller has not seen, scored on hand gold.

    python bench/distill_gain.py [--weight W]        # about 2 minutes on 2 busy cores

A user's distilled readings are a capable model's readings through ``prompts/context.md``;
silver is exactly that (``fixtures/silver``), so silver stands in for them. For each genre
that has both hand gold and silver readings: hold its gold source group out and its silver
readings too; fit the plain baseline on the rest ("without"); then add the genre's readings
as distilled documents (``train.DISTILLED``: trained like silver, never scored) and fit again
("distilled"); score the held-out gold with each. Same fit (``train.fit``) and scorer
(``service.evaluate``) as ``train-labeller`` and ``distill``. What is not measured here: the
reading step itself (the silver readings were made with the units of 3e14c87) and the
selection; ``tests/e2e/test_distill.py`` checks the command end to end.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from service import train

# genre (gold source group) -> its silver readings (file-name prefixes, SOURCES.tsv)
CASES = {
    "policy HTML": ("s27", "s28", "s29", "s30", "s31"),  # TCM policy pages
    "CME & hospital pages": ("s20", "s25", "s26"),  # continuing-education pages
    "national reports": ("s12", "s13", "s14", "s15", "s16", "s17", "s18", "s32", "s33"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight", type=float, help="training weight of the readings (default: silver's, 1)")
    args = parser.parse_args()
    t0 = time.monotonic()
    docs = train.load_all()
    print(f"loaded {len(docs)} documents in {time.monotonic() - t0:.0f} s")
    for genre, prefixes in CASES.items():
        held = [d for d in docs if d.group == genre]
        readings = [replace(d, group=train.DISTILLED, weight=args.weight) for d in docs if d.name[:3] in prefixes]
        rest = [d for d in docs if d.group != genre and d.name[:3] not in prefixes]
        row = []
        for label, training in (("without", rest), ("distilled", rest + readings)):
            model = train.fit(training)
            row.append(f"{label} {train.rp([train.score(d, model.decide(model.predict_proba(d.feats))) for d in held])}")
        print(f"{genre} ({len(held)} gold held out, {len(readings)} readings): " + "  |  ".join(row), flush=True)
    print(f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
