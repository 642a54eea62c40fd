"""The ``context`` strategy: a capable model reads the report chunk by chunk, in its
section context, and labels and summarizes every claim unit.

One call per chunk (``Window``): the section titles, the chunk's sentences with each claim
unit numbered inline (``〔3〕``), and a reply (``ChunkReply``) giving, for every number,
its categories and a one-sentence summary. The units are the ones the learned labeller
decides, so evidence stays a slice of the input whatever the model says, and nothing is
silently lost: a unit the model does not return (after one repair round) or a chunk whose
call fails for good is decided by the labeller, and a warning counts it.

Pure parts (windows, rendering, reply parsing, summary checks) are apart from the one
async function that talks to the backend (``read_windows``).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from service.backends.base import Backend, LLMRequest
from service.chunk import count_tokens
from service.errors import BackendError, InvalidOutput, TruncatedOutput
from service.extract import Usage, ask, schema_of
from service.features import UnitRef
from service.ground import shared_words, summarize_evidence, summary_is_faithful
from service.prompts import load
from service.segment import Sentence, Structure
from service.summaries import (MIN_EVIDENCE_KEPT, UnitContext, addition_problem, evidence_kept, stray_numbers,
                               unit_context)

Label = Literal["成绩", "问题", "计划", "其他"]
CATEGORY_OF = {"成绩": "achievements", "问题": "problems", "计划": "plans"}
MARK = "〔{}〕"
# Reply budget per unit: ~15 tokens of JSON plus a summary shorter than its evidence.
TOKENS_PER_UNIT = 90
# A summary must reuse at least half of its words from its evidence (real summaries of the
# embedded model that restate their unit share 0.5-1.0; those of a neighbouring unit 0-0.45),
# and one that shares 80% with another unit of the window was put under the wrong number.
MIN_SHARED_WORDS = 0.5
MISNUMBERED_SHARED_WORDS = 0.8
MAX_UNITS = 40  # units numbered in one call: keeps a reply well under any max_tokens cap
REPAIR_MISSING = (
    "这些编号没有返回或结果无效:{numbers}。请只为这些编号补充结果,格式与要求同前,只输出 JSON。"
)


class UnitVerdict(BaseModel):
    """The model's reading of one numbered unit."""

    n: int = Field(description="the unit's number as marked in the text")
    labels: list[Label] = Field(min_length=1, max_length=2,
                                description="成绩/问题/计划/其他; two when a problem is named as the reason for a measure")
    summary: str = Field("", description="one short Chinese sentence; empty for 其他")


class ChunkReply(BaseModel):
    """The schema the model is asked to follow."""

    units: list[UnitVerdict]


class _LooseReply(BaseModel):
    """What is parsed: entries are validated one by one, so one bad label costs one unit."""

    units: list[Any]


@dataclass
class Window:
    """One call's worth of the report: passages (sentences, task headings) and the units
    numbered in it (indices into the article's unit list)."""

    index: int
    passages: list[Sentence] = field(default_factory=list)
    units: list[int] = field(default_factory=list)
    tokens: int = 0


@dataclass
class Verdict:
    categories: tuple[str, ...]  # achievements/problems/plans; empty: other
    summary: str


# ---------------------------------------------------------------- windows (pure)


def passages_of(structure: Structure) -> list[Sentence]:
    """Sentences and enumerated task headings, in document order: everything holding units."""
    return sorted([*structure.sentences, *structure.tasks], key=lambda s: (s.start, s.end))


def windows(structure: Structure, units: Sequence[UnitRef], budget: int, max_units: int = MAX_UNITS) -> list[Window]:
    """Greedy packing of whole passages in document order under a tiktoken ``budget`` and a
    unit cap. Sections do not start a new window: the rendering names each section where it
    begins, so a short section costs no call of its own."""
    index = {(u.start, u.end): i for i, u in enumerate(units)}
    out: list[Window] = []
    for p in passages_of(structure):
        ids = [index[(u.start, u.end)] for u in p.units if (u.start, u.end) in index]
        if not ids:
            continue
        n = count_tokens(p.text)
        cur = out[-1] if out else None
        if cur is None or (cur.units and (cur.tokens + n > budget or len(cur.units) + len(ids) > max_units)):
            cur = Window(index=len(out))
            out.append(cur)
        cur.passages.append(p)
        cur.units += ids
        cur.tokens += n
    return out


def split(window: Window, units: Sequence[UnitRef]) -> list[Window]:
    """Two halves of a window (by unit), for a reply that did not fit; [] if it cannot split."""
    if len(window.units) < 2:
        return []
    half = len(window.units) // 2
    out = []
    for ids in (window.units[:half], window.units[half:]):
        spans = [(units[i].start, units[i].end) for i in ids]
        passages = [p for p in window.passages if any(p.start <= s and e <= p.end for s, e in spans)]
        out.append(Window(index=window.index, passages=passages, units=ids,
                          tokens=sum(count_tokens(p.text) for p in passages)))
    return out


def render(window: Window, units: Sequence[UnitRef], text: str) -> tuple[str, dict[int, int]]:
    """The chunk as the model reads it, and number -> unit index.

    Each passage is its raw text with ``〔n〕`` before every unit asked about; a section's
    titles are printed where the section begins, a paragraph break where one falls.
    """
    numbers: dict[int, int] = {}
    by_start = {units[i].start: i for i in window.units}
    lines: list[str] = []
    path: tuple[str, ...] | None = None
    para = None
    line = ""
    for p in window.passages:
        if p.context != path:
            if line:
                lines.append(line)
                line = ""
            lines.append("【章节】" + (" > ".join(_oneline(c) for c in p.context) if p.context else "(无小标题)"))
            path, para = p.context, None
        if para is not None and p.para != para and line:
            lines.append(line)
            line = ""
        para = p.para
        line += _marked(p, by_start, numbers, units, text)
    if line:
        lines.append(line)
    return "\n".join(lines), numbers


def _marked(p: Sentence, by_start: dict[int, int], numbers: dict[int, int], units: Sequence[UnitRef], text: str) -> str:
    out, at = [], p.start
    for u in p.units:
        i = by_start.get(u.start)
        if i is None or units[i].end != u.end:
            continue
        out.append(_oneline(text[at:u.start]))
        numbers[len(numbers) + 1] = i
        out.append(MARK.format(len(numbers)) + _oneline(text[u.start:u.end]))
        at = u.end
    out.append(_oneline(text[at:p.end]))
    return "".join(out)


def _oneline(s: str) -> str:
    return " ".join(s.split())


# ---------------------------------------------------------------- requests and replies (pure)


def chunk_request(body: str, count: int, context: str) -> LLMRequest:
    prompt = load("context")
    user = (f"{body}\n\n共 {count} 个编号单元(〔1〕到〔{count}〕)。"
            f"请为每个编号给出 labels 和 summary,只输出 JSON。")
    return LLMRequest(
        messages=[{"role": "system", "content": prompt.text}, {"role": "user", "content": user}],
        json_schema=schema_of(ChunkReply),
        schema_name="chunk_labels",
        max_tokens=64 + TOKENS_PER_UNIT * count,
        temperature=0.0,
        prompt_version=prompt.version,
        context=context,
    )


def missing_request(request: LLMRequest, reply: str, missing: Sequence[int]) -> LLMRequest:
    """The repair round for units that did not come back (or came back invalid)."""
    messages = [*request.messages, {"role": "assistant", "content": reply},
                {"role": "user", "content": REPAIR_MISSING.format(numbers="、".join(map(str, missing)))}]
    return request.model_copy(update={
        "messages": messages,
        "max_tokens": 64 + TOKENS_PER_UNIT * len(missing),
        "context": f"{request.context} (missing units)",
    })


def verdicts_of(reply: _LooseReply, numbers: dict[int, int]) -> dict[int, UnitVerdict]:
    """Valid verdicts by unit index; unknown numbers, bad labels and duplicates are dropped."""
    out: dict[int, UnitVerdict] = {}
    for entry in reply.units:
        try:
            v = UnitVerdict.model_validate(entry)
        except ValidationError:
            continue
        i = numbers.get(v.n)
        if i is not None and i not in out:
            out[i] = v
    return out


class Replaced(IntEnum):
    """Whether a model summary was replaced by its evidence, and why (0 and 1 read as the
    False and True of old: kept or silently tidied, rejected)."""

    NO = 0
    REJECTED = 1  # a figure not in the evidence, or too few of its words
    FROM_NOWHERE = 2  # longer than its evidence, adding what the unit's context does not hold


def summary_for(model_summary: str, evidence: str,
                context: UnitContext | Callable[[], UnitContext] | None = None) -> tuple[str, Replaced]:
    """The model's summary if it is usable, else the tidied evidence, and why it was replaced.

    A summary shorter than the quote is rejected for a figure that is not in its evidence or
    for too few of its words (a summary of some other claim). One as long as the quote or
    longer is worth it only for what it adds from the unit's own context (a subject the
    clause leaves to its sentence: "进出口总值达到5379亿元"); what adds nothing is the quote
    tidied, what adds words from nowhere (``summaries.addition_problem``) is replaced.
    ``context`` may be a function that builds it: it is called only for such a summary."""
    tidy = summarize_evidence(evidence)
    s = _oneline(model_summary).strip()
    if not s:
        return tidy, Replaced.NO
    if not summary_is_faithful(s, evidence):
        return tidy, Replaced.REJECTED
    if len(s) < len(tidy):
        return (s, Replaced.NO) if shared_words(s, evidence) >= MIN_SHARED_WORDS else (tidy, Replaced.REJECTED)
    if shared_words(s, evidence) == 1.0:  # a "summary" as long as the quote that adds nothing
        return tidy, Replaced.NO
    if stray_numbers(s, evidence) or evidence_kept(s, evidence) < MIN_EVIDENCE_KEPT:
        return tidy, Replaced.REJECTED
    if callable(context):
        context = context()
    if addition_problem(s, evidence, context or UnitContext()) is not None:
        return tidy, Replaced.FROM_NOWHERE
    return s, Replaced.NO


def verdict(v: UnitVerdict, evidence: str,
            context: UnitContext | Callable[[], UnitContext] | None = None) -> tuple[Verdict, Replaced]:
    cats = tuple(dict.fromkeys(CATEGORY_OF[label] for label in v.labels if label in CATEGORY_OF))
    if not cats:
        return Verdict((), ""), Replaced.NO
    summary, replaced = summary_for(v.summary, evidence, context)
    return Verdict(cats, summary), replaced


# ---------------------------------------------------------------- the calls


@dataclass
class Reading:
    """What the model said about an article's units, and what it cost."""

    verdicts: dict[int, Verdict] = field(default_factory=dict)
    failed_units: int = 0  # units the model did not decide (labeller decides them)
    failed_windows: list[str] = field(default_factory=list)
    rejected_summaries: int = 0
    summaries_from_nowhere: int = 0  # longer than their evidence, adding words from outside its context
    misnumbered: int = 0  # verdicts that summarized another unit (the labeller decides those units)
    usage: Usage = field(default_factory=Usage)
    errors: list[BaseException] = field(default_factory=list)


async def read_windows(
    backend: Backend,
    text: str,
    units: Sequence[UnitRef],
    wins: Sequence[Window],
    *,
    source: str | None,
    sem: asyncio.Semaphore,
    progress: Callable[[], None] | None = None,
) -> Reading:
    """Ask the model about every window (concurrently, under ``sem``)."""
    reading = Reading()

    async def one(w: Window) -> None:
        await _read(backend, text, units, w, source, sem, reading)
        if progress:
            progress()

    try:
        async with asyncio.TaskGroup() as group:
            for w in wins:
                group.create_task(one(w))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None  # ReplayMiss and bugs: not a model failure
    return reading


async def _read(backend: Backend, text: str, units: Sequence[UnitRef], w: Window, source: str | None,
                sem: asyncio.Semaphore, reading: Reading) -> None:
    body, numbers = render(w, units, text)
    where = f"article {source or '<text>'} chunk {w.index} units {units[w.units[0]].start}-{units[w.units[-1]].end}"
    request = chunk_request(body, len(numbers), where)
    try:
        got = await _ask_all(backend, request, numbers, reading, sem)
    except TruncatedOutput as err:
        reading.usage += getattr(err, "usage", Usage())
        halves = split(w, units)
        if not halves:
            return _fail(reading, w, f"{where}: {err}")
        for half in halves:  # smaller replies; each half may split again
            await _read(backend, text, units, half, source, sem, reading)
        return
    except BackendError as err:
        reading.usage += getattr(err, "usage", Usage())
        reading.errors.append(err)
        return _fail(reading, w, f"{where}: {err}")
    evidence = {i: text[units[i].start:units[i].end] for i in numbers.values()}
    reading.failed_units += len(w.units) - len(got)
    for i in misnumbered(got, evidence):
        del got[i]  # its label is about another unit too: the labeller decides it
        reading.misnumbered += 1
    for i, v in got.items():
        # the unit's context is built only for a summary longer than its evidence
        reading.verdicts[i], replaced = verdict(v, evidence[i], functools.partial(unit_context, units, i))
        reading.rejected_summaries += replaced == Replaced.REJECTED
        reading.summaries_from_nowhere += replaced == Replaced.FROM_NOWHERE


def misnumbered(got: dict[int, UnitVerdict], evidence: dict[int, str]) -> list[int]:
    """Units whose verdict carries a summary of another unit in the same window: the model
    put the answer under the wrong number (a small model drifts by one or two in a long
    list), so the label it gave is no more about this unit than the summary is."""
    out = []
    for i, v in got.items():
        if not v.summary.strip() or shared_words(v.summary, evidence[i]) >= MIN_SHARED_WORDS:
            continue
        if any(shared_words(v.summary, e) >= MISNUMBERED_SHARED_WORDS for j, e in evidence.items() if j != i):
            out.append(i)
    return out


async def _ask_all(backend: Backend, request: LLMRequest, numbers: dict[int, int],
                   reading: Reading, sem: asyncio.Semaphore) -> dict[int, UnitVerdict]:
    """One call, then one repair round for the numbers that did not come back valid. Each
    call takes its own slot of ``sem``: a window waiting to be asked again queues behind
    the windows not yet asked instead of holding a slot between its two calls, so the
    article's calls pack into ceil(calls / slots) rounds (6 windows asked twice over 4
    slots: 3 rounds, not 4)."""
    async with sem:
        reply, used = await ask(backend, request, _LooseReply)
    reading.usage += used
    got = verdicts_of(reply, numbers)
    missing = [n for n, i in numbers.items() if i not in got]
    if not missing:
        return got
    sent = json.dumps(reply.model_dump(), ensure_ascii=False)
    try:
        async with sem:
            again, used = await ask(backend, missing_request(request, sent, missing), _LooseReply)
    except (InvalidOutput, TruncatedOutput) as err:
        reading.usage += getattr(err, "usage", Usage())
        return got
    reading.usage += used
    wanted = {n: numbers[n] for n in missing}
    got.update(verdicts_of(again, wanted))
    return got


def _fail(reading: Reading, w: Window, message: str) -> None:
    reading.failed_units += len(w.units)
    reading.failed_windows.append(message)


__all__ = [
    "ChunkReply",
    "Reading",
    "Replaced",
    "UnitVerdict",
    "Verdict",
    "Window",
    "chunk_request",
    "misnumbered",
    "missing_request",
    "passages_of",
    "read_windows",
    "render",
    "split",
    "summary_for",
    "verdicts_of",
    "windows",
]
