#!/usr/bin/env python3
"""Independent check of `reportsum eval`'s micro recall / precision.

Written from the rule in DESIGN.md alone, with no import from the `service` package and no
scipy: spans are located here, and the one-to-one matching is Kuhn's augmenting-path
algorithm. Run it on a folder of digests saved by `reportsum eval --save DIR`:

    python bench/check_matching.py --digests DIR --gold fixtures/gold --articles fixtures/articles

and compare the last line with the one `reportsum eval` printed (they should agree within 0.05;
on the same digests they should agree exactly).

Rules:
- a gold item's span is where its `evidence` occurs in the article text; if it occurs several
  times, the first occurrence not "in noise" is used (else the first occurrence);
- a noise region is where a gold `noise` string occurs; a noise string occurring several times
  marks a repeated passage: the later copies are noise, the first copy too unless some gold
  evidence overlaps it;
- "in noise" / "match": overlap > 0 and 2 * overlap >= the shorter of the two lengths;
- per category, digest items and gold items are matched one-to-one (maximum matching);
  micro recall = sum matched / sum gold, precision = sum matched / sum items.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CATS = ("achievements", "problems", "plans")
SUFFIXES = (".txt", ".md", ".html", ".htm")


def hits(a, b) -> bool:
    lo = a[0] if a[0] > b[0] else b[0]
    hi = a[1] if a[1] < b[1] else b[1]
    common = hi - lo
    if common <= 0:
        return False
    shorter = min(a[1] - a[0], b[1] - b[0])
    return common * 2 >= shorter


def kuhn_matching(left, right) -> int:
    """Size of a maximum matching between two span lists (None never matches)."""
    adj = [[j for j, b in enumerate(right) if a is not None and b is not None and hits(a, b)]
           for a in left]
    owner = [-1] * len(right)  # owner[j] = left vertex holding right vertex j

    def augment(u, seen) -> bool:
        # iterative DFS would be needed only for huge graphs; these have a few hundred nodes
        for v in adj[u]:
            if v in seen:
                continue
            seen.add(v)
            if owner[v] == -1 or augment(owner[v], seen):
                owner[v] = u
                return True
        return False

    sys.setrecursionlimit(max(10000, 4 * (len(left) + len(right))))
    size = 0
    for u in range(len(left)):
        if adj[u] and augment(u, set()):
            size += 1
    return size


def all_positions(text: str, s: str):
    out, start = [], 0
    if not s:
        return out
    while True:
        k = text.find(s, start)
        if k < 0:
            return out
        out.append((k, k + len(s)))
        start = k + 1


def gold_spans(text: str, gold: dict):
    """{category: [span or None, ...]} and the noise regions."""
    evid = [it["evidence"] for c in CATS for it in gold.get(c, [])]
    ev_pos = [p for e in evid for p in all_positions(text, e)]
    noise = []
    for n in gold.get("noise", []):
        pos = all_positions(text, n)
        if len(pos) > 1 and any(hits(pos[0], p) for p in ev_pos):
            pos = pos[1:]
        noise += pos
    spans = {}
    for c in CATS:
        spans[c] = []
        for it in gold.get(c, []):
            pos = all_positions(text, it["evidence"])
            clean = [p for p in pos if not any(hits(p, n) for n in noise)]
            spans[c].append(clean[0] if clean else (pos[0] if pos else None))
    return spans, noise


def item_span(it):
    sp = it.get("span") if isinstance(it, dict) else None
    if isinstance(sp, list) and len(sp) == 2 and all(type(x) is int for x in sp) and 0 <= sp[0] <= sp[1]:
        return (sp[0], sp[1])
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--digests", type=Path, required=True, help="folder of <stem>.json digests")
    ap.add_argument("--gold", type=Path, required=True)
    ap.add_argument("--articles", type=Path, required=True)
    args = ap.parse_args(argv)

    tot = {"gold": 0, "items": 0, "matched": 0}
    per = {c: {"gold": 0, "items": 0, "matched": 0} for c in CATS}
    for dpath in sorted(args.digests.glob("*.json")):
        stem = dpath.stem
        gpath = args.gold / f"{stem}.json"
        apath = next((args.articles / f"{stem}{s}" for s in SUFFIXES
                      if (args.articles / f"{stem}{s}").is_file()), None)
        if not gpath.is_file() or apath is None:
            print(f"skip {stem}: no gold or no article")
            continue
        text = apath.read_bytes().decode("utf-8")
        gold = json.loads(gpath.read_text(encoding="utf-8"))
        digest = json.loads(dpath.read_text(encoding="utf-8"))
        spans, _ = gold_spans(text, gold)
        row = []
        for c in CATS:
            g = [s for s in spans[c] if s is not None]
            items = [item_span(it) for it in (digest.get(c) or [])]
            m = kuhn_matching(items, g)
            for k, v in (("gold", len(g)), ("items", len(items)), ("matched", m)):
                per[c][k] += v
                tot[k] += v
            row.append(f"{c[:4]} {m}/{len(g)} gold {m}/{len(items)} items")
        print(f"{stem}: " + "; ".join(row))
    for c in CATS:
        r = per[c]["matched"] / per[c]["gold"] if per[c]["gold"] else float("nan")
        p = per[c]["matched"] / per[c]["items"] if per[c]["items"] else float("nan")
        print(f"{c:<13} recall {r:.3f} precision {p:.3f}")
    if not tot["gold"]:
        print("nothing graded")
        return 1
    r = tot["matched"] / tot["gold"]
    p = tot["matched"] / tot["items"] if tot["items"] else 0.0
    print(f"micro recall {r:.2f} precision {p:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
