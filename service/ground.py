"""Grounding: evidence is always a slice of the input, figures are always read from it.

``locate`` finds a quoted passage in the raw text (exactly first, then tolerant of
whitespace and punctuation variants) and returns the raw span, so callers re-slice
``text[start:end]`` and the contract ``evidence == text[span]`` holds by construction.
"""

from __future__ import annotations

import functools
import html
import re

# A number with its unit, verbatim: 81.7%, 1.7亿元, 169家, 4.35‰, 3万余人次, 10+10
NUMBER = re.compile(
    r"\d+(?:[.,．]\d+)*(?:\s?(?:[%％‰℃]|个百分点|个|万余?|亿|千|百)?)*"
    r"(?:余|多)?(?:人次|万人|元|亿元|万元|家|所|处|名|人|户|例|项|台|张|份|条|床|次|天|年|月|日|个|项|倍|"
    r"平方米|公里|米|吨|辆|批|类|场次|场|岁|小时|分钟|周|期|类|组|所|座|栋|支|篇|件|部)?"
)
_PUNCT_VARIANTS = str.maketrans({",": "，", ":": "：", ";": "；", "(": "（", ")": "）", "!": "！", "?": "？"})


# A range printed as one ("0—6岁", "5%—5.5%", "1-2名", "10月～11月") is one figure to a reader:
# listed apart, "0" and "6岁" lose what they bound.
_RANGE_DASH = set("—–~～-")  # exactly one of them between the two numbers


def figures(evidence: str, ranges: bool = False) -> list[str]:
    """Every number in the evidence with its unit, exactly as printed, in order, unique; with
    ``ranges``, numbers joined by one dash are one figure ("0—6岁", not "0" and "6岁")."""
    spans: list[list[int]] = []
    for m in NUMBER.finditer(evidence):  # a match begins on a digit: never blank
        a, b = m.span()
        if ranges and spans and evidence[spans[-1][1]:a].strip() in _RANGE_DASH:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    out: list[str] = []
    for a, b in spans:
        fig = evidence[a:b].strip()
        if fig not in out:
            out.append(fig)
    return out


# Compiled once: these run for every item of every digest (re's own cache lookup per call
# cost as much as the match on short evidence).
_NUMBER_VALUE = re.compile(r"\d+(?:\.\d+)?")
_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\u4e00-\u9fff0-9A-Za-z]")
_EDGE_PUNCT = ",，、;；:："
_HEDGE = re.compile(r"^(要|并|同时|还|也)(?=[\u4e00-\u9fff]{2})")


def numbers_in(text: str) -> list[str]:
    return _NUMBER_VALUE.findall(text)


def summary_is_faithful(summary: str, evidence: str) -> bool:
    """A number in a summary that is not in its evidence is a defect, and so is a figure
    whose unit or wording changed ("3万余人次" summarized as "3万人次")."""
    # A summary that is a slice of its evidence (or of the squashed evidence), give or take a
    # closing "。", holds its numbers and figures inside that slice: no number or figure holds
    # "。", and squashing a slice gives a slice of the squashed text. summarize_evidence's
    # summaries are such slices: one substring test each instead of two scans per item. Any
    # other summary is read number by number and figure by figure.
    cut = summary[:-1] if summary.endswith("。") else summary
    if cut in evidence:
        return True
    if not all(n in evidence for n in numbers_in(summary)):
        return False
    squashed = _SPACES.sub("", evidence)
    if cut in squashed:
        return True
    return all(_SPACES.sub("", f) in squashed for f in figures(summary))


@functools.lru_cache(maxsize=8192)
def _bigrams(text: str) -> frozenset[str]:
    # cached: a unit's evidence is compared with its own summary, then (``misnumbered``)
    # with every other summary of its window that strays from its own evidence
    s = _NOT_WORD.sub("", text)
    return frozenset(s[i:i + 2] for i in range(len(s) - 1))


def shared_words(summary: str, evidence: str) -> float:
    """Share of the summary's character bigrams that occur in the evidence (1.0 for an empty
    summary). A Chinese summary of a claim reuses its words; a summary of some other claim
    does not ("拓展中医特色康复服务能力" under "设立中医特色康复医院和疗养院": 0.45)."""
    grams = _bigrams(summary)
    return len(grams & _bigrams(evidence)) / len(grams) if grams else 1.0


def _squash(text: str) -> tuple[str, list[int]]:
    """Text without whitespace, punctuation unified, with a map back to raw offsets."""
    chars, where = [], []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        chars.append(ch.translate(_PUNCT_VARIANTS))
        where.append(i)
    return "".join(chars), where


def locate(raw: str, quote: str, hint: int = 0) -> tuple[int, int] | None:
    """Span of ``quote`` in ``raw`` (nearest to ``hint`` first); None when not found."""
    quote = quote.strip()
    if not quote:
        return None
    i = raw.find(quote, hint)
    if i < 0:
        i = raw.find(quote)
    if i >= 0:
        return (i, i + len(quote))
    squashed, where = _squash(raw)
    q, _ = _squash(quote)
    j = squashed.find(q)
    if j < 0 or not q:
        return None
    return (where[j], where[j + len(q) - 1] + 1)


def summarize_evidence(evidence: str) -> str:
    """A short Chinese summary that keeps every figure: the evidence, tidied.

    Whitespace (OCR gaps, line breaks) goes, the sentence gets a full stop. Nothing is
    paraphrased, so no figure can drift.
    """
    text = _SPACES.sub("", evidence).strip(_EDGE_PUNCT)
    text = _HEDGE.sub("", text)
    return text if text.endswith(("。", "！", "？")) else text + "。"


# --------------------------------------------------------------------- whole numbers

_DIGIT = re.compile(r"[0-9０-９]")
_POINTS = ".．"
_MASKED = "\ue000"  # service.clean.MASK: markup masked inside a block of visible text


def _visible_before(text: str, i: int) -> str:
    i -= 1
    while i >= 0 and text[i] == _MASKED:
        i -= 1
    return text[i] if i >= 0 else ""


def _visible_after(text: str, i: int) -> str:
    while i < len(text) and text[i] == _MASKED:
        i += 1
    return text[i] if i < len(text) else ""


_DIGITS = "0123456789０１２３４５６７８９"  # _DIGIT's class, for one character at a time
_NUMBER_CHARS = _DIGITS + _POINTS


def _digit(ch: str) -> bool:
    return bool(ch) and ch in _DIGITS


def cuts_number(text: str, start: int, end: int) -> str | None:
    """Why ``text[start:end]`` begins or ends inside a number, or None.

    A figure is the whole number as printed around its span, never a suffix or a prefix of
    it: "2%" cut from "85.2%" begins after "85.", "下降9" cut from "下降9.1%" ends before ".1".
    """
    # the characters outside the span are read only when the edge inside it is a digit or a point
    first = _visible_after(text, start)
    if first and first in _NUMBER_CHARS:
        before = _visible_before(text, start)
        if _digit(before) or (before and before in _POINTS and _digit(_visible_before(text, start - 1))):
            return f"begins inside a number: …{text[max(0, start - 6):start]}|{text[start:start + 6]}…"
    last = _visible_before(text, end)
    if last and last in _NUMBER_CHARS:
        after = _visible_after(text, end)
        if _digit(after) or (after and after in _POINTS and _digit(_visible_after(text, end + 1))):
            return f"ends inside a number: …{text[max(0, end - 6):end]}|{text[end:end + 6]}…"
    return None


_TAG = re.compile(r"<[^<>]*>")


def visible_text(evidence: str) -> str:
    """What a reader sees of an evidence slice of web-page source: a sentence that runs across
    inline markup (``总数的<span …>25</span>％``) keeps its tags in the evidence (it is a slice
    of the input), while its summary and figures read the visible text (``总数的25％``)."""
    if "<" not in evidence and "&" not in evidence:
        return evidence
    return html.unescape(_TAG.sub("", evidence))
