"""The overview: 3-5 sentences a busy reader can use.

``written`` asks the model once, from the collected items, and checks every figure in its
answer against the evidence of the items it was shown; a wrong figure gets one repair
round, then the deterministic overview stands (and a warning says so). ``plain`` is that
deterministic overview: the leading items of each category, never a bare count; with the
labeller's confidence in each item, its most confident ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from service.backends.base import Backend, LLMRequest
from service.errors import BackendError
from service.extract import Usage, ask, repair_request, schema_of
from service.ground import figures, numbers_in
from service.models import CATEGORIES, DocInfo, Item
from service.prompts import load

_HEADS = {"achievements": "主要成绩", "problems": "主要问题", "plans": "下一步"}
ITEMS_SHOWN = 12  # per category: enough for the main points, bounded for any context window
PLAIN_ITEMS = 2
PLAIN_CHARS = 60


class OverviewReply(BaseModel):
    overview: str = Field(description="3-5 Chinese sentences: main results with figures, main problems, main plans")


# ---------------------------------------------------------------- deterministic


def plain(doc: DocInfo, items: dict[str, list[Item]], confidence: Mapping[str, Sequence[float]] | None = None) -> str:
    """Who and when, then the leading items of each category (results with figures first), in
    the report's order. ``confidence`` (per category, one figure per item: the labeller's
    probability of its category) picks the most confident items instead of the first ones."""
    who = doc.organization or doc.region or ""
    lead = f"{who}{doc.period or ''}" if who or doc.period else ""
    parts = []
    for cat in CATEGORIES:
        chosen = _leading(items[cat], prefer_figures=cat == "achievements",
                          confidence=confidence.get(cat) if confidence else None)
        if chosen:
            parts.append(f"{_HEADS[cat]}:" + ";".join(_clip(it.summary) for it in chosen) + "。")
    if not parts:
        return f"{lead}:未识别出成绩、问题或计划。" if lead else "未识别出成绩、问题或计划。"
    # who and when lead the first part's sentence ("某县卫生健康局2025年上半年，主要成绩:…"): on
    # its own ("2019年。") it read as a fragment
    return (f"{lead}，" if lead else "") + "".join(parts)


def _leading(items: list[Item], prefer_figures: bool, confidence: Sequence[float] | None = None) -> list[Item]:
    """``PLAIN_ITEMS`` of ``items``: the first ones, or the most confident ones (held out by
    source group, the labeller's first two items of a category were right 84 times in 134,
    its two most confident 122: a report's first plans are often its lead's framing, see
    ``bench/overview_bench.py``), shown in the report's order."""
    ranked = items if confidence is None else [items[i] for i in sorted(range(len(items)), key=lambda i: -confidence[i])]
    chosen = ranked[:PLAIN_ITEMS]
    if prefer_figures:
        with_figures = [it for it in ranked if it.figures]
        if len(with_figures) >= PLAIN_ITEMS:
            chosen = with_figures[:PLAIN_ITEMS]
    return sorted(chosen, key=lambda it: it.span[0])


def _clip(summary: str) -> str:
    """At most ~PLAIN_CHARS, cut only after a clause mark, so no figure is ever cut. A quoted
    remark ("“……弱项。”") is named without its quotation marks, so no cut leaves one open."""
    s = summary.rstrip("。！？;；,，")
    if s.startswith("“") and s.endswith("”") and s.count("“") == 1:
        s = s[1:-1].rstrip("。！？;；,，")
    if len(s) <= PLAIN_CHARS:
        return s
    cut = max(s.rfind(p, 0, PLAIN_CHARS) for p in ",，;；、")
    return s[:cut] if cut > 8 else s


# ---------------------------------------------------------------- model-written


def request(doc: DocInfo, items: dict[str, list[Item]], context: str) -> LLMRequest:
    prompt = load("overview")
    head = "、".join(v for v in (doc.title, doc.organization, doc.period) if v) or "(未知)"
    lines = [f"报告:{head}"]
    for cat in CATEGORIES:
        shown = items[cat][:ITEMS_SHOWN]
        lines.append(f"{_HEADS[cat]}(共 {len(items[cat])} 项,列出 {len(shown)} 项):")
        lines += [f"- {it.summary}" for it in shown] or ["- (无)"]
    return LLMRequest(
        messages=[{"role": "system", "content": prompt.text},
                  {"role": "user", "content": "\n".join(lines) + "\n请写概述,只输出 JSON。"}],
        json_schema=schema_of(OverviewReply),
        schema_name="overview",
        max_tokens=600,
        temperature=0.0,
        prompt_version=prompt.version,
        context=context,
    )


def unsupported(overview: str, items: dict[str, list[Item]], doc: DocInfo | None = None) -> list[str]:
    """Figures in the overview that neither the evidence of an item shown to the model nor
    the report's own title and period (both read from the text, both in the prompt) carry."""
    evidence = [_squash(it.evidence) for c in CATEGORIES for it in items[c][:ITEMS_SHOWN]]
    if doc is not None:
        evidence += [_squash(v) for v in (doc.title, doc.period) if v]
    bad = []
    for fig in [*figures(overview), *numbers_in(overview)]:
        f = _squash(fig)
        if f and not any(f in e for e in evidence) and fig not in bad:
            bad.append(fig)
    return bad


async def written(backend: Backend, doc: DocInfo, items: dict[str, list[Item]], source: str | None,
                  usage: Usage, warnings: list[str], confidence: Mapping[str, Sequence[float]] | None = None) -> str:
    """The model's overview if every figure in it is grounded (one repair round), else ``plain``
    (with ``confidence``, of the labeller's most confident items)."""
    if not any(items[c] for c in CATEGORIES):
        return plain(doc, items)
    req = request(doc, items, f"article {source or '<text>'} overview")
    try:
        reply, used = await ask(backend, req, OverviewReply)
        usage += used
        bad = unsupported(reply.overview, items, doc)
        if bad:
            note = f"这些数字不在所列条目的原文中:{'、'.join(bad)}。只使用条目中原样出现的数字,重写概述。"
            fixed, used = await ask(backend, repair_request(req, reply.model_dump_json(), note), OverviewReply)
            usage += used
            reply, bad = fixed, unsupported(fixed.overview, items, doc)
    except BackendError as err:
        usage += getattr(err, "usage", Usage())
        warnings.append(f"overview: model call failed ({err.__class__.__name__}); the deterministic overview stands")
        return plain(doc, items, confidence)
    text = re.sub(r"\s+", "", reply.overview)
    if bad or not text:
        why = f"figures not in the evidence: {'、'.join(bad)}" if bad else "empty"
        warnings.append(f"overview: the model's overview was rejected ({why}); the deterministic overview stands")
        return plain(doc, items, confidence)
    return text


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


__all__ = ["OverviewReply", "plain", "request", "unsupported", "written"]
