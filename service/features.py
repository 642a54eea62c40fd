"""What the labeller sees of each claim unit, as arrays (pure, no I/O, numpy only).

``segment`` proposes the units; this module describes each one; ``labeller`` maps the
description to its own columns and weighs it with parameters learned from gold and silver
(``service/data/labeller.json``). Nothing here decides a label.

The description is the plain one that held on unseen reports (../shared/DESIGN.md: a
hand-featured labeller scored 0.61 / 0.68 on 16 unseen reports, this plain one 0.72 / 0.71):

* ``u``  character 1-3-grams of the unit
* ``s``  character 1-3-grams of its sentence (weighted 0.5 by the labeller)
* ``h``  character 1-2-grams of the last 60 characters of its section path
* ``p``  character 1-2-grams of the first 30 characters of its paragraph (the lead that
         governs a paragraph: "肖洪涛郑重提出，……", "下一步，……"; used only if the grouped
         validation keeps it)
* dense  relative position, a dozen generic cue words, and which part of the report the
         unit sits in (review, problems, tasks: read from its section titles) - each dense
         group is used only if the grouped validation of ``bench/labeller_cv.py`` keeps it.

Everything is computed per document in a few vectorised passes: n-grams are integer keys
over the code points of all units joined (no per-unit dictionaries), so a 200,000-character
report costs tens of milliseconds; the labeller turns them into one sparse matrix.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from service.clean import ZERO_WIDTH
from service.segment import Structure, visible

# ------------------------------------------------------------------------------ units


@dataclass(frozen=True, init=False)
class UnitRef:
    """One claim unit and where it sits; ``heading_task`` marks an enumerated heading."""

    start: int
    end: int
    text: str
    sentence_text: str
    para: int
    context: tuple[str, ...]
    heading_task: bool
    index_in_sentence: int
    tail: str  # segment.Unit.tail: its clause's end beyond a caption, for the summary only

    def __init__(self, start: int, end: int, text: str, sentence_text: str, para: int,
                 context: tuple[str, ...], heading_task: bool, index_in_sentence: int, tail: str = "") -> None:
        # What the frozen dataclass's own __init__ stores, in one dict update rather than a
        # guarded setattr per field: a report has thousands of units (half the cost).
        self.__dict__.update(start=start, end=end, text=text, sentence_text=sentence_text, para=para,
                             context=context, heading_task=heading_task, index_in_sentence=index_in_sentence,
                             tail=tail)


def units_of(structure: Structure) -> list[UnitRef]:
    """Every unit the labeller must decide, in document order (sentences and task headings)."""
    out: list[UnitRef] = []
    for s in structure.sentences:
        out += [UnitRef(u.start, u.end, u.text, s.text, s.para, s.context, False, i, u.tail)
                for i, u in enumerate(s.units)]
    for t in structure.tasks:
        out += [UnitRef(u.start, u.end, u.text, t.text, t.para, t.context, True, 0) for u in t.units]
    return sorted(out, key=operator.attrgetter("start", "end"))


# ----------------------------------------------------------------------- section kinds
# What a section title says about the part of the report under it. Kinds, not labels: the
# model learns how much each counts ("工作回顾" reviews; "存在问题" admits; "政府工作任务" plans).
SECTION_KINDS: dict[str, re.Pattern[str]] = {
    "review": re.compile(r"(回顾|成绩|成效|成就|进展|亮点|成果|一年来|五年来|过去|主要做了|工作总结|基本情况|概况)"),
    "problem": re.compile(r"(问题|不足|短板|困难|挑战|差距|原因分析)"),
    "plan": re.compile(r"(任务|部署|下半年|下一步|今后|明年|今年要|新的一年|重点工作|工作安排|打算|工作计划|工作思路|"
                       r"主要目标|预期目标|总体要求|展望|建议|主要措施|指导思想|基本原则|工作要点|重点抓好)"),
}
# Not "保障措施": a plan's safeguards follow its tasks and are a plan part through them (see
# ``part_kinds``), while a half-year review's "关键词 落实保障措施" reports the safeguards put in
# place; read as a plan title it took that section's 19 results for plans.
# A title that names a remedy ("紧盯问题 深化改革", "防范化解重大风险") opens measures, not an
# account of shortcomings: it is no problem section.
REMEDY = re.compile(r"(紧盯|解决|破解|整治|化解|防范|整改|补齐|补足|深化|推进|加强|着力|聚焦|强调|应对)")


# A quoted slogan or a document's name inside a title ("按照“求突破、争先进、上位次、创亮点”的要求，…
# 并强调下半年的重点工作") says nothing about the part: its "亮点" is no review.
QUOTED = re.compile(r"“[^”]*”|「[^」]*」|《[^》]*》")


def kinds(title: str) -> list[str]:
    title = QUOTED.sub("", title)
    return [k for k, rx in SECTION_KINDS.items()
            if rx.search(title) and not (k == "problem" and REMEDY.search(title))]


# ------------------------------------------------------------------------ dense features
# A dozen generic cue words (present in the unit or not): tense and shortcoming markers any
# reader of a report knows; the weights are learned.
CUE_WORDS = ("已", "了", "将", "要", "力争", "下一步", "计划", "完成", "增长", "问题", "不足", "困难", "？")
PARTS = ("review", "problem", "plan")
# Named dense columns, in order, grouped by the prefix the trainer switches on or off.
DENSE_NAMES: tuple[str, ...] = (
    "pos",
    *(f"cue:{w}" for w in CUE_WORDS),
    *(f"part.top={k}" for k in PARTS), *(f"part.near={k}" for k in PARTS), "part.heading_task",
)
DENSE_GROUPS = {"pos": ("pos",), "cues": ("cue:",), "part": ("part.",)}
_SECTION_TAIL = 60  # characters of the section path the "h" family reads (its nearest titles)
_PARA_LEAD = 30  # characters of the paragraph's first sentence the "p" family reads


@dataclass
class Grams:
    """The n-gram occurrences of one family: the key of each, the row it counts in, and
    (sentence and section families) which row each unit reads."""

    rows: np.ndarray  # int64, one per occurrence
    keys: np.ndarray  # int64 n-gram keys (code points packed 21 bits each)
    n_rows: int
    of_unit: np.ndarray | None = None  # row per unit; None: row i is unit i


@dataclass
class DocFeatures:
    """Everything the labeller reads of one document's units (vocabulary-free arrays, so it
    pickles cheaply to a worker process and any labeller file can map it to its columns)."""

    n_units: int
    grams: dict[str, Grams]
    dense: np.ndarray  # (n_units, len(DENSE_NAMES)) float64
    # each unit's paragraph as a dense id (a heading is a paragraph of its own): what the
    # labeller's paragraph tense (``labeller.paragraph_tense``) pools over
    para: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n_units


# whitespace and the invisible characters of web copies (clean.ZERO_WIDTH): "设定\u200b为" reads "设定为"
_WS = np.array([9, 10, 11, 12, 13, 32, 0xA0, 0x3000, *map(ord, ZERO_WIDTH)], dtype=np.int64)


def _codes(strings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised code points of all strings joined, and each string's [a, b) range in them.

    Whitespace (and zero-width characters) is dropped and a number is one "0" whatever its value (a figure is a figure).
    """
    joined = "\x01".join(strings)
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    starts = np.zeros(len(strings) + 1, dtype=np.int64)
    if strings:
        starts[1:] = np.cumsum([len(s) + 1 for s in strings])
    digit = ((cp >= 48) & (cp <= 57)) | ((cp >= 0xFF10) & (cp <= 0xFF19))
    # a decimal point between digits is part of the number
    dot = np.zeros_like(digit)
    dot[1:-1] = (cp[1:-1] == 46) & digit[:-2] & digit[2:]
    digit |= dot
    cp = np.where(digit, 48, cp)
    drop = np.isin(cp, _WS)
    drop[1:] |= digit[1:] & digit[:-1]
    keep = ~drop
    kept_before = np.concatenate(([0], np.cumsum(keep)))  # kept characters before position i
    a = kept_before[starts[:-1]]
    b = kept_before[np.minimum(starts[1:] - 1, len(cp))] if strings else a
    return cp[keep], a, b


def grams(strings: list[str], n_max: int) -> Grams:
    """Character 1..n_max-grams of each string, as (row, key) occurrences (vectorised)."""
    c, a, b = _codes(strings)
    rows, keys = [], []
    for n in range(1, n_max + 1):
        if len(c) < n:
            break
        key = c[: len(c) - n + 1].copy()
        for k in range(1, n):
            key = (key << 21) | c[k: len(c) - n + 1 + k]
        counts = np.maximum(b - a - n + 1, 0)
        total = int(counts.sum())
        if not total:
            continue
        row = np.repeat(np.arange(len(strings), dtype=np.int64), counts)
        # start of each occurrence: the string's first position plus the occurrence's rank in it
        offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        rows.append(row)
        keys.append(key[np.repeat(a, counts) + offset])
    if not rows:
        return Grams(np.zeros(0, np.int64), np.zeros(0, np.int64), len(strings))
    return Grams(np.concatenate(rows), np.concatenate(keys), len(strings))


def gram_text(key: int) -> str:
    """The characters of an n-gram key (for the named vocabulary of the labeller file)."""
    chars = []
    while key:
        chars.append(chr(key & 0x1FFFFF))
        key >>= 21
    return "".join(reversed(chars))


def gram_key(text: str) -> int:
    key = 0
    for ch in text:
        key = (key << 21) | ord(ch)
    return key


def gram_keys(lines: str) -> np.ndarray:
    """Keys of newline-separated n-grams (the labeller file's vocabulary), vectorised."""
    if not lines:
        return np.zeros(0, dtype=np.int64)
    cp = np.frombuffer((lines + "\n").encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    ends = np.nonzero(cp == 10)[0]
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    key = np.zeros(len(starts), dtype=np.int64)
    for k in range(int(length.max(initial=0))):
        more = length > k
        key[more] = (key[more] << 21) | cp[starts[more] + k]
    return key


def _shared(values: list) -> tuple[list, np.ndarray]:
    """Distinct values in first-seen order, and the index of each value among them."""
    index: dict = {}
    of = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64)
    return list(index), of


def section_tail(context: tuple[str, ...]) -> str:
    return "/".join(context)[-_SECTION_TAIL:]


def _part(context: tuple[str, ...]) -> tuple[str | None, str | None]:
    """Kind of the outermost and of the innermost section title that has one. A title naming
    two parts ("“十三五”时期发展成就和“十四五”时期主要目标任务") says neither: taken as its first
    kind it read a whole task part as the review."""
    found = [ks for ks in (kinds(t) for t in context) if ks]
    if not found:
        return None, None
    return _one(found[0]), _one(found[-1])


def _one(found: list[str]) -> str | None:
    return found[0] if len(found) == 1 else None


def part_kinds(contexts: list[tuple[str, ...]]) -> list[tuple[str | None, str | None]]:
    """``_part`` of each distinct section path, in document order, where a title that names no
    part and follows a sibling that is a plan part is a plan part too: a report's task parts
    come last and only the first says so ("二、2015年工作总体部署", then "三、把改革开放扎实推向纵深",
    "四、…"); the review never follows the plans."""
    # parent path -> (its latest child title, is it a plan part, is that only inherited)
    last: dict[tuple[str, ...], tuple[str, bool, bool]] = {}
    out = []
    for context in contexts:
        titles = list(context)
        for depth, title in enumerate(context):
            parent = context[:depth]
            seen = last.get(parent)
            if seen is None or seen[0] != title:
                own = kinds(title)
                inherited = not own and seen is not None and seen[1]
                seen = last[parent] = (title, own == ["plan"] or inherited, inherited)
            if seen[2]:
                titles[depth] = "任务"  # read as a plan title
        out.append(_part(tuple(titles)))
    return out


# The dense columns that say which part of the report a unit is in (its innermost titled
# section): the labeller's part prior reads them.
NEAR_PART = tuple(f"part.near={k}" for k in PARTS)

# A sentence that opens on the year ahead ("在新的一年里，济阳区卫健局将…", "下一步，三亚将…")
# starts the plans of its section, untitled: a bureau's summary or a news story closes on them
# under the last review heading. The stretch runs to the section's end, or to a sentence that
# opens on the past again ("过去的一年，两岸关系…" in a national report's task part).
FORWARD_LEAD = re.compile(r"^[\s\u3000]*[在于]?(下一步|下步|下一阶段|今后|明年|新的一年|新一年)")
BACKWARD_LEAD = re.compile(r"^[\s\u3000]*(过去的一年|过去一年|过去五年|一年来|五年来|去年|回顾)")


def _section_stretches(units: list[UnitRef], paths: list[tuple[str, ...]], opens: Callable[[str], object],
                       closes: Callable[[str], object]) -> np.ndarray:
    """Whether each unit sits between a sentence that ``opens`` a stretch and the end of its section
    (or a sentence that ``closes`` it), in document order."""
    out = np.zeros(len(units), dtype=bool)
    at: tuple[str, ...] | None = None  # the section path of the open stretch
    for i, (u, path) in enumerate(zip(units, paths)):
        if path != at:
            at = None
        if not u.heading_task and u.index_in_sentence == 0:
            if opens(u.sentence_text):
                at = path
            elif closes(u.sentence_text):
                at = None
        out[i] = at is not None
    return out


def forward_stretches(units: list[UnitRef], paths: list[tuple[str, ...]]) -> np.ndarray:
    """Whether each unit sits in an untitled stretch of plans (``FORWARD_LEAD``), in document order."""
    return _section_stretches(units, paths, FORWARD_LEAD.match,
                              lambda s: BACKWARD_LEAD.match(s) or _opens_review(s))


# A sentence that turns to shortcomings ("我们也清醒看到，…", "工作中还存在一些问题：…") opens
# the problems of its paragraph, untitled: a review part names them after its achievements, a
# news story after its account. Over gold and silver 314 of the 319 claim units in such stretches
# are problems. The stretch runs to the paragraph's end, or to a sentence that pledges the
# remedy ("我们将直面问题…", "对此，…") or opens on the year ahead.
PROBLEM_LEAD = re.compile(r"(清醒(地)?(看到|认识到)|也要看到|必须看到|也应看到|同时(也)?要?看到|我们也看到|"
                          r"工作中还存在|仍(然)?存在|还存在|存在(的)?(一些|不少)?(突出)?(困难和)?问题|"
                          r"面临(的)?(一些|不少)?(困难|挑战)|不足之处|差距和不足|问题和不足|困难和问题)")
PROBLEM_LEAD_WITHIN = 40  # characters of a sentence's head the turn must occur in
PLEDGE_LEAD = re.compile(r"^[\s\u3000]*(我们(将|要|一定|必须|会)|对此|对这些问题|针对这些问题)")


def _turns_to_problems(sentence: str) -> bool:
    return bool(PROBLEM_LEAD.search(sentence, 0, PROBLEM_LEAD_WITHIN))


def problem_stretches(units: list[UnitRef]) -> np.ndarray:
    """Whether each unit sits in an untitled stretch of problems (``PROBLEM_LEAD``), in document order."""
    out = np.zeros(len(units), dtype=bool)
    on, para = False, None
    for i, u in enumerate(units):
        if u.para != para:
            on, para = False, u.para
        if u.heading_task:
            continue
        if u.index_in_sentence == 0:
            if PLEDGE_LEAD.match(u.sentence_text) or FORWARD_LEAD.match(u.sentence_text):
                on = False
            elif _turns_to_problems(u.sentence_text):
                on = True
        out[i] = on
    return out


# A sentence that announces the work done ("省教育厅主要从以下5个方面开展了工作。", "我们主要采取了
# 以下几项大的举措：", "一年来，我们主要做了以下工作：") opens the achievements of its section, untitled:
# an official's answer at a press conference lists them under the speaker's name, not under a
# review title. Over gold and silver 870 of the 891 claim units in such stretches are achievements.
# A question ("主要采取了哪些举措？") announces nothing.
_COUNT = r"[\d一二三四五六七八九十几两]+"
REVIEW_LEAD = re.compile(r"(做了|开展了|采取了|抓了|实施了|推进了|完成了|推出了|出台了)(以下|如下|这些|这样|一系列)|"
                         + _COUNT + r"(个|项|大)?方面.{0,8}(开展|做|抓|推进)了|(主要|重点)(做了|开展了|抓了|采取了)|"
                         r"(采取|实施|推出|出台)了.{0,12}(举措|措施)")
QUESTION = re.compile(r"[？?]|哪些")


def _opens_review(sentence: str) -> bool:
    return bool(REVIEW_LEAD.search(sentence)) and not QUESTION.search(sentence)


def review_stretches(units: list[UnitRef], paths: list[tuple[str, ...]]) -> np.ndarray:
    """Whether each unit sits in an untitled stretch of achievements (``REVIEW_LEAD``), in document order."""
    return _section_stretches(units, paths, _opens_review,
                              lambda s: FORWARD_LEAD.match(s) or _turns_to_problems(s))


def body_paths(structure: Structure, units: list[UnitRef]) -> list[tuple[str, ...]]:
    """Each unit's section path without the title block above the report (headline, source and
    date lines): a title heads the whole document, not a part of it. Taken as a section, a news
    feature's first subheading ("高度:着眼未来 战略布局", its headline cut off) or a dateline
    ("2023-03-01 09:22发布于…") stood over every unit after it, and its n-grams read them all as
    one category."""
    titles = {visible(b.text) for b in structure.headings if b.title}
    if not titles:
        return [u.context for u in units]
    out = []
    for u in units:
        k = 0
        while k < len(u.context) and u.context[k] in titles:
            k += 1
        out.append(u.context[k:])
    return out


def _dense(units: list[UnitRef], paths: list[tuple[str, ...]] | None = None) -> np.ndarray:
    col = {n: j for j, n in enumerate(DENSE_NAMES)}
    out = np.zeros((len(units), len(DENSE_NAMES)))
    if not units:
        return out
    last = max(u.end for u in units) or 1
    out[:, col["pos"]] = [u.start / last for u in units]
    texts = [u.text for u in units]
    for w in CUE_WORDS:  # `w in text` for every unit, looped in C
        out[:, col[f"cue:{w}"]] = list(map(operator.contains, texts, repeat(w)))
    paths = paths if paths is not None else [u.context for u in units]
    parts, of = _shared(paths)
    kind = part_kinds(parts)
    # each distinct section path's part columns, set for all of its units in one assignment
    for j, prefix in enumerate(("part.top=", "part.near=")):
        cols = np.array([col[prefix + k[j]] if k[j] else -1 for k in kind], dtype=np.int64)[of]
        rows = np.flatnonzero(cols >= 0)
        out[rows, cols[rows]] = 1.0
    # the stretches, each read as a part of its kind; a later one inside an earlier one is the
    # narrower of the two (a problem stretch inside a plan stretch)
    stretches = ((review_stretches(units, paths), "review"), (forward_stretches(units, paths), "plan"),
                 (problem_stretches(units), "problem"))
    for stretch, part in stretches:
        out[np.ix_(stretch, [col[n] for n in NEAR_PART])] = 0.0
        out[stretch, col[f"part.near={part}"]] = 1.0
    out[np.array([u.heading_task for u in units], dtype=bool), col["part.heading_task"]] = 1.0
    return out


def features(structure: Structure, units: list[UnitRef] | None = None) -> DocFeatures:
    """The arrays the labeller reads for every unit (``units_of(structure)`` unless given)."""
    units = units_of(structure) if units is None else units
    sentences, sent_of = _shared([u.sentence_text for u in units])
    paths = body_paths(structure, units)
    sections, sec_of = _shared([section_tail(p) for p in paths])
    leads, lead_of = _shared(paragraph_leads(units))
    g_sent, g_sec, g_lead = grams(sentences, 3), grams(sections, 2), grams(leads, 2)
    g_sent.of_unit, g_sec.of_unit, g_lead.of_unit = sent_of, sec_of, lead_of
    return DocFeatures(len(units), {"u": grams([u.text for u in units], 3), "s": g_sent, "h": g_sec, "p": g_lead},
                       _dense(units, paths), paragraph_ids(units))


def paragraph_ids(units: list[UnitRef]) -> np.ndarray:
    """Dense ids 0..k-1: units of one paragraph share theirs; each enumerated heading has its own
    (a heading names its part; it is not a clause of the paragraph under it)."""
    keys = [("h", i) if u.heading_task else ("p", u.para) for i, u in enumerate(units)]
    ids: dict[tuple[str, int], int] = {}
    return np.array([ids.setdefault(k, len(ids)) for k in keys], dtype=np.int64)


def paragraph_leads(units: list[UnitRef]) -> list[str]:
    """The opening of each unit's paragraph: its first sentence's first ``_PARA_LEAD`` characters
    (a heading is its own lead)."""
    first: dict[int, str] = {}
    for u in units:
        if not u.heading_task:
            first.setdefault(u.para, u.sentence_text)
    return [first.get(u.para, u.sentence_text)[:_PARA_LEAD] for u in units]
