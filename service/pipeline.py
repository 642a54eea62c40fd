"""summarize(text) -> Digest: clean, segment, describe units, label (learned), ground, merge.

Labels come from the learned labeller (``service.labeller``, parameters in
``service/data/labeller.json``); the model is asked only about units the labeller is unsure
of, as far as ``settings.assist_margin_for(backend)`` says. The only I/O here is that model call,
through the injected backend. Every item is a unit cut from the input itself, so
``evidence == text[span]`` holds by construction and no figure can be invented: the model
only chooses labels, it never writes evidence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from service import labeller as labeller_module
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
from service.features import UnitRef, features, units_of
from service.labeller import Labeller
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


def assist_targets(proba, margin: float) -> list[int]:
    """Units the labeller is unsure of: its top two labels closer than ``margin``."""
    out = []
    for i, p in enumerate(proba):
        top = sorted(p, reverse=True)
        if top[0] - top[1] < margin:
            out.append(i)
    return out


async def _label_with_model(
    backend: Backend, sentence: Sentence, previous: str | None, context: str, sem: asyncio.Semaphore,
    usage: Usage, warnings: list[str],
) -> str | None:
    request = label_request(sentence, previous, context)
    async with sem:
        try:
            reply, used = await ask(backend, request, LabelReply)
        except (InvalidOutput, TruncatedOutput) as err:
            # One unusable reply costs one label, not the article: the labeller's stands.
            usage += getattr(err, "usage", Usage())
            warnings.append(f"{context}: model label unusable ({err.__class__.__name__}); labeller's label kept")
            return None
    usage += used
    return _LABELS[reply.label]


def combine(proba, model_label: str | None, labels: tuple[str, ...]):
    """The model breaks a near tie: its label wins only if the labeller ranks it in its top two."""
    if model_label is None:
        return proba
    order = sorted(range(len(labels)), key=lambda k: -proba[k])
    k = labels.index(model_label)
    if k in order[:2]:
        proba = proba.copy()
        proba[k] = proba[order[0]] + 1e-6
    return proba


async def summarize(
    text: str,
    backend: Backend,
    settings: Settings,
    *,
    source: str | None = None,
    progress: Progress | None = None,
    limiter: asyncio.Semaphore | None = None,
    labeller: Labeller | None = None,
) -> Digest:
    started = time.perf_counter()
    if len(text) > settings.max_chars:
        raise InputError(f"input has {len(text):,} characters, over the limit of {settings.max_chars:,}", source)
    cleaned = clean(text)
    if not cleaned.blocks:
        raise InputError("no report text left after removing page chrome and captions", source)
    labeller = labeller or labeller_for(settings)
    structure = segment(text, cleaned.blocks)
    chunks = chunk(structure.sentences, settings.chunk_tokens)
    units = units_of(structure)
    proba = labeller.predict_proba(features(structure, units))

    sem = limiter or asyncio.Semaphore(settings.concurrency)
    usage, warnings = Usage(), []
    # the model reads only what the labeller leaves open (settings.assist_margin; 0 = never)
    todo = assist_targets(proba, settings.assist_margin_for(backend.name))
    sentence_of = {i: _sentence_of(units[i], structure.sentences) for i in todo}
    chunk_of = {s.index: c.index for c in chunks for s in c.sentences}
    done = 0

    async def one(i: int) -> tuple[int, str | None]:
        nonlocal done
        s = sentence_of[i]
        previous = structure.sentences[s.index - 1].text if s.index else None
        context = f"article {source or '<text>'} chunk {chunk_of.get(s.index, 0)} sentence {s.index}"
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
            tasks = [group.create_task(one(i)) for i in todo]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None  # callers handle BackendError, ReplayMiss, ...
    for t in tasks:
        i, label = t.result()
        proba[i] = combine(proba[i], label, labeller.labels)

    items, dropped = assemble(text, units, labeller.decide(proba), warnings)
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
            prompt_version=f"{load('classify').version}+{labeller.version}",
            labeller=labeller.version,
            chunks=len(chunks),
            llm_calls=usage.llm_calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            seconds=round(time.perf_counter() - started, 3),
            warnings=warnings,
        ),
    )


def labeller_for(settings: Settings) -> Labeller:
    """The labeller the settings name (REPORTSUM_LABELLER), else the one shipped."""
    return labeller_module.load(settings.labeller)


def _sentence_of(unit: UnitRef, sentences: list[Sentence]) -> Sentence:
    """The sentence holding a unit (a task heading stands as its own one-unit sentence)."""
    for s in sentences:
        if s.start <= unit.start and unit.end <= s.end:
            return s
    return Sentence(unit.start, unit.end, unit.text, unit.context[-1] if unit.context else None,
                    index=0, para=unit.para, context=unit.context)


def assemble(text: str, units, decisions, warnings: list[str]) -> tuple[dict[str, list[Item]], int]:
    """Items for the decided units, in document order, repeats collapsed (pure)."""
    items: dict[str, list[Item]] = {c: [] for c in CATEGORIES}
    for unit, cats in zip(units, decisions):
        for cat in cats:
            items[cat].append(_item(text, unit.start, unit.end, warnings))
    return dedupe(items)


def _item(text: str, start: int, end: int, warnings: list[str]) -> Item:
    # spans index the raw input: the contract promises evidence == text[span]
    evidence = text[start:end]
    summary = summarize_evidence(evidence)
    if not summary_is_faithful(summary, evidence):  # cannot happen by construction; guard anyway
        warnings.append(f"summary at {start}-{end} replaced by its evidence: a number did not match")
        summary = evidence
    return Item(summary=summary, evidence=evidence, span=(start, end), figures=figures(evidence))


__all__ = ["summarize", "label_request", "LabelReply", "assemble", "labeller_for"]
