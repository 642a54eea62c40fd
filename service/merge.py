"""Assemble the digest: items in document order, near-duplicates collapsed, doc fields.

Pure functions: no I/O.
"""

from __future__ import annotations

import re

from service.models import CATEGORIES, DocInfo, Item

_ORG = re.compile(
    r"((?:[\u4e00-\u9fff]{2,3}(?:省|市))?[\u4e00-\u9fff]{2,3}(?:市|区|县|州|旗)"
    r"(?:卫生健康委员会|卫生和计划生育委员会|卫生健康局|卫生健康委|卫计委|卫生局|人民政府))"
)
_REGION = re.compile(r"([\u4e00-\u9fff]{2,6}?(?:省|市|区|县|州|旗))")
_PERIOD = re.compile(r"(\d{4}年(?:上半年|下半年|一季度|前三季度|1[-—－~至]\d{1,2}月|全年)?)")
_ORG_EXPANSIONS = {"卫生健康委": "卫生健康委员会", "卫计委": "卫生和计划生育委员会"}


def _norm(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text)


def dedupe(items: dict[str, list[Item]]) -> tuple[dict[str, list[Item]], int]:
    """Drop an item whose normalised evidence repeats an earlier one elsewhere in the text.

    A repeated paragraph is reported once, in any category. The same span in two categories
    is no repeat: "补齐…短板" is both a plan and the problem it names.
    """
    first_span: dict[str, tuple[int, int]] = {}
    out: dict[str, list[Item]] = {c: [] for c in CATEGORIES}
    dropped = 0
    for cat, item in sorted(((c, it) for c in CATEGORIES for it in items[c]), key=lambda x: x[1].span):
        key = _norm(item.evidence)
        if first_span.setdefault(key, item.span) != item.span:
            dropped += 1
            continue
        out[cat].append(item)
    return out, dropped


def doc_info(text: str, kept_text: str, title: str | None) -> DocInfo:
    org = _ORG.search(kept_text)
    organization = org.group(1) if org else None
    if organization:
        for short, full in _ORG_EXPANSIONS.items():
            if organization.endswith(short):
                organization = organization[: -len(short)] + full
    # a region is read from the organisation or the title, never from a random sentence
    region = _REGION.search(organization or title or "")
    period = _PERIOD.search(kept_text)
    return DocInfo(
        title=title,
        organization=organization,
        region=region.group(1) if region else None,
        period=period.group(1) if period else None,
        chars=len(text),
    )
