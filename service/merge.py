"""Assemble the digest: items in document order, near-duplicates collapsed, doc fields.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from service.models import CATEGORIES, DocInfo, Item, Span

# The provincial-level names: a closed list. A place is read from one of them, or from a name
# that starts a phrase: a leftmost match alone took the tail of a verb or a year for a place
# ("我代表北京市人民政府" -> "表北京市", "2026年江苏省…" -> "年江苏省").
PROVINCES = ("北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西",
             "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海", "台湾", "内蒙古",
             "广西", "西藏", "宁夏", "新疆", "香港", "澳门")
_PROVINCE = "(?:" + "|".join(PROVINCES) + ")(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)?"
_LOCAL = r"[\u4e00-\u9fff]{2,3}(?:市|区|县|州|旗)"
# where a place may begin: at a province's name, or after no other Chinese character; never at a
# generic addressee ("各区县卫生局", "各省、自治区、直辖市人民政府") or a preposition ("由区县卫生局…")
_PLACE_START = rf"(?:(?={_PROVINCE})|(?<![\u4e00-\u9fff]))(?!各|直辖|自治|由|在|经|据|对|向|按|被|把)"
_BODY = "(?:卫生健康委员会|卫生和计划生育委员会|卫生健康局|卫生健康委|卫计委|卫生局|人民政府)"
_ORG = re.compile(rf"{_PLACE_START}((?:{_PROVINCE}(?:{_LOCAL})?|{_LOCAL}){_BODY})")
_REGION_PROVINCE = re.compile(rf"({_PROVINCE}(?:{_LOCAL})?)")
_REGION_LOCAL = re.compile(rf"{_PLACE_START}({_LOCAL})")
_PERIOD = re.compile(r"((?:\d{4}\s*[—–\-~～至]\s*)?\d{4}年(?:上半年|下半年|一季度|前三季度|1[-—－~至]\d{1,2}月|全年)?)")
# A year the report looks back or ahead to is not the period it covers: a target ("到2035年",
# "2035年远景目标"), a record ("1985年以来最高"), a founding ("创建于1952年", "前身是1939年").
# A baseline compared against ("较2020年翻番", "比2020年增加36天", "从2020年的82.4岁") is not it either.
_NOT_PERIOD_BEFORE = re.compile(r"(?:到|至|于|是|较|比|从)$")
# A top-level part of the report named by its year ("一、2013年工作回顾", "三、2021年重点工作")
# says which year the report is about better than a year met in a sentence ("落实2030年…议程").
_PART_YEAR = re.compile(r"^\s*[一二三四五六七八九十]{1,3}、[^\n。]{0,6}?(?=\d{4}年)", re.MULTILINE)
_NOT_PERIOD_AFTER = re.compile(r"^(?:以来|远景|前)")
_ORG_EXPANSIONS = {"卫生健康委": "卫生健康委员会", "卫计委": "卫生和计划生育委员会"}


# Compiled once: _norm runs for every item of every digest, and re's own cache lookup per
# call cost a third as much as the substitution on short evidence.
_NOT_KEPT = re.compile(r"[\s\W_]+")

T = TypeVar("T")


def _norm(text: str) -> str:
    return _NOT_KEPT.sub("", text)


def _span_of(entry: tuple[str, tuple[Span, str, Any]]) -> Span:
    return entry[1][0]


def first_mentions(entries: dict[str, list[tuple[Span, str, T]]]) -> tuple[dict[str, list[T]], int]:
    """``dedupe``'s rule on ``(span, evidence, payload)`` entries per category: the payloads
    kept, in ``dedupe``'s order, and how many were dropped. Only the span and the evidence
    decide, so a caller can learn which items survive before it builds any (``assemble``
    builds no item, summary or carried subject for a repeat)."""
    first_span: dict[str, Span] = {}
    out: dict[str, list[T]] = {c: [] for c in CATEGORIES}
    dropped = 0
    for cat, (span, evidence, payload) in sorted(((c, e) for c in CATEGORIES for e in entries[c]), key=_span_of):
        if first_span.setdefault(_norm(evidence), span) != span:
            dropped += 1
            continue
        out[cat].append(payload)
    return out, dropped


# A clause that only sets a time ("2011年9月起", "截至2014年底", "至2014年6月30日") states no claim:
# it frames the clause after it. Gold takes the two as one claim (c43, c51, c54), and an item
# reading "2011年9月起。" tells a reader nothing.
TIME_FRAME = re.compile(r"^(?:自|从|至|截至|截止|到|于)?(?:[0-9０-９]+(?:年|月|日|号)|[上下]半年|年?底|年?初|年?末)+"
                        r"(?:起|以来|来|前|后|止|为止|开始|期间)?$")


def is_time_frame(unit_text: str) -> bool:
    return bool(TIME_FRAME.match(re.sub(r"\s+", "", unit_text)))


def framed(units: Sequence[Any], decisions: Sequence[Sequence[str]]) -> list[tuple[int, int, tuple[str, ...]]]:
    """``(first, last, categories)`` per unit with a decision: the unit's own span, or for a
    unit after a time frame of its sentence, the frame's start to its end. A time frame yields
    nothing of its own: a frame with no claim after it in its sentence is no claim either."""
    frame = [is_time_frame(u.text) for u in units]  # once per unit: assembly runs on every digest
    return [(i - 1 if unit.index_in_sentence and frame[i - 1] else i, i, tuple(cats))
            for i, (unit, cats) in enumerate(zip(units, decisions)) if cats and not frame[i]]


def dedupe(items: dict[str, list[Item]]) -> tuple[dict[str, list[Item]], int]:
    """Drop an item whose normalised evidence repeats an earlier one elsewhere in the text.

    A repeated paragraph is reported once, in any category. The same span in two categories
    is no repeat: "补齐…短板" is both a plan and the problem it names.
    """
    return first_mentions({c: [(it.span, it.evidence, it) for it in items[c]] for c in CATEGORIES})


def _region(text: str) -> re.Match[str] | None:
    """The place a name holds: a province (and the city or county after it), else a city or
    county that begins a phrase."""
    return _REGION_PROVINCE.search(text) or _REGION_LOCAL.search(text)


def _period(text: str) -> re.Match[str] | None:
    """The first year (with its half or quarter) that is neither a target, a record nor a founding."""
    return next((m for m in _PERIOD.finditer(text)
                 if not _NOT_PERIOD_BEFORE.search(text[max(0, m.start() - 1):m.start()])
                 and not _NOT_PERIOD_AFTER.match(text[m.end():m.end() + 2])), None)


def doc_info(text: str, kept_text: str, title: str | None) -> DocInfo:
    org = _ORG.search(kept_text)
    organization = org.group(1) if org else None
    if organization:
        for short, full in _ORG_EXPANSIONS.items():
            if organization.endswith(short):
                organization = organization[: -len(short)] + full
    # a region is read from the organisation or the title, never from a random sentence
    region = _region(organization or title or "")
    part = _PART_YEAR.search(kept_text)
    part_year = _period(kept_text[part.end():part.end() + 12]) if part else None
    period = _period(title or "") or part_year or _period(kept_text)
    return DocInfo(
        title=title,
        organization=organization,
        region=region.group(1) if region else None,
        period=period.group(1) if period else None,
        chars=len(text),
    )
