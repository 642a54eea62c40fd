"""Print every development and silver document's heading tree, so a reader can check it.

    python bench/structure.py                 # every document: tree, then a summary line
    python bench/structure.py --summary       # summary lines only
    python bench/structure.py --only s13 c64  # documents whose file name contains a word

Each heading prints indented by its level (its depth in the section path that
``service.segment`` gives the text under it), with the number of units directly under it
and, after a slash, the number in its whole subtree. A lead sentence that introduces a list
("一年来，我们做了以下主要工作：") is not a heading but stays in the path of the list it
announces: it prints as ``» lead``. Title-block lines print as ``T``. The summary line per
document gives headings, the deepest level, and units (sentence units + heading tasks); the last
line counts the units that follow a top-level part ("二、…") but whose path does not hold it.

Documents: ``fixtures/articles`` (seeds), ``fixtures/corpus/articles``, and silver from
``fixtures/silver/articles`` if that exists, else ``../shared/eval/silver/articles``; a
missing folder is skipped with a note.

Checked by reading the whole output for all 60 documents (2026-12-02, issue 25): every
national report's parts ("一、…回顾" / "二、…部署" / "三、…任务") sit at one level and a new part
closes the sub-parts of the one before (s13, s32 and s33 no longer nest the tasks under the
review's "（三）"; excerpts that open mid-part, s02 and s04, close their "（六）"/"（九）" at "二、");
lead sentences ending in a colon ("……主要工作：", "重点抓好以下工作：", "每个省份的培训可分为三轮进行：")
are text, shown as ``»`` above the list they announce; "（一）" lists sit under their "一、", "1."
under "（一）", "（1）" under "1." (s27, s29, s31, c35, c41, c65); a list of names between
"（一）" and "（二）" stays inside the numbering (s31); speakers of a press conference title their
answers (c52); meeting news with 一是…二是… inline keeps those paragraphs as text (seeds).
A whole line in <strong>/<b>/<h1>…<h6> on a web page is a heading even with a comma (s30's
"定点——…，…" subtitles); in plain text such a line is a sentence cut off (c04, seeds 002, 004).
第X章 / 第X条 and 【】 titles occur in none of these documents: their ranks are unit-tested only.
Left as they are: boxes "专栏1 …" after the last numbered part start sections of their own (c36);
bare numbers from a table read as headings (s20); an addressee ("各位代表：", "各区卫生健康委：")
or a byline ("省长 刘小涛") above the first part is the root of the path (s33, c12, s28); "2中医药…"
without its dot is a plain title (c35). A caption set into a sentence (seeds 000 and 002) or a
newspaper headline set into one (seed 003, where it heads the epidemic story: "主动担当 奋勇战疫" /
"疫情防控中展现新作为"), the only three, prints as ``cut by a caption or headline``: the unit before it
and the words after it that end its clause.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from service.clean import clean
from service.segment import Structure, segment

ROOT = Path(__file__).resolve().parent.parent
SILVER = [ROOT / "fixtures/silver/articles", ROOT.parent / "shared/eval/silver/articles",
          Path("/work/shared/eval/silver/articles")]


def documents(only: list[str]) -> list[Path]:
    folders = [ROOT / "fixtures/articles", ROOT / "fixtures/corpus/articles"]
    silver = next((p for p in SILVER if p.is_dir()), None)
    if silver is None:
        print("(no silver articles found; looked in " + ", ".join(map(str, SILVER)) + ")", file=sys.stderr)
    else:
        folders.append(silver)
    docs = [p for f in folders if f.is_dir() for p in sorted(f.glob("*.txt"))]
    return [p for p in docs if not only or any(w in p.name for w in only)]


def tree(st: Structure) -> list[tuple[int, str, str, int, int]]:
    """(level, marker, text, units directly under, units in the subtree) per heading or lead."""
    bounds = [h.start for h in st.headings] + [10**12]
    direct = [0] * len(st.headings)
    for s in st.sentences:
        i = _owner(bounds, s.start)
        if i >= 0:
            direct[i] += len(s.units)
    for t in st.tasks:
        i = _owner(bounds, t.start)
        if i >= 0:
            direct[i] += len(t.units)
    rows: list[tuple[int, str, str, int, int]] = []
    shown: tuple[str, ...] = ()
    for i, (h, path) in enumerate(zip(st.headings, st.paths)):
        # a lead sentence in the path that was not printed yet: show it where it enters
        for k, part in enumerate(path[:-1]):
            if k >= len(shown) or shown[k] != part:
                if part not in {x.text for x in st.headings}:
                    rows.append((k, "»", part, 0, 0))
        shown = path
        rows.append((len(path) - 1, "T" if h.title else "-", h.text, direct[i], 0))
    # subtree totals: a row's own units plus those of the rows after it at a deeper level
    totals = [r[3] for r in rows]
    for i, r in enumerate(rows):
        j = i + 1
        while j < len(rows) and rows[j][0] > r[0]:
            totals[i] += rows[j][3]
            j += 1
    return [(lvl, m, text, d, tot) for (lvl, m, text, d, _), tot in zip(rows, totals)]


TOP_PART = re.compile(r"^\s*[一二三四五六七八九十]+、")


def outside_part(st: Structure) -> tuple[int, int]:
    """Units after a top-level part heading ("二、2009年工作总体部署") whose section path does not
    hold that part (a review's "（三）" still open over the tasks), and all units after one."""
    parts = [h for h in st.headings if TOP_PART.match(h.text)]
    bad = total = 0
    for s in [*st.sentences, *st.tasks]:
        above = [p for p in parts if p.start <= s.start]
        if not above:
            continue
        total += len(s.units)
        if above[-1].text not in s.context and s.heading != above[-1].text:
            bad += len(s.units)
    return bad, total


def _owner(bounds: list[int], pos: int) -> int:
    i = -1
    while i + 1 < len(bounds) - 1 and bounds[i + 1] <= pos:
        i += 1
    return i


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--only", nargs="*", default=[])
    args = ap.parse_args()
    outside = [0, 0]
    for path in documents(args.only):
        raw = path.read_text(encoding="utf-8-sig")
        st = segment(raw, clean(raw).blocks)
        rows = tree(st)
        units = sum(len(s.units) for s in st.sentences) + sum(len(t.units) for t in st.tasks)
        before = sum(len(s.units) for s in st.sentences if not st.headings or s.start < st.headings[0].start)
        if not args.summary:
            print(f"=== {path.parent.parent.name}/{path.name}")
            if before:
                print(f"  ({before} units before the first heading)")
            for lvl, marker, text, d, tot in rows:
                print(f"  {'    ' * lvl}{marker} {_short(text)}  [{d}/{tot}]")
        depth = max((len(p) for p in st.paths), default=0)
        bad, total = outside_part(st)
        outside[0] += bad
        outside[1] += total
        cut = [u for s in st.sentences for u in s.units if u.tail]
        if not args.summary:
            for u in cut:  # a caption set into a sentence: the unit before it and the words that end it
                print(f"  cut by a caption or headline: {_short(u.text, 30)} + {u.tail}")
        print(f"SUMMARY {path.name}: headings {len(st.headings)} depth {depth} units {units}"
              + (f" outside their part {bad}" if bad else "") + (f" cut by a caption or headline {len(cut)}" if cut else ""))
    print(f"units outside the top-level part (一、…) they follow: {outside[0]} of {outside[1]}")


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


if __name__ == "__main__":
    main()
