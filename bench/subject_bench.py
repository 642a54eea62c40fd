"""Subjects carried without a model: how many units whose capable-model summary added a subject
get that subject from the learned strategy, and with how many figure faults.

    python bench/subject_bench.py [--silver DIR] [--show N]

The units are those of ``longer_summaries.jsonl`` (a capable reader's summaries longer than
their evidence, silver run) whose summary puts words before the evidence: that prefix is the
subject (``新农保`` in ``新农保9880万人领取养老金``). A prefix holding a digit ("2008年") is left
out: no summary may carry a number its evidence lacks. Printed:

* ``digests``: each silver document digested by the learned strategy with no endpoint (no model
  call); of the listed units that come out as items, the share whose summary holds the subject;
* ``units``: ``summaries.with_subject`` on every listed unit and its sentence, whatever its label;
* ``in reach``: the listed units whose subject is printed, as the reader wrote it, before the unit
  in its sentence or in its section path: what a carrier that copies words can reach at most (the
  rest are contractions, "新农保" for "新型农村社会养老保险", verbs, or paraphrases);
* figure faults (``service.evaluate.figure_faults``) over every item of every digest: must be 0.

``DIR`` defaults to ``fixtures/silver`` when it holds the articles, else ``../shared/eval/silver``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from pathlib import Path

from service.backends import make_backend
from service.config import Settings
from service.evaluate import figure_faults
from service.ground import summarize_evidence
from service.pipeline import summarize
from service.summaries import with_subject

ROOT = Path(__file__).resolve().parent.parent
LISTED = ROOT / "fixtures" / "silver" / "longer_summaries.jsonl"
SHARED = ROOT.parent / "shared" / "eval" / "silver"
_STOP = "。！？；"


def silver_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    local = ROOT / "fixtures" / "silver"
    return local if (local / "articles").is_dir() else SHARED


def subject_of_row(row: dict) -> str | None:
    """The words the capable reader put before the evidence (None: it added none up front)."""
    tidy = summarize_evidence(row["evidence"]).rstrip("。")
    model = row["model_summary"].strip().rstrip("。")
    at = model.find(tidy[:2])
    return model[:at] if at > 0 else None


def sentence_around(line: str, evidence: str) -> str:
    at = line.find(evidence)
    start = max(line.rfind(c, 0, at) for c in _STOP) + 1
    ends = [e for e in (line.find(c, at + len(evidence)) for c in _STOP) if e >= 0]
    return line[start:(min(ends) + 1 if ends else len(line))]


def digest_all(articles: Path) -> dict[str, tuple[str, dict]]:
    settings = Settings(backend="replay", strategy="learned", assist_margin=0.0, no_cache=True)

    async def one(path: Path):
        backend = make_backend(settings)
        try:
            text = path.read_text(encoding="utf-8-sig")
            return path.stem, text, await summarize(text, backend, settings, source=path.name)
        finally:
            await backend.aclose()

    out = {}
    for path in sorted(articles.glob("*.txt")):
        stem, text, digest = asyncio.run(one(path))
        out[stem] = (text, digest.model_dump())
    return out


def carried_items(digests: dict[str, tuple[str, dict]], rows: list[dict], silver: Path) -> tuple[list, int, int]:
    """Items whose summary is their tidied evidence led by a subject; how many of those subjects
    the capable reader's summary of the same unit holds (the listed summary, else silver gold);
    and the figure faults among them."""
    reference = {}
    for g in sorted((silver / "gold").glob("*.json")):
        gold = json.loads(g.read_text(encoding="utf-8"))
        reference.update({(g.stem, it["evidence"]): it["summary"]
                          for c in ("achievements", "problems", "plans") for it in gold[c]})
    reference.update({(r["doc"], r["evidence"]): r["model_summary"] for r in rows})
    carried, agree, faults = [], 0, 0
    for stem, (_, d) in digests.items():
        for it in (it for c in ("achievements", "problems", "plans") for it in d[c]):
            tidy = summarize_evidence(it["evidence"])
            if it["summary"] == tidy or not it["summary"].endswith(tidy):
                continue
            subject = it["summary"][:-len(tidy)]
            carried.append((stem, subject, it["summary"]))
            agree += subject in reference.get((stem, it["evidence"]), "")
            faults += len(figure_faults(it["summary"], it["evidence"], it["figures"]))
    return carried, agree, faults


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--silver", help="a silver directory with articles/ (default: see the docstring)")
    ap.add_argument("--show", type=int, default=0, help="print N units whose digest summary misses the subject")
    args = ap.parse_args()
    silver = silver_dir(args.silver)
    rows = [json.loads(x) for x in LISTED.read_text(encoding="utf-8").splitlines()]
    wanted = [(r, s) for r in rows if (s := subject_of_row(r)) and not re.search(r"\d", s)]
    digests = digest_all(silver / "articles")

    faults = []
    for stem, (_, d) in digests.items():
        for cat in ("achievements", "problems", "plans"):
            faults += [(stem, it["summary"], f) for it in d[cat]
                       for f in figure_faults(it["summary"], it["evidence"], it["figures"])]
    emitted = hit = fn_hit = reach = 0
    missed = []
    for row, subject in wanted:
        sentence = sentence_around(row["line"], row["evidence"])
        fn_hit += subject in with_subject(row["evidence"], sentence)
        reach += subject in sentence[:sentence.find(row["evidence"])] or subject in row["section"]
        _, d = digests[row["doc"]]
        items = [it for c in ("achievements", "problems", "plans") for it in d[c] if it["evidence"] == row["evidence"]]
        if items:
            emitted += 1
            got = any(subject in it["summary"] for it in items)
            hit += got
            if not got:
                missed.append(f"{subject} | {items[0]['summary']}")
    carried, agree, carried_faults = carried_items(digests, rows, silver)
    print(f"silver: {silver} ({len(digests)} documents, learned strategy, no model call)")
    print(f"listed units whose capable-model summary added a subject (no digit): {len(wanted)}")
    print(f"digests: {hit}/{emitted} emitted units carry the subject ({hit / max(emitted, 1):.1%}); "
          f"{len(wanted) - emitted} not emitted as items")
    print(f"units: with_subject carries it on {fn_hit}/{len(wanted)} ({fn_hit / max(len(wanted), 1):.1%}); "
          f"in reach (printed before the unit in its sentence or section path): {reach} "
          f"({reach / max(len(wanted), 1):.1%})")
    print(f"items whose summary carries a subject: {len(carried)}; the capable reader's summary of the same "
          f"unit holds that subject for {agree} ({agree / max(len(carried), 1):.0%})")
    print(f"figure faults in those items: {carried_faults}; in all items: {len(faults)}")
    for f in faults[:10]:
        print("  ", f)
    for m in missed[:args.show]:
        print("  missed:", m)


if __name__ == "__main__":
    main()
