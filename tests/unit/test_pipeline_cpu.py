"""service.pipeline's CPU-bound half: the collector paused and restored around it, assembly
that builds only the items it keeps, and the assist targets read off the whole matrix, each
giving what the plain version gave."""

from __future__ import annotations

import gc
import pickle
import re
import threading

import numpy as np
import pytest

from service import pipeline
from service.clean import clean
from service.errors import InputError
from service.features import UnitRef, units_of
from service.merge import dedupe, framed
from service.models import CATEGORIES
from service.segment import segment
from service.summaries import subject_carried, tail_completed
from tests.conftest import SEEDS

OPTIONS = pipeline.PrepareOptions("learned", 1200, 0.0, 1_000_000)


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_gc_paused_restores_the_collector_even_on_an_error(collector_on):
    with pytest.raises(RuntimeError):
        with pipeline.gc_paused():
            assert not gc.isenabled()
            with pipeline.gc_paused():  # nested: the outer block still holds it
                pass
            assert not gc.isenabled()
            raise RuntimeError("stage failed")
    assert gc.isenabled()


def test_gc_paused_leaves_a_disabled_collector_disabled(collector_on):
    gc.disable()
    with pipeline.gc_paused():
        pass
    assert not gc.isenabled()


def test_gc_tuned_for_model_calls_freezes_the_heap_and_restores_the_collector_after_it():
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with pipeline.gc_tuned_for_model_calls():
            assert gc.get_freeze_count() > frozen + 10_000  # what was imported is out of every pass
            assert gc.get_threshold() == (pipeline.SERVICE_GC_GEN0, *before[1:])
            with pipeline.gc_tuned_for_model_calls():  # nested: the outer block still holds it
                pass
            assert gc.get_threshold()[0] == pipeline.SERVICE_GC_GEN0 and gc.get_freeze_count() > frozen
            raise RuntimeError("batch failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen


def test_serve_and_batch_run_with_the_collector_tuned(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    import service.batch as batch_module
    from service.api import create_app
    from service.config import Settings

    before = gc.get_threshold()
    settings = Settings(backend="replay", db=tmp_path / "jobs.sqlite3", no_cache=True, quiet=True)
    with TestClient(create_app(settings, cpu_workers=0)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_threshold()[0] == pipeline.SERVICE_GC_GEN0
    assert gc.get_threshold() == before

    seen = []
    real_run = batch_module._Batch.run

    async def run(self):  # the batch's event loop, as it starts
        seen.append(gc.get_threshold()[0])
        return await real_run(self)

    monkeypatch.setattr(batch_module._Batch, "run", run)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("", encoding="utf-8")  # fails fast: no model call needed
    batch_module.run_batch(tmp_path / "in", tmp_path / "out", settings, formats={"json"}, shard=None,
                           show_progress=False)
    assert seen == [pipeline.SERVICE_GC_GEN0] and gc.get_threshold() == before


def test_overlapping_threads_restore_the_collector_when_the_last_one_leaves(collector_on):
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with pipeline.gc_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with pipeline.gc_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first left"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_prepare_and_assemble_leave_the_collector_as_found(collector_on):
    raw = SEEDS[0].read_text(encoding="utf-8")
    prepared = pipeline.prepare(raw, OPTIONS)
    assert gc.isenabled()
    pipeline.assemble(raw, prepared.units, prepared.decisions, [])
    assert gc.isenabled()
    with pytest.raises(InputError):
        pipeline.prepare("x" * 20, pipeline.PrepareOptions("learned", 1200, 0.0, 10))
    assert gc.isenabled()


def test_prepare_still_pickles_by_name_for_pool_workers():
    assert pickle.loads(pickle.dumps(pipeline.prepare)) is pipeline.prepare
    assert pipeline.prepare.__name__ == "prepare"


def _assemble_every_item(text, units, decisions, warnings):
    """Assembly as it was: every item built, read to its clause's end and its subject carried,
    then repeats dropped."""
    items = {c: [] for c in CATEGORIES}
    for first, last, cats in framed(units, decisions):
        for cat in cats:
            if (item := pipeline._item(text, units[first].start, units[last].end, warnings)) is not None:
                item = tail_completed(item, units[last])
                items[cat].append(subject_carried(item, units[last]) if first == last else item)
    return dedupe(items)


def _same_assembly(text, units, decisions):
    new_warnings, old_warnings = [], []
    new = pipeline.assemble(text, units, decisions, new_warnings)
    assert new == _assemble_every_item(text, units, decisions, old_warnings)
    assert new_warnings == old_warnings
    return new, new_warnings


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_assembly_keeps_what_building_every_item_kept(path):
    # the report text twice, the second copy with its numbers changed (a paragraph repeated
    # as is would be cleaned away; a byline would end the report): its sentences without a
    # number are repeats
    body = "\n\n".join(b.text for b in clean(path.read_text(encoding="utf-8")).blocks)
    doubled = body + "\n\n" + re.sub(r"\d+", lambda m: str(int(m.group()) + 1), body)
    prepared = pipeline.prepare(doubled, OPTIONS)
    (items, dropped), _ = _same_assembly(doubled, prepared.units, prepared.decisions)
    assert dropped > 0 and any(items.values())


def _unit(text: str, piece: str, after: int = 0) -> UnitRef:
    start = text.index(piece, after)
    return UnitRef(start, start + len(piece), piece, text, 0, (), False, 0)


def test_assembly_warns_as_building_every_item_warned():
    # whitespace inside a number (summary replaced), a span that cuts "85.2%" (refused), a
    # repeat of each (their warnings repeat too), and one unit in two categories
    text = "全县共 1 2 家医院。床位增长85.2%。全县共 1 2 家医院。床位增长85.2%。补齐基层短板。"
    units = [_unit(text, "全县共 1 2 家医院"), _unit(text, "2%。"), _unit(text, "全县共 1 2 家医院", 10),
             _unit(text, "2%。", 25), _unit(text, "补齐基层短板")]
    decisions = [("achievements",), ("achievements",), ("achievements",), ("plans",), ("problems", "plans")]
    (items, dropped), warnings = _same_assembly(text, units, decisions)
    assert dropped == 1 and len(items["problems"]) == len(items["plans"]) == 1
    assert sum("replaced by its evidence" in w for w in warnings) == 2
    assert sum("refused" in w for w in warnings) == 2


def _targets_row_by_row(proba, margin):
    out = []
    for i, p in enumerate(proba):
        top = sorted(p, reverse=True)
        if top[0] - top[1] < margin:
            out.append(i)
    return out


@pytest.mark.parametrize("margin", [0.0, 0.05, 0.2, 0.3, 1.0, 2.0])
def test_assist_targets_are_the_ones_read_row_by_row(margin):
    rng = np.random.default_rng(7)
    proba = rng.dirichlet(np.ones(4), size=500)
    proba[:20] = [0.4, 0.4, 0.1, 0.1]  # ties
    proba[20:40] = [0.25, 0.25, 0.25, 0.25]
    for matrix in (proba, proba.astype(np.float32)):
        assert pipeline.assist_targets(matrix, margin) == _targets_row_by_row(matrix, margin)
    assert pipeline.assist_targets(np.zeros((0, 4)), margin) == []


def test_the_assist_plan_of_a_seed_is_unchanged_with_targets():
    raw = SEEDS[-1].read_text(encoding="utf-8")
    structure = segment(raw, clean(raw).blocks)
    units = units_of(structure)
    proba = pipeline.cached_labeller(None).predict_proba(pipeline.features(structure, units))
    options = pipeline.PrepareOptions("learned", 300, 0.3, 1_000_000)
    n_chunks, targets = pipeline._assist_plan(structure, units, proba, options)
    assert n_chunks > 1 and targets
    assert [t.unit for t in targets] == _targets_row_by_row(proba, 0.3)



def test_the_default_digest_counts_no_chunk(monkeypatch):
    """No unit asked (margin 0, the local default): no chunk is packed, so the tokenizer's
    table (~0.4 s) is never read by a one-document ``reportsum summarize``."""
    raw = SEEDS[-1].read_text(encoding="utf-8")
    structure = segment(raw, clean(raw).blocks)
    units = units_of(structure)
    proba = pipeline.cached_labeller(None).predict_proba(pipeline.features(structure, units))

    def packed(*args, **kwargs):
        raise AssertionError("chunks packed for no model call")

    monkeypatch.setattr(pipeline, "chunk", packed)
    assert pipeline._assist_plan(structure, units, proba, pipeline.PrepareOptions("learned", 300, 0.0, 1)) == (0, [])
