"""summarize(text) -> Digest: clean, segment, chunk, label (cues + model), ground, merge.

The only I/O here is the model call, through the injected backend. Every item is a unit
cut from the input itself, so ``evidence == text[span]`` holds by construction and no
figure can be invented: the model only chooses labels, it never writes evidence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from service import classify
from service.backends.base import Backend, LLMRequest
from service.chunk import chunk
from service.clean import clean
from service.config import Settings
from service.errors import InputError, InvalidOutput, TruncatedOutput
from service.extract import Usage, ask, schema_of
from service.ground import figures, summarize_evidence, summary_is_faithful
from service.merge import dedupe, doc_info, overview
from service.models import CATEGORIES, Digest, Item, Meta
from service.prompts import load
from service.segment import Sentence, segment

Progress = Callable[[int, int], None]
_LABELS = {"成绩": "achievements", "问题": "problems", "计划": "plans", "其他": "other"}


class LabelReply(BaseModel):
    """What the model returns for one sentence."""

    label: Literal["成绩", "问题", "计划", "其他"]


def label_request(sentence: Sentence, previous: str | None, context: str) -> LLMRequest:
    prompt = load("classify")
    user = f"小标题:{sentence.heading or '无'}\n"
    if previous:
        user += f"上一句:{previous}\n"
    user += f"句子:{sentence.text}\n请输出 JSON。"
    return LLMRequest(
        messages=[{"role": "system", "content": prompt.text}, {"role": "user", "content": user}],
        json_schema=schema_of(LabelReply),
        schema_name="sentence_label",
        max_tokens=16,
        temperature=0.0,
        prompt_version=prompt.version,
        context=context,
    )


LabelPlan = tuple[Sentence, classify.Label | None, bool, classify.Label | None, classify.Label | None]


def plan_labels(sentences: list[Sentence], plan_titles: frozenset[str] = frozenset()) -> list[LabelPlan]:
    """Decide what cues can decide; a None label marks a sentence the model must judge.

    Each entry: (sentence, label or None, follows a directive such as "会议强调", paragraph
    tense, section tense). ``plan_titles`` are section titles the document marks as ahead.
    """
    by_para: dict[int, list[str]] = {}
    for s in sentences:
        by_para.setdefault(s.para, []).append(s.text)
    para_label = {p: classify.paragraph_label(texts) for p, texts in by_para.items()}
    out = []
    directive_para = -1
    for s in sentences:
        after = directive_para == s.para
        para = para_label[s.para]
        section = classify.section_label(s.context, plan_titles)
        if classify.needs_model(s.text, section, after_directive=after, para=para):
            out.append((s, None, after, para, section))
        else:
            label = classify.sentence_label(s.text, section, None, after_directive=after, para=para)
            out.append((s, label, after, para, section))
        if classify.REPORT_PLAN.search(s.text):
            directive_para = s.para
    return out


async def _label_with_model(
    backend: Backend, sentence: Sentence, previous: str | None, context: str, sem: asyncio.Semaphore,
    usage: Usage, warnings: list[str],
) -> classify.Label | None:
    request = label_request(sentence, previous, context)
    async with sem:
        try:
            reply, used = await ask(backend, request, LabelReply)
        except (InvalidOutput, TruncatedOutput) as err:
            # One unusable reply costs one label, not the article: fall back to cues.
            usage += getattr(err, "usage", Usage())
            warnings.append(f"{context}: model label unusable ({err.__class__.__name__}); section cues used")
            return None
    usage += used
    return _LABELS[reply.label]  # type: ignore[return-value]


async def summarize(
    text: str,
    backend: Backend,
    settings: Settings,
    *,
    source: str | None = None,
    progress: Progress | None = None,
    limiter: asyncio.Semaphore | None = None,
) -> Digest:
    started = time.perf_counter()
    if len(text) > settings.max_chars:
        raise InputError(f"input has {len(text):,} characters, over the limit of {settings.max_chars:,}", source)
    cleaned = clean(text)
    if not cleaned.blocks:
        raise InputError("no report text left after removing page chrome and captions", source)
    structure = segment(text, cleaned.blocks)
    chunks = chunk(structure.sentences, settings.chunk_tokens)
    plan_titles = classify.later_year_titles(h.text for h in structure.headings)
    plan = plan_labels(structure.sentences, plan_titles)

    sem = limiter or asyncio.Semaphore(settings.concurrency)
    usage, warnings = Usage(), []
    chunk_of = {s.index: c.index for c in chunks for s in c.sentences}
    todo = [(s, i) for i, (s, label, *_) in enumerate(plan) if label is None]
    done = 0

    async def one(s: Sentence, i: int) -> tuple[int, classify.Label | None]:
        nonlocal done
        previous = structure.sentences[s.index - 1].text if s.index else None
        context = f"article {source or '<text>'} chunk {chunk_of[s.index]} sentence {s.index}"
        label = await _label_with_model(backend, s, previous, context, sem, usage, warnings)
        done += 1
        if progress:
            progress(done, len(todo))
        return i, label

    if progress:
        progress(0, len(todo))
    # A TaskGroup cancels the remaining calls as soon as one fails for good, so an article
    # that cannot finish stops holding model slots (gather would let them all run on).
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(s, i)) for s, i in todo]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None  # callers handle BackendError, ReplayMiss, ...
    model_labels = dict(t.result() for t in tasks)

    items: dict[str, list[Item]] = {c: [] for c in CATEGORIES}
    for i, (s, label, after_directive, para, section) in enumerate(plan):
        if label is None:
            label = classify.sentence_label(s.text, section, model_labels.get(i), after_directive=after_directive,
                                            para=para)
        for unit in s.units:
            for cat in classify.unit_labels(unit.text, label, section):
                items[cat].append(_item(text, unit.start, unit.end, warnings))
    for task in structure.tasks:  # "(二)全面推动...": in a plan section, each heading is a task
        if classify.section_label(task.context, plan_titles) == "plans":
            items["plans"].extend(_item(text, u.start, u.end, warnings) for u in task.units)
    items, dropped = dedupe(items)
    if dropped:
        warnings.append(f"{dropped} repeated item(s) collapsed")
    doc = doc_info(text, "\n".join(b.text for b in cleaned.blocks), cleaned.title)
    return Digest(
        doc=doc,
        overview=overview(doc, items),
        achievements=items["achievements"],
        problems=items["problems"],
        plans=items["plans"],
        excluded=cleaned.excluded,
        meta=Meta(
            backend=backend.name,
            model=backend.model,
            prompt_version=load("classify").version,
            chunks=len(chunks),
            llm_calls=usage.llm_calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            seconds=round(time.perf_counter() - started, 3),
            warnings=warnings,
        ),
    )


def _item(text: str, start: int, end: int, warnings: list[str]) -> Item:
    # spans index the raw input: the contract promises evidence == text[span]
    evidence = text[start:end]
    summary = summarize_evidence(evidence)
    if not summary_is_faithful(summary, evidence):  # cannot happen by construction; guard anyway
        warnings.append(f"summary at {start}-{end} replaced by its evidence: a number did not match")
        summary = evidence
    return Item(summary=summary, evidence=evidence, span=(start, end), figures=figures(evidence))


__all__ = ["summarize", "label_request", "LabelReply", "plan_labels"]
