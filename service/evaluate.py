"""Grade digests against gold annotations (``reportsum eval``).

Two halves:

* pure scoring (no I/O, no model): :func:`load_gold` (the only function that reads a file),
  :func:`locate_gold`, :func:`grade`, :func:`micro`;
* the driver :func:`run_eval`, which the CLI calls with a ``summarize_file`` callable, so this
  module never imports the pipeline and stays testable with a test double.

The matching rule (DESIGN.md, "How quality is measured"): an output item matches a gold item
of the same category when their spans overlap by at least half of the SHORTER span
(``overlap > 0 and 2 * overlap >= min(len1, len2)``); items and gold items are matched
one-to-one by maximum bipartite matching, so one long item counts for at most one gold claim.
recall = matched gold / gold, precision = matched items / items.

Gold spans are found by locating each gold ``evidence`` in the text (``str.find``). When an
evidence occurs several times, the first occurrence that is not in a noise region is used.
A noise region is the span of a gold ``noise`` string in the text (the string marks the start
of a segment that is not part of the report). When a noise string occurs several times it
marks a repeated passage: every later occurrence is noise, and the first one is noise too
unless a gold evidence overlaps it (then the first copy is the original the report keeps).
"""

from __future__ import annotations

import html
import json
import math
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from service.errors import InputError
from service.models import CATEGORIES, Category, Digest, Span

ARTICLE_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".html", ".htm")
DUPLICATE_OVERLAP = 0.8  # two items of one category overlapping by >= 80% of the shorter span

# --------------------------------------------------------------------------------------------
# Gold format (../shared/eval/GOLD_FORMAT.md)
# --------------------------------------------------------------------------------------------


class GoldItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    summary: str = ""
    evidence: str
    figures: list[str] = Field(default_factory=list)


class Gold(BaseModel):
    model_config = ConfigDict(extra="allow")

    doc: str | None = None
    title: str | None = None
    organization: str | None = None
    region: str | None = None
    period: str | None = None
    achievements: list[GoldItem] = Field(default_factory=list)
    problems: list[GoldItem] = Field(default_factory=list)
    plans: list[GoldItem] = Field(default_factory=list)
    noise: list[str] = Field(default_factory=list)

    def items(self) -> list[tuple[Category, int, GoldItem]]:
        return [(c, i, it) for c in CATEGORIES for i, it in enumerate(getattr(self, c))]


def load_gold(path: str | Path) -> Gold:
    """Read and validate one gold file (UTF-8 JSON)."""
    return Gold.model_validate_json(Path(path).read_bytes())


# --------------------------------------------------------------------------------------------
# Spans and matching
# --------------------------------------------------------------------------------------------


def overlap(a: Span, b: Span) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def spans_match(a: Span, b: Span) -> bool:
    """The matching rule: overlap of at least half of the shorter span (and not empty)."""
    ov = overlap(a, b)
    return ov > 0 and 2 * ov >= min(a[1] - a[0], b[1] - b[0])


def in_noise(span: Span, noise_spans: Iterable[Span]) -> bool:
    """An item is drawn from noise when it overlaps a noise string by >= half of the item
    or >= half of the noise string (the same rule as :func:`spans_match`)."""
    return any(spans_match(span, ns) for ns in noise_spans)


def max_matching(left: Sequence[Span | None], right: Sequence[Span | None]) -> list[tuple[int, int]]:
    """Maximum one-to-one matching between two span lists under :func:`spans_match`.

    ``None`` entries (unlocatable / malformed spans) never match. Returns ``(i, j)`` pairs.
    """
    rows: list[int] = []
    cols: list[int] = []
    for i, a in enumerate(left):
        if a is None:
            continue
        for j, b in enumerate(right):
            if b is not None and spans_match(a, b):
                rows.append(i)
                cols.append(j)
    if not rows:
        return []
    graph = csr_matrix(
        (np.ones(len(rows), dtype=np.int8), (np.array(rows), np.array(cols))),
        shape=(len(left), len(right)),
    )
    assignment = maximum_bipartite_matching(graph, perm_type="column")
    return [(i, int(j)) for i, j in enumerate(assignment) if j >= 0]


# --------------------------------------------------------------------------------------------
# Locating gold in the text
# --------------------------------------------------------------------------------------------


def _occurrences(text: str, needle: str) -> list[Span]:
    """Every (possibly overlapping) occurrence of ``needle`` in ``text``.

    Falls back to CRLF-insensitive search when the text has ``\\r\\n`` line ends and the
    needle (validated against a newline-translated read) has plain ``\\n``.
    """
    if not needle:
        return []
    found: list[Span] = []
    pos = text.find(needle)
    while pos >= 0:
        found.append((pos, pos + len(needle)))
        pos = text.find(needle, pos + 1)
    if found or "\r" not in text:
        return found
    # Map offsets of the newline-normalised text back to the original.
    norm_chars: list[str] = []
    starts: list[int] = []
    i = 0
    while i < len(text):
        if text.startswith("\r\n", i):
            norm_chars.append("\n")
            starts.append(i)
            i += 2
        else:
            norm_chars.append("\n" if text[i] == "\r" else text[i])
            starts.append(i)
            i += 1
    starts.append(len(text))
    norm = "".join(norm_chars)
    needle = needle.replace("\r\n", "\n").replace("\r", "\n")
    pos = norm.find(needle)
    while pos >= 0:
        found.append((starts[pos], starts[pos + len(needle)]))
        pos = norm.find(needle, pos + 1)
    return found


@dataclass(frozen=True)
class GoldSpan:
    """One gold item with where it was found (``span`` is None when it could not be)."""

    category: Category
    index: int  # position in the gold file's list for that category
    summary: str
    evidence: str
    figures: tuple[str, ...]
    span: Span | None


@dataclass
class LocatedGold:
    items: list[GoldSpan]  # located gold items, in gold order
    unlocated: list[GoldSpan]  # gold items whose evidence is not in the text
    noise_spans: list[Span]
    noise_unlocated: list[str]

    def category(self, cat: Category) -> list[GoldSpan]:
        return [g for g in self.items if g.category == cat]


def locate_gold(text: str, gold: Gold) -> LocatedGold:
    """Find every gold evidence and noise string in ``text`` (see the module docstring)."""
    evidence_occ = {it.evidence: _occurrences(text, it.evidence) for _, _, it in gold.items()}

    noise_spans: list[Span] = []
    noise_unlocated: list[str] = []
    for noise in gold.noise:
        occ = _occurrences(text, noise)
        if not occ:
            noise_unlocated.append(noise)
            continue
        if len(occ) == 1:
            noise_spans.append(occ[0])
            continue
        first, later = occ[0], occ[1:]
        first_is_original = any(
            spans_match(first, e) for spans in evidence_occ.values() for e in spans
        )
        noise_spans.extend(later if first_is_original else occ)

    located: list[GoldSpan] = []
    unlocated: list[GoldSpan] = []
    for cat, idx, it in gold.items():
        occ = evidence_occ[it.evidence]
        span = next((s for s in occ if not in_noise(s, noise_spans)), occ[0] if occ else None)
        g = GoldSpan(cat, idx, it.summary, it.evidence, tuple(it.figures), span)
        (located if span is not None else unlocated).append(g)
    return LocatedGold(located, unlocated, sorted(noise_spans), noise_unlocated)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"\d+(?:\.\d+)?[%‰]?")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_CN_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")


def _norm_numbers(s: str) -> str:
    return _THOUSANDS.sub("", unicodedata.normalize("NFKC", s))


def numbers_in(s: str) -> list[str]:
    """Arabic numbers (decimals, thousands separators, % and ‰ kept) as printed, NFKC-folded."""
    return _NUMBER.findall(_norm_numbers(s))


def _cn_small(run: str) -> int | None:
    """Value of a Chinese numeral below 10,000 (e.g. 二十, 一百零五, 十); None if not one."""
    if not run:
        return None
    if all(c in _CN_DIGITS for c in run):  # 二〇二〇 -> 2020
        return int("".join(str(_CN_DIGITS[c]) for c in run))
    total, digit = 0, None
    for c in run:
        if c in _CN_DIGITS:
            digit = _CN_DIGITS[c]
        elif c in _CN_UNITS:
            total += (1 if digit is None else digit) * _CN_UNITS[c]
            digit = None
        else:
            return None
    return total + (digit or 0)


def chinese_number_values(s: str) -> set[str]:
    """Values of Chinese numerals in ``s`` as decimal strings (二十 -> 20; 五万 -> 50000 and 5)."""
    values: set[str] = set()
    for run in _CN_RUN.findall(s):
        parts = re.split(r"([万亿])", run)
        total, ok = 0, True
        for k in range(0, len(parts), 2):
            head = _cn_small(parts[k]) if parts[k] else (1 if k + 1 < len(parts) else 0)
            if head is None:
                ok = False
                break
            values.add(str(head))  # "5万" in a summary for "五万" in the evidence
            mult = _CN_BIG[parts[k + 1]] if k + 1 < len(parts) else 1
            total += head * mult
        if ok:
            values.add(str(total))
    return values


_TAG = re.compile(r"<[^<>]*>")


def _visible(evidence: str) -> str:
    """An evidence slice of web-page source as a reader sees it: a sentence that runs across
    inline markup keeps its tags in the evidence; its figures are read without them."""
    return html.unescape(_TAG.sub("", evidence)) if "<" in evidence or "&" in evidence else evidence


def number_cut(text: str, span: Span) -> str | None:
    """Does the span begin or end inside a number of the text around it ("2%" cut out of
    "85.2%")? A figure is the whole number as printed, never a suffix or prefix of it."""
    a, b = span
    def digit(i: int) -> bool:
        return 0 <= i < len(text) and text[i] in _DIGITS
    def point(i: int) -> bool:
        return 0 <= i < len(text) and text[i] in ".．"
    if (digit(a) or point(a)) and (digit(a - 1) or (point(a - 1) and digit(a - 2))):
        return f"span {span} begins inside a number ({text[max(0, a - 6):a]}|{text[a:a + 6]})"
    if (digit(b - 1) or point(b - 1)) and (digit(b) or (point(b) and digit(b + 1))):
        return f"span {span} ends inside a number ({text[max(0, b - 6):b]}|{text[b:b + 6]})"
    return None


_DIGITS = set("0123456789０１２３４５６７８９")


def figure_faults(summary: str, evidence: str, figures: Sequence[str]) -> list[str]:
    """Figures not verbatim in the evidence, and numbers of the summary the evidence lacks."""
    evidence = _visible(evidence)
    faults = [f"figure {f!r} not in evidence" for f in figures if not f or f not in evidence]
    ev_tokens = set(numbers_in(evidence))
    ev_values = {t.rstrip("%‰") for t in ev_tokens} | chinese_number_values(evidence)
    for tok in numbers_in(summary):
        ok = tok in ev_tokens if tok[-1] in "%‰" else tok in ev_values
        if not ok:
            faults.append(f"summary number {tok!r} not in evidence")
    return faults


def overview_faults(text: str, overview: str) -> list[str]:
    """Numbers of an overview that the report does not print (the scorer's check, apart from
    the pipeline's own guard, ``overview.unsupported``, which checks against the items' evidence)."""
    printed = set(numbers_in(text))
    return [f"overview number {tok!r} not in the report" for tok in numbers_in(overview) if tok not in printed]


# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


class _Rates:
    """Recall and precision from ``matched``, ``gold`` and ``items`` (fields or properties)."""

    matched: int
    gold: int
    items: int

    @property
    def recall(self) -> float | None:
        return ratio(self.matched, self.gold)

    @property
    def precision(self) -> float | None:
        return ratio(self.matched, self.items)


@dataclass
class CategoryScore(_Rates):
    gold: int = 0
    items: int = 0
    matched: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"gold": self.gold, "items": self.items, "matched": self.matched,
                "recall": self.recall, "precision": self.precision}


COUNT_FIELDS = ("gold", "items", "matched", "located_matched", "wrong_category", "noise_items",
                "violations", "figure_faults", "duplicates", "gold_unlocated", "noise_unlocated",
                "llm_calls", "prompt_tokens", "completion_tokens")


@dataclass
class ArticleScore(_Rates):
    name: str
    per_category: dict[str, CategoryScore] = field(
        default_factory=lambda: {c: CategoryScore() for c in CATEGORIES})
    located_matched: int = 0  # one-to-one matches ignoring category
    wrong_category: int = 0
    noise_items: int = 0
    violations: int = 0
    figure_faults: int = 0
    duplicates: int = 0
    gold_unlocated: int = 0
    noise_unlocated: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    failed: bool = False
    error: str | None = None
    details: dict[str, list[str]] = field(default_factory=dict)

    @property
    def gold(self) -> int:
        return sum(c.gold for c in self.per_category.values())

    @property
    def items(self) -> int:
        return sum(c.items for c in self.per_category.values())

    @property
    def matched(self) -> int:
        return sum(c.matched for c in self.per_category.values())

    @property
    def located_recall(self) -> float | None:
        return ratio(self.located_matched, self.gold)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"article": self.name, "failed": self.failed}
        if self.error is not None:
            d["error"] = self.error
        d.update(recall=self.recall, precision=self.precision, located_recall=self.located_recall,
                 per_category={c: s.to_dict() for c, s in self.per_category.items()})
        d.update({k: getattr(self, k) for k in COUNT_FIELDS})
        d["seconds"] = round(self.seconds, 3)
        d["details"] = self.details
        return d


@dataclass(frozen=True)
class _OutItem:
    category: Category
    index: int
    summary: str
    evidence: str
    figures: tuple[str, ...]
    span: Span | None  # None when malformed

    @property
    def label(self) -> str:
        return f"{self.category}[{self.index}]"


def _as_dict(digest: dict | Digest | BaseModel) -> dict[str, Any]:
    if isinstance(digest, BaseModel):
        return digest.model_dump(mode="json")
    return digest if isinstance(digest, dict) else {}


def _out_items(d: dict[str, Any]) -> list[_OutItem]:
    out: list[_OutItem] = []
    for cat in CATEGORIES:
        raw = d.get(cat) or []
        for i, it in enumerate(raw if isinstance(raw, list) else []):
            it = it if isinstance(it, dict) else {}
            sp = it.get("span")
            span: Span | None = None
            if (isinstance(sp, (list, tuple)) and len(sp) == 2
                    and all(isinstance(x, int) and not isinstance(x, bool) for x in sp)
                    and 0 <= sp[0] <= sp[1]):
                span = (sp[0], sp[1])
            figs = it.get("figures") or []
            out.append(_OutItem(cat, i, str(it.get("summary") or ""), str(it.get("evidence") or ""),
                                tuple(str(f) for f in figs) if isinstance(figs, list) else (), span))
    return out


def grade(text: str, digest: dict | Digest, gold: Gold | LocatedGold, *, name: str | None = None) -> ArticleScore:
    """Score one digest of ``text`` against its gold (a :class:`Gold` or a pre-located one)."""
    located = gold if isinstance(gold, LocatedGold) else locate_gold(text, gold)
    if name is None:
        name = (gold.doc if isinstance(gold, Gold) else None) or "article"
    d = _as_dict(digest)
    items = _out_items(d)
    score = ArticleScore(name=name)
    det: dict[str, list[str]] = {}

    def note(kind: str, msg: str) -> None:
        det.setdefault(kind, []).append(msg)

    score.gold_unlocated = len(located.unlocated)
    for g in located.unlocated:
        note("gold_unlocated", f"{g.category}[{g.index}] {g.evidence[:40]!r}")
    score.noise_unlocated = len(located.noise_unlocated)
    for n in located.noise_unlocated:
        note("noise_unlocated", repr(n[:40]))

    # Per category, one-to-one.
    unmatched_items: list[_OutItem] = []
    unmatched_gold: list[GoldSpan] = []
    for cat in CATEGORIES:
        its = [it for it in items if it.category == cat]
        gs = located.category(cat)
        pairs = max_matching([it.span for it in its], [g.span for g in gs])
        cs = score.per_category[cat]
        cs.gold, cs.items, cs.matched = len(gs), len(its), len(pairs)
        mi = {i for i, _ in pairs}
        mg = {j for _, j in pairs}
        unmatched_items += [it for i, it in enumerate(its) if i not in mi]
        unmatched_gold += [g for j, g in enumerate(gs) if j not in mg]

    # Ignoring category.
    score.located_matched = len(max_matching([it.span for it in items], [g.span for g in located.items]))

    # Wrong category: leftovers that match a leftover gold item of another category (one-to-one).
    left = [it.span for it in unmatched_items]
    right = [g.span for g in unmatched_gold]
    for i, j in max_matching(left, right):
        it, g = unmatched_items[i], unmatched_gold[j]
        if it.category != g.category:
            score.wrong_category += 1
            note("wrong_category", f"{it.label} is gold {g.category}[{g.index}]")
        # A same-category pair cannot occur here: it would augment a maximum matching.

    for it in items:
        if it.span is None or it.span[1] > len(text) or text[it.span[0]:it.span[1]] != it.evidence:
            score.violations += 1
            note("violations", f"{it.label} span {it.span} evidence {it.evidence[:30]!r}")
        if it.span is not None and in_noise(it.span, located.noise_spans):
            score.noise_items += 1
            note("noise_items", f"{it.label} {it.evidence[:30]!r}")
        faults = figure_faults(it.summary, it.evidence, it.figures)
        if it.span is not None and (cut := number_cut(text, it.span)):
            faults.append(cut)
        score.figure_faults += len(faults)
        for f in faults:
            note("figure_faults", f"{it.label} {f}")

    for cat in CATEGORIES:
        its = [it for it in items if it.category == cat]
        for j, b in enumerate(its):
            for a in its[:j]:
                same_text = a.evidence.strip() != "" and a.evidence.strip() == b.evidence.strip()
                near = (a.span is not None and b.span is not None
                        and overlap(a.span, b.span) > 0
                        and overlap(a.span, b.span) >= DUPLICATE_OVERLAP * min(a.span[1] - a.span[0], b.span[1] - b.span[0]))
                if same_text or near or (a.span is not None and a.span == b.span):
                    score.duplicates += 1
                    note("duplicates", f"{b.label} repeats {a.label}")
                    break

    meta = d.get("meta") if isinstance(d.get("meta"), dict) else {}
    score.llm_calls = int(meta.get("llm_calls") or 0)
    score.prompt_tokens = int(meta.get("prompt_tokens") or 0)
    score.completion_tokens = int(meta.get("completion_tokens") or 0)
    score.seconds = float(meta.get("seconds") or 0.0)
    doc = d.get("doc") if isinstance(d.get("doc"), dict) else {}
    if isinstance(doc.get("chars"), int) and doc["chars"] != len(text):
        note("warnings", f"digest doc.chars {doc['chars']} != {len(text)} characters graded "
                         "(the text was decoded differently: spans will not line up)")
    score.details = det
    return score


# The category a titled part of each kind (features.PARTS) holds.
PART_CATEGORY = {"review": "achievements", "problem": "problems", "plan": "plans"}


def flipped_parts(parts: Sequence[tuple[tuple[str, ...], str | None]], decisions: Sequence[Sequence[str]],
                  min_items: int = 5, min_share: float = 0.2) -> list[tuple[str, str, int, float]]:
    """Titled parts read against their heading (issue 25: "no single feature may flip a whole
    part"): of a part's emitted units (``parts``: each unit's section path and the kind of its
    innermost titled part, None outside one), at least ``min_items``, under ``min_share`` carry
    the part's own category (a "主要问题" part read as plans). Returns (title, kind, emitted
    units, share) per flipped part."""
    emitted: dict[tuple[tuple[str, ...], str], list[Sequence[str]]] = {}
    for (path, kind), decided in zip(parts, decisions):
        if kind in PART_CATEGORY and decided:
            emitted.setdefault((path, kind), []).append(decided)
    out = []
    for (path, kind), decs in emitted.items():
        share = sum(PART_CATEGORY[kind] in d for d in decs) / len(decs)
        if len(decs) >= min_items and share < min_share:
            out.append((path[-1] if path else "", kind, len(decs), round(share, 2)))
    return out


def micro(scores: Sequence[ArticleScore]) -> dict[str, Any]:
    """Pool counts over articles: micro recall = total matched gold / total gold, etc."""
    per_cat = {c: CategoryScore() for c in CATEGORIES}
    for s in scores:
        for c in CATEGORIES:
            per_cat[c].gold += s.per_category[c].gold
            per_cat[c].items += s.per_category[c].items
            per_cat[c].matched += s.per_category[c].matched
    totals = {k: sum(getattr(s, k) for s in scores) for k in COUNT_FIELDS}
    return {
        "recall": ratio(totals["matched"], totals["gold"]),
        "precision": ratio(totals["matched"], totals["items"]),
        "located_recall": ratio(totals["located_matched"], totals["gold"]),
        "per_category": {c: cs.to_dict() for c, cs in per_cat.items()},
        "articles": len(scores),
        "failed": sum(1 for s in scores if s.failed),
        **totals,
        "seconds": round(sum(s.seconds for s in scores), 3),
    }


def standard_errors(m: dict[str, Any]) -> tuple[float | None, float | None]:
    """Binomial standard errors of a ``micro`` figure's recall and precision, each gold claim
    and each item one trial. A floor on how far the figure moves by chance: claims of one
    document are not independent, so a group of three documents moves more than this says
    (its precision, from about 250 items, by at least 0.03)."""

    def se(p: float | None, n: int) -> float | None:
        return math.sqrt(p * (1 - p) / n) if p is not None and n else None

    return se(m["recall"], m["gold"]), se(m["precision"], m["items"])


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def read_article_text(path: Path) -> str:
    """Decode an article like the contract says: bytes -> str, nothing else (no newline
    translation, BOM kept). UTF-8 first, else charset-normalizer's best guess."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(raw).best()
        if best is None:
            raise InputError("cannot decode", str(path)) from None
        return str(best)


def _fmt(x: float | None, width: int = 4) -> str:
    return f"{x:.2f}".rjust(width) if x is not None else "-".rjust(width)


def _rp(cs: dict[str, Any] | CategoryScore) -> str:
    if isinstance(cs, CategoryScore):
        cs = cs.to_dict()
    return f"{_fmt(cs['recall'])}/{_fmt(cs['precision'])}"


def _table(scores: Sequence[ArticleScore], m: dict[str, Any]) -> list[str]:
    w = max([len("article")] + [min(len(s.name), 28) for s in scores])
    head = (f"{'article':<{w}}  {'achiev R/P':>11}  {'problem R/P':>11}  {'plans R/P':>11}  "
            f"{'R':>4} {'P':>4} {'loc':>4}  {'wrong':>5} {'noise':>5} {'viol':>4} {'fig':>4} {'dup':>4}  "
            f"{'calls':>5} {'tokens':>8} {'sec':>7}")
    rows = [head, "-" * len(head)]

    def row(name: str, pc: dict, r, p, loc, c: dict, flag: str = "") -> str:
        tokens = c["prompt_tokens"] + c["completion_tokens"]
        return (f"{name[:w]:<{w}}  {_rp(pc['achievements']):>11}  {_rp(pc['problems']):>11}  "
                f"{_rp(pc['plans']):>11}  {_fmt(r)} {_fmt(p)} {_fmt(loc)}  {c['wrong_category']:>5} "
                f"{c['noise_items']:>5} {c['violations']:>4} {c['figure_faults']:>4} {c['duplicates']:>4}  "
                f"{c['llm_calls']:>5} {tokens:>8} {c['seconds']:>7.1f}{flag}")

    for s in scores:
        c = {k: getattr(s, k) for k in COUNT_FIELDS} | {"seconds": s.seconds}
        pc = {k: v.to_dict() for k, v in s.per_category.items()}
        rows.append(row(s.name, pc, s.recall, s.precision, s.located_recall, c,
                        "  FAILED" if s.failed else ""))
    rows.append("-" * len(head))
    rows.append(row("MICRO", m["per_category"], m["recall"], m["precision"], m["located_recall"], m))
    return rows


def _pairs(articles_dir: Path, gold_dir: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    pairs, skipped = [], []
    for p in sorted(articles_dir.iterdir()):
        if not p.is_file() or p.suffix.lower() not in ARTICLE_SUFFIXES:
            continue
        g = gold_dir / f"{p.stem}.json"
        if g.is_file():
            pairs.append((p, g))
        else:
            skipped.append(p.name)
    return pairs, skipped


def run_eval(
    articles_dir: Path,
    gold_dir: Path,
    settings: Any,
    *,
    as_json: bool,
    save: Path | None,
    summarize_file: Callable[[Path], Digest],
    read_text: Callable[[Path], str] = read_article_text,
    out: TextIO | None = None,
) -> int:
    """Summarize and grade every article of ``articles_dir`` that has ``<stem>.json`` gold.

    ``summarize_file`` turns a path into a :class:`Digest` (the CLI passes the pipeline);
    ``read_text`` must decode the file exactly as the pipeline does, since spans index that
    text. Prints a table (or, with ``as_json``, one JSON object) to ``out``/stdout; progress
    goes to stderr unless ``settings.quiet``. Returns 1 when an article failed (or nothing
    could be graded), else 0. A failed article is scored as an empty digest, so its gold
    still counts against micro recall.
    """
    out = out or sys.stdout
    articles_dir, gold_dir = Path(articles_dir), Path(gold_dir)
    for d, what in ((articles_dir, "articles"), (gold_dir, "gold")):
        if not d.is_dir():
            raise InputError(f"{what} folder not found", str(d))
    quiet = bool(getattr(settings, "quiet", False))
    pairs, skipped = _pairs(articles_dir, gold_dir)
    if save is not None:
        Path(save).mkdir(parents=True, exist_ok=True)

    scores: list[ArticleScore] = []
    for n, (article, gold_path) in enumerate(pairs, 1):
        stem = article.stem
        if not quiet:
            print(f"[{n}/{len(pairs)}] {article.name}", file=sys.stderr, flush=True)
        try:
            gold = load_gold(gold_path)
            text = read_text(article)
        except Exception as exc:  # unreadable gold or article: nothing to grade against
            scores.append(ArticleScore(name=stem, failed=True, error=f"{type(exc).__name__}: {exc}"))
            continue
        started = time.perf_counter()
        try:
            digest = summarize_file(article)
        except Exception as exc:
            score = grade(text, {}, gold, name=stem)
            score.failed, score.error = True, f"{type(exc).__name__}: {exc}"
            score.seconds = time.perf_counter() - started
            scores.append(score)
            if not quiet:
                print(f"    failed: {score.error}", file=sys.stderr, flush=True)
            continue
        wall = time.perf_counter() - started
        data = _as_dict(digest)
        if save is not None:
            (Path(save) / f"{stem}.json").write_text(
                json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        score = grade(text, data, gold, name=stem)
        if not score.seconds:
            score.seconds = wall
        scores.append(score)

    m = micro(scores)
    failed = [s for s in scores if s.failed]
    if as_json:
        print(json.dumps({"micro": m, "articles": [s.to_dict() for s in scores], "skipped": skipped},
                         ensure_ascii=False, indent=2), file=out)
    else:
        for line in _table(scores, m):
            print(line, file=out)
        for s in failed:
            print(f"failed  {s.name}: {s.error}", file=out)
        for name in skipped:
            print(f"skipped {name}: no gold file {Path(name).stem}.json in {gold_dir}", file=out)
        for s in scores:
            for kind in ("gold_unlocated", "noise_unlocated", "warnings"):
                for msg in s.details.get(kind, []):
                    print(f"note    {s.name}: {kind} {msg}", file=out)
        if not scores:
            print(f"no article in {articles_dir} has a gold file in {gold_dir}", file=out)
        print(f"micro recall {_fmt(m['recall'], 0).strip() if m['recall'] is not None else 'n/a'} "
              f"precision {_fmt(m['precision'], 0).strip() if m['precision'] is not None else 'n/a'}",
              file=out)
    return 1 if failed or not scores else 0


# ============================================================================================
# Tracking: ``reportsum eval-track`` (gold format: ../shared/eval/tracking/README.md)
# ============================================================================================
# A system commitment matches a gold one under the same rule as items (spans overlap by half
# the shorter, one-to-one by :func:`max_matching`). Status accuracy and its confusion matrix
# count matched commitments only. A gold ``later_evidence`` is found when the statement the
# system cites for the matched commitment overlaps it under the same rule.

TRACK_STATUSES = ("met", "not_met", "progress_reported", "not_reported")


class TrackGoldCommitment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    evidence: str
    figures: list[str] = Field(default_factory=list)
    status: str
    later_evidence: list[str] = Field(default_factory=list)
    later_figures: list[str] = Field(default_factory=list)
    note: str = ""


class TrackGold(BaseModel):
    model_config = ConfigDict(extra="allow")

    earlier: str = "earlier.txt"
    later: str = "later.txt"
    year: int | None = None
    commitments: list[TrackGoldCommitment] = Field(default_factory=list)


def load_track_gold(path: str | Path) -> TrackGold:
    return TrackGold.model_validate_json(Path(path).read_bytes())


@dataclass
class TrackScore(_Rates):
    name: str
    gold: int = 0
    items: int = 0
    matched: int = 0
    status_correct: int = 0
    later_gold: int = 0
    later_found: int = 0
    gold_unlocated: int = 0
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {g: {s: 0 for s in TRACK_STATUSES} for g in TRACK_STATUSES})
    contract_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    failed: bool = False
    error: str | None = None

    @property
    def status_accuracy(self) -> float | None:
        return ratio(self.status_correct, self.matched)

    @property
    def later_recall(self) -> float | None:
        return ratio(self.later_found, self.later_gold)

    def to_dict(self) -> dict[str, Any]:
        return {"pair": self.name, "failed": self.failed, "error": self.error, "gold": self.gold,
                "items": self.items, "matched": self.matched, "recall": self.recall,
                "precision": self.precision, "status_accuracy": self.status_accuracy,
                "later_gold": self.later_gold, "later_found": self.later_found,
                "later_recall": self.later_recall, "gold_unlocated": self.gold_unlocated,
                "confusion": self.confusion, "contract_errors": self.contract_errors,
                "seconds": round(self.seconds, 3)}


def _printed_numbers_missing(field_text: str | None, evidence: Sequence[str]) -> list[str]:
    """Numbers of a printed field that none of its evidence prints (the "no figure that is
    not in its evidence" rule, on numbers so a reworded unit cannot hide a new figure)."""
    printed = {n for e in evidence for n in numbers_in(e)}
    return [n for n in numbers_in(field_text or "") if n not in printed]


def track_contract_errors(earlier: str, later: str, track: dict | BaseModel) -> list[str]:
    """evidence == text[span] on both sides, and every figure printed where its evidence is."""
    t = _as_dict(track)
    errors: list[str] = []
    for k, it in enumerate(t.get("items", [])):
        c = it["commitment"]
        s, e = c["span"]
        if earlier[s:e] != c["evidence"]:
            errors.append(f"item {k}: commitment evidence != earlier[{s}:{e}]")
        errors += [f"item {k}: commitment figure {f!r} not in its evidence" for f in c.get("figures", [])
                   if f not in c["evidence"]]
        if it.get("target") and it["target"] not in c["evidence"]:
            errors.append(f"item {k}: target {it['target']!r} not in the commitment's evidence")
        cited = [st["evidence"] for st in it.get("later", [])]
        for st in it.get("later", []):
            s, e = st["span"]
            if later[s:e] != st["evidence"]:
                errors.append(f"item {k}: later evidence != later[{s}:{e}]")
            errors += [f"item {k}: later figure {f!r} not in its evidence" for f in st.get("figures", [])
                       if f not in st["evidence"]]
        errors += [f"item {k}: reported number {n!r} not in the later evidence"
                   for n in _printed_numbers_missing(it.get("reported"), cited)]
        errors += [f"item {k}: basis number {n!r} not in any evidence"
                   for n in _printed_numbers_missing(it.get("basis"), [c["evidence"], *cited])]
    return errors


def grade_track(earlier: str, later: str, track: dict | BaseModel, gold: TrackGold, *,
                name: str = "") -> TrackScore:
    """Score one pair (pure)."""
    t = _as_dict(track)
    items = t.get("items", [])
    score = TrackScore(name=name, gold=len(gold.commitments), items=len(items))
    gold_spans: list[Span | None] = []
    for g in gold.commitments:
        occ = _occurrences(earlier, g.evidence)
        gold_spans.append(occ[0] if occ else None)
    score.gold_unlocated = sum(s is None for s in gold_spans)
    sys_spans = [tuple(it["commitment"]["span"]) for it in items]
    pairs = max_matching(sys_spans, gold_spans)
    by_gold = {j: i for i, j in pairs}
    score.matched = len(pairs)
    for i, j in pairs:
        g, s = gold.commitments[j].status, items[i]["status"]
        if g in score.confusion and s in score.confusion[g]:
            score.confusion[g][s] += 1
        score.status_correct += g == s
    for j, g in enumerate(gold.commitments):
        cited = [tuple(st["span"]) for st in items[by_gold[j]].get("later", [])] if j in by_gold else []
        for ev in g.later_evidence:
            occ = _occurrences(later, ev)
            score.later_gold += 1
            score.later_found += any(spans_match(o, c) for o in occ for c in cited)
    score.contract_errors = track_contract_errors(earlier, later, t)
    return score


def retrieval_recall(earlier: str, later: str, commitment_spans: Sequence[Span],
                     ranked: Sequence[Sequence[Span]], gold: TrackGold, cutoffs: Sequence[int]) -> dict[str, Any]:
    """How many gold ``later_evidence`` a reader could cite: for each system commitment
    matched to a gold one (as in :func:`grade_track`), its later statements in the order
    shown (``ranked``); a gold later evidence counts at cutoff k when one of the first k
    overlaps it (:func:`spans_match`). Also lists each miss's rank (None: not ranked)."""
    gold_spans = [(_occurrences(earlier, g.evidence) or [None])[0] for g in gold.commitments]
    by_gold = {j: i for i, j in max_matching(list(commitment_spans), gold_spans)}
    found = {k: 0 for k in cutoffs}
    total, ranks = 0, []
    for j, g in enumerate(gold.commitments):
        shown = list(ranked[by_gold[j]]) if j in by_gold else []
        for ev in g.later_evidence:
            occ = _occurrences(later, ev)
            total += 1
            rank = next((r for r, c in enumerate(shown, 1) if any(spans_match(o, c) for o in occ)), None)
            ranks.append({"commitment": j, "matched": j in by_gold, "evidence": ev, "rank": rank})
            for k in cutoffs:
                found[k] += rank is not None and rank <= k
    return {"later_gold": total, "found": found, "recall": {k: ratio(found[k], total) for k in cutoffs},
            "ranks": ranks}


def micro_track(scores: Sequence[TrackScore]) -> dict[str, Any]:
    keys = ("gold", "items", "matched", "status_correct", "later_gold", "later_found", "gold_unlocated")
    tot = {k: sum(getattr(s, k) for s in scores) for k in keys}
    confusion = {g: {s: sum(x.confusion[g][s] for x in scores) for s in TRACK_STATUSES} for g in TRACK_STATUSES}
    return tot | {"recall": ratio(tot["matched"], tot["gold"]), "precision": ratio(tot["matched"], tot["items"]),
                  "status_accuracy": ratio(tot["status_correct"], tot["matched"]),
                  "later_recall": ratio(tot["later_found"], tot["later_gold"]),
                  "contract_errors": sum(len(s.contract_errors) for s in scores), "confusion": confusion}


def _track_table(scores: Sequence[TrackScore], m: dict[str, Any]) -> list[str]:
    head = f"{'pair':<14} {'gold':>4} {'sys':>4} {'match':>5}  {'R':>4} {'P':>4}  {'status':>6}  {'later R':>7}  {'contract':>8}"
    rows = [head, "-" * len(head)]
    for s in scores:
        rows.append(f"{s.name[:14]:<14} {s.gold:>4} {s.items:>4} {s.matched:>5}  {_fmt(s.recall)} {_fmt(s.precision)}  "
                    f"{_fmt(s.status_accuracy, 6)}  {_fmt(s.later_recall, 7)}  {len(s.contract_errors):>8}"
                    + ("  FAILED" if s.failed else ""))
    rows.append("-" * len(head))
    rows.append(f"{'MICRO':<14} {m['gold']:>4} {m['items']:>4} {m['matched']:>5}  {_fmt(m['recall'])} "
                f"{_fmt(m['precision'])}  {_fmt(m['status_accuracy'], 6)}  {_fmt(m['later_recall'], 7)}  "
                f"{m['contract_errors']:>8}")
    rows += ["", "confusion (rows gold, columns system): " + " ".join(TRACK_STATUSES)]
    for g in TRACK_STATUSES:
        rows.append(f"  {g:<18} " + " ".join(f"{m['confusion'][g][s]:>4}" for s in TRACK_STATUSES))
    return rows


def run_eval_track(folder: Path, track_pair: Callable[[str, str, str, str], Any], *, as_json: bool = False,
                   read_text: Callable[[Path], str] = read_article_text, out: TextIO | None = None) -> int:
    """Track and grade every pair folder (one with ``links.json``) under ``folder``.

    ``track_pair(earlier_text, later_text, earlier_name, later_name)`` returns a Track (the
    CLI passes ``service.track.track``), so scoring never imports the pipeline. Returns 1 when
    a pair failed, nothing was graded, or an output broke the contract, else 0.
    """
    out = out or sys.stdout
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("tracking folder not found", str(folder))
    pair_dirs = sorted(p.parent for p in folder.glob("*/links.json"))
    if (folder / "links.json").is_file():
        pair_dirs.insert(0, folder)
    scores: list[TrackScore] = []
    for d in pair_dirs:
        gold = load_track_gold(d / "links.json")
        earlier, later = read_text(d / gold.earlier), read_text(d / gold.later)
        started = time.perf_counter()
        try:
            result = track_pair(earlier, later, gold.earlier, gold.later)
        except Exception as exc:
            score = grade_track(earlier, later, {"items": []}, gold, name=d.name)
            score.failed, score.error = True, f"{type(exc).__name__}: {exc}"
        else:
            score = grade_track(earlier, later, result, gold, name=d.name)
        score.seconds = time.perf_counter() - started
        scores.append(score)
    m = micro_track(scores)
    if as_json:
        print(json.dumps({"micro": m, "pairs": [s.to_dict() for s in scores]}, ensure_ascii=False, indent=2), file=out)
    else:
        for line in _track_table(scores, m):
            print(line, file=out)
        for s in scores:
            if s.failed:
                print(f"failed  {s.name}: {s.error}", file=out)
            for msg in s.contract_errors:
                print(f"contract {s.name}: {msg}", file=out)
        if not scores:
            print(f"no pair folder with links.json under {folder}", file=out)
    bad = not scores or any(s.failed or s.contract_errors for s in scores)
    return 1 if bad else 0
