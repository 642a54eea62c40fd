"""service.merge.dedupe: a repeated paragraph is reported once; one span may serve two categories."""

from service.merge import dedupe
from service.models import Item


def _item(evidence: str, start: int) -> Item:
    return Item(summary=evidence, evidence=evidence, span=(start, start + len(evidence)), figures=[])


def test_a_repeated_paragraph_is_reported_once():
    items = {"achievements": [], "problems": [],
             "plans": [_item("深入开展爱国卫生运动", 10), _item("深入开展爱国卫生运动", 500)]}
    out, dropped = dedupe(items)
    assert [it.span for it in out["plans"]] == [(10, 20)]
    assert dropped == 1


def test_the_same_span_in_two_categories_is_kept_in_both():
    fix = "补齐县域医疗卫生服务体系“短板”"
    items = {"achievements": [], "problems": [_item(fix, 40)], "plans": [_item(fix, 40)]}
    out, dropped = dedupe(items)
    assert len(out["problems"]) == len(out["plans"]) == 1
    assert dropped == 0


def test_first_mentions_keeps_what_dedupe_keeps_in_its_order():
    # assemble learns the survivors from spans and evidence before it builds any item
    from service.merge import first_mentions

    items = {"achievements": [_item("全市新建村卫生室12所", 90), _item("深入开展爱国卫生运动", 10)],
             "problems": [_item("深入 开展爱国卫生运动。", 300), _item("短板", 40)],
             "plans": [_item("短板", 40), _item("深入开展爱国卫生运动", 10), _item("全市新建村卫生室12所", 700)]}
    kept, dropped = first_mentions({c: [(it.span, it.evidence, it) for it in items[c]] for c in items})
    assert (kept, dropped) == dedupe(items)
    assert [it.span for it in kept["achievements"]] == [(10, 20), (90, 101)]  # by span, not as given
    assert kept["problems"] == [items["problems"][1]] and dropped == 2


# ------------------------------------------------------------------ the digest's doc fields
# Shapes from the corpus: a speech's "我代表北京市人民政府", a title that opens on its year, a
# province named without 省 in a headline, an addressee list, a preposition before a county.


def test_a_place_is_read_from_a_province_or_a_name_that_begins_a_phrase():
    from service.merge import doc_info

    def fields(kept: str, title: str | None = None) -> tuple[str | None, str | None]:
        info = doc_info(kept, kept, title)
        return info.organization, info.region

    assert fields("现在，我代表北京市人民政府，向大会报告工作。") == ("北京市人民政府", "北京市")
    assert fields("现在，我谨代表市人民政府，向大会报告工作。") == (None, None)
    assert fields("正文。", "2026年江苏省政府工作报告") == (None, "江苏省")
    assert fields("正文。", "将健康融入所有政策 共建共享健康贵州") == (None, "贵州")
    assert fields("各省、自治区、直辖市人民政府，国务院各部委：") == (None, None)
    assert fields("人员名单由区县卫生局统一报送。") == (None, None)
    assert fields("在市委、市政府和市卫计委的关心下，医院开诊。") == (None, None)
    assert fields("8月20日上午,济宁市卫生健康委召开全市卫生健康工作推进会议。") == ("济宁市卫生健康委员会", "济宁市")
    assert fields("肃南县卫生健康局关于整改的报告") == ("肃南县卫生健康局", "肃南县")
    assert fields("山东省济宁市卫生健康委员会发布通知。") == ("山东省济宁市卫生健康委员会", "山东省济宁市")


def test_the_period_is_the_years_the_report_covers_not_a_target_record_or_founding():
    from service.merge import doc_info

    def period(kept: str, title: str | None = None) -> str | None:
        return doc_info(kept, kept, title).period

    assert period("综合考虑实现2035年远景目标，2026年主要预期目标是：…") == "2026年"
    assert period("到2035年基本实现现代化。2025年上半年，全市完成投资。") == "2025年上半年"
    assert period("农村居民人均纯收入实际增速为1985年以来最高。2010年经济平稳。") == "2010年"
    assert period("西京医院前身是1939年在延安成立的卫生部。医院始建于1952年。") is None
    # a baseline compared against is not the period; a part named by its year is
    assert period("PM2.5年均浓度较2020年下降25%，人均预期寿命从2020年的82.4岁提升。\n三、2026年重点工作\n今年是…") == "2026年"
    assert period("落实2030年应对气候变化国家自主贡献目标。\n  三、2021年重点工作\n今年…") == "2021年"
    assert period("一、2013年工作回顾\n过去一年，…2014年工作总体部署") == "2013年"
    assert period("正文中有2016年。", "中医药健康服务发展规划（2015—2020年）") == "2015—2020年"


def test_a_time_frame_joins_the_clause_it_frames_and_is_no_claim_alone():
    from service import pipeline
    from service.clean import clean
    from service.features import units_of
    from service.merge import framed, is_time_frame
    from service.segment import segment

    assert is_time_frame("2011年9月起") and is_time_frame("至2014年6月30日") and is_time_frame("截至 2014年底")
    assert not is_time_frame("2011年9月起开展试点") and not is_time_frame("签约家庭58.7万户")
    text = ("2011年9月起，我市开展契约式家庭医生制服务试点工作，至2014年6月30日，全市已实施城乡居民与全科医生签约服务的"
            "社区卫生服务中心（乡镇卫生院）151家，机构实施率为99%。\n\n2017年2月7日\n")  # c54's sentence
    units = units_of(segment(text, clean(text).blocks))
    assert [u.text for u in units][:3] == ["2011年9月起", "我市开展契约式家庭医生制服务试点工作", "至2014年6月30日"]
    ach = ("achievements",)
    decisions = [ach, ach, (), ach] + [ach] * (len(units) - 4)
    assert framed(units, decisions)[:2] == [(0, 1, ach), (2, 3, ach)]  # a frame's own label does not count
    items, _ = pipeline.assemble(text, units, decisions, [])
    got = [(it.evidence, it.summary) for it in items["achievements"]]
    assert got[0] == ("2011年9月起，我市开展契约式家庭医生制服务试点工作", "2011年9月起，我市开展契约式家庭医生制服务试点工作。")
    assert got[1][0].startswith("至2014年6月30日，全市已实施") and got[1][0].endswith("151家")
    assert all(it.evidence == text[it.span[0]:it.span[1]] for it in items["achievements"])
    assert "2017年2月7日" not in [e for e, _ in got]  # a date alone is no claim
    # the clause after a frame that is not a claim: nothing from the frame either
    items, _ = pipeline.assemble(text, units, [ach, (), (), ()] + [()] * (len(units) - 4), [])
    assert items["achievements"] == []
