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

CPU work and the event loop: ``prepare`` (clean, segment, features, labeller, windows or
assist targets) is one top-level function of picklable data. ``summarize`` runs it in the
process pool it is given (``executor=``, or ``cpu_pool(...)`` around the call: batch and
serve, see ``service.cpupool``), so a long report never stalls the model calls of other
articles or other requests; without one (the CLI's single document, tests) it runs inline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
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
from service.ground import cuts_number, figures, summarize_evidence, summary_is_faithful, visible_text
from service.labeller import Labeller
from service.merge import dedupe, doc_info, first_mentions, framed
from service.models import CATEGORIES, Digest, DocInfo, Excluded, Item, Meta
from service.prompts import load
from service.segment import Sentence, segment
from service.summaries import subject_carried, tail_completed

Progress = Callable[[int, int], None]
_LABELS = {"成绩": "achievements", "问题": "problems", "计划": "plans", "其他": "other"}

# The pool ``summarize`` prepares documents in when no ``executor`` is passed: set by batch
# and serve around their calls (the digest cache sits between them and ``summarize``).
CPU_POOL: ContextVar[Executor | None] = ContextVar("reportsum_cpu_pool", default=None)


@contextlib.contextmanager
def cpu_pool(executor: Executor | None) -> Iterator[None]:
    """Inside this block (this task and the tasks it starts) ``summarize`` prepares
    documents in ``executor``."""
    token = CPU_POOL.set(executor)
    try:
        yield
    finally:
        CPU_POOL.reset(token)


# ------------------------------------------------------------------ the CPU-bound half

# The cyclic GC is paused while any thread of this process runs a CPU-bound stage: prepare
# and assembly allocate many small objects that live on (sentences, units, items), so on a
# 200,000-character report the collector ran ~115 times, with a full pass over the heap
# every other report, ~7% of the CPU time, and freed nothing (bench/pipeline_overhead.py).
# Their garbage goes by reference counting as ever; a cycle waits for the next collection.
# The GC switch is process-wide and stages overlap in threads (a pool starting inline,
# assembly in a thread), so holders are counted: the first one in pauses it, the last one
# out restores what the first one found.
_GC_LOCK = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside this block (its objects are freed by reference
    counting as ever; the collector runs again after it, as it was)."""
    global _gc_holders, _gc_was_enabled
    with _GC_LOCK:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


# A process that carries model calls (serve, batch) allocates thousands of container objects
# per article (the SDK's request options, headers and responses, JSON, verdicts, items): with
# the default youngest generation (700 allocations) the collector ran about once every ten
# model calls, and its older generations' passes walked the heap the process started with (the
# SDK, FastAPI, pydantic, numpy: some 130,000 objects that never become garbage). Freezing what
# exists at start-up takes those out of every pass, and a youngest generation of 10,000 makes
# passes about twenty times rarer (541 -> 24 over 450 seed articles). Cycles are still
# collected, a little later. Measured on 150 seed articles digested by the context strategy
# against a loopback double: 24-35 -> 18-22 ms of CPU per article in this process.
SERVICE_GC_GEN0 = 10_000
_tuned_holders = 0
_tuned_threshold: tuple[int, int, int] | None = None


@contextlib.contextmanager
def gc_tuned_for_model_calls() -> Iterator[None]:
    """Inside this block (a ``serve`` app's life, a batch run) the objects that exist are
    frozen out of collection and the youngest generation is ``SERVICE_GC_GEN0``; both are
    restored after it (nested blocks: the first in tunes, the last out restores)."""
    global _tuned_holders, _tuned_threshold
    with _GC_LOCK:
        if _tuned_holders == 0:
            _tuned_threshold = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(SERVICE_GC_GEN0, _tuned_threshold[0]), *_tuned_threshold[1:])
        _tuned_holders += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _tuned_holders -= 1
            if _tuned_holders == 0 and _tuned_threshold is not None:
                gc.set_threshold(*_tuned_threshold)
                gc.unfreeze()


def _without_gc(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run inside ``gc_paused`` (the wrapper keeps ``fn``'s name: pool workers find
    ``prepare`` by it when it is pickled)."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with gc_paused():
            return fn(*args, **kwargs)

    return run


@dataclass(frozen=True)
class PrepareOptions:
    """What ``prepare`` reads of the settings, resolved for the backend (picklable)."""

    strategy: Literal["learned", "context"]
    chunk_tokens: int
    assist_margin: float
    max_chars: int
    labeller: Path | None = None

    @classmethod
    def of(cls, settings: Settings, backend_name: str) -> PrepareOptions:
        return cls(settings.resolved_strategy(backend_name), settings.chunk_tokens,
                   settings.assist_margin_for(backend_name), settings.max_chars, settings.labeller)


@dataclass
class AssistTarget:
    """Learned strategy: a unit the labeller is unsure of, and what its model request shows."""

    unit: int
    sentence: Sentence
    previous: str | None
    chunk: int


# Long lists are pickled in slices of this many items (see Prepared.__reduce__).
_SLICES = {"units": 500, "decisions": 4000, "windows": 16, "assist": 250}


@dataclass
class Prepared:
    """Everything ``summarize`` needs before its first model call, as plain data."""

    doc: DocInfo
    excluded: list[Excluded]
    units: list[UnitRef]
    proba: np.ndarray
    decisions: list[tuple[str, ...]]  # the labeller's categories per unit
    labeller: str  # its version
    labels: tuple[str, ...] = labeller_module.LABELS  # the columns of ``proba``
    windows: list[context.Window] = field(default_factory=list)  # context strategy
    n_chunks: int = 0  # learned strategy: chunks, for meta
    assist: list[AssistTarget] = field(default_factory=list)  # learned strategy

    def __reduce__(self) -> tuple[Any, ...]:
        # A pool worker's result is unpickled by one thread of the server or batch process in
        # one C call, which holds the GIL throughout: ~0.1 s per 200,000 characters of units
        # and windows, a stall of the event loop. Slices unpickle one short call at a time,
        # with Python in between, where the GIL goes back to the loop.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        sliced = {k: _pickled_slices(state.pop(k), n) for k, n in _SLICES.items() if len(state[k]) > n}
        return _unpickle_prepared, (state, sliced)


def _pickled_slices(items: list[Any], n: int) -> list[bytes]:
    return [pickle.dumps(items[i:i + n], pickle.HIGHEST_PROTOCOL) for i in range(0, len(items), n)]


def _unpickle_prepared(state: dict[str, Any], sliced: dict[str, list[bytes]]) -> Prepared:
    for k, pieces in sliced.items():
        state[k] = [x for piece in pieces for x in pickle.loads(piece)]
    return Prepared(**state)


@_without_gc
def prepare(text: str, options: PrepareOptions, source: str | None = None,
            labeller: Labeller | None = None) -> Prepared:
    """The CPU-bound stages (pure): clean, segment, units, features, the labeller's
    probabilities and decisions, and the strategy's windows or assist targets. Raises
    ``InputError`` for text over ``max_chars`` or with no report left after cleaning."""
    if len(text) > options.max_chars:
        raise InputError(f"input has {len(text):,} characters, over the limit of {options.max_chars:,}", source)
    cleaned = clean(text)
    if not cleaned.blocks:
        raise InputError("no report text left after removing page chrome and captions", source)
    labeller = labeller or cached_labeller(options.labeller)
    structure = segment(text, cleaned.blocks)
    units = units_of(structure)
    proba = labeller.predict_proba(features(structure, units))
    doc = doc_info(text, "\n".join(b.text for b in cleaned.blocks), cleaned.title)
    out = Prepared(doc, cleaned.excluded, units, proba, labeller.decide(proba), labeller.version, labeller.labels)
    if options.strategy == "context":
        out.windows = context.windows(structure, units, options.chunk_tokens)
    else:
        out.n_chunks, out.assist = _assist_plan(structure, units, proba, options)
    return out


def _assist_plan(structure, units, proba, options: PrepareOptions) -> tuple[int, list[AssistTarget]]:
    """The chunk count and the units the model is asked about (settings.assist_margin); no
    chunk when no unit is asked (the default): counting them reads the tokenizer's table,
    ~0.4 s, half of a one-document ``reportsum summarize``."""
    targets = assist_targets(proba, options.assist_margin)
    if not targets:  # the local backend's margin is 0: no maps to build for no request
        return 0, []
    chunks = chunk(structure.sentences, options.chunk_tokens)
    chunk_of = {s.index: c.index for c in chunks for s in c.sentences}
    holder = {(u.start, u.end): s for s in structure.sentences for u in s.units}
    out = []
    for i in targets:
        u = units[i]
        s = holder.get((u.start, u.end)) or _sentence_of(u, structure.sentences)
        previous = structure.sentences[s.index - 1].text if s.index else None
        out.append(AssistTarget(i, s, previous, chunk_of.get(s.index, 0)))
    return len(chunks), out


_LABELLERS: dict[tuple[str, int, int], Labeller] = {}
_LOADS = 0


def cached_labeller(path: Path | None) -> Labeller:
    """The labeller at ``path`` (None: the shipped one), read once per process while the
    file is unchanged: a pool worker loads it once, not once per document."""
    global _LOADS
    if path is None:
        return labeller_module.shipped()
    stat = Path(path).stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _LABELLERS:
        _LABELLERS[key] = labeller_module.load(path)
        _LOADS += 1
    return _LABELLERS[key]


def worker_status() -> dict[str, int]:
    """This process's id, how many labeller files it has read itself, and whether it got the
    shipped labeller and the tokenizer already read by the fork server (``service.preload``):
    a pool's health check."""
    preload = sys.modules.get("service.preload")
    inherited = preload is not None and preload.READ_BY not in (None, os.getpid())
    shipped_here = labeller_module.shipped.cache_info().misses and not inherited
    return {"pid": os.getpid(), "labeller_loads": _LOADS + int(bool(shipped_here)), "preloaded": int(inherited)}


async def _prepared(text: str, options: PrepareOptions, source: str | None, labeller: Labeller | None,
                    executor: Executor | None) -> Prepared:
    if executor is None or labeller is not None:  # a labeller object is not shipped to workers
        return prepare(text, options, source, labeller)
    # submit() may start a worker, which waits for the fork server's imports: not on the loop
    future = await asyncio.to_thread(executor.submit, prepare, text, options, source)
    return await asyncio.wrap_future(future)


async def _off_loop(executor: Executor | None, fn: Callable[..., Any], *args: Any) -> Any:
    """Assembly (items, summaries, dedupe) is pure Python: in a thread the GIL still lets the
    loop in every few milliseconds. Without a pool (CLI, tests) it runs inline, as it did."""
    if executor is None:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


class LabelReply(BaseModel):
    """What the model returns for one sentence."""

    label: Literal["成绩", "问题", "计划", "其他"]


@functools.cache
def _label_schema() -> dict[str, Any]:
    # pydantic builds a schema in milliseconds: once per process, not once per model call
    return schema_of(LabelReply)


def label_request(sentence: Sentence, previous: str | None, context: str) -> LLMRequest:
    prompt = load("classify")
    user = f"小标题:{sentence.heading or '无'}\n"
    if previous:
        user += f"上一句:{previous}\n"
    user += f"句子:{sentence.text}\n请输出 JSON。"
    return LLMRequest(
        messages=[{"role": "system", "content": prompt.text}, {"role": "user", "content": user}],
        json_schema=_label_schema(),
        schema_name="sentence_label",
        max_tokens=16,
        temperature=0.0,
        prompt_version=prompt.version,
        context=context,
    )


def assist_targets(proba, margin: float) -> list[int]:
    """Units the labeller is unsure of: its top two labels closer than ``margin``."""
    # one sort of the whole matrix: a Python sort per row cost ~1.5 us a unit
    proba = np.asarray(proba)
    if not len(proba):
        return []
    top = np.sort(proba, axis=1)
    return np.flatnonzero(top[:, -1] - top[:, -2] < margin).tolist()


async def _label_with_model(
    backend: Backend, sentence: Sentence, previous: str | None, context: str, sem: asyncio.Semaphore,
    usage: Usage, warnings: list[str],
) -> str | None:
    async with sem:
        # built once a slot is free: thousands of waiting units cost the loop nothing up front
        request = label_request(sentence, previous, context)
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
    executor: Executor | None = None,
) -> Digest:
    """Digest ``text``. ``executor`` (default: ``CPU_POOL``'s) runs ``prepare``, the CPU-bound
    half, off the event loop; the model calls run here, under ``limiter``."""
    started = time.perf_counter()
    executor = executor or CPU_POOL.get()
    options = PrepareOptions.of(settings, backend.name)
    prepared = await _prepared(text, options, source, labeller, executor)
    sem = limiter or asyncio.Semaphore(settings.concurrency)
    usage, warnings = Usage(), []
    units, doc, strategy = prepared.units, prepared.doc, options.strategy

    if strategy == "context":
        wins = prepared.windows
        ticker = _ticker(progress, len(wins) + 1)
        reading = await _read_windows(backend, text, units, wins, source, sem, ticker, settings.concurrency)
        usage += reading.usage
        _raise_if_nothing_read(reading, wins)
        items, dropped = await _off_loop(executor, assemble_read, text, units, prepared.decisions, reading, warnings)
        confidence = await _off_loop(executor, _item_confidence, items, prepared)
        summary_text = await overview_module.written(backend, doc, items, source, usage, warnings, confidence)
        ticker()
        n_chunks, failed = len(wins), len(reading.failed_windows)
        versions = [load("context").version, load("overview").version]
    else:
        n_chunks = prepared.n_chunks
        decisions = await _assist(backend, settings, prepared, labeller, source, progress, sem, usage, warnings)
        items, dropped = await _off_loop(executor, assemble, text, units, decisions, warnings)
        summary_text, failed = await _off_loop(executor, _plain_overview, items, prepared), 0
        versions = [load("classify").version]
    if dropped:
        warnings.append(f"{dropped} repeated item(s) collapsed")
    return Digest(
        doc=doc,
        overview=summary_text,
        achievements=items["achievements"],
        problems=items["problems"],
        plans=items["plans"],
        excluded=prepared.excluded,
        meta=Meta(
            backend=backend.name,
            model=backend.model,
            strategy=strategy,
            prompt_version="+".join([*versions, prepared.labeller]),
            labeller=prepared.labeller,
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


async def _read_windows(backend: Backend, text: str, units: list[UnitRef], wins: list[context.Window],
                        source: str | None, sem: asyncio.Semaphore, tick: Callable[[], None],
                        width: int) -> context.Reading:
    """``context.read_windows``, ``width`` windows at a time. It renders every window it is
    given before queueing on ``sem``: for a long report that is seconds of the event loop
    in one go (every other request waits); in waves only the windows about to be sent are
    rendered, between other coroutines' turns. The wave is twice ``width``: a window asked
    again (``context._ask_all``) gives its slot back between its two calls, and the next
    windows are ready to take it."""
    gate = asyncio.Semaphore(2 * max(1, width))
    parts: list[context.Reading] = []

    async def one(w: context.Window) -> None:
        async with gate:
            parts.append(await context.read_windows(backend, text, units, [w], source=source, sem=sem, progress=tick))

    try:
        async with asyncio.TaskGroup() as group:
            for w in wins:
                group.create_task(one(w))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return _merged(parts)


def _merged(parts: list[context.Reading]) -> context.Reading:
    """One Reading from the readings of single windows: maps merged, lists joined, counts and
    usage added, field by field."""
    out = context.Reading()
    for part in parts:
        for f in fields(part):
            mine, theirs = getattr(out, f.name), getattr(part, f.name)
            if isinstance(mine, dict):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                mine += theirs  # an int, or Usage (+= adds in place)
                setattr(out, f.name, mine)
    return out


def _raise_if_nothing_read(reading: context.Reading, wins: list[context.Window]) -> None:
    """Every chunk failed on the transport (endpoint down, key refused): that is an error to
    report and retry, not a digest to hand out made by the fallback alone."""
    if wins and reading.errors and len(reading.failed_windows) == len(wins) and not reading.verdicts:
        raise reading.errors[0]


@_without_gc
def assemble_read(text: str, units, decisions, reading: context.Reading,
                  warnings: list[str]) -> tuple[dict[str, list[Item]], int]:
    """Items from the model's verdicts; units it did not decide take the labeller's decision."""
    items: dict[str, list[Item]] = {c: [] for c in CATEGORIES}
    chosen = [v.categories if (v := reading.verdicts.get(i)) is not None else fallback
              for i, fallback in enumerate(decisions)]
    for first, i, cats in framed(units, chosen):  # a time frame joins the clause it frames
        v = reading.verdicts.get(i)
        summary = v.summary if v is not None else None  # checked against the clause: its figures are in the span
        for cat in cats:
            item = _item(text, units[first].start, units[i].end, warnings)
            if item is not None:
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


async def _assist(backend, settings, prepared: Prepared, labeller, source, progress, sem, usage,
                  warnings) -> list[tuple[str, ...]]:
    """The learned strategy: the model breaks the labeller's near ties (settings.assist_margin);
    returns the decisions with the model's labels combined in."""
    tick = _ticker(progress, len(prepared.assist))

    async def one(t: AssistTarget) -> tuple[int, str | None]:
        context_ = f"article {source or '<text>'} chunk {t.chunk} sentence {t.sentence.index}"
        label = await _label_with_model(backend, t.sentence, t.previous, context_, sem, usage, warnings)
        tick()
        return t.unit, label

    # A TaskGroup cancels the remaining calls as soon as one fails for good, so an article
    # that cannot finish stops holding model slots (gather would let them all run on).
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(t)) for t in prepared.assist]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None  # callers handle BackendError, ReplayMiss, ...
    decisions = list(prepared.decisions)
    answered = [t.result() for t in tasks if t.result()[1] is not None]
    if answered:
        labeller = labeller or labeller_for(settings)
    for i, label in answered:  # the labeller decides row by row: redo just the rows the model answered
        decisions[i] = labeller.decide(combine(prepared.proba[i], label, labeller.labels)[None, :])[0]
    return decisions


def labeller_for(settings: Settings) -> Labeller:
    """The labeller the settings name (REPORTSUM_LABELLER), else the one shipped."""
    return cached_labeller(settings.labeller)


def _sentence_of(unit: UnitRef, sentences: list[Sentence]) -> Sentence:
    """The sentence holding a unit (a task heading stands as its own one-unit sentence)."""
    for s in sentences:
        if s.start <= unit.start and unit.end <= s.end:
            return s
    return Sentence(unit.start, unit.end, unit.text, unit.context[-1] if unit.context else None,
                    index=0, para=unit.para, context=unit.context)


@_without_gc
def assemble(text: str, units, decisions, warnings: list[str]) -> tuple[dict[str, list[Item]], int]:
    """Items for the decided units, in document order, repeats collapsed (pure)."""
    # Which items are repeats depends on their spans and evidence alone (merge.first_mentions):
    # an item, its figures and its carried subject are built only for the ones kept (a long
    # report repeats many of its lines). Every unit is still checked here, in order, so the
    # warnings are the ones _item gives, in its order.
    found: dict[str, list[tuple]] = {c: [] for c in CATEGORIES}  # (span, evidence, (unit, shown, summary))
    tidied: dict[str, tuple[str, str, bool]] = {}  # a repeated line is tidied once
    for first, last, cats in framed(units, decisions):  # a time frame joins the clause it frames
        unit, start = units[last], units[first].start
        for cat in cats:
            if (checked := _summary(text, start, unit.end, warnings, tidied)) is not None:
                found[cat].append(((start, unit.end), text[start:unit.end], (unit, start, *checked)))
    kept, dropped = first_mentions(found)
    items = {c: [_with_subject(_built(text, start, u.end, shown, summary), u)
                 for u, start, shown, summary in kept[c]] for c in CATEGORIES}
    return items, dropped


def _with_subject(item: Item, unit: UnitRef) -> Item:
    """A clause gets the subject its sentence names (an item led by a time frame is read with
    it and needs none), and the end of its clause beyond a caption cut into it."""
    item = tail_completed(item, unit)
    return subject_carried(item, unit) if item.span[0] == unit.start else item


def _plain_overview(items: dict[str, list[Item]], prepared: Prepared) -> str:
    """The deterministic overview of the learned strategy: its most confident items."""
    return overview_module.plain(prepared.doc, items, _item_confidence(items, prepared))


def _item_confidence(items: dict[str, list[Item]], prepared: Prepared) -> dict[str, list[float]]:
    return item_confidence(items, prepared.units, prepared.proba, prepared.labels)


def item_confidence(items: dict[str, list[Item]], units: list[UnitRef], proba: np.ndarray,
                    labels: tuple[str, ...]) -> dict[str, list[float]]:
    """The labeller's probability of each item's category: its unit's row of ``proba`` (an
    item's span ends where its unit does; 0 for one that ends where no unit does)."""
    row = {u.end: i for i, u in enumerate(units)}  # by its end: a time frame may lead the span
    out: dict[str, list[float]] = {}
    for cat in CATEGORIES:
        col = labels.index(cat)
        out[cat] = [float(proba[row[it.span[1]], col]) if it.span[1] in row else 0.0 for it in items[cat]]
    return out


def _item(text: str, start: int, end: int, warnings: list[str]) -> Item | None:
    """The item for one unit, or None when its span cuts a number (said in ``warnings``)."""
    checked = _summary(text, start, end, warnings)
    return None if checked is None else _built(text, start, end, *checked)


def _summary(text: str, start: int, end: int, warnings: list[str],
             tidied: dict[str, tuple[str, str, bool]] | None = None) -> tuple[str, str] | None:
    """The visible text and the summary of one unit's item, or None when its span cuts a
    number (said in ``warnings``, as is a summary replaced by its evidence). ``tidied``
    keeps ``_tidied``'s answers by evidence (what cuts a number depends on the text around)."""
    if why := cuts_number(text, start, end):
        # a figure is the whole number as printed around the span: a unit that begins after
        # "85." would report "2%"; no such item is ever handed out, whatever cut it
        warnings.append(f"item at {start}-{end} refused: it {why}")
        return None
    # spans index the raw input: the contract promises evidence == text[span]
    evidence = text[start:end]
    if tidied is None:
        shown, summary, faithful = _tidied(evidence)
    elif (known := tidied.get(evidence)) is not None:
        shown, summary, faithful = known
    else:
        shown, summary, faithful = tidied[evidence] = _tidied(evidence)
    if not faithful:  # squashed whitespace can join digits: "1 2" -> "12"
        warnings.append(f"summary at {start}-{end} replaced by its evidence: a number did not match")
        summary = shown
    return shown, summary


def _tidied(evidence: str) -> tuple[str, str, bool]:
    """The visible text of ``evidence`` (inline markup inside the sentence is not read), its
    summary, and whether the summary is faithful to it (it cannot be otherwise by
    construction, but for whitespace inside a number; guard anyway)."""
    shown = visible_text(evidence)
    summary = summarize_evidence(shown)
    return shown, summary, summary_is_faithful(summary, shown)


def _built(text: str, start: int, end: int, shown: str, summary: str) -> Item:
    return Item(summary=summary, evidence=text[start:end], span=(start, end), figures=figures(shown, ranges=True))


__all__ = ["CPU_POOL", "LabelReply", "Prepared", "PrepareOptions", "assemble", "cpu_pool", "item_confidence", "label_request",
           "labeller_for", "prepare", "summarize"]
