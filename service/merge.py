"""Assemble the digest: items in document order, near-duplicates collapsed, doc fields.

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from service.models import CATEGORIES, DocInfo, Item, Span

_ORG = re.compile(
    r"((?:[\u4e00-\u9fff]{2,3}(?:省|市))?[\u4e00-\u9fff]{2,3}(?:市|区|县|州|旗)"
    r"(?:卫生健康委员会|卫生和计划生育委员会|卫生健康局|卫生健康委|卫计委|卫生局|人民政府))"
)
_REGION = re.compile(r"([\u4e00-\u9fff]{2,6}?(?:省|市|区|县|州|旗))")
_PERIOD = re.compile(r"(\d{4}年(?:上半年|下半年|一季度|前三季度|1[-—－~至]\d{1,2}月|全年)?)")
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


def dedupe(items: dict[str, list[Item]]) -> tuple[dict[str, list[Item]], int]:
    """Drop an item whose normalised evidence repeats an earlier one elsewhere in the text.

    A repeated paragraph is reported once, in any category. The same span in two categories
    is no repeat: "补齐…短板" is both a plan and the problem it names.
    """
    return first_mentions({c: [(it.span, it.evidence, it) for it in items[c]] for c in CATEGORIES})


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
