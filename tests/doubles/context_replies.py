"""Replies of a test-double model to the ``context`` strategy's requests.

It reads the numbered units (``〔n〕``) out of the request as the real model would see them
and answers every number (or, for a repair round, the numbers asked again). Labels come
from a few cue words: the point is the plumbing, not quality. ``tamper`` lets a test break
the reply (drop units, bad labels, an invented figure).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

UNIT = re.compile(r"〔(\d+)〕([^〔\n]*)")


def units_in(body: dict[str, Any]) -> dict[int, str]:
    """Number -> unit text, from the first user message of a context request."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    user = user.rsplit("\n\n共 ", 1)[0]  # the text, not the closing instruction
    return {int(n): t for n, t in UNIT.findall(user)}


def asked(body: dict[str, Any]) -> list[int]:
    """The numbers this request asks about: all, or those a repair round names."""
    last = body["messages"][-1]["content"]
    if "没有返回" in last:
        return [int(n) for n in re.findall(r"\d+", last.split(":", 1)[-1].split("。")[0])]
    return sorted(units_in(body))


def label_of(unit: str) -> str:
    if re.search(r"问题|不足|短板|薄弱", unit):
        return "问题"
    if re.search(r"要|将|力争|推进|加快", unit):
        return "计划"
    if re.search(r"\d|完成|建成|实现|达到", unit):
        return "成绩"
    return "其他"


def entry(n: int, unit: str) -> dict[str, Any]:
    label = label_of(unit)
    # the first clause: the text after a unit's marker runs on past its end when the next
    # passage holds no numbered unit, and a summary must not borrow its neighbour's figures
    summary = "" if label == "其他" else re.split(r"[,，。;；:：!！?？]", unit.strip(" ,，。;；"))[0]
    return {"n": n, "labels": [label], "summary": summary}


def reply(body: dict[str, Any], tamper: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> str:
    """A complete, valid reply to a context request (or an overview request)."""
    if "overview" in json.dumps(body.get("response_format") or {}) or _is_overview(body):
        return json.dumps({"overview": overview_of(body)}, ensure_ascii=False)
    units = units_in(body)
    entries = [entry(n, units[n]) for n in asked(body) if n in units]
    if tamper is not None:
        entries = tamper(entries)
    return json.dumps({"units": entries}, ensure_ascii=False)


def _is_overview(body: dict[str, Any]) -> bool:
    return "请写概述" in body["messages"][-1]["content"] or "请写概述" in body["messages"][1]["content"]


def overview_of(body: dict[str, Any]) -> str:
    """The first listed item of each category, as sentences (figures copied verbatim)."""
    user = body["messages"][1]["content"]
    firsts = re.findall(r"(?m)^[^\n]*:\n- (?!\(无\))([^\n]+)", user)
    return "".join(f.rstrip("。") + "。" for f in firsts) or "报告没有可概述的条目。"
