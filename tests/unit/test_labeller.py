"""The learned labeller: features, the shipped parameter file, retraining, decisions."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from service import labeller, train
from service.clean import clean
from service.features import (DENSE_NAMES, NEAR_PART, body_paths, features, gram_key, gram_text, grams, kinds,
                              paragraph_leads, part_kinds, section_tail, units_of)
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


def test_the_title_block_heads_the_document_not_a_section_of_it():
    # seed 004 opens on a subheading whose headline was cut off, c51 on a headline and a dateline:
    # as a section they stood over every unit after them
    text = ("高度：着眼未来 战略布局\n\n2023-03-01 09:22发布于贵州\n\n人才是医疗服务质量的保证，没有高水平的医学人才就难有学科建设。\n\n"
            "一、2025年工作回顾\n过去一年，全省新建村卫生室120所，基层诊疗量增长8.5%。\n")
    structure, units = _units(text)
    assert [b.text for b in structure.headings if b.title] == ["高度：着眼未来 战略布局", "2023-03-01 09:22发布于贵州"]
    first, *_, last = units
    assert first.context == ("2023-03-01 09:22发布于贵州",)  # the segmenter keeps it (context, prompts)
    paths = body_paths(structure, units)
    assert paths[0] == () and paths[-1] == ("一、2025年工作回顾",)
    f = features(structure, units)
    h = f.grams["h"]
    first_row = h.of_unit[0]
    assert not any(gram_text(int(k)) in section_tail(first.context) for k in h.keys[h.rows == first_row])
    col = {n: j for j, n in enumerate(DENSE_NAMES)}
    assert f.dense[len(units) - 1, col["part.near=review"]] == 1.0 and not f.dense[0, [col[n] for n in NEAR_PART]].any()


def test_a_title_naming_two_parts_names_neither():
    # "十三五" achievements and "十四五" targets in one title: its units are no review
    text = ("二、“十三五”时期发展成就和“十四五”时期主要目标任务\n坚持创新驱动发展，加快发展现代产业体系。\n"
            "三、2021年重点工作\n加快推进县医院新院区建设。\n")
    structure, units = _units(text)
    f = features(structure, units)
    col = {n: j for j, n in enumerate(DENSE_NAMES)}
    first = next(i for i, u in enumerate(units) if "创新驱动" in u.text)
    later = next(i for i, u in enumerate(units) if "新院区" in u.text)
    assert not any(f.dense[first, col[n]] for n in NEAR_PART)
    assert f.dense[later, col["part.near=plan"]] == 1


def test_task_parts_after_the_first_plan_part_are_plan_parts():
    # the 2015 national report: "二、2015年工作总体部署" then tasks titled by their subject only
    contexts = [("一、2014年工作回顾",), ("二、2015年工作总体部署",), ("三、把改革开放扎实推向纵深",),
                ("三、把改革开放扎实推向纵深", "（一）加大简政放权"), ("四、持续推进民生改善",)]
    assert [near for _, near in part_kinds(contexts)] == ["review", "plan", "plan", "plan", "plan"]
    # a part that names no kind before any plan part stays unknown, and the review never inherits
    assert part_kinds([("一、开局良好",), ("二、工作回顾",), ("三、坚持从严治党",)]) == [(None, None), ("review", "review"),
                                                                                  (None, None)]


def test_safeguards_and_quoted_slogans_name_no_part_by_themselves():
    # a policy's "三、保障措施" after its tasks is a plan part through them (silver s27) ...
    contexts = [("一、总体要求",), ("二、主要任务",), ("三、保障措施",), ("三、保障措施", "（一）加强组织领导")]
    assert [near for _, near in part_kinds(contexts)] == ["plan", "plan", "plan", "plan"]
    # ... while a half-year review's keyword section reports the safeguards it put in place (seed 001)
    assert kinds("关键词 落实保障措施") == [] and part_kinds([("关键词 深化医改",), ("关键词 落实保障措施",)]) == [
        (None, None), (None, None)]
    # the slogan's "创亮点" is no review: the lead opens the plans of the second half-year
    lead = "按照“求突破、争先进、上位次、创亮点”的要求，主任梳理出存在的一些突出问题和短板，并强调下半年的重点工作。"
    assert kinds(lead) == ["plan"]
    assert kinds("二、贯彻落实《“十四五”卫生健康发展规划》") == [] and kinds("一、“十四五”以来工作回顾") == ["review"]


# seed 002's close (a district bureau's year in review) and the 2010 national report's task part
YEAR_AHEAD = (
    "四、突出精准服务 深耕重点人群关怀\n为4.66万名老年人进行健康体检。\n"
    "山河书锦绣，再起新征程。在新的一年里，济阳区卫健局将以党建提升年为抓手，深化紧密型医共体建设。\n"
    "坚持“一个引领”，即坚持党建引领，进一步加强公立医院党的建设。\n"
    "五、加强自身建设\n过去的一年，两岸关系在新的历史起点上取得重要进展。"
    "新的一年，我们要继续坚持大政方针。\n过去的一年，外交工作取得新的重大成绩。\n"
)


def _near_part_of(text: str):
    """A lookup: the part columns set for the unit containing some words."""
    structure, units = _units(text)
    f = features(structure, units)
    near = {u.text: [n.split("=")[1] for n in NEAR_PART if f.dense[i, DENSE_NAMES.index(n)]]
            for i, u in enumerate(units)}
    return lambda words: near[next(t for t in near if words in t)]


def test_a_sentence_on_the_year_ahead_opens_the_plans_of_its_section():
    at = _near_part_of(YEAR_AHEAD)
    assert at("老年人进行健康体检") != ["plan"] and at("山河书锦绣") != ["plan"]  # before it: as the titles say
    assert at("济阳区卫健局将以") == at("深化紧密型医共体") == at("进一步加强公立医院") == ["plan"]  # to the section's end
    assert at("两岸关系") != ["plan"]  # a new section: closed
    assert at("继续坚持大政方针") == ["plan"] and at("外交工作取得") != ["plan"]  # the past year again closes it


# the 2026 Hubei report's close of its review (c15), shortened, and a paragraph after it
TURN_TO_PROBLEMS = (
    "一、2025年工作回顾\n全省经济运行稳中有进。\n"
    "在看到成绩的同时，我们也清醒地认识到，前进道路上老问题、新挑战仍然不少。主要是：发展不平衡不充分问题仍然突出，"
    "城乡之间、区域之间仍有不小差距，一些企业经营困难。制度型开放水平不高，还有不少风险隐患。"
    "对这些问题，我们将高度重视，进一步采取科学务实有效的措施加以改善和解决。\n"
    "各位代表，成绩来之不易。全省新增就业70万人。\n"
)


def test_a_sentence_turning_to_shortcomings_opens_the_problems_of_its_paragraph():
    at = _near_part_of(TURN_TO_PROBLEMS)
    assert at("全省经济运行") == ["review"]  # before the turn: as the title says
    assert at("城乡之间") == at("一些企业经营困难") == at("制度型开放水平不高") == ["problem"]
    assert at("科学务实有效的措施") == ["review"]  # the pledge of a remedy closes it
    assert at("全省新增就业") == ["review"]  # and so does the paragraph's end


# the 2025 Hainan press conference (c52), shortened: answers under the speakers' names
ANNOUNCED_WORK = (
    "海南特区报记者：\n\n请问海南在青少年学生心理健康方面做了哪些工作？学校可以为他们提供哪些帮助？\n\n"
    "海南省教育厅党组成员、副厅长孟梓岩：\n\n感谢这位记者的提问。近年来，针对青少年学生心理健康教育问题，"
    "省教育厅主要从以下5个方面开展了工作。一是强化组织领导，夯实保障根基。统筹规划学生心理健康教育工作，"
    "将学生心理健康教育工作纳入省委教育工作领导小组工作要点。二是优化师资配置，建强专业队伍。"
    "基本实现全省中小学专兼职心理健康教育教师全覆盖。\n\n下一步，我们将持续完善儿童青少年心理健康工作机制。\n\n"
    "海南日报记者：\n\n我想请问一下，海南省卫健委在儿童青少年心理健康领域采取了哪些具体举措？\n\n"
    "海南省卫生健康委员会二级巡视员陈建洪：\n\n感谢记者朋友的提问。我们已经对全省800余所中小学校的孩子们建立了心理健康档案。\n"
)


def test_a_sentence_announcing_the_work_done_opens_the_achievements_of_its_section():
    at = _near_part_of(ANNOUNCED_WORK)
    assert at("感谢这位记者") == []  # before it: no part
    assert at("强化组织领导") == at("统筹规划学生") == at("纳入省委教育") == at("基本实现全省") == ["review"]
    assert at("持续完善儿童") == ["plan"]  # the year ahead closes it and opens the plans
    assert at("采取了哪些具体举措") == []  # a question announces nothing
    assert at("建立了心理健康档案") == []  # and the next speaker's section is another


def test_part_prior_reweighs_categories_and_keeps_other():
    proba = np.array([[0.3, 0.1, 0.4, 0.2], [0.1, 0.1, 0.1, 0.7]])
    shift = np.array([[2.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    out = labeller.reweigh(proba, shift, labeller.LABELS)
    assert np.allclose(out.sum(axis=1), 1) and np.allclose(out[:, 3], proba[:, 3])
    assert out[0].argmax() == 0 and np.allclose(out[1], proba[1])  # no shift: unchanged
    # in the model: a unit under a review title moves toward achievements, one outside any part does not
    structure, units = _units("一、2016年工作总结\n深化公立医院人事制度改革，实施公立医院员额制。\n" + "稳步推进药品集中采购。\n")
    f = features(structure, units)
    model = labeller.shipped()
    ratio = np.array([[2.0, -1.0, -2.0], [-2.0, 2.0, -2.0], [-2.0, -1.0, 2.0]])
    off = model.predict_proba(f)
    on = replace(model, part_prior=labeller.PartPrior(ratio, 1.0)).predict_proba(f)
    col = DENSE_NAMES.index("part.near=review")
    inside = f.dense[:, col] == 1
    assert inside.any()
    assert np.all(on[inside, 0] > off[inside, 0]) and np.allclose(on[:, 3], off[:, 3])
    data = replace(model, part_prior=labeller.PartPrior(ratio, 1.0)).to_json()
    assert labeller.Labeller.from_json(data).part_prior.weight == 1.0
    data["part_prior"]["parts"] = ["part.near=x"]
    with pytest.raises(ValueError, match="part prior"):
        labeller.Labeller.from_json(data)


def test_part_log_ratio_counts_claims_by_part():
    docs = [d for d in train.load_docs(train.GOLD_SETS) if d.name.startswith(("c62", "c65"))]
    ratio = train.part_log_ratio(docs, 1.0)
    review, problem = NEAR_PART.index("part.near=review"), NEAR_PART.index("part.near=problem")
    assert ratio.shape == (len(NEAR_PART), 3)
    assert ratio[review].argmax() == 0 and ratio[problem].argmax() == 1  # achievements; problems


def test_paragraph_leads_are_each_paragraphs_opening():
    structure, units = _units("会议要求，下一步要加快建设。一是完善机制。二是强化考核。\n全年新建卫生室12所。\n")
    leads = paragraph_leads(units)
    assert all(lead.startswith("会议要求") for u, lead in zip(units, leads) if "考核" in u.text or "机制" in u.text)
    assert next(lead for u, lead in zip(units, leads) if "卫生室" in u.text).startswith("全年新建")
    assert features(structure, units).grams["p"].n_rows == 2


def test_selection_weighs_each_source_group_alike():
    # a long report read perfectly and a short bureau page read as nothing: the mean of the two
    # groups' F1 is 0.5, where the pooled units would say the long report's near-perfect figure
    docs = [d for d in train.load_docs(train.GOLD_SETS) if d.name.startswith(("c32", "c64"))]
    scores = [train.score(d, [tuple(sorted(t)) if d.name.startswith("c32") else () for t in d.targets]) for d in docs]
    assert train.group_f1(scores, docs) == pytest.approx(
        np.mean([train.f1([s]) for s in scores]))
    assert train.group_f1(scores, docs) < 0.55 < train.f1(scores)


def test_shipped_labeller_reads_document_structure():
    structure, units = _units(REVIEW_AND_PLAN)
    model = labeller.shipped()
    got = dict(zip((u.text for u in units), model.decide(model.predict_proba(features(structure, units)))))
    assert "achievements" in next(d for t, d in got.items() if "新建村卫生室" in t)
    assert "problems" in next(d for t, d in got.items() if "数量不足" in t)
    assert "plans" in next(d for t, d in got.items() if "新院区" in t)


def test_scores_shared_by_units_equal_the_full_matrix_product():
    """``Vectorizer.scores`` multiplies each sentence and section once and reads the weights
    in place; it must give what the plain product of the unit rows and ``coef.T`` gives."""
    model = labeller.shipped()
    structure, units = _units(REVIEW_AND_PLAN * 3)
    f = features(structure, units)
    plain = np.asarray(model.vectorizer.transform(f) @ model.coef.T)
    assert plain.shape == (len(units), len(model.labels)) and np.abs(plain).max() > 0
    np.testing.assert_allclose(model.vectorizer.scores(f, model._weights), plain, rtol=1e-9, atol=1e-12)


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
    assert set(model.meta["config"]) == {"dense", "families", "silver_weight", "C", "other_bias", "second_threshold",
                                         "part_weight", "section_weight", "paragraph_weight"}
    assert len(model.meta["documents"]) >= 60 and model.meta["silver_documents"] == 28


def test_predicting_needs_numpy_and_scipy_only():
    code = ("import sys; from service import labeller; from service.clean import clean; "
            "from service.segment import segment; from service.features import features; "
            f"t = {REVIEW_AND_PLAN!r}; s = segment(t, clean(t).blocks); m = labeller.shipped(); "
            "m.decide(m.predict_proba(features(s))); assert 'sklearn' not in sys.modules, 'sklearn imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_selection_decides_as_the_labeller_file_will():
    """The grouped selection scores decisions made from a neutral fit's probabilities
    (``train._decide``); the shipped file carries the same choices in its intercept and part
    prior. Both must decide alike, or the selection would score a labeller nobody ships."""
    docs = train.load_docs([train.GOLD_SETS[0]])[:3]
    cfg = train.Config(dense=("pos", "cues", "part"), other_bias=-1.0, part_weight=2.0, paragraph_weight=0.5)
    neutral = train.fit(docs, cfg.fitted())
    applied = train._apply(neutral, cfg)
    assert np.allclose(applied.intercept, train.fit(docs, cfg).intercept)
    changed = 0
    for d in docs:
        shift = cfg.part_weight * (train._near(d) @ neutral.part_prior.log_ratio)
        got = train._decide(neutral.predict_proba(d.feats), cfg.other_bias, cfg.second_threshold, shift,
                            d.feats.para, cfg.paragraph_weight)
        assert got == applied.decide(applied.predict_proba(d.feats))
        changed += sum(a != b for a, b in zip(got, neutral.decide(neutral.predict_proba(d.feats))))
    assert changed  # the choices move decisions: the comparison above is not between two neutral fits


def test_the_section_weight_scales_the_section_paths_ngrams_and_travels_with_the_config():
    """``Config.section_weight`` is a fitted choice: it weighs the section family ("h") alone,
    moves the predictions, and a file written before it existed reads as weight 1."""
    docs = train.load_docs([train.GOLD_SETS[0]])[:3]
    cfg = train.Config(dense=("pos", "cues", "part"), families=("u", "s", "h", "p"), section_weight=0.25)
    light, full = train.fit(docs, cfg), train.fit(docs, replace(cfg, section_weight=1.0))
    weights = {fam: v.weight for fam, v in light.vectorizer.vocab.items()}
    assert weights == {**labeller.FAMILY_WEIGHTS, "h": labeller.FAMILY_WEIGHTS["h"] * 0.25}
    assert {fam: v.weight for fam, v in full.vectorizer.vocab.items()} == labeller.FAMILY_WEIGHTS
    f = docs[0].feats
    assert not np.allclose(light.predict_proba(f), full.predict_proba(f), atol=1e-3)
    assert train.Config.from_json(cfg.to_json()) == cfg and cfg.fitted().section_weight == 0.25
    older = cfg.to_json()
    del older["section_weight"]
    assert train.Config.from_json(older).section_weight == 1.0


def test_paragraph_tense_pulls_achievement_against_plan_toward_the_paragraphs_own():
    """``labeller.paragraph_tense``: within a paragraph, each unit's log odds of achievement over
    plan move ``weight`` of the way to the paragraph's claim-weighted mean; P(other), P(problem)
    and P(achievement) + P(plan) stay; another paragraph is not touched; weight 0 is identity."""
    k = {c: i for i, c in enumerate(labeller.LABELS)}
    p = np.zeros((4, 4))
    p[0, [k["achievements"], k["plans"], k["other"]]] = [0.8, 0.1, 0.1]  # clearly done
    p[1, [k["achievements"], k["plans"], k["other"]]] = [0.7, 0.1, 0.2]  # clearly done
    p[2, [k["achievements"], k["plans"], k["problems"], k["other"]]] = [0.25, 0.35, 0.1, 0.3]  # torn
    p[3, [k["achievements"], k["plans"], k["other"]]] = [0.1, 0.8, 0.1]  # another paragraph
    para = np.array([0, 0, 0, 1])
    out = labeller.paragraph_tense(p, para, 0.5, labeller.LABELS)
    model = labeller.Labeller(labeller.LABELS, labeller.Vectorizer({}, ()), np.zeros((4, 0)), np.zeros(4))
    assert model.decide(p)[2] == ("plans",) and model.decide(out)[2] == ("achievements",)
    for c in ("other", "problems"):
        np.testing.assert_allclose(out[:, k[c]], p[:, k[c]])
    np.testing.assert_allclose(out[:, k["achievements"]] + out[:, k["plans"]], p[:, k["achievements"]] + p[:, k["plans"]])
    np.testing.assert_allclose(out[3], p[3])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # halfway: the torn unit's log odds end at the mean of its own and the paragraph's
    diff = np.log(p[:3, k["achievements"]] / p[:3, k["plans"]])
    mean = np.average(diff, weights=1 - p[:3, k["other"]] + 1e-6)
    assert np.log(out[2, k["achievements"]] / out[2, k["plans"]]) == pytest.approx((diff[2] + mean) / 2)
    assert labeller.paragraph_tense(p, para, 0.0, labeller.LABELS) is p


def test_units_of_one_paragraph_share_an_id_and_a_heading_stands_alone():
    structure, units = _units(REVIEW_AND_PLAN)
    ids = features(structure, units).para
    assert len(ids) == len(units) and sorted(set(ids.tolist())) == list(range(len(set(ids.tolist()))))
    for a, b in itertools.combinations(range(len(units)), 2):
        same = not units[a].heading_task and not units[b].heading_task and units[a].para == units[b].para
        assert (ids[a] == ids[b]) == same
    assert len(set(ids.tolist())) < len(units)  # some paragraph holds several units


def test_a_labeller_file_carries_its_paragraph_weight():
    model = replace(labeller.shipped(), paragraph_weight=0.5)
    again = labeller.Labeller.from_json(json.loads(labeller.dumps(model)))
    assert again.paragraph_weight == 0.5
    older = model.to_json()
    del older["paragraph_weight"]
    assert labeller.Labeller.from_json(older).paragraph_weight == 0.0
    # predict_proba applies it after the part prior, on the units' paragraph ids
    f = features(*_units(REVIEW_AND_PLAN))
    plain = replace(again, paragraph_weight=0.0).predict_proba(f)
    got = again.predict_proba(f)
    assert not np.array_equal(got, plain)
    np.testing.assert_allclose(got, labeller.paragraph_tense(plain, f.para, 0.5, labeller.LABELS))


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
    config = train.Config.from_json(shipped.meta["config"])
    fresh = labeller.Labeller.from_json(json.loads(labeller.dumps(train.fit(docs, config))))
    assert fresh.vectorizer.feature_names() == shipped.vectorizer.feature_names()
    assert np.allclose(fresh.coef, shipped.coef, atol=2e-3)
    assert np.allclose(fresh.intercept, shipped.intercept, atol=2e-3)
    assert fresh.second_threshold == shipped.second_threshold and set(fresh.second_pairs) == set(shipped.second_pairs)
    assert (fresh.part_prior is None) == (shipped.part_prior is None)
    if shipped.part_prior:
        assert fresh.part_prior.weight == shipped.part_prior.weight
        assert np.allclose(fresh.part_prior.log_ratio, shipped.part_prior.log_ratio, atol=1e-3)
