"""track(earlier, later) -> Track: the earlier report's figured commitments and their fate.

Stages of ``track`` (pure: strings in, models out; no model, network, files or clock):

1. **Commitments.** The earlier report goes through the digest's own stages (clean, segment,
   the learned labeller); a commitment is a unit labelled a plan, inside the report's target
   and task parts (the last part heading above it says 部署/任务/...), that carries a figure.
   Multi-year targets ("今后三年") and a target restated ("把增长预期目标定在7.5%左右") are
   left out, as the tracking gold's scope says.
2. **Candidates.** Every unit of the later report, ranked by character-bigram TF-IDF cosine
   (numpy/scipy); the review part of the later report first (its figures are the year's
   outcome; the figures of its own plan part are next year's targets).
3. **Figures compared in code.** A later figure of the same measure and unit ("7.4%" for
   "7.5%左右", "1102万人" for "900万人以上") settles met / not_met; a ceiling target (prices,
   unemployment, "控制在", "以内") is met at or below it, an "about" target within 0.1 point.
4. **No figure, no verdict from words.** A close statement without a comparable figure is
   ``progress_reported`` (``met`` when it says the task was completed), none is ``not_reported``.

Every figure printed in a track is a substring of the evidence it belongs to: the comparison
never prints a number it computed.

``track_with_model`` (an endpoint, or its recordings replayed) keeps stages 1-3 and lets a
model read each commitment's shortlisted candidates instead of stage 4; it is the one async
function here, and its only I/O is the injected backend.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, Field
from scipy.sparse import csr_matrix

from service.backends.base import Backend, LLMRequest
from service.clean import clean
from service.errors import InputError, InvalidOutput, TruncatedOutput
from service.extract import Usage, ask, schema_of
from service.features import UnitRef, features, kinds, units_of
from service.ground import visible_text
from service.labeller import Labeller, shipped
from service.models import Digest, Span
from service.prompts import load as load_prompt
from service.segment import ENUM_HEADING, Structure, segment
from service.track_models import Commitment, Statement, Status, Track, TrackDoc, TrackItem, TrackMeta

VERSION = "track-retrieval-v1"

# ----------------------------------------------------------------------------- figures

_CN_NUM = "一二两三四五六七八九十"
FIGURE = re.compile(
    r"(?P<pre>约|近|超过|不低于|不少于|至少|不超过|不高于)?"
    rf"(?P<num>\d+(?:\.\d+)?(?:/\d+)?|[{_CN_NUM}百千]+分之[{_CN_NUM}]+|[{_CN_NUM}百千]+(?=[万亿]))"
    r"\s*(?P<more>多|余)?(?P<mag>万亿|亿|万|千)?(?P<more2>多|余)?"
    r"(?P<unit>%|％|‰|个百分点|亿元|万元|美元|元|人次|人口|万人|人|户|公里|千瓦|吨|标准箱|套|项|个|辆|台|亩|斤|所|家|倍|岁|公顷|座|名|张|床)?"
    r"(?P<post>左右|以上|以内|以下)?"
)
_MAG = {"万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3}
_UNIT_MAG = {"亿元": ("元", 1e8), "万元": ("元", 1e4), "万人": ("人", 1e4), "人口": ("人", 1.0), "％": ("%", 1.0)}
# The country's population describes, it does not commit ("把13亿中国人的饭碗…").
_DESCRIPTIVE = re.compile(r"^1[34]亿$")
_CN_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2}

Bound = str  # "about" | "floor" | "ceiling"


@dataclass(frozen=True)
class Figure:
    """One figure as printed (``text`` is ``source[start:end]``) and what it measures."""

    text: str
    start: int
    end: int
    value: float
    unit: str  # base unit without magnitude: "%", "元", "人", "" (a bare 万/亿), "frac", ...
    bound: Bound


def _cn_value(s: str) -> float | None:
    """一 -> 1, 十二 -> 12, 三百 -> 300, 千 -> 1000 (numerals below 10,000)."""
    total, digit = 0, None
    for c in s:
        if c in _CN_DIGIT:
            digit = _CN_DIGIT[c]
        elif c in "十百千":
            total += (1 if digit is None else digit) * {"十": 10, "百": 100, "千": 1000}[c]
            digit = None
        else:
            return None
    return float(total + (digit or 0))


def _number(num: str) -> tuple[float, str | None] | None:
    """(value, the unit the number itself names) of the printed number: "frac" for a
    fraction, "%" for 百分之X, "‰" for 千分之X, None for a plain number."""
    if "分之" in num:
        den, nom = num.split("分之")
        d, n = _cn_value(den), _cn_value(nom)
        if not d or n is None:
            return None
        return {"百": (n, "%"), "千": (n, "‰")}.get(den, (n / d, "frac"))
    if "/" in num:
        n, d = num.split("/")
        return (float(n) / float(d), "frac") if float(d) else None
    if num[0].isdigit():
        return float(num), None
    v = _cn_value(num)
    return (v, None) if v is not None else None


def _bound(m: re.Match[str]) -> Bound:
    pre, post = m.group("pre") or "", m.group("post") or ""
    if post in ("以内", "以下") or pre in ("不超过", "不高于"):
        return "ceiling"
    if post == "左右" or pre in ("约", "近"):
        return "about"
    return "floor"  # 以上, 至少, 多/余 and a plain figure set as a target: at or above it


def parse_figures(text: str) -> list[Figure]:
    """The figures printed in ``text``: a number with a unit, a magnitude or a bound word.
    A bare number (a year, "M2", an ordinal) is no figure."""
    out: list[Figure] = []
    for m in FIGURE.finditer(text):
        parsed = _number(m.group("num"))
        if parsed is None:
            continue
        value, named = parsed
        unit, mag = m.group("unit") or "", m.group("mag") or ""
        if not (unit or mag or m.group("post") or m.group("pre") or named):
            continue
        if m.group("num")[0] not in "0123456789" and not unit and not named:
            continue  # "千万" (by all means) is no figure; "千亿斤" has a unit after it
        value *= _MAG.get(mag, 1.0)
        base, scale = _UNIT_MAG.get(unit, (unit, 1.0))
        printed = m.group(0).rstrip()
        if _DESCRIPTIVE.match(printed) or (unit == "人口" and re.match(r"^1[34]亿", printed)):
            continue
        out.append(Figure(printed, m.start(), m.start() + len(printed), value * scale, named or base, _bound(m)))
    return out


# A target whose measure should stay low: met at or below it ("居民消费价格涨幅…3.5%左右").
CEILING_CONTEXT = re.compile(r"(控制在|不超过|价格|涨幅|失业率|通胀)")


_AMOUNTS = {"%", "‰", "个百分点", "元", "美元", "frac", "倍", "岁"}


def comparable(target: Figure, reported: Figure) -> bool:
    """Same measure and unit, and of the same order (a year's 1300亿 is no 6545亿 total).
    A bare count ("6069万农民") compares with a count in people, households, ... ("6000万人")."""
    units = {target.unit, reported.unit}
    if len(units) > 1 and not ("" in units and not units & _AMOUNTS):
        return False
    if target.value <= 0 or reported.value <= 0:
        return False
    return 0.5 <= reported.value / target.value <= 2


def is_met(target: Figure, reported: Figure, ceiling: bool = False) -> bool:
    """Does ``reported`` meet ``target``? An "about" target is met within 0.1 point (or 1% of
    an amount) of it; a ceiling target at or below it; any other at or above it."""
    tol = 0.0
    if target.bound == "about":
        tol = 0.1 if target.unit in ("%", "‰", "个百分点") else 0.01 * target.value
    if ceiling or target.bound == "ceiling":
        return reported.value <= target.value + tol + 1e-9
    return reported.value >= target.value - tol - 1e-9


def best_pair(targets: Sequence[Figure], reported: Sequence[Figure]) -> tuple[Figure, Figure] | None:
    """The closest comparable pair (log ratio), the commitment's first figure first."""
    best, best_gap = None, math.inf
    for t in targets:
        for r in reported:
            if comparable(t, r):
                gap = abs(math.log(r.value / t.value))
                if gap < best_gap:
                    best, best_gap = (t, r), gap
        if best is not None:
            return best
    return None


# ----------------------------------------------------------------------------- parts


def part_of(structure: Structure):
    """pos -> the kind of report part it sits in ("review", "plan", "problem" or "none"):
    the last part heading above it, as the labeller's macro features read it."""
    first_body = structure.sentences[0].start if structure.sentences else 0
    marks: list[tuple[int, str]] = []
    for h in structure.headings:
        if h.start < first_body and not ENUM_HEADING.match(h.text):
            continue  # the title block names the document, not a part of it
        ks = kinds(h.text)
        if ks:
            marks.append((h.start, "plan" if "plan" in ks else ks[0]))

    def part(pos: int) -> str:
        kind = "none"
        for start, k in marks:
            if start > pos:
                break
            kind = k
        return kind

    return part


# ----------------------------------------------------------------------------- commitments

# Targets beyond the year ("今后三年", "到2020年", "三年内"): not this year's commitment.
MULTI_YEAR = re.compile(r"(今后|未来)(一个时期|几年|[一二两三四五六七八九十\d]+年)|[二两三四五\d]年内|到20\d\d年|20\d\d年(前|以前)")
# A target explained again after it was set ("把增长预期目标定在7.5%左右").
RESTATES = re.compile(r"目标")


def _grams(text: str) -> set[str]:
    s = re.sub(r"[^\u4e00-\u9fff]", "", text)
    return {s[i:i + 2] for i in range(len(s) - 1)}


def _restated(unit: UnitRef, figs: list[Figure], kept: list[tuple[UnitRef, list[Figure]]]) -> bool:
    printed = {f.text for f in figs}
    for other, other_figs in kept:
        # the same figures, not a subset: "安排200亿元专项资金" is no restatement of
        # "安排补贴资金1230亿元，比上年增加200亿元"
        if printed == {f.text for f in other_figs}:
            mine, theirs = _grams(unit.text), _grams(other.text)
            if RESTATES.search(unit.text) or (mine and len(mine & theirs) / len(mine) >= 0.5):
                return True
    return False


def commitments(structure: Structure, units: list[UnitRef], decisions: Sequence[Sequence[str]]) -> list[Commitment]:
    """The earlier report's plans with a figure, inside its target and task parts."""
    part = part_of(structure)
    kept: list[tuple[UnitRef, list[Figure]]] = []
    for u, cats in zip(units, decisions):
        if "plans" not in cats or part(u.start) != "plan" or MULTI_YEAR.search(u.sentence_text):
            continue
        figs = parse_figures(u.text)
        if figs and not _restated(u, figs, kept):
            kept.append((u, figs))
    return [Commitment(evidence=u.text, span=(u.start, u.end), figures=[f.text for f in figs]) for u, figs in kept]


# ----------------------------------------------------------------------------- retrieval


# Words of time and change ("今年拟安排…比上年增加") say nothing about which measure it is.
_CHANGE_WORDS = re.compile(r"(今年|去年|上年|比上年|比去年|全年|年内|拟安排|安排|增加|增长|提高|减少|下降|其中|达到|要)")


def _tokens(text: str) -> list[str]:
    # figures change from year to year; the words around them ("城镇新增就业") do not
    runs = re.split(r"[^\u4e00-\u9fffA-Za-z]+", _CHANGE_WORDS.sub(" ", re.sub(r"[\d.%％]+", "", text)))
    return [r[i:i + 2] for r in runs for i in range(len(r) - 1)]


@dataclass
class Index:
    """Character-bigram TF-IDF (sublinear tf, smoothed idf, l2 rows) over the later units."""

    vocab: dict[str, int]
    idf: np.ndarray
    matrix: csr_matrix

    @classmethod
    def build(cls, texts: Sequence[str]) -> Index:
        docs = [_tokens(t) for t in texts]
        vocab: dict[str, int] = {}
        for d in docs:
            for g in d:
                vocab.setdefault(g, len(vocab))
        df = np.zeros(len(vocab))
        for d in docs:
            for g in set(d):
                df[vocab[g]] += 1
        idf = np.log((1 + len(docs)) / (1 + df)) + 1
        index = cls(vocab, idf, csr_matrix((0, len(vocab))))
        index.matrix = index.vectors(texts)
        return index

    def vectors(self, texts: Sequence[str]) -> csr_matrix:
        data, cols, ptr = [], [], [0]
        for t in texts:
            counts: dict[int, int] = {}
            for g in _tokens(t):
                j = self.vocab.get(g)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            row = {j: (1 + math.log(c)) * self.idf[j] for j, c in counts.items()}
            norm = math.sqrt(sum(v * v for v in row.values())) or 1.0
            cols += list(row)
            data += [v / norm for v in row.values()]
            ptr.append(len(cols))
        return csr_matrix((np.array(data, dtype=np.float64), np.array(cols, dtype=np.int64), np.array(ptr)),
                          shape=(len(texts), len(self.vocab)))

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Cosine similarity, one row per query, one column per indexed text."""
        return np.asarray((self.vectors(queries) @ self.matrix.T).todense())


# ----------------------------------------------------------------------------- decision

CONTEXT_WEIGHT = 2.0  # the commitment's sentence and paragraph lead, beside its own words, in the query
RELATED = 0.35  # cosine at which a review statement speaks of the commitment (dev pairs)
FIGURE_RELATED = 0.12  # lower for a statement that also prints a comparable figure
PLAN_RELATED = 0.25  # a plan-part statement that states last year's figure
# A figure far short of the target more often measures something else than a shortfall.
SHORTFALL = 0.85
TOP_K = 5  # candidates read for a comparable figure
COMPLETED = re.compile(r"(如期完成|超额完成|提前完成|全面完成|顺利完成|提前实现|目标[^，。；]{0,6}实现)")
MISSED = re.compile(r"(未完成|没有完成|未能实现|没有实现|未达到|没有达到)")
# The later report's plan part states last year's figure as a starting point:
# "由35元提高到40元", "赤字率从去年的2.1%提高到2.3%", "财政赤字1.62万亿元，比去年增加2700亿元".
FROM_TO = re.compile(r"(由|从)(去年的|上年的)?(?P<fig>[^，。；]{1,14}?)(提高|增加|上调|扩大|降低|下降|调整)?到")
PLUS = re.compile(r"(?P<fig>[^，。；]{1,14})[，,]\s*(比去年|比上年)?增加(?P<inc>[^，。；]{1,12})")


@dataclass(frozen=True)
class Candidate:
    unit: UnitRef
    score: float
    review: bool
    reach: str = ""  # the later text from the unit's start to its sentence's end

    def __post_init__(self) -> None:
        if not self.reach:
            object.__setattr__(self, "reach", self.unit.text)


def _statement(c: Candidate, reach: int = 0) -> Statement:
    """The unit cited, stretched to ``reach`` characters when a figure it needs (an increase
    stated in the next clause) lies past its end: the figure must be in the evidence."""
    n = max(len(c.unit.text), reach)
    evidence = c.reach[:n] if n > len(c.unit.text) else c.unit.text
    return Statement(evidence=evidence, span=(c.unit.start, c.unit.start + len(evidence)),
                     figures=[f.text for f in parse_figures(evidence)], score=round(c.score, 3))


def previous_figures(text: str) -> list[tuple[Figure, str, int]]:
    """Last year's figures a plan sentence starts from, how each is printed, and where the
    statement must reach to hold it: "35元" in "由35元提高到40元", "1.62万亿元−2700亿元" for
    "1.62万亿元，比去年增加2700亿元" (the subtraction the report invites; both figures are
    printed in the statement, their difference nowhere)."""
    out = []
    for m in FROM_TO.finditer(text):
        figs = parse_figures(m.group("fig"))
        if figs:
            out.append((figs[-1], figs[-1].text, m.end()))
    for m in PLUS.finditer(text):
        total, inc = parse_figures(m.group("fig")), parse_figures(m.group("inc"))
        if total and inc and total[-1].unit == inc[0].unit and total[-1].value > inc[0].value:
            t, i = total[-1], inc[0]
            out.append((Figure(t.text, t.start, t.end, t.value - i.value, t.unit, "floor"), f"{t.text}−{i.text}",
                        m.start("inc") + i.end))
    return out


def _far_short(t: Figure, r: Figure, ceiling: bool) -> bool:
    return not (ceiling or t.bound == "ceiling") and r.value < SHORTFALL * t.value


def _compared(commitment: Commitment, c: Candidate, t: Figure, r: Figure, printed: str, ceiling: bool,
              how: str, reach: int = 0) -> TrackItem:
    met = is_met(t, r, ceiling)
    basis = (how + ": " + ("meets" if met else "falls short of") + " the target"
             + (" (a ceiling: at or below it)" if ceiling or t.bound == "ceiling" else ""))
    return TrackItem(commitment=commitment, status="met" if met else "not_met", target=t.text,
                     reported=printed, basis=basis, later=[_statement(c, reach)])


def decide(commitment: Commitment, candidates: Sequence[Candidate]) -> TrackItem:
    """Status of one commitment from its ranked candidates (review part first)."""
    targets = parse_figures(commitment.evidence)
    ceiling = bool(CEILING_CONTEXT.search(commitment.evidence))
    review = [c for c in candidates if c.review]
    for c in [c for c in review if c.score >= FIGURE_RELATED][:TOP_K]:
        pair = best_pair(targets, parse_figures(c.unit.text))
        if pair is not None and not _far_short(*pair, ceiling):
            return _compared(commitment, c, pair[0], pair[1], pair[1].text, ceiling, "reported figure")
    # the plan part prints next year's targets; only last year's figure stated there counts
    for c in [c for c in candidates if not c.review and c.score >= PLAN_RELATED][:TOP_K]:
        prev = previous_figures(c.reach)
        pair = best_pair(targets, [p[0] for p in prev])
        if pair is not None and not _far_short(*pair, ceiling):
            _, printed, reach = next(p for p in prev if p[0] is pair[1])
            return _compared(commitment, c, pair[0], pair[1], printed, ceiling, "last year's figure in the new plan",
                             reach=reach)
    target = commitment.figures[0] if commitment.figures else None
    if not review or review[0].score < RELATED:
        return TrackItem(commitment=commitment, status="not_reported", target=target,
                         basis="no statement of the later report's review speaks of it")
    best = review[0]
    if MISSED.search(best.unit.text):
        status, basis = "not_met", "named as missed"
    elif COMPLETED.search(best.unit.text):
        status, basis = "met", "reported completed, without a comparable figure"
    else:
        status, basis = "progress_reported", "reported on without a comparable figure"
    return TrackItem(commitment=commitment, status=status, target=target, basis=basis, later=[_statement(best)])


def rank(commitments_: Sequence[Commitment], later: str, later_units: Sequence[UnitRef],
         review: Sequence[bool], contexts: Sequence[str] | None = None, weight: float = CONTEXT_WEIGHT,
         ) -> list[list[Candidate]]:
    """Per commitment: later units by similarity, the review part's first. With
    ``contexts`` (the commitment's sentence and paragraph lead), the query is the
    commitment's vector plus ``weight`` times its context's: a clause such as "今年拟安排500万亩"
    names its measure only in the clause before it ("继续实施退耕还林还草")."""
    if not commitments_ or not later_units:
        return [[] for _ in commitments_]
    index = Index.build([u.text for u in later_units])
    sims = index.scores([c.evidence for c in commitments_])
    if contexts is not None:  # still a cosine scale (0..1): thresholds read one scale
        sims = (sims + weight * index.scores(contexts)) / (1 + weight)
    out = []
    for row in sims:
        order = np.argsort(-row, kind="stable")[:40]
        cands = [Candidate(later_units[j], float(row[j]), review[j], _reach(later, later_units[j]))
                 for j in order if row[j] > 0]
        out.append(sorted(cands, key=lambda c: (not c.review, -c.score)))
    return out


def context_of(units: Sequence[UnitRef]) -> dict[tuple[int, int], str]:
    """Per unit span: its sentence and its paragraph's first sentence (where a list of
    tasks says what they are about: "二是实行结构性减税和推进税费改革。")."""
    lead: dict[int, str] = {}
    for u in units:
        lead.setdefault(u.para, u.sentence_text)
    return {(u.start, u.end): u.sentence_text + ("" if lead[u.para] == u.sentence_text else "\n" + lead[u.para])
            for u in units}


def _reach(later: str, unit: UnitRef) -> str:
    """From the unit's start to the end of its sentence (the sentence text is a raw slice)."""
    at = unit.sentence_text.find(unit.text)
    rest = unit.sentence_text[at + len(unit.text):] if at >= 0 else ""
    reach = later[unit.start:unit.end + len(rest)]
    return reach if reach.startswith(unit.text) else unit.text


# ----------------------------------------------------------------------------- track


def _read(text: str, which: str, source: str | None) -> tuple[Structure, list[UnitRef], str | None]:
    cleaned = clean(text)
    if not cleaned.blocks:
        raise InputError(f"no report text left in the {which} report after removing page chrome", source)
    structure = segment(text, cleaned.blocks)
    return structure, units_of(structure), cleaned.title


@dataclass
class Prepared:
    """Both reports read, the commitments found and the later statements ranked for each."""

    earlier: TrackDoc
    later: TrackDoc
    commitments: list[Commitment]
    candidates: list[list[Candidate]]  # ranked by the commitment's own words (the rule-free decision's)
    labeller: str
    warnings: list[str]
    shown: list[list[Candidate]] = field(default_factory=list)  # ranked with its context (the model's)
    sentences: list[str] = field(default_factory=list)  # each commitment's sentence in the earlier report


def digest_plans(digest: Digest, text: str, which: str, source: str | None) -> list[Span]:
    """The spans of a digest's plans, once the digest is shown to index ``text``: a digest
    holds spans into its source, not the source itself (``doc.chars`` is its length)."""
    bad = [it for _, it in digest.items() if text[it.span[0]:it.span[1]] != it.evidence]
    if digest.doc.chars != len(text) or bad:
        raise InputError(f"the {which} digest was not made from this text ({digest.doc.chars:,} characters and "
                         f"{len(bad)} evidence not at their spans; the text has {len(text):,})", source)
    return [it.span for it in digest.plans]


def _decisions_of(units: Sequence[UnitRef], plans: Sequence[Span]) -> list[list[str]]:
    """A digest's plans as the labeller's decisions: a unit is a plan when a plan's span
    covers half of the shorter of the two (a learned digest's items are the units)."""
    exact = {tuple(p) for p in plans}
    out = []
    for u in units:
        hit = (u.start, u.end) in exact or any(
            min(u.end, e) - max(u.start, s) >= 0.5 * min(u.end - u.start, e - s) > 0 for s, e in plans)
        out.append(["plans"] if hit else [])
    return out


def prepare(earlier: str, later: str, labeller: Labeller | None = None,
            sources: tuple[str | None, str | None] = (None, None), earlier_plans: Sequence[Span] | None = None,
            ) -> Prepared:
    """``earlier_plans``: the plans of the earlier report's digest (``digest_plans``), read
    instead of labelling the report again."""
    labeller = labeller or shipped()
    e_struct, e_units, e_title = _read(earlier, "earlier", sources[0])
    l_struct, l_units, l_title = _read(later, "later", sources[1])
    warnings = []
    if earlier_plans is None:
        decisions = labeller.decide(labeller.predict_proba(features(e_struct, e_units)))
    else:
        decisions = _decisions_of(e_units, earlier_plans)
        warnings.append(f"the earlier report's plans were read from its digest ({len(earlier_plans)} plans)")
    found = commitments(e_struct, e_units, decisions)
    part = part_of(l_struct)
    review = [part(u.start) == "review" for u in l_units]
    if not any(review):
        warnings.append("the later report has no review part heading: every statement read as a review")
        review = [True] * len(l_units)
    contexts = context_of(e_units)
    sentence_of = {(u.start, u.end): u.sentence_text for u in e_units}
    shown = rank(found, later, l_units, review, [contexts[c.span] for c in found])
    return Prepared(TrackDoc(title=e_title, chars=len(earlier), source=sources[0]),
                    TrackDoc(title=l_title, chars=len(later), source=sources[1]),
                    found, rank(found, later, l_units, review), labeller.version, warnings, shown,
                    [sentence_of[c.span] for c in found])


def track(earlier: str, later: str, *, labeller: Labeller | None = None,
          sources: tuple[str | None, str | None] = (None, None), earlier_plans: Sequence[Span] | None = None,
          ) -> Track:
    """The earlier report's figured commitments and what the later report says of them."""
    started = time.perf_counter()
    p = prepare(earlier, later, labeller, sources, earlier_plans)
    items = [decide(c, cands) for c, cands in zip(p.commitments, p.candidates)]
    return Track(earlier=p.earlier, later=p.later, items=items,
                 meta=TrackMeta(version=VERSION, labeller=p.labeller,
                                seconds=round(time.perf_counter() - started, 3), warnings=p.warnings))


# ----------------------------------------------------------------------------- with a model
# One call per batch of commitments: the model sees each commitment with its numbered
# candidates and answers a status and candidate numbers, never evidence text, so evidence
# stays a slice of the later report. Figures are compared in code: a met/not_met the
# figures contradict is corrected and counted. What the model leaves undecided (a missing
# number, a reply still invalid after one repair) gets the rule-free decision, counted.

BATCH = 8  # commitments per call
SHORTLIST_REVIEW, SHORTLIST_PLAN = 4, 2  # candidates shown per commitment, by part
SHORTLIST_MIN = 0.05
_SHOWN_CHARS = 160
_BEFORE_CHARS = 60  # of a sentence, before the unit shown in it


class TrackVerdict(BaseModel):
    n: int = Field(description="the commitment's number, as in 【承诺 n】")
    status: Status
    statements: list[int] = Field(default_factory=list, description="candidate numbers relied on")


class TrackReply(BaseModel):
    items: list[TrackVerdict]


def shortlist(candidates: Sequence[Candidate]) -> list[Candidate]:
    review = [c for c in candidates if c.review and c.score >= SHORTLIST_MIN][:SHORTLIST_REVIEW]
    plan = [c for c in candidates if not c.review and c.score >= SHORTLIST_MIN][:SHORTLIST_PLAN]
    return review + plan


def statement_span(c: Candidate) -> Span:
    """Where the statement cited for a candidate lies (as ``apply_verdict`` cites it)."""
    return (_statement(c) if c.review else _statement(c, len(c.reach))).span


def in_sentence(unit: str, sentence: str, before: int = _BEFORE_CHARS) -> str:
    """``unit`` inside its sentence, marked 〔…〕: a clause such as "中央财政安排429亿元" says
    what it is about only in the words around it. Up to ``before`` characters before it."""
    unit, sentence = _one_line(unit), _one_line(sentence)
    at = sentence.find(unit)
    if at < 0 or len(sentence) == len(unit):
        return unit
    head = sentence[:at]
    head = ("…" + head[-before:]) if len(head) > before else head
    return f"{head}〔{unit}〕{sentence[at + len(unit):]}"


def _shown(c: Candidate) -> str:
    # the statement cited is the unit (a plan statement: to its sentence's end, "…1.62万亿元，
    # 比去年增加2700亿元"), shown inside its sentence
    text = in_sentence(c.unit.text, c.unit.sentence_text)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def track_request(batch: Sequence[tuple[Commitment, list[Candidate]]], context: str = "",
                  sentences: Sequence[str] | None = None) -> LLMRequest:
    """One call for a batch; ``sentences``: each commitment's sentence in the earlier report."""
    prompt = load_prompt("track")
    lines = []
    for n, (c, cands) in enumerate(batch, 1):
        shown = in_sentence(c.evidence, sentences[n - 1]) if sentences else _one_line(c.evidence)
        lines.append(f"【承诺 {n}】{shown if len(shown) <= 2 * _SHOWN_CHARS else shown[:2 * _SHOWN_CHARS] + '…'}")
        lines += [f"({k})[{'回顾' if cand.review else '新计划'}] {_shown(cand)}" for k, cand in enumerate(cands, 1)]
    return LLMRequest(
        messages=[{"role": "system", "content": prompt.text},
                  {"role": "user", "content": "\n".join(lines) + "\n请输出 JSON。"}],
        json_schema=schema_of(TrackReply),
        schema_name="track_reply",
        max_tokens=40 * len(batch) + 64,
        temperature=0.0,
        prompt_version=prompt.version,
        context=context,
    )


def apply_verdict(commitment: Commitment, cands: Sequence[Candidate], v: TrackVerdict) -> tuple[TrackItem | None, bool]:
    """The model's status with its statements; figures checked in code. (None, _) when the
    verdict cites nothing usable for a status that needs a statement; True when corrected."""
    target = commitment.figures[0] if commitment.figures else None
    if v.status == "not_reported":
        return TrackItem(commitment=commitment, status="not_reported", target=target,
                         basis="the model: no statement speaks of it"), False
    chosen = [cands[k - 1] for k in dict.fromkeys(v.statements) if 1 <= k <= len(cands)]
    if not chosen:
        return None, False
    targets, ceiling = parse_figures(commitment.evidence), bool(CEILING_CONTEXT.search(commitment.evidence))
    status, basis, reported, corrected = v.status, "the model read the statements", None, False
    for c in chosen:
        options = ([(f, f.text) for f in parse_figures(c.unit.text)] if c.review
                   else [(f, printed) for f, printed, _ in previous_figures(c.reach)])
        pair = best_pair(targets, [f for f, _ in options])
        if pair is None or _far_short(*pair, ceiling):
            continue
        target, reported = pair[0].text, next(printed for f, printed in options if f is pair[1])
        met = is_met(pair[0], pair[1], ceiling)
        if status in ("met", "not_met") and (status == "met") != met:
            status, corrected = ("met" if met else "not_met"), True
            basis += "; the status contradicted the figures and was corrected"
        break
    later = [_statement(c) if c.review else _statement(c, len(c.reach)) for c in chosen]
    return TrackItem(commitment=commitment, status=status, target=target, reported=reported, basis=basis,
                     later=later), corrected


async def track_with_model(earlier: str, later: str, backend: Backend, *, labeller: Labeller | None = None,
                           sources: tuple[str | None, str | None] = (None, None), concurrency: int = 4,
                           batch_size: int = BATCH, earlier_plans: Sequence[Span] | None = None) -> Track:
    """``track`` with a model reading each commitment's candidates (the only I/O: ``backend``)."""
    started = time.perf_counter()
    p = prepare(earlier, later, labeller, sources, earlier_plans)
    return await read_with_model(p, backend, concurrency=concurrency, batch_size=batch_size, started=started)


async def read_with_model(p: Prepared, backend: Backend, *, concurrency: int = 4, batch_size: int = BATCH,
                          started: float | None = None, progress: Callable[[int, int], None] | None = None) -> Track:
    """The model half of ``track_with_model`` on reports already prepared (the API prepares
    them in a thread: the CPU-bound half must not hold the event loop). ``progress(done,
    total)`` after each batch."""
    started = time.perf_counter() if started is None else started
    sources = (p.earlier.source, p.later.source)
    fallback = [decide(c, cands) for c, cands in zip(p.commitments, p.candidates)]
    lists = [shortlist(cands) for cands in (p.shown or p.candidates)]
    batches = [list(range(i, min(i + batch_size, len(p.commitments)))) for i in range(0, len(p.commitments), batch_size)]
    sem, usage, warnings = asyncio.Semaphore(concurrency), Usage(), list(p.warnings)

    async def one(k: int, ids: list[int]) -> dict[int, TrackVerdict]:
        request = track_request([(p.commitments[i], lists[i]) for i in ids],
                                context=f"track {sources[0] or '<earlier>'} batch {k}",
                                sentences=[p.sentences[i] for i in ids] if p.sentences else None)
        async with sem:
            try:
                reply, used = await ask(backend, request, TrackReply)
            except (InvalidOutput, TruncatedOutput) as err:
                usage.__iadd__(getattr(err, "usage", Usage()))
                warnings.append(f"batch {k}: reply unusable ({err.__class__.__name__}): decided without the model")
                return {}
        usage.__iadd__(used)
        return {ids[v.n - 1]: v for v in reply.items if 1 <= v.n <= len(ids)}

    finished = 0

    async def counted(k: int, ids: list[int]) -> dict[int, TrackVerdict]:
        nonlocal finished
        out = await one(k, ids)
        finished += 1
        if progress is not None:
            progress(finished, len(batches))
        return out

    verdicts: dict[int, TrackVerdict] = {}
    for part in await asyncio.gather(*(counted(k, ids) for k, ids in enumerate(batches))):
        verdicts.update(part)
    items, corrected, undecided = [], 0, 0
    for i, c in enumerate(p.commitments):
        item, fixed = apply_verdict(c, lists[i], verdicts[i]) if i in verdicts else (None, False)
        undecided += item is None
        corrected += fixed
        items.append(item or fallback[i])
    if corrected:
        warnings.append(f"{corrected} status(es) contradicted the figures: corrected in code")
    if undecided:
        warnings.append(f"{undecided} commitment(s) not decided by the model: decided without it")
    return Track(earlier=p.earlier, later=p.later, items=items, meta=TrackMeta(
        strategy="model", version=f"{VERSION}+{load_prompt('track').version}", labeller=p.labeller,
        backend=backend.name, model=backend.model, llm_calls=usage.llm_calls, prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens, corrected=corrected,
        seconds=round(time.perf_counter() - started, 3), warnings=warnings))


# ----------------------------------------------------------------------------- yearly pairs

_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")


def year_of(name: str, text: str = "") -> int | None:
    """The year a report is filed under: the year in its file name, else the first year its
    opening (title, first heading) names."""
    m = _YEAR.search(name.rsplit(".", 1)[0]) or re.search(r"((?:19|20)\d{2})(?=\s*年)", text[:2000])
    return int(m.group(1)) if m else None


def yearly_pairs(years: dict[str, int | None]) -> list[tuple[str, str]]:
    """Consecutive (earlier, later) reports of one issuer by year; the first name per year."""
    by_year: dict[int, str] = {}
    for name in sorted(years):
        y = years[name]
        if y is not None:
            by_year.setdefault(y, name)
    return [(by_year[y], by_year[y + 1]) for y in sorted(by_year) if y + 1 in by_year]


# ----------------------------------------------------------------------------- render

_STATUS_ZH = {"met": "完成", "not_met": "未完成", "progress_reported": "有进展", "not_reported": "未提及"}
COLUMNS = ("commitment", "target", "reported", "status", "where")


def _one_line(s: str) -> str:
    return " ".join(s.split())


def rows(t: Track) -> list[dict[str, str]]:
    out = []
    for it in t.items:
        where = "; ".join(f"{s.span[0]}–{s.span[1]}" for s in it.later)
        # tables are read, not matched against the source: web-page markup left out (JSON keeps the slice)
        out.append({"commitment": _one_line(visible_text(it.commitment.evidence)), "target": it.target or "",
                    "reported": it.reported or "", "status": it.status, "where": where})
    return out


def to_json(t: Track) -> str:
    return json.dumps(t.model_dump(mode="json"), ensure_ascii=False, indent=2)


def to_markdown(t: Track) -> str:
    # a file name says which report; a plain-text report's "title" is often its first heading
    head = f"# {t.earlier.source or t.earlier.title or '上一份报告'} → {t.later.source or t.later.title or '下一份报告'}"
    counts = " · ".join(f"{_STATUS_ZH[k]} {v}" for k, v in t.counts().items())
    lines = [head, "", f"{len(t.items)} 项带数字的承诺:{counts}", "",
             "| commitment | target | reported | status | where |", "|---|---|---|---|---|"]
    for r in rows(t):
        cells = [r[c].replace("|", "\\|") for c in COLUMNS]
        cells[3] = f"{r['status']}({_STATUS_ZH[r['status']]})"
        cells[4] = f"later {r['where']}" if r["where"] else "—"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"_{t.meta.strategy} · {t.meta.version} · {t.meta.seconds:.1f} 秒_"]
    return "\n".join(lines) + "\n"


def to_csv(t: Track) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*COLUMNS, "later_evidence"], lineterminator="\n")
    writer.writeheader()
    for it, r in zip(t.items, rows(t)):
        writer.writerow(r | {"later_evidence": " / ".join(_one_line(visible_text(s.evidence)) for s in it.later)})
    return buf.getvalue()


__all__ = ["Figure", "Index", "commitments", "decide", "is_met", "parse_figures", "to_csv", "to_json",
           "to_markdown", "track", "year_of", "yearly_pairs"]
