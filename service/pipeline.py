"""summarize(text) -> Digest: clean, segment, describe units, label, ground, merge, overview.

Two strategies (``settings.resolved_strategy``):
- ``learned``: the learned labeller (``service.labeller``, parameters in
  ``service/data/labeller.json``) decides; the model is asked only about units the labeller
  is unsure of, as far as ``settings.assist_margin_for(backend)`` says.
- ``context`` (``service.context``): the model reads every chunk in its section context,
  labels and summarizes every unit, then writes the overview (``service.overview``); what
  it fails to decide falls back to the labeller, counted in ``meta.warnings``.
The only I/O is the model calls, through the injected backend. Every item is a unit cut
from the input itself, so ``evidence == text[span]`` holds by construction; a model
summary whose figures are not in its evidence is replaced by the evidence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

from service import context
from service import labeller as labeller_module
from service import overview as overview_module
from service.backends.base import Backend, LLMRequest
from service.chunk import chunk
from service.clean import clean
from service.config import Settings
from service.errors import InputError, InvalidOutput, TruncatedOutput
from service.extract import Usage, ask, schema_of
from service.features import UnitRef, features, units_of
from service.ground import figures, summarize_evidence, summary_is_faithful
from service.labeller import Labeller
from service.merge import dedupe, doc_info
from service.models import CATEGORIES, Digest, Item, Meta
from service.prompts import load
from service.segment import Sentence, segment
from service.summaries import subject_carried

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
    units = units_of(structure)
    proba = labeller.predict_proba(features(structure, units))
    sem = limiter or asyncio.Semaphore(settings.concurrency)
    usage, warnings = Usage(), []
    doc = doc_info(text, "\n".join(b.text for b in cleaned.blocks), cleaned.title)
    strategy = settings.resolved_strategy(backend.name)

    if strategy == "context":
        wins = context.windows(structure, units, settings.chunk_tokens)
        ticker = _ticker(progress, len(wins) + 1)
        reading = await context.read_windows(backend, text, units, wins, source=source, sem=sem, progress=ticker)
        usage += reading.usage
        _raise_if_nothing_read(reading, wins)
        items, dropped = assemble_read(text, units, labeller.decide(proba), reading, warnings)
        summary_text = await overview_module.written(backend, doc, items, source, usage, warnings)
        ticker()
        n_chunks, failed = len(wins), len(reading.failed_windows)
        versions = [load("context").version, load("overview").version]
    else:
        n_chunks = len(chunk(structure.sentences, settings.chunk_tokens))
        await _assist(backend, settings, structure, units, proba, labeller, source, progress, sem, usage, warnings)
        items, dropped = assemble(text, units, labeller.decide(proba), warnings)
        summary_text, failed = overview_module.plain(doc, items), 0
        versions = [load("classify").version]
    if dropped:
        warnings.append(f"{dropped} repeated item(s) collapsed")
    return Digest(
        doc=doc,
        overview=summary_text,
        achievements=items["achievements"],
        problems=items["problems"],
        plans=items["plans"],
        excluded=cleaned.excluded,
        meta=Meta(
            backend=backend.name,
            model=backend.model,
            strategy=strategy,
            prompt_version="+".join([*versions, labeller.version]),
            labeller=labeller.version,
            chunks=n_chunks,
            failed_chunks=failed,
            llm_calls=usage.llm_calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            seconds=round(time.perf_counter() - started, 3),
            warnings=warnings,
        ),
    )


def _ticker(progress: Progress | None, total: int) -> Callable[[], None]:
    done = 0
    if progress:
        progress(0, total)

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    return tick


def _raise_if_nothing_read(reading: context.Reading, wins: list[context.Window]) -> None:
    """Every chunk failed on the transport (endpoint down, key refused): that is an error to
    report and retry, not a digest to hand out made by the fallback alone."""
    if wins and reading.errors and len(reading.failed_windows) == len(wins) and not reading.verdicts:
        raise reading.errors[0]


def assemble_read(text: str, units, decisions, reading: context.Reading,
                  warnings: list[str]) -> tuple[dict[str, list[Item]], int]:
    """Items from the model's verdicts; units it did not decide take the labeller's decision."""
    items: dict[str, list[Item]] = {c: [] for c in CATEGORIES}
    for i, (unit, fallback) in enumerate(zip(units, decisions)):
        v = reading.verdicts.get(i)
        cats, summary = (v.categories, v.summary) if v is not None else (fallback, None)
        for cat in cats:
            item = _item(text, unit.start, unit.end, warnings)
            items[cat].append(item.model_copy(update={"summary": summary}) if summary else item)
    for message in reading.failed_windows:
        warnings.append(f"chunk failed for good, its units labelled by the learned labeller: {message}")
    if reading.failed_units:
        warnings.append(f"{reading.failed_units} unit(s) not decided by the model: labelled by the learned labeller")
    if reading.misnumbered:
        warnings.append(f"{reading.misnumbered} unit(s) whose answer summarized another unit (a wrong number): "
                        "labelled by the learned labeller")
    if reading.rejected_summaries:
        warnings.append(f"{reading.rejected_summaries} summary(ies) replaced by their evidence: "
                        "a figure was not in the evidence, or too few of its words were")
    if reading.summaries_from_nowhere:
        warnings.append(f"{reading.summaries_from_nowhere} summary(ies) replaced by their evidence: "
                        "longer than it, they added words found nowhere in the unit's context")
    return dedupe(items)


async def _assist(backend, settings, structure, units, proba, labeller, source, progress, sem, usage,
                  warnings) -> None:
    """The learned strategy: the model breaks the labeller's near ties (settings.assist_margin)."""
    chunks = chunk(structure.sentences, settings.chunk_tokens)
    todo = assist_targets(proba, settings.assist_margin_for(backend.name))
    sentence_of = {i: _sentence_of(units[i], structure.sentences) for i in todo}
    chunk_of = {s.index: c.index for c in chunks for s in c.sentences}
    tick = _ticker(progress, len(todo))

    async def one(i: int) -> tuple[int, str | None]:
        s = sentence_of[i]
        previous = structure.sentences[s.index - 1].text if s.index else None
        context_ = f"article {source or '<text>'} chunk {chunk_of.get(s.index, 0)} sentence {s.index}"
        label = await _label_with_model(backend, s, previous, context_, sem, usage, warnings)
        tick()
        return i, label

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
            # a clause without its subject gets it
            items[cat].append(subject_carried(_item(text, unit.start, unit.end, warnings), unit))
    return dedupe(items)


def _item(text: str, start: int, end: int, warnings: list[str]) -> Item:
    # spans index the raw input: the contract promises evidence == text[span]
    evidence = text[start:end]
    summary = summarize_evidence(evidence)
    if not summary_is_faithful(summary, evidence):  # cannot happen by construction; guard anyway
        warnings.append(f"summary at {start}-{end} replaced by its evidence: a number did not match")
        summary = evidence
    return Item(summary=summary, evidence=evidence, span=(start, end), figures=figures(evidence))


__all__ = ["LabelReply", "assemble", "label_request", "labeller_for", "summarize"]
