"""The context strategy with the embedded model, next to the learned strategy, on the corpus.

    python bench/strategy_compare.py --run      # digest every corpus document not yet saved (hours)
    python bench/strategy_compare.py            # grade what is saved: per document, per genre, micro

``--run`` calls ``reportsum eval`` on one document at a time with the embedded model forced to
``--strategy context`` and keeps each digest in ``bench/results/context-local/`` (committed), so an
interrupted run resumes where it stopped, on this machine or the next. Every model exchange is
recorded beside them (``recordings/``), so a change to what the pipeline does with the replies
is measured again offline, on the same model output:
``reportsum eval DIR --gold fixtures/corpus/gold --backend replay --recordings
bench/results/context-local/recordings --strategy context``. On 2 CPU cores the 1.5B
model reads about 7-20 units a minute; the corpus has 4,364 units (all 27 digested and saved,
2026-12-02: 341 minutes of model time).

The report grades the saved digests with ``service.evaluate.grade`` (the scorer of ``reportsum
eval``) and, for the same documents, the learned strategy twice: the shipped labeller (trained on
every document, so in-sample) and leave-one-document-out (trained on the others).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = ROOT / "fixtures" / "corpus" / "articles"
GOLD = ROOT / "fixtures" / "corpus" / "gold"
SAVED = ROOT / "bench" / "results" / "context-local"


def run(saved: Path, threads: int | None, order: list[str], only: bool = False) -> None:
    saved.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    if threads:
        env["REPORTSUM_LOCAL_THREADS"] = str(threads)
    paths = sorted(ARTICLES.glob("*.txt"))
    if only:  # just these: two runners with one thread each read more units an hour than one with two
        paths = [p for p in paths if any(p.name.startswith(o) for o in order)]
    if order:  # these first, in this order (name prefixes); the rest after them
        rank = {p: next((i for i, o in enumerate(order) if p.name.startswith(o)), len(order)) for p in paths}
        paths.sort(key=lambda p: (rank[p], p.name))
    for path in paths:
        if (saved / f"{path.stem}.json").exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(path, tmp)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "service", "eval", tmp, "--gold", str(GOLD),
                                   "--backend", "local", "--no-cache", "--strategy", "context",
                                   "--record-missing", "--recordings", str(saved / "recordings"),
                                   "--save", str(saved), "--quiet"], env=env, cwd=ROOT)
            print(f"{path.stem}: rc {done.returncode}, {time.perf_counter() - started:.0f} s", flush=True)


def report(saved: Path) -> None:
    from service import train
    from service.evaluate import grade, micro, overview_faults

    from service.labeller import shipped as shipped_labeller

    docs = {d.name: d for d in train.load_docs()}
    shipped = shipped_labeller()
    rows = []
    for f in sorted(saved.glob("*.json")):
        digest = json.loads(f.read_text(encoding="utf-8"))
        d = docs[f.stem]
        ctx = grade(d.text, digest, d.gold, name=d.name)
        ins = grade(d.text, train.digest_of(d, shipped.decide(shipped.predict_proba(d.feats))), d.gold, name=d.name)
        loo_model = train.fit([o for o in docs.values() if o.name != d.name])
        loo = grade(d.text, train.digest_of(d, loo_model.decide(loo_model.predict_proba(d.feats))), d.gold, name=d.name)
        meta = digest["meta"]
        rows.append((d, ctx, ins, loo, meta, digest["overview"]))
    if not rows:
        print(f"nothing saved in {saved}: run with --run first")
        return

    def rp(s) -> str:
        return f"{s.recall or 0:.2f} / {s.precision or 0:.2f}"

    print(f"{'document':40s} {'units':>5s} {'context (1.5B)':>15s} {'learned, shipped':>17s} {'learned, LOO':>13s}"
          f" {'calls':>5s} {'missing':>7s} {'wrong n':>7s} {'min':>5s}")
    for d, ctx, ins, loo, meta, _ in rows:
        missing, shifted = (sum(int(w.split(" ")[0]) for w in meta["warnings"] if marker in w)
                            for marker in ("not decided by the model", "summarized another unit"))
        print(f"{d.name[:40]:40s} {len(d.units):5d} {rp(ctx):>15s} {rp(ins):>17s} {rp(loo):>13s}"
              f" {meta['llm_calls']:5d} {missing:7d} {shifted:7d} {meta['seconds'] / 60:5.1f}")

    def m(scores) -> str:
        x = micro(scores)
        return f"{x['recall'] or 0:.3f} / {x['precision'] or 0:.3f}"

    print("\nper genre (micro R / P): context | learned shipped | learned LOO")
    for genre in sorted({d.genre for d, *_ in rows}):
        sel = [r for r in rows if r[0].genre == genre]
        print(f"  {genre:30s} ({len(sel)}) {m([r[1] for r in sel])} | {m([r[2] for r in sel])} | {m([r[3] for r in sel])}")
    print(f"  {'all saved':30s} ({len(rows)}) {m([r[1] for r in rows])} | {m([r[2] for r in rows])} | "
          f"{m([r[3] for r in rows])}")
    print(f"\ncontract: {sum(r[1].violations for r in rows)} violations, "
          f"{sum(r[1].figure_faults for r in rows)} figure faults in summaries, "
          f"{sum(r[1].noise_items for r in rows)} noise items; overview figures not in the report: "
          f"{sum(len(overview_faults(r[0].text, r[5])) for r in rows)}; "
          f"model overviews kept {sum(not any(w.startswith('overview:') for w in r[4]['warnings']) for r in rows)}"
          f" of {len(rows)}")
    units = sum(len(r[0].units) for r in rows)
    minutes = sum(r[4]["seconds"] for r in rows) / 60
    print(f"\n{len(rows)} of {len(docs) - 5} corpus documents, {units} units, {minutes:.0f} min of model time, "
          f"{sum(r[4]['llm_calls'] for r in rows)} calls, {sum(r[4]['failed_chunks'] for r in rows)} failed chunks")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="digest the documents not yet saved (embedded model)")
    ap.add_argument("--threads", type=int, default=None, help="REPORTSUM_LOCAL_THREADS for the run")
    ap.add_argument("--first", default="", help="comma-separated name prefixes to digest first (c51,c62,...)")
    ap.add_argument("--only", action="store_true", help="digest only the --first documents")
    ap.add_argument("--saved", type=Path, default=SAVED)
    args = ap.parse_args()
    if args.run:
        run(args.saved, args.threads, [o for o in args.first.split(",") if o], args.only)
    report(args.saved)


if __name__ == "__main__":
    main()
