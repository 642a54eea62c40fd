"""A figure is never cut, dropped or changed by cleaning or segmentation (issue 23).

Three input shapes used to alter a number: a decimal at a clause head read as an enumerator
("85.2%" -> "2%"), inline HTML ending a block (``<span>25</span>％``: the "25" thrown away as
chrome), and a token broken over lines by a scraper ("PM\\n2.5\\n）"). Each is checked here with
its neighbours, and the last line of defence (the digest refuses an item whose span cuts a
number) is checked by breaking the segmenter on purpose.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from service import integrity
from service import segment as segment_module
from service.clean import clean
from service.config import Settings
from service.evaluate import figure_faults, number_cut
from service.ground import cuts_number, figures, visible_text
from service.pipeline import summarize
from service.segment import segment


def units(raw: str) -> list[str]:
    cleaned = clean(raw)
    structure = segment(raw, cleaned.blocks)
    return [u.text for s in structure.sentences + structure.tasks for u in s.units]


def checked(raw: str) -> integrity.Report:
    cleaned = clean(raw)
    return integrity.check(raw, cleaned, segment(raw, cleaned.blocks))


def whole(number: str, raw: str) -> bool:
    """Some unit holds the number whole, and none holds only a piece of it."""
    us = units(raw)
    return any(number in u for u in us) and not checked(raw).cut_units


@pytest.mark.parametrize("raw, number", [
    ("提升自贸试验区建设质效，85.2%的改革试点任务落地实施，下放省级权限。", "85.2%"),
    ("加强水上交通安全监管，10.73万艘乡镇船舶全面纳管。", "10.73万艘"),
    ("5.5%左右的预期增长目标，与发展潜力基本吻合，是一个积极稳妥的目标。", "5.5%左右"),
    ("全面完成年度任务，85．2%的改革试点任务落地实施。", "85．2%"),
    ("城镇调查失业率比上年下降，0.5个百分点的降幅来之不易。", "0.5个百分点"),
    ("深化放管服改革，1.7万余项涉企事项实现网上办理。", "1.7万余项"),
    ("持续推进大气污染防治，3.15%的降幅高于全国平均水平。", "3.15%"),
    ("项目建设有序推进，2025.12.31前全部完工交付使用。", "2025.12.31"),
])
def test_a_decimal_at_a_clause_head_is_a_figure_not_an_enumerator(raw, number):
    assert whole(number, raw), units(raw)


@pytest.mark.parametrize("raw, expected", [
    ("1.加强组织领导，落实各级主体责任。", "加强组织领导"),
    ("1．完善工作推进机制，建立健全工作台账。", "完善工作推进机制"),
    ("（1）建立工作台账，实行清单化管理。", "建立工作台账"),
    ("2、强化督导检查，确保各项任务落地。", "强化督导检查"),
])
def test_list_enumerators_are_still_enumerators(raw, expected):
    us = units(raw)
    assert us and us[0].startswith(expected), us


def test_a_number_in_inline_html_stays_inside_its_sentence():
    raw = ("<html><body><p>到2025年，家庭医生服务团队数量不低于全市全科医师服务团队总数的"
           '<span style="font-size: 10.5pt; line-height: 175%">25</span>％。到2025年，建成中医医院10所。</p>'
           "<p>第二段，持续完善基层医疗卫生服务网络，确保各项任务落到实处。</p></body></html>")
    cleaned = clean(raw)
    excluded = [raw[a:b] for (a, b) in (e.span for e in cleaned.excluded)]
    assert not any("25" in x for x in excluded), cleaned.excluded
    us = units(raw)
    assert any(visible_text(u).endswith("总数的25％") for u in us), us
    assert not any(u.startswith("％") for u in us), us
    assert not any("175" in u or "span" in u for u in us), us  # no markup read as words or figures
    assert checked(raw).counts() == {"cut_units": 0, "lost_numbers": 0, "excluded_parts": 0}


def test_markup_in_evidence_gives_figures_from_the_visible_text():
    evidence = '总数的<span style="line-height: 175%">25</span>％'
    assert visible_text(evidence) == "总数的25％"
    assert figures(visible_text(evidence)) == ["25％"]
    assert figure_faults("总数的25％。", evidence, ["25％"]) == []


def test_a_token_broken_over_lines_is_joined_not_dropped():
    raw = "2025年，全市空气质量持续改善，细颗粒物（PM\n2.5\n）平均浓度下降9.1%，优良天数比例达到85.2%。\n"
    cleaned = clean(raw)
    assert not cleaned.excluded
    us = units(raw)
    assert any(re.sub(r"\s", "", u) == "细颗粒物（PM2.5）平均浓度下降9.1%" for u in us), us
    assert checked(raw).counts() == {"cut_units": 0, "lost_numbers": 0, "excluded_parts": 0}


def test_a_page_number_under_a_heading_is_not_joined_to_it():
    raw = "一、主要工作\n12\n全年完成投资120亿元，同比增长8.5%。\n"
    assert "一、主要工作" in [b.text for b in clean(raw).blocks]


def test_a_date_lead_in_stays_with_the_claim_it_dates():
    us = units("截至6月底，全市已建成社区卫生服务中心125个，覆盖率达到98.5%。")
    assert us[0].startswith("截至6月底"), us


def test_the_check_sees_a_cut():
    text = "改革试点任务85.2%落地"
    assert cuts_number(text, text.index("2%"), len(text))
    assert cuts_number(text, 0, text.index(".2"))
    assert cuts_number(text, 0, len(text)) is None
    assert number_cut(text, (text.index("2%"), len(text)))
    assert number_cut(text, (0, len(text))) is None


def test_the_digest_refuses_an_item_whose_span_cuts_a_number(monkeypatch):
    raw = ("一、主要成效\n今年以来，全市深化改革成效明显。提升自贸试验区建设质效，85.2%的改革试点任务落地实施，"
           "下放省级权限120项，全市新增市场主体3.5万户，同比增长12.5%。\n")
    # the segmenter as it was: "85." read as an enumerator, leaving the unit "2%的改革…"
    broken = re.compile(r"^([一二三四五六七八九十]+是|[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+[.、．])")
    monkeypatch.setattr(segment_module, "ENUM_LEAD", broken)
    assert any(u.startswith("2%") for u in units(raw))  # the break took effect

    class NoModel:
        name, model = "none", "none"

        async def complete(self, request):  # the default digest asks nothing
            raise AssertionError("no model call expected")

        async def aclose(self):
            pass

    digest = asyncio.run(summarize(raw, NoModel(), Settings(assist_margin=0.0)))
    items = digest.achievements + digest.problems + digest.plans
    assert items, "the digest kept nothing: the test shows nothing"
    assert not any(it.evidence.startswith("2%") or "2%" in it.figures for it in items), items
    assert any("refused" in w and "inside a number" in w for w in digest.meta.warnings), digest.meta.warnings
