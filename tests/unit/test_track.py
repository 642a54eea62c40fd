"""track's pure parts: figures parsed and compared, retrieval, the decision, the renderers,
and the track scorer in evaluate.py (no labeller needed: commitments are given)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from service.evaluate import TrackGold, grade_track, track_contract_errors
from service.features import UnitRef
from service.track import (Candidate, Index, best_pair, comparable, decide, is_met, parse_figures,
                           previous_figures, to_csv, to_json, to_markdown)
from service.track_models import Commitment, Track, TrackDoc, TrackItem, TrackMeta


def fig(text: str):
    figs = parse_figures(text)
    assert len(figs) == 1, figs
    return figs[0]


# ----------------------------------------------------------------------------- figures


@pytest.mark.parametrize("text,value,unit,bound", [
    ("7.5%左右", 7.5, "%", "about"),
    ("7.4%", 7.4, "%", "floor"),
    ("17％左右", 17.0, "%", "about"),
    ("900万人以上", 9e6, "人", "floor"),
    ("1102万人", 1.102e7, "人", "floor"),
    ("4.6%以内", 4.6, "%", "ceiling"),
    ("13500亿元", 1.35e12, "元", "floor"),
    ("1.62万亿元", 1.62e12, "元", "floor"),
    ("700多亿元", 7e10, "元", "floor"),
    ("约5000亿元", 5e11, "元", "about"),
    ("三分之一", 1 / 3, "frac", "floor"),
    ("百分之十以上", 10.0, "%", "floor"),
    ("千分之五", 5.0, "‰", "floor"),
    ("3万余人次", 3e4, "人次", "floor"),
    ("4.35‰", 4.35, "‰", "floor"),
    ("不超过3%", 3.0, "%", "ceiling"),
    ("1/3以上", 1 / 3, "frac", "floor"),
    ("千亿斤", 1e11, "斤", "floor"),
    ("6600多万", 6.6e7, "", "floor"),
    ("5亿人口", 5e8, "人", "floor"),
])
def test_figure_values_units_and_bounds(text, value, unit, bound):
    f = fig(text)
    assert f.text == text
    assert f.value == pytest.approx(value)
    assert (f.unit, f.bound) == (unit, bound)


def test_figures_are_printed_slices_and_bare_numbers_are_not_figures():
    text = "今年广义货币M2预期增长13%左右，2014年新增就业1000万人以上，把13亿中国人的饭碗端牢"
    figs = parse_figures(text)
    assert [f.text for f in figs] == ["13%左右", "1000万人以上"]  # not "2", "2014", the population
    assert all(text[f.start:f.end] == f.text for f in figs)


@pytest.mark.parametrize("target,reported,ceiling,met", [
    ("7.5%左右", "7.4%", False, True),  # an "about" target: within 0.1 point
    ("7.5%左右", "7.3%", False, False),
    ("8%左右", "8.7%", False, True),  # exceeded
    ("900万人以上", "1102万人", False, True),
    ("1000万人以上", "990万人", False, False),
    ("3.5%左右", "2%", True, True),  # prices: a ceiling, met at or below it
    ("3%左右", "3.1%", True, True),  # within 0.1 of an about-ceiling
    ("3%左右", "3.3%", True, False),
    ("4.6%以内", "4.1%", False, True),  # 以内 is a ceiling whatever the context
    ("4.6%以内", "5%", False, False),
    ("2930亿元", "2906亿元", False, False),
    ("9080亿元", "9243亿元", False, True),
    ("13500亿元", "1.62万亿元", False, True),  # 亿 and 万亿 compared as values
    ("三分之一", "1/3以上", False, True),
])
def test_is_met(target, reported, ceiling, met):
    t, r = fig(target), fig(reported)
    assert comparable(t, r)
    assert is_met(t, r, ceiling) is met


@pytest.mark.parametrize("target,reported", [
    ("7.5%左右", "1322万人"),  # another unit
    ("1300亿元", "6545亿元"),  # another order: a total, not the year's amount
    ("500万亩", "66.7万公顷"),  # another unit of area
    ("320元", "3.5%"),
])
def test_not_comparable(target, reported):
    assert not comparable(fig(target), fig(reported))


def test_a_bare_count_compares_with_people_but_not_with_money():
    assert comparable(fig("6000万人"), fig("6600多万"))
    assert not comparable(fig("6000亿元"), fig("6600多万"))


def test_best_pair_takes_the_closest_figure_of_the_same_measure():
    targets = parse_figures("今年拟安排财政赤字13500亿元，比上年增加1500亿元")
    pair = best_pair(targets, parse_figures("全年财政赤字1.62万亿元，比去年增加2700亿元，增长7.4%"))
    assert pair is not None and (pair[0].text, pair[1].text) == ("13500亿元", "1.62万亿元")


def test_previous_figures_from_a_plan_sentence():
    text = "今年拟安排财政赤字1.62万亿元，比去年增加2700亿元，赤字率从去年的2.1%提高到2.3%"
    prev = {printed: round(f.value) if f.unit == "元" else f.value for f, printed, _ in previous_figures(text)}
    assert prev == {"2.1%": 2.1, "1.62万亿元−2700亿元": 1.35e12}
    for f, printed, reach in previous_figures(text):
        assert all(p in text[:reach] for p in printed.split("−"))  # the statement reaches every printed figure


# ----------------------------------------------------------------------------- retrieval


def test_index_ranks_the_statement_about_the_same_measure_first():
    later = ["国内生产总值达到63.6万亿元，比上年增长7.4%", "城镇新增就业1322万人，高于上年",
             "居民消费价格上涨2%", "新建改建农村公路23万公里"]
    scores = Index.build(later).scores(["城镇新增就业1000万人以上", "改建农村公路20万公里"])
    assert scores.shape == (2, 4)
    assert scores[0].argmax() == 1 and scores[1].argmax() == 3
    assert 0 <= scores.min() and scores.max() <= 1 + 1e-9


def test_figures_do_not_count_in_retrieval():
    # next year's target with the same figure is no closer than last year's outcome
    scores = Index.build(["城镇新增就业1322万人", "城镇新增就业1000万人"]).scores(["城镇新增就业1000万人以上"])
    assert scores[0][0] == pytest.approx(scores[0][1])


# ----------------------------------------------------------------------------- decision


def cand(text: str, score: float, review: bool = True, start: int = 100) -> Candidate:
    unit = UnitRef(start, start + len(text), text, text, 0, (), False, 0)
    return Candidate(unit, score, review)


def commitment(text: str) -> Commitment:
    return Commitment(evidence=text, span=(0, len(text)), figures=[f.text for f in parse_figures(text)])


def test_decide_met_from_a_review_figure():
    it = decide(commitment("城镇新增就业900万人以上"), [cand("城镇新增就业1102万人", 0.8)])
    assert (it.status, it.target, it.reported) == ("met", "900万人以上", "1102万人")
    assert it.later[0].evidence == "城镇新增就业1102万人" and it.later[0].span == (100, 100 + 12)


def test_decide_not_met_and_ceiling():
    it = decide(commitment("中央财政拟投入社会保障资金2930亿元"), [cand("中央财政安排社会保障资金2906亿元", 0.6)])
    assert it.status == "not_met"
    it = decide(commitment("居民消费价格涨幅控制在3.5%左右"), [cand("价格稳，居民消费价格上涨2%", 0.5)])
    assert it.status == "met" and "ceiling" in it.basis


def test_next_years_target_in_the_plan_part_is_no_outcome():
    # the later report's own target for next year restates the figure: that says nothing
    it = decide(commitment("城镇登记失业率控制在4.6%以内"), [cand("城镇登记失业率控制在4.6%以内", 0.9, review=False)])
    assert it.status == "not_reported" and it.later == []


def test_last_years_figure_stated_in_the_plan_part():
    text = "今年拟安排财政赤字1.62万亿元，比去年增加2700亿元"
    c = Candidate(UnitRef(50, 50 + 17, text[:17], text, 0, (), False, 0), 0.6, False, text)
    it = decide(commitment("今年拟安排财政赤字13500亿元，比上年增加1500亿元"), [c])
    assert (it.status, it.reported) == ("met", "1.62万亿元−2700亿元")
    # the evidence stretches to the increase it subtracts, so both figures are in it
    assert it.later[0].evidence == text and it.later[0].span == (50, 50 + len(text))


def test_no_comparable_figure_reports_progress_or_completion_or_nothing():
    c = commitment("今年拟安排中央预算内水利投资700多亿元")
    assert decide(c, [cand("重大水利工程建设进度加快", 0.5)]).status == "progress_reported"
    c = commitment("淘汰黄标车和老旧车600万辆")
    assert decide(c, [cand("淘汰黄标车和老旧车指标超额完成", 0.6)]).status == "met"
    assert decide(c, [cand("淘汰黄标车和老旧车", 0.1)]).status == "not_reported"
    assert decide(c, []).status == "not_reported"


def test_a_figure_far_short_is_read_as_another_measure():
    it = decide(commitment("拟安排中央财政赤字7500亿元"), [cand("中央财政安排社会保障资金4000亿元", 0.5)])
    assert it.status == "progress_reported" and it.reported is None


# ----------------------------------------------------------------------------- contract, scoring, rendering

EARLIER = "今年的目标：城镇新增就业900万人以上，居民消费价格涨幅4%左右。"
LATER = "一年来，城镇新增就业1102万人。"


def small_track(**changes) -> Track:
    c = commitment("城镇新增就业900万人以上")
    c = c.model_copy(update={"span": (6, 6 + len(c.evidence))})
    it = decide(c, [cand("城镇新增就业1102万人", 0.8, start=4)])
    it = it.model_copy(update=changes)
    return Track(earlier=TrackDoc(chars=len(EARLIER)), later=TrackDoc(chars=len(LATER)), items=[it],
                 meta=TrackMeta(version="t"))


def test_contract_holds_and_catches_a_figure_not_in_evidence():
    t = small_track()
    assert EARLIER[6:6 + 13] == t.items[0].commitment.evidence
    assert track_contract_errors(EARLIER, LATER, t) == []
    assert track_contract_errors(EARLIER, LATER, small_track(reported="1200万人"))  # a number nowhere printed
    assert track_contract_errors("x" + EARLIER, LATER, t)  # spans no longer index the text


def test_grade_track_counts_matches_status_and_later_evidence():
    gold = TrackGold.model_validate({"commitments": [
        {"evidence": "城镇新增就业900万人以上", "status": "met", "later_evidence": ["城镇新增就业1102万人"]},
        {"evidence": "居民消费价格涨幅4%左右", "status": "not_reported"}]})
    s = grade_track(EARLIER, LATER, small_track(), gold, name="toy")
    assert (s.gold, s.items, s.matched, s.status_correct) == (2, 1, 1, 1)
    assert (s.recall, s.precision, s.status_accuracy, s.later_recall) == (0.5, 1.0, 1.0, 1.0)
    assert s.confusion["met"]["met"] == 1
    s = grade_track(EARLIER, LATER, small_track(status="not_met"), gold)
    assert s.status_accuracy == 0.0 and s.confusion["met"]["not_met"] == 1


def test_markdown_and_csv_have_one_row_per_commitment():
    t = small_track()
    md = to_markdown(t)
    assert "| commitment | target | reported | status | where |" in md
    assert "| 城镇新增就业900万人以上 | 900万人以上 | 1102万人 | met(完成) | later 4–16 |" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(t))))
    assert rows == [{"commitment": "城镇新增就业900万人以上", "target": "900万人以上", "reported": "1102万人",
                     "status": "met", "where": "4–16", "later_evidence": "城镇新增就业1102万人"}]


def test_track_item_rejects_an_unknown_status():
    with pytest.raises(ValueError):
        TrackItem(commitment=commitment("改建农村公路20万公里"), status="done")


def test_yearly_pairs_by_file_name_or_opening():
    from service.track import year_of, yearly_pairs

    assert year_of("2014年政府工作报告.txt") == 2014
    assert year_of("report.txt", "各位代表：\n\n一、2013年工作回顾") == 2013
    assert year_of("report.txt", "没有年份") is None
    years = {"a_2013.txt": 2013, "b_2014.html": 2014, "c_2016.txt": 2016, "d.txt": None, "e_2017.txt": 2017}
    assert yearly_pairs(years) == [("a_2013.txt", "b_2014.html"), ("c_2016.txt", "e_2017.txt")]


# ----------------------------------------------------------------------------- with a model


def test_track_request_numbers_candidates_and_names_their_part():
    from service.track import TrackReply, track_request

    plan = Candidate(UnitRef(9, 22, "今年拟安排财政赤字1.62万亿元", "今年拟安排财政赤字1.62万亿元，比去年增加2700亿元", 0, (),
                             False, 0), 0.6, False, "今年拟安排财政赤字1.62万亿元，比去年增加2700亿元")
    req = track_request([(commitment("城镇新增就业900万人以上"), [cand("城镇新增就业1102万人", 0.8)]),
                         (commitment("今年拟安排财政赤字13500亿元"), [plan])])
    user = req.messages[1]["content"]
    assert "【承诺 1】城镇新增就业900万人以上\n(1)[回顾] 城镇新增就业1102万人" in user
    # a candidate is shown inside its sentence, itself marked 〔…〕
    assert "【承诺 2】今年拟安排财政赤字13500亿元\n(1)[新计划] 〔今年拟安排财政赤字1.62万亿元〕，比去年增加2700亿元" in user
    assert req.prompt_version.startswith("track-v2+") and req.json_schema == TrackReply.model_json_schema()
    # and so is a commitment, when its sentence is given
    req = track_request([(commitment("今年拟安排500万亩"), [cand("新一轮退耕还林还草启动实施", 0.5)])],
                        sentences=["继续实施退耕还林还草，今年拟安排500万亩。"])
    assert "【承诺 1】继续实施退耕还林还草，〔今年拟安排500万亩〕。\n(1)[回顾] 新一轮退耕还林还草启动实施" in req.messages[1]["content"]


def test_in_sentence_marks_the_unit_and_keeps_the_words_before_it_short():
    from service.track import in_sentence

    assert in_sentence("甲乙", "甲乙") == "甲乙"
    assert in_sentence("丙", "甲乙丙丁") == "甲乙〔丙〕丁"
    assert in_sentence("丙", "甲乙丙丁", before=1) == "…乙〔丙〕丁"
    assert in_sentence("戊", "甲乙丙丁") == "戊"  # not in the sentence: the unit alone


def test_apply_verdict_corrects_a_status_the_figures_contradict():
    from service.track import TrackVerdict, apply_verdict

    c = commitment("城镇新增就业900万人以上")
    cands = [cand("城镇新增就业1102万人", 0.8), cand("就业形势总体稳定", 0.4, start=300)]
    item, corrected = apply_verdict(c, cands, TrackVerdict(n=1, status="not_met", statements=[1]))
    assert (item.status, item.reported, corrected) == ("met", "1102万人", True)
    item, corrected = apply_verdict(c, cands, TrackVerdict(n=1, status="progress_reported", statements=[2, 2, 9]))
    assert (item.status, corrected, [s.span for s in item.later]) == ("progress_reported", False, [(300, 308)])
    item, _ = apply_verdict(c, cands, TrackVerdict(n=1, status="not_reported", statements=[1]))
    assert item.status == "not_reported" and item.later == []
    assert apply_verdict(c, cands, TrackVerdict(n=1, status="met", statements=[5]))[0] is None  # cites nothing usable


def test_a_target_restated_is_one_commitment_but_a_shared_increase_is_not():
    from service.track import _restated

    def unit(text):
        return UnitRef(0, len(text), text, text, 0, (), False, 0)

    first = unit("国内生产总值增长7.5%左右")
    kept = [(first, parse_figures(first.text))]
    again = unit("经过认真比较、反复权衡，把增长预期目标定在7.5%左右")
    assert _restated(again, parse_figures(again.text), kept)
    subsidy = unit("中央财政拟安排补贴资金1230亿元，比上年增加200亿元")
    fund = unit("中央财政拟安排200亿元专项资金")
    assert not _restated(fund, parse_figures(fund.text), [(subsidy, parse_figures(subsidy.text))])


# ----------------------------------------------------------------------------- the model's candidates


def unit(text: str, sentence: str, start: int, para: int = 0) -> UnitRef:
    return UnitRef(start, start + len(text), text, sentence, para, (), False, 0)


def test_a_clause_is_ranked_with_its_sentence_for_the_model():
    from service.track import rank

    # "今年拟安排500万亩" names its measure only in the clause before it
    c = commitment("今年拟安排500万亩")
    later_text = "新一轮退耕还林还草启动实施。新增节水灌溉面积223万亩。"
    later = [unit("新一轮退耕还林还草启动实施", "新一轮退耕还林还草启动实施。", 0),
             unit("新增节水灌溉面积223万亩", "新增节水灌溉面积223万亩。", 14)]
    own = rank([c], later_text, later, [True, True])[0]
    shown = rank([c], later_text, later, [True, True], ["继续实施退耕还林还草，今年拟安排500万亩。"])[0]
    assert own[0].unit.text != "新一轮退耕还林还草启动实施"  # its own words alone miss it
    assert shown[0].unit.text == "新一轮退耕还林还草启动实施"
    assert all(0 <= s.score <= 1 + 1e-9 for s in shown)


def test_context_of_is_the_sentence_and_the_paragraph_lead():
    from service.track import context_of

    lead = unit("二是实行结构性减税", "二是实行结构性减税和推进税费改革。", 0, para=3)
    clause = unit("可减轻负担约5000亿元", "今年全面实施增值税转型，可减轻负担约5000亿元。", 20, para=3)
    contexts = context_of([lead, clause])
    assert contexts[(0, lead.end)] == lead.sentence_text  # the lead is its own paragraph's lead
    assert contexts[(20, clause.end)] == clause.sentence_text + "\n" + lead.sentence_text


def test_retrieval_recall_counts_gold_later_evidence_at_each_cutoff():
    from service.evaluate import retrieval_recall

    gold = TrackGold.model_validate({"commitments": [
        {"evidence": "城镇新增就业900万人以上", "status": "met", "later_evidence": ["城镇新增就业1102万人"]},
        {"evidence": "居民消费价格涨幅4%左右", "status": "met", "later_evidence": ["价格上涨2%"]}]})
    earlier = "城镇新增就业900万人以上，居民消费价格涨幅4%左右。"
    later = "价格上涨2%。城镇新增就业1102万人。"
    at = later.index("城镇新增就业1102万人")
    ranked = [[(0, 6), (at, at + 13)]]  # one system commitment: the first gold one, found at rank 2
    r = retrieval_recall(earlier, later, [(0, 13)], ranked, gold, (1, 2))
    assert r["later_gold"] == 2 and r["found"] == {1: 0, 2: 1} and r["recall"] == {1: 0.0, 2: 0.5}
    assert [(x["matched"], x["rank"]) for x in r["ranks"]] == [(True, 2), (False, None)]


def test_tables_show_web_page_evidence_without_its_markup():
    """JSON keeps the exact slice of the page source; the Markdown and CSV tables are read, so
    a commitment that runs across inline markup shows as a reader sees it."""
    t = small_track()
    sliced = "城镇新增就业<span style=\"color: red\">900万人</span>以上"
    it = t.items[0]
    t = t.model_copy(update={"items": [it.model_copy(update={
        "commitment": it.commitment.model_copy(update={"evidence": sliced}),
        "later": [it.later[0].model_copy(update={"evidence": "城镇新增就业<b>1102</b>万人&nbsp;"})]})]})
    assert "| 城镇新增就业900万人以上 | 900万人以上 |" in to_markdown(t) and "<" not in to_markdown(t)
    row = next(csv.DictReader(io.StringIO(to_csv(t))))
    assert row["commitment"] == "城镇新增就业900万人以上" and row["later_evidence"] == "城镇新增就业1102万人"
    assert json.loads(to_json(t))["items"][0]["commitment"]["evidence"] == sliced
