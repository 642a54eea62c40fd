"""The overview (deterministic and the check on a model-written one), summaries and their display."""

from service.config import Settings
from service.context import Replaced, summary_for
from service.models import DocInfo, Item
from service.overview import plain, unsupported
from service.render import restates, to_markdown
from tests.doubles.web_page import WEB_PAGE


def item(evidence: str, summary: str | None = None, figures=()) -> Item:
    return Item(summary=summary or evidence, evidence=evidence, span=(0, len(evidence)), figures=list(figures))


ITEMS = {
    "achievements": [item("会议指出,今年以来工作有序推进。"),
                     item("全县新建标准化村卫生室42所,", "新建村卫生室42所", ["42所"]),
                     item("覆盖率达到95%", "村卫生室覆盖率95%", ["95%"])],
    "problems": [item("基层医务人员数量不足")],
    "plans": [item("加快推进县医院新院区建设"), item("确保年内投入使用"), item("第三项计划")],
}
DOC = DocInfo(organization="某县卫生健康局", period="2025年上半年", chars=100)


LEARNED = Settings(backend="replay", strategy="learned", assist_margin=0.0, no_cache=True)


def learned_digest(text: str):
    """The default digest of ``text`` (learned strategy, no model call), through ``summarize``."""
    import asyncio

    from service.backends import make_backend
    from service.pipeline import summarize

    async def digest():
        backend = make_backend(LEARNED)
        try:
            return await summarize(text, backend, LEARNED)
        finally:
            await backend.aclose()

    return asyncio.run(digest())


def test_the_plain_overview_names_the_leading_items_not_a_count():
    text = plain(DOC, ITEMS)
    assert text.startswith("某县卫生健康局2025年上半年，主要成绩:")
    assert "新建村卫生室42所" in text and "村卫生室覆盖率95%" in text  # results with figures first
    assert "今年以来工作有序推进" not in text
    assert "基层医务人员数量不足" in text and "加快推进县医院新院区建设" in text and "第三项计划" not in text
    assert "项、" not in text  # no "成绩3项、问题1项" count


def test_the_plain_overview_of_an_empty_digest_says_so():
    assert "未识别" in plain(DOC, {"achievements": [], "problems": [], "plans": []})


def test_a_figure_not_in_any_item_evidence_is_unsupported():
    assert unsupported("新建村卫生室42所,覆盖率达到95%。", ITEMS) == []
    assert unsupported("新建村卫生室43所。", ITEMS) == ["43所", "43"]
    assert unsupported("覆盖率达到95.0%。", ITEMS)  # a figure reworded is a different figure
    # the report's own period (read from its text, shown in the prompt) may be named
    assert unsupported("2025年上半年新建村卫生室42所。", ITEMS) == ["2025年", "2025"]
    assert unsupported("2025年上半年新建村卫生室42所。", ITEMS, DOC) == []


def test_a_summary_is_used_only_when_shorter_and_faithful():
    evidence = "全市累计接种疫苗3万余人次,接种率达到81.7%。"
    assert summary_for("累计接种3万余人次,接种率81.7%", evidence) == ("累计接种3万余人次,接种率81.7%", False)
    assert summary_for("累计接种3万人次", evidence) == (evidence, True)  # the unit changed
    assert summary_for("接种率82%", evidence) == (evidence, True)  # rounded
    assert summary_for("", evidence) == (evidence, False)
    assert summary_for(evidence + "。", evidence) == (evidence, False)  # as long as the quote, adding nothing
    # longer than the quote with a word from nowhere: replaced, and counted (issue 27)
    assert summary_for(evidence + "很好", evidence) == (evidence, Replaced.FROM_NOWHERE)


def test_markdown_shows_a_restated_summary_once_and_a_real_summary_above_its_quote():
    md = to_markdown({"doc": {"chars": 10}, "overview": "概述", "meta": {"backend": "b", "model": "m",
                      "prompt_version": "p"}, "achievements": [i.model_dump() for i in ITEMS["achievements"]]})
    assert md.count("今年以来工作有序推进") == 1
    assert "- 新建村卫生室42所 〔42所〕\n  > 全县新建标准化村卫生室42所," in md
    assert restates("会议指出,今年以来工作有序推进。", "会议指出,今年以来工作有序推进")
    assert not restates("新建村卫生室42所", "全县新建标准化村卫生室42所,")


def test_the_context_strategy_is_the_default_for_an_endpoint_only():
    s = Settings(strategy="auto")
    assert s.resolved_strategy("openai") == "context"
    assert s.resolved_strategy("local") == s.resolved_strategy("replay") == "learned"
    assert Settings(strategy="context").resolved_strategy("local") == "context"


def test_markdown_quotes_web_page_evidence_as_a_reader_sees_it():
    """A sentence that runs across inline markup keeps its tags in the evidence (an exact slice
    of the page source), and the Markdown quotes it without them, offsets unchanged."""
    page = WEB_PAGE
    d = learned_digest(page)
    items = [it for c in ("achievements", "problems", "plans") for it in getattr(d, c)]
    crossing = [it for it in items if "<span" in it.evidence]
    assert crossing, [it.evidence for it in items]  # the case this is about
    assert all(page[it.span[0]:it.span[1]] == it.evidence for it in items)
    md = to_markdown(d)
    assert "<" not in md and "font-size" not in md
    assert "新建标准化村卫生室42所" in md
    for it in crossing:
        assert f"(字符 {it.span[0]}–{it.span[1]})" in md


def spaced(evidence: str, start: int, summary: str | None = None, figures=()) -> Item:
    return Item(summary=summary or evidence, evidence=evidence, span=(start, start + len(evidence)), figures=list(figures))


def test_with_confidence_the_plain_overview_names_the_most_confident_items_in_the_reports_order():
    items = {
        "achievements": [spaced("会议指出,今年以来工作有序推进。", 0), spaced("新建村卫生室42所", 20, figures=["42所"]),
                         spaced("床位达到300张", 40, figures=["300张"]), spaced("门诊量增长5%", 60, figures=["5%"])],
        "problems": [],
        "plans": [spaced("会议要求,各单位提高站位", 100), spaced("加快推进县医院新院区建设", 120),
                  spaced("确保年内投入使用", 140)],
    }
    confidence = {"achievements": [0.99, 0.4, 0.6, 0.9], "problems": [], "plans": [0.3, 0.5, 0.9]}
    text = plain(DOC, items, confidence)
    # plans: the two most confident, the report's order kept; the lead's framing left out
    assert "下一步:加快推进县医院新院区建设;确保年内投入使用。" in text
    assert "提高站位" not in text
    # results: the most confident of those with figures, in the report's order
    assert "主要成绩:床位达到300张;门诊量增长5%。" in text
    # without confidence: the first items, as before
    assert "会议要求,各单位提高站位" in plain(DOC, items)


def test_item_confidence_reads_each_items_unit_row_in_the_labellers_label_order():
    import numpy as np

    from service.features import UnitRef
    from service.pipeline import item_confidence

    units = [UnitRef(0, 4, "甲乙丙丁", "甲乙丙丁。", 0, (), False, 0), UnitRef(5, 9, "戊己庚辛", "戊己庚辛。", 0, (), False, 0)]
    labels = ("other", "plans", "problems", "achievements")  # a labeller file's own order
    proba = np.array([[0.1, 0.2, 0.3, 0.4], [0.05, 0.8, 0.1, 0.05]])
    items = {"achievements": [spaced("甲乙丙丁", 0)], "problems": [spaced("甲乙丙丁", 0)],
             "plans": [spaced("戊己庚辛", 5), spaced("不是单元", 20)]}
    assert item_confidence(items, units, proba, labels) == {"achievements": [0.4], "problems": [0.3], "plans": [0.8, 0.0]}


def test_the_learned_digests_overview_names_its_most_confident_plans():
    """Seed 000's first plans are the meeting's framing; its overview names the two plans the
    labeller is surest of (it names the first two if the pipeline passes no confidence)."""
    from pathlib import Path

    from service.overview import _clip
    from service.pipeline import PrepareOptions, item_confidence, prepare

    text = (Path(__file__).resolve().parents[2] / "fixtures/articles/000_e74761c77b6d2746.txt").read_text(encoding="utf-8")
    d = learned_digest(text)
    prepared = prepare(text, PrepareOptions.of(LEARNED, "replay"))
    items = {c: getattr(d, c) for c in ("achievements", "problems", "plans")}
    plans = item_confidence(items, prepared.units, prepared.proba, prepared.labels)["plans"]
    surest = sorted(range(len(plans)), key=lambda i: -plans[i])[:2]
    assert sorted(surest) != [0, 1]  # the case this is about
    named = ";".join(_clip(d.plans[i].summary) for i in sorted(surest))
    assert f"下一步:{named}。" in d.overview


def test_a_quoted_remark_is_named_without_its_quotation_marks_and_no_cut_leaves_one_open():
    from service.overview import _clip

    remark = "“针对公共卫生体系在应对疫情中暴露出的能力不强、机制不活、动力不足、防治结合不紧密等问题,立足更精准更有效的防控,下决心深化改革。”"
    clipped = _clip(remark)
    assert clipped == "针对公共卫生体系在应对疫情中暴露出的能力不强、机制不活、动力不足、防治结合不紧密等问题,立足更精准更有效的防控"
    assert _clip("“让我们看到短板。”") == "让我们看到短板"
    assert _clip("他说“要抓落实”") == "他说“要抓落实”"  # a quotation inside a summary stays
