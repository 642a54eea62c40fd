"""The learned labeller: features, the shipped parameter file, retraining, decisions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from service import labeller, train
from service.clean import clean
from service.features import DENSE_NAMES, features, gram_key, gram_text, grams, kinds, units_of
from service.segment import segment

REVIEW_AND_PLAN = (
    "一、2025年工作回顾\n过去一年，全省新建村卫生室120所，基层诊疗量增长8.5%。\n"
    "二、存在问题\n基层医务人员数量不足，服务能力仍然薄弱。\n"
    "三、2026年重点工作\n加快推进县医院新院区建设，力争年底前投入使用。\n"
)


def _units(text: str):
    structure = segment(text, clean(text).blocks)
    return structure, units_of(structure)


def _naive_grams(strings: list[str], n_max: int) -> Counter:
    """The same n-grams counted the slow, obvious way (whitespace out, a number is "0")."""
    out: Counter = Counter()
    for row, s in enumerate(strings):
        s = re.sub(r"[0-9０-９]+(\.[0-9]+)?", "0", re.sub(r"[\s\u3000\xa0]+", "", s))
        for n in range(1, n_max + 1):
            out.update((row, s[i:i + n]) for i in range(len(s) - n + 1))
    return out


def test_vectorised_ngrams_count_what_a_loop_counts():
    strings = ["全省新建村卫生室120所，增长8.5%。", "  力争 年底前\u3000投入使用", "", "问题", "ab 12 cd３４"]
    g = grams(strings, 3)
    got = Counter(zip(g.rows.tolist(), (gram_text(int(k)) for k in g.keys)))
    assert got == _naive_grams(strings, 3)
    assert gram_key(gram_text(int(g.keys[-1]))) == int(g.keys[-1])


def test_features_read_the_part_of_the_report_from_section_titles():
    structure, units = _units(REVIEW_AND_PLAN)
    f = features(structure, units)
    assert f.n_units == len(units) and f.dense.shape == (len(units), len(DENSE_NAMES))
    col = {n: j for j, n in enumerate(DENSE_NAMES)}
    part = {u.text: [n for n in ("part.top=review", "part.top=problem", "part.top=plan") if f.dense[i, col[n]]]
            for i, u in enumerate(units)}
    assert part[next(t for t in part if "新建村卫生室" in t)] == ["part.top=review"]
    assert part[next(t for t in part if "数量不足" in t)] == ["part.top=problem"]
    assert part[next(t for t in part if "新院区" in t)] == ["part.top=plan"]
    # the task part of a national report (silver s17, s18) is a plan section
    assert kinds("三、2024年政府工作任务") == ["plan"] and kinds("一、2023年工作回顾") == ["review"]
    assert "problem" not in kinds("(五)有效防范化解重大风险")


def test_shipped_labeller_reads_document_structure():
    structure, units = _units(REVIEW_AND_PLAN)
    model = labeller.shipped()
    got = dict(zip((u.text for u in units), model.decide(model.predict_proba(features(structure, units)))))
    assert "achievements" in next(d for t, d in got.items() if "新建村卫生室" in t)
    assert "problems" in next(d for t, d in got.items() if "数量不足" in t)
    assert "plans" in next(d for t, d in got.items() if "新院区" in t)


def test_shipped_file_names_its_labels_features_and_selection_scores():
    model = labeller.shipped()
    assert model.labels == labeller.LABELS and model.version.startswith("lr-")
    assert model.coef.shape == (len(model.labels), model.vectorizer.n_features)
    assert len(model.vectorizer.feature_names()) == model.vectorizer.n_features
    # the grouped validation's figures (bench/labeller_cv.py --write: nested; train-labeller
    # --no-cv: the selection's), the plain baseline's beside the labeller's
    cv, table = model.meta.get("cv_leave_one_group_out"), model.meta.get("selection")
    assert cv or table
    if cv:
        for who in ("labeller", "baseline"):
            assert 0 < cv[who]["micro"]["recall"] <= 1 and 0 < cv[who]["micro"]["precision"] <= 1
            assert "seeds" in cv[who]["groups"] and "silver" not in cv[who]["groups"]
    if table:
        assert "baseline" in table and model.meta["config"] in [row["config"] for row in table.values()]
    assert set(model.meta["config"]) == {"dense", "silver_weight", "C", "other_bias", "second_threshold"}
    assert len(model.meta["documents"]) >= 60 and model.meta["silver_documents"] == 28


def test_predicting_needs_numpy_and_scipy_only():
    code = ("import sys; from service import labeller; from service.clean import clean; "
            "from service.segment import segment; from service.features import features; "
            f"t = {REVIEW_AND_PLAN!r}; s = segment(t, clean(t).blocks); m = labeller.shipped(); "
            "m.decide(m.predict_proba(features(s))); assert 'sklearn' not in sys.modules, 'sklearn imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_decide_emits_a_second_category_only_when_likely():
    model = labeller.shipped()
    model = labeller.Labeller(model.labels, model.vectorizer, model.coef, model.intercept, second_threshold=0.35,
                              second_pairs=model.second_pairs)
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
    model = labeller.Labeller(model.labels, model.vectorizer, model.coef, model.intercept, second_threshold=0.35,
                              second_pairs=model.second_pairs)
    k = {c: i for i, c in enumerate(model.labels)}
    p = np.zeros((2, 4))
    p[0, [k["achievements"], k["plans"]]] = [0.55, 0.45]
    p[1, [k["achievements"], k["problems"]]] = [0.55, 0.45]
    out = model.decide(p)
    assert out[0] == ("achievements",)
    assert set(out[1]) == {"achievements", "problems"}


def test_file_roundtrip_keeps_predictions(tmp_path):
    model = labeller.shipped()
    path = tmp_path / "l.json"
    path.write_text(labeller.dumps(model), encoding="utf-8")
    again = labeller.load(path)
    structure, units = _units(REVIEW_AND_PLAN)
    f = features(structure, units)
    assert np.allclose(again.predict_proba(f), model.predict_proba(f), atol=1e-6)


def test_another_format_version_is_refused():
    data = labeller.shipped().to_json()
    data["format"] = 99
    with pytest.raises(ValueError, match="format"):
        labeller.Labeller.from_json(data)


def test_retraining_reproduces_the_shipped_parameters():
    """`reportsum train-labeller` is deterministic: refitting the shipped configuration on the
    gold and silver in the repository gives the shipped weights (up to BLAS rounding), so the
    file cannot drift from its corpus. (The configuration's grouped selection is not rerun
    here: it is minutes of fits; bench/labeller_cv.py runs it.)"""
    docs = train.load_all()
    shipped = labeller.shipped()
    assert train.corpus_hash(docs) == shipped.meta["corpus_sha256"]
    cfg = shipped.meta["config"]
    config = train.Config(dense=tuple(cfg["dense"]), silver_weight=cfg["silver_weight"], c=cfg["C"],
                          other_bias=cfg["other_bias"], second_threshold=cfg["second_threshold"])
    fresh = labeller.Labeller.from_json(json.loads(labeller.dumps(train.fit(docs, config))))
    assert fresh.vectorizer.feature_names() == shipped.vectorizer.feature_names()
    assert np.allclose(fresh.coef, shipped.coef, atol=2e-3)
    assert np.allclose(fresh.intercept, shipped.intercept, atol=2e-3)
    assert fresh.second_threshold == shipped.second_threshold and set(fresh.second_pairs) == set(shipped.second_pairs)
