"""The learned labeller: features, the shipped parameter file, retraining, decisions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service import labeller, train
from service.clean import clean
from service.features import FAMILIES, features, units_of
from service.segment import segment

REVIEW_AND_PLAN = (
    "一、2025年工作回顾\n过去一年，全省新建村卫生室120所，基层诊疗量增长8.5%。\n"
    "二、存在问题\n基层医务人员数量不足，服务能力仍然薄弱。\n"
    "三、2026年重点工作\n加快推进县医院新院区建设，力争年底前投入使用。\n"
)


def _units(text: str):
    structure = segment(text, clean(text).blocks)
    units = units_of(structure)
    return structure, units


def test_features_name_cues_sections_and_macro_structure():
    structure, units = _units(REVIEW_AND_PLAN)
    rows = features(structure, units)
    by_text = {u.text: f for u, f in zip(units, rows)}
    built = next(f for t, f in by_text.items() if "新建村卫生室" in t)
    assert built["macro.part=review"] == 1.0 and built["fig.any"] == 1.0
    short = next(f for t, f in by_text.items() if "数量不足" in t)
    assert short["macro.part=problem"] == 1.0 and short["cw.problem:不足"] == 1.0
    plan = next(f for t, f in by_text.items() if "力争" in t or "新院区" in t)
    assert plan["macro.part=plan"] == 1.0


def test_switching_a_family_off_removes_its_features():
    structure, units = _units(REVIEW_AND_PLAN)
    rows = features(structure, units, families=[f for f in FAMILIES if f != "macro"])
    assert not any(k.startswith("macro.") for row in rows for k in row)


def test_shipped_labeller_reads_document_structure():
    structure, units = _units(REVIEW_AND_PLAN)
    model = labeller.shipped()
    decisions = model.decide(model.predict_proba(features(structure, units)))
    got = {u.text: d for u, d in zip(units, decisions)}
    assert "achievements" in next(d for t, d in got.items() if "新建村卫生室" in t)
    assert "problems" in next(d for t, d in got.items() if "数量不足" in t)
    assert "plans" in next(d for t, d in got.items() if "新院区" in t)


def test_shipped_file_names_its_labels_features_and_scores():
    model = labeller.shipped()
    assert model.labels == labeller.LABELS
    assert model.version.startswith("lr-")
    assert len(model.stage1.feature_names) == model.stage1.coef.shape[1]
    cv = model.meta["cv_leave_one_document_out"]
    assert 0 < cv["micro"]["recall"] <= 1 and 0 < cv["micro"]["precision"] <= 1
    assert len(model.meta["documents"]) >= 30


def test_decide_emits_a_second_category_only_when_likely():
    model = labeller.shipped()
    k = {c: i for i, c in enumerate(model.labels)}
    p = np.zeros((3, 4))
    p[0, [k["plans"], k["problems"]]] = [0.55, 0.45]
    p[1, [k["plans"], k["problems"]]] = [0.9, 0.1]
    p[2, [k["other"], k["achievements"]]] = [0.9, 0.1]
    out = model.decide(p)
    assert set(out[0]) == {"plans", "problems"}
    assert out[1] == ("plans",)
    assert out[2] == ()


def test_a_unit_is_never_both_done_and_planned():
    """A second category only pairs with a problem (the gold's measure + the shortcoming it
    fixes); a unit torn between done and planned gets the likelier of the two."""
    model = labeller.shipped()
    k = {c: i for i, c in enumerate(model.labels)}
    p = np.zeros((2, 4))
    p[0, [k["achievements"], k["plans"]]] = [0.55, 0.45]
    p[1, [k["achievements"], k["problems"]]] = [0.55, 0.45]
    out = model.decide(p)
    assert out[0] == ("achievements",)
    assert set(out[1]) == {"achievements", "problems"}


def test_a_question_or_a_speakers_name_is_no_claim():
    text = ("发布会现场\n记者：下一步，我省将如何加快推进县域医共体建设？\n"
            "出席今天发布会的有：省卫生健康委副主任张三先生，省医保局副局长李四女士。\n"
            "下一步，我省将加快推进县域医共体建设，力争年底前覆盖所有县。\n")
    structure, units = _units(text)
    rows = features(structure, units)
    model = labeller.shipped()
    got = dict(zip((u.text for u in units), model.decide(model.predict_proba(rows))))
    vetoed = {u.text for u, f in zip(units, rows) if any(f.get(v) for v in model.vetoes)}
    assert any("如何" in t for t in vetoed) and any(t.endswith("先生") for t in vetoed)
    assert all(got[t] == () for t in vetoed)
    assert "plans" in got["下一步，我省将加快推进县域医共体建设"]  # the same words, asserted


def test_file_roundtrip_keeps_predictions(tmp_path):
    model = labeller.shipped()
    path = tmp_path / "l.json"
    path.write_text(labeller.dumps(model), encoding="utf-8")
    again = labeller.load(path)
    structure, units = _units(REVIEW_AND_PLAN)
    rows = features(structure, units)
    assert np.allclose(again.predict_proba(rows), model.predict_proba(rows), atol=1e-6)


def test_another_format_version_is_refused():
    data = labeller.shipped().to_json()
    data["format"] = 99
    with pytest.raises(ValueError, match="format"):
        labeller.Labeller.from_json(data)


def test_retraining_reproduces_the_shipped_parameters():
    """`reportsum train-labeller` is deterministic: refitting on the development set gives
    the shipped weights (up to BLAS rounding), so the file cannot drift from its corpus."""
    docs = train.load_docs()
    shipped = labeller.shipped()
    assert train.corpus_hash(docs) == shipped.meta["corpus_sha256"]
    fresh = labeller.Labeller.from_json(json.loads(labeller.dumps(train.fit(docs))))
    a, b = fresh.stage1, shipped.stage1
    assert a.feature_names == b.feature_names
    assert np.allclose(a.coef, b.coef, atol=2e-3)
    assert np.allclose(a.intercept, b.intercept, atol=2e-3)
    assert (fresh.second_threshold, fresh.min_prob) == (shipped.second_threshold, shipped.min_prob)
    assert (fresh.vetoes, set(fresh.second_pairs)) == (shipped.vetoes, set(shipped.second_pairs))


def test_a_title_naming_a_remedy_is_no_problem_section():
    from service.features import kinds

    assert kinds("(一)主要问题") == ["problem"] and "problem" in kinds("二、存在的困难和问题")
    assert "problem" not in kinds("力度:紧盯问题 深化改革")
    assert "problem" not in kinds("(五)有效防范化解重大风险")
