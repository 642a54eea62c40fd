"""Deterministic labelling signals (service.classify): each rule is pinned by a sentence
that reads one way to a reader and would read the other way without the rule."""

import pytest

from service import classify


@pytest.mark.parametrize("text, label", [
    ("全县新建标准化村卫生室42所", "achievements"),
    ("加快推进县医院新院区建设,确保年内投入使用", "plans"),
    # a figure beside a strong plan cue is a target, not a result
    ("深化“万名保健医生进农户”活动,确保全年巡诊150万户次", "plans"),
    # 主要 and 重要 contain 要 but promise nothing
    ("主要指标继续呈向好趋势", None),
    # 将 as 把 (a preposition) is not the future 将
    ("将人民健康放在首位", None),
    ("将进一步加快医共体建设", "plans"),
    ("区人民医院志愿服务项目获全区志愿服务项目大赛一等奖", "achievements"),
])
def test_cue_label(text, label):
    assert classify.cue_label(text) == label


def test_a_unit_with_its_own_clear_tense_overrides_its_sentence():
    assert classify.unit_label("已建立了覆盖全市的监测网络", "plans") == "achievements"
    assert classify.unit_label("年底前要实现自动提取上报", "achievements") == "plans"
    assert classify.unit_label("服务群众就医", "plans") == "plans"  # no cue of its own


def test_a_stated_shortcoming_is_a_problem_wherever_it_is():
    assert classify.unit_label("基层医务人员数量不足", "achievements") == "problems"
    assert classify.unit_labels("基层医务人员数量不足", "achievements") == ("problems",)


def test_a_measure_that_fixes_a_shortcoming_is_also_the_measure():
    assert classify.unit_labels("补齐县域医疗卫生服务体系“短板”", "plans") == ("problems", "plans")
    assert classify.unit_labels("在某种程度上缓解了乡村医生缺乏的难题", "achievements") == ("problems", "achievements")
    assert classify.unit_labels("会议还分析了当前工作面临的问题", "other") == ()


@pytest.mark.parametrize("unit", [
    "为切实提升淄博市政务服务效率和质量",  # a purpose
    "对于健康产业的未来发展方向,这次重点工作推进会提出",  # a speech lead
    "对淄博卫生健康事业的未来发展具有重大指导意义",  # a verdict on the meeting
])
def test_framing_units_are_not_claims(unit):
    assert classify.unit_label(unit, "plans") == "other"


def test_a_defining_sentence_is_commentary_unless_it_names_a_shortcoming():
    kw = dict(after_directive=False, para=None)
    assert classify.sentence_label("人才是医疗服务质量的保证,没有高水平的医学人才。", None, "achievements", **kw) == "other"
    assert classify.sentence_label("农村医疗卫生事业一直是健康发展地图上的弱项。", None, None, **kw) != "other"
    assert classify.sentence_label("一是建立有效的平战结合工作机制。", None, "plans", **kw) == "plans"


def test_the_nearest_section_title_that_says_something_wins():
    assert classify.section_label(("上半年工作回顾", "会议强调下半年的重点工作。", "(一)筹备召开大会")) == "plans"
    assert classify.section_label(("明年工作打算", "(二)工作成效")) == "achievements"
    assert classify.section_label(("关键词 深化医改", "(一)纵深推进")) is None
    assert classify.section_label("下一步工作") == "plans"


def test_under_a_plan_title_a_done_verb_states_a_target():
    kw = dict(after_directive=False, para=None)
    target = "扎实开展健康扶贫,全面完成7399名患病贫困群众综合救治任务。"
    assert classify.sentence_label(target, "plans", None, **kw) == "plans"
    assert classify.sentence_label(target, None, None, **kw) == "achievements"
    # an explicit perfect still reports a result
    assert classify.sentence_label("截至目前已巡诊115.9万户。", "plans", None, **kw) == "achievements"
    assert classify.unit_label("全市增加4个院前急救站点", "plans", "plans") == "plans"
    assert classify.unit_label("全市累计增加4个院前急救站点", "plans", "plans") == "achievements"


def test_the_latest_of_several_year_titles_looks_ahead():
    titles = ["2019年卫生健康事业实现新跨越", "主动担当 奋勇战疫", "2020年卫生健康事业再上新台阶"]
    later = classify.later_year_titles(titles)
    assert later == {"2020年卫生健康事业再上新台阶"}
    assert classify.section_label(("2020年卫生健康事业再上新台阶",), later) == "plans"
    # one year alone says nothing about tense
    assert classify.later_year_titles(["2024年工作亮点纷呈", "党建引领"]) == frozenset()


def test_a_bare_directive_in_a_review_is_a_topic_not_a_result():
    assert classify.unit_label("加强优势重点学科建设", "achievements") == "other"
    assert classify.unit_label("逐步提升基层医疗卫生机构服务能力和医疗质量", "achievements") == "other"
    # the same words as a task are a plan; with a result or a figure they are a claim
    assert classify.unit_label("加强优势重点学科建设", "plans") == "plans"
    assert classify.unit_label("加强优势重点学科建设,新增省级重点专科2个", "achievements") == "achievements"
    assert classify.unit_label("推广床旁结算", "achievements") == "achievements"


def test_a_reviewing_title_beats_the_model():
    kw = dict(after_directive=False, para=None)
    sentence = "云江中医院、滨海健康医院等项目有序推进。"
    assert classify.sentence_label(sentence, "achievements", "plans", **kw) == "achievements"
    assert classify.sentence_label(sentence, None, "plans", **kw) == "plans"
    assert not classify.needs_model(sentence, "achievements", **kw)


@pytest.mark.parametrize("unit", ["要坚持问题导向、目标导向和效果导向", "剖析问题,对下一步工作进行再部署", "从严抓风险防控"])
def test_a_method_or_a_measure_is_not_a_shortcoming(unit):
    assert classify.unit_label(unit, "plans") == "plans"


@pytest.mark.parametrize("sentence", ["民之所盼,政之所向。", "山河书锦绣,再起新征程。"])
def test_a_couplet_is_a_slogan(sentence):
    assert classify.sentence_label(sentence, "plans", "plans", after_directive=True) == "other"
