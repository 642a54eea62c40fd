"""Document structure: which lines are headings, and the section path each sentence sits in.

Shapes are taken from real documents of the development and silver sets: national work
reports (2009, 2010, 2015), provincial reports that open mid-part, policy notices, bureau
pages and meeting news. ``python bench/structure.py`` prints the same trees for every
document.
"""

from __future__ import annotations

import pytest

from service.clean import Block, clean
from service.segment import heading_rank, is_heading, is_lead, segment


def _structure(text: str):
    return segment(text, clean(text).blocks)


def _context_of(st, start: str) -> tuple[str, ...]:
    return next(s.context for s in st.sentences if s.text.startswith(start))


NATIONAL_2009 = """一、2008年工作回顾

过去的一年，是新世纪以来我国发展极不平凡的一年。

一年来，我们做了以下主要工作：

（一）及时果断调整宏观经济政策，全力保持经济平稳较快发展

实行积极的财政政策和适度宽松的货币政策。

（三）积极推进改革开放，为经济社会发展注入新的活力和动力

增值税转型改革在全国推开。

二、2009年工作总体部署

今年经济社会发展的主要预期目标是：国内生产总值增长8%左右。

三、2009年主要任务

以实施一揽子计划为重点，今年要着力抓好以下七方面工作：

（一）加强和改善宏观调控，保持经济平稳较快发展

大规模增加政府投资，实施总额4万亿元的两年投资计划。
"""


def test_a_new_part_of_a_national_report_closes_the_review_sub_parts():
    st = _structure(NATIONAL_2009)
    assert _context_of(st, "增值税转型") == (
        "一、2008年工作回顾", "一年来，我们做了以下主要工作：", "（三）积极推进改革开放，为经济社会发展注入新的活力和动力")
    assert _context_of(st, "今年经济社会发展") == ("二、2009年工作总体部署",)
    assert _context_of(st, "大规模增加政府投资") == (
        "三、2009年主要任务", "以实施一揽子计划为重点，今年要着力抓好以下七方面工作：", "（一）加强和改善宏观调控，保持经济平稳较快发展")
    # the task heading keeps its part, not the review's
    task = next(t for t in st.tasks if t.text.startswith("加强和改善宏观调控"))
    assert task.context[0] == "三、2009年主要任务"


def test_lead_sentences_are_text_not_headings():
    st = _structure(NATIONAL_2009)
    titles = [h.text for h in st.headings]
    assert "一年来，我们做了以下主要工作：" not in titles
    assert "以实施一揽子计划为重点，今年要着力抓好以下七方面工作：" not in titles
    assert any(s.text == "一年来，我们做了以下主要工作：" for s in st.sentences)


@pytest.mark.parametrize("line", [
    "一年来，我们做了以下主要工作：",
    "一年来，我们以科学发展观统领经济社会发展全局，主要做了以下几方面工作：",
    "做好今年工作，必须坚持稳中求进、提质增效，重点抓好以下十个方面：",
    "重点抓好八个方面工作：",
    "今年经济社会发展的主要预期目标是：",
    "会议强调，要做好以下几项工作：",
    "每个省份的培训可分为三轮进行：",
    "另外两项行动是我省谋划开展的创新性工作：",
])
def test_a_line_that_announces_or_reports_is_a_lead(line):
    assert is_lead(line)
    assert not is_heading(Block(0, len(line), line))


@pytest.mark.parametrize("line", [
    "香港商报记者：",
    "廖宝祺：",
    "海南省卫生健康委员会二级巡视员陈建洪：",
    "中共海南省委教育工作委员会委员，海南省教育厅党组成员、副厅长孟梓岩：",
    "附件：",
    "各区卫生健康委：",
    "（一）主要问题：",
])
def test_a_speaker_a_label_or_an_addressee_before_a_colon_still_titles_what_follows(line):
    assert not is_lead(line)
    assert is_heading(Block(0, len(line), line))


@pytest.mark.parametrize("line", [
    "经济增速是综合性指标，今年预期目标设定",  # a sentence cut by a line break
    "一、在北京通养老助残卡中开通中医药养老服务支付功能，",  # a numbered sentence broken off
])
def test_a_broken_line_is_not_a_heading(line):
    assert not is_heading(Block(0, len(line), line))


@pytest.mark.parametrize("line", ["健康传播，无处不在", "铭刻忠诚烙印 党的领导坚强有力", "【坚持创新驱动】"])
def test_a_title_is_a_heading(line):
    assert is_heading(Block(0, len(line), line))


def test_numbering_schemes_rank_as_official_documents_number_them():
    order = ["第一部分 总体要求", "第一章 总则", "第一节 一般规定", "第一条 目的", "【重点任务】",
             "一、总体要求", "（一）指导思想", "1.加强组织领导", "（1）职业素养", "①培训对象"]
    assert [heading_rank(t) for t in order] == sorted(heading_rank(t) for t in order)
    assert len({heading_rank(t) for t in order}) == len(order)
    assert heading_rank("2026年重点工作") == 0
    assert heading_rank("十三五规划") == 0 and heading_rank("2.5万人") == 0


def test_an_excerpt_that_opens_mid_part_ranks_its_lists_below_the_next_part():
    # provincial reports cut out of the middle: "（四）" … "（六）" of the review, then "二、"
    st = _structure("（五）稳步实施乡村全面振兴\n\n粮食产量稳定在250亿斤以上。\n\n（六）用心用力改善民生\n\n"
                    "城镇新增就业40万人。\n\n二、“十五五”时期主要目标与重点任务\n\n锚定目标，奋发有为。\n")
    assert _context_of(st, "城镇新增就业") == ("（六）用心用力改善民生",)
    assert _context_of(st, "锚定目标") == ("二、“十五五”时期主要目标与重点任务",)
    assert st.paths == [("（五）稳步实施乡村全面振兴",), ("（六）用心用力改善民生",), ("二、“十五五”时期主要目标与重点任务",)]


def test_each_scheme_nests_under_the_one_above_and_siblings_share_a_level():
    st = _structure("一、总体要求\n\n（一）指导思想\n\n坚持以人民为中心。\n\n（二）工作目标\n\n"
                    "1.基层服务\n\n到2025年覆盖全部乡镇。\n\n（1）职业素养\n\n开展职业道德培训。\n\n"
                    "2.人才培养\n\n培养骨干500名。\n\n二、主要任务\n\n统筹推进。\n")
    assert _context_of(st, "开展职业道德") == ("一、总体要求", "（二）工作目标", "1.基层服务", "（1）职业素养")
    assert _context_of(st, "培养骨干") == ("一、总体要求", "（二）工作目标", "2.人才培养")
    assert _context_of(st, "统筹推进") == ("二、主要任务",)
    levels = {h.text: len(p) for h, p in zip(st.headings, st.paths)}
    assert levels["（一）指导思想"] == levels["（二）工作目标"] == 2
    assert levels["1.基层服务"] == levels["2.人才培养"] == 3


def test_chapters_hold_their_parts_and_a_new_chapter_closes_them():
    st = _structure("第一章 总则\n\n一、适用范围\n\n本办法适用于全市医疗机构。\n\n第二章 职责\n\n各区负责组织实施。\n")
    assert _context_of(st, "本办法适用") == ("第一章 总则", "一、适用范围")
    assert _context_of(st, "各区负责") == ("第二章 职责",)


def test_a_plain_title_inside_a_numbering_that_goes_on_is_a_sub_part():
    # a policy notice: names under "（一）指导单位", then "（二）主办单位" goes on
    st = _structure("三、组织机构\n\n（一）指导单位\n\n国家中医药管理局\n\n由其负责业务指导。\n\n"
                    "（二）主办单位\n\n中国中医药出版社有限公司负责承办。\n")
    assert _context_of(st, "由其负责") == ("三、组织机构", "（一）指导单位", "国家中医药管理局")
    assert _context_of(st, "中国中医药出版社") == ("三、组织机构", "（二）主办单位")


def test_a_box_of_projects_and_the_text_after_it_stay_in_their_part():
    # a State Council plan (corpus c36): "专栏1 …" boxes inside "二、重点任务", the excerpt ending
    # before "三、": read as plain titles of their own, the boxes and the tasks after them lost
    # the part (45 units held out by source group read 0.67 / 0.51; 0.87 / 0.62 in the part)
    st = _structure("中医药健康服务发展规划\n\n一、总体要求\n\n到2020年基本建立服务体系。\n\n二、重点任务\n\n"
                    "支持社会力量举办中医养生保健机构。\n\n专栏1　中医养生保健服务建设项目\n\n治未病服务能力建设\n\n"
                    "提升服务质量和水平。\n\n鼓励社会力量提供中医医疗服务。\n\n专栏2　中医医疗服务体系建设项目\n\n"
                    "基层中医药服务能力建设\n\n力争使所有社区卫生服务机构具备中医药服务能力。\n")
    part = ("中医药健康服务发展规划", "二、重点任务")
    assert _context_of(st, "提升服务质量") == (*part, "专栏1　中医养生保健服务建设项目", "治未病服务能力建设")
    assert _context_of(st, "鼓励社会力量") == (*part, "专栏1　中医养生保健服务建设项目", "治未病服务能力建设")
    assert _context_of(st, "力争使所有") == (*part, "专栏2　中医医疗服务体系建设项目", "基层中医药服务能力建设")
    # no numbered part open: a box title is a plain title as before
    assert _context_of(_structure("专栏1　重点项目\n\n建设县医院。\n"), "建设县医院") == ("专栏1　重点项目",)


def test_a_bureau_page_plain_headings_each_start_a_section_with_its_own_list():
    st = _structure("上半年工作回顾\n\n（一）医改持续深化\n\n全市新建村卫生室12所。\n\n"
                    "下半年工作安排\n\n会议要求重点抓好以下工作：\n\n（一）筹备召开卫生与健康大会\n\n对照通知精神抓好落实。\n\n"
                    "（二）纵深推进医改工作\n\n全面取消药品加成。\n")
    assert _context_of(st, "全市新建") == ("上半年工作回顾", "（一）医改持续深化")
    assert _context_of(st, "对照通知") == ("下半年工作安排", "会议要求重点抓好以下工作：", "（一）筹备召开卫生与健康大会")
    assert _context_of(st, "全面取消") == ("下半年工作安排", "会议要求重点抓好以下工作：", "（二）纵深推进医改工作")


def test_a_second_list_under_its_own_lead_replaces_the_first():
    st = _structure("二、工作任务\n\n主要措施如下：\n\n（一）加强培训\n\n培训1000人。\n\n（二）强化考核\n\n考核全覆盖。\n\n"
                    "保障措施如下：\n\n（一）加强领导\n\n成立领导小组。\n")
    assert _context_of(st, "考核全覆盖") == ("二、工作任务", "主要措施如下：", "（二）强化考核")
    assert _context_of(st, "成立领导小组") == ("二、工作任务", "保障措施如下：", "（一）加强领导")


def test_a_lead_before_a_later_part_is_not_that_part_s_parent():
    # "主要是：" lists points inline; "二、" goes on the report's numbering, it is not announced
    st = _structure("我们也清醒看到，发展中还存在不少问题，主要是：经济增长下行压力加大。\n\n主要是：\n\n"
                    "一些领域风险隐患较多。\n\n二、2012年工作总体部署\n\n今年要突出把握好稳中求进。\n")
    assert _context_of(st, "今年要突出") == ("二、2012年工作总体部署",)


def test_meeting_news_with_inline_points_keeps_them_as_text_under_their_heading():
    st = _structure("2020年济宁市卫生健康工作推进会议召开\n\n3月5日，全市卫生健康工作推进会议在济宁召开。\n\n会议传出“好声音”\n\n"
                    "会议强调，要做好以下工作：一是深化医改，推进分级诊疗。二是加强公共卫生体系建设。\n\n"
                    "三是提升基层服务能力，全年培训村医3000人次。\n")
    assert [h.text for h in st.headings if not h.title] == ["会议传出“好声音”"]
    assert _context_of(st, "三是提升") == ("会议传出“好声音”",)
    assert st.tasks == []


def test_paths_parallel_the_headings():
    st = _structure(NATIONAL_2009)
    assert len(st.paths) == len(st.headings)
    assert all(p[-1] == h.text for h, p in zip(st.headings, st.paths))


_PAGE = ("<html><body><div class=\"article\">"
         "<p>11月5日，北京市中医管理局召开中医药健康养老工作推进会，部署全市中医药健康养老服务试点工作。</p>"
         "<p><strong>{title}</strong></p>"
         "<p>今年东城区、西城区作为试点地区将逐步启动实施中医健康养老社区示范工程。</p>"
         "</div></body></html>")


@pytest.mark.parametrize("title", [
    "定点——确定北京中医药健康养老机构试点，探索构建中医药健康养老时间圈",
    "<span style=\"font-size:16px\">定单——公布服务团队名单，探索建立分级分类人才体系</span>",
])
def test_a_bold_line_on_a_web_page_is_a_heading_even_with_a_comma(title):
    raw = _PAGE.format(title=title)
    st = _structure(raw)
    assert len(st.headings) == 1 and st.headings[0].text.startswith(("定点", "定单"))
    assert _context_of(st, "今年东城区")[-1] == st.headings[0].text


def test_a_bold_lead_in_that_opens_a_paragraph_is_not_a_heading():
    # "<strong>一是…</strong>" followed by the rest of its paragraph: one block of text
    raw = _PAGE.format(title="一是完善服务网络，</strong>在全市设立中医药健康养老服务专区120个。<strong>")
    assert [h.text for h in _structure(raw).headings] == []


def test_the_same_line_in_plain_text_is_a_sentence_cut_off():
    text = ("11月5日，北京市中医管理局召开中医药健康养老工作推进会，部署全市中医药健康养老服务试点工作。\n\n"
            "定点——确定北京中医药健康养老机构试点，探索构建中医药健康养老时间圈\n\n"
            "今年东城区、西城区作为试点地区将逐步启动实施中医健康养老社区示范工程。\n")
    assert _structure(text).headings == []
