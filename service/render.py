"""Digest -> JSON or a Markdown briefing. Pure functions."""

from __future__ import annotations

import json
import re

from service.ground import visible_text
from service.models import Digest

_TITLES = {"achievements": "成绩", "problems": "问题", "plans": "下一步计划"}


def _squash(text: str) -> str:
    return re.sub(r"[\s。！？,，;；:：、]+", "", text)


def restates(summary: str, evidence: str) -> bool:
    """Is the summary the evidence itself, tidied (the learned strategy's summaries)?"""
    s, e = _squash(summary), _squash(evidence)
    return s in e and len(e) - len(s) <= 3


def to_json(digest: Digest) -> str:
    return json.dumps(digest.model_dump(mode="json"), ensure_ascii=False, indent=2)


def to_markdown(digest: Digest | dict) -> str:
    d = digest if isinstance(digest, Digest) else Digest.model_validate(digest)
    doc = d.doc
    lines = [f"# {doc.title or '报告摘要'}", ""]
    facts = [f"{k}:{v}" for k, v in (("单位", doc.organization), ("地区", doc.region), ("时间", doc.period)) if v]
    if facts:
        lines += [" | ".join(facts), ""]
    lines += [d.overview, ""]
    for cat, title in _TITLES.items():
        items = getattr(d, cat)
        lines.append(f"## {title}({len(items)})")
        lines.append("")
        for it in items:
            figs = f" 〔{'、'.join(it.figures)}〕" if it.figures else ""
            # web-page source: the quote as a reader sees it (the offsets give the exact slice)
            shown = visible_text(it.evidence)
            quote = f"> {' '.join(shown.split())}  (字符 {it.span[0]}–{it.span[1]})"
            if restates(it.summary, shown):  # the quote alone: no claim shown twice
                lines.append(f"- {quote}{figs}")
            else:
                lines.append(f"- {it.summary}{figs}")
                lines.append(f"  {quote}")
        lines.append("")
    if d.excluded:
        lines.append(f"_未纳入摘要的内容:{len(d.excluded)} 处(" +
                     "、".join(sorted({e.reason for e in d.excluded})) + ")_")
        lines.append("")
    m = d.meta
    lines.append(f"_{m.backend} · {m.model} · {m.prompt_version} · {m.llm_calls} 次调用 · {m.seconds:.1f} 秒_")
    return "\n".join(lines) + "\n"
