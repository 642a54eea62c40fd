"""Label sentences and units: achievement, problem, plan or other.

Measured here (DESIGN.md): a 1.5B model's zero-shot label for a sentence is right about
half the time, while tense and cue words are reliable where they occur. So labels come
from cheap deterministic signals first (cue words, the section heading, the reporting
verb that opens the paragraph), and the model decides only the sentences those signals
leave open. Everything here is pure; the model call itself lives in ``service.pipeline``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from typing import Literal

Label = Literal["achievements", "problems", "plans", "other"]

# Strong cues say the tense outright; weak ones ("加快推进", "进一步") open both plans and
# achievement topic sentences ("公立医院综合改革进一步深化"), so they only break ties.
PLAN_CUE = re.compile(
    r"(下一步|下半年|力争|争取|确保|年底前|年内|"
    # 要 but not 主要/重要/需要 ("主要指标继续向好" promises nothing)
    r"(?<![主重需只纲摘首必概显紧扼])要(?!求|素|点|闻|案|件|害|事|务|的)|"
    # the future 将 is followed by a verb or adverb; 将 before a noun is the preposition 把
    # ("将人民健康放在首位")
    r"将(?=[是进继加全以在坚持着于重启建实推开组深完强提努力大聚积围逐充不会要成按从把对向与立切牢扎统稳通探构打做落])|"
    r"计划|拟|目标是|务必|必须|应当|明年|今后|\d{4}年前|到\d{4}年|即将)"
)
WEAK_PLAN_CUE = re.compile(
    r"(努力|着力|持续推进|全面推进|深入推进|扎实推进|加快推进|强力推进|纵深推进|进一步(?=[加强推提深完优健落抓做实强])|"
    r"聚焦聚力|坚持|加快|推动|推进|加强|强化|完善|深化|提升|实施|打造|构建|健全)"
)
DONE_CUE = re.compile(
    r"(已(?!经成为)|已经|完成|达到|实现了|建成|创成|获评|获得|荣获|取得|累计|先后|成功|位列|居全|"
    r"同比|增长|提高到|提升到|下降|减少|率为|受益|共计|开展了|举办了|出台了|印发|成立了|"
    r"通过了|被评为|列为|纳入|圆满|顺利|得到|交出|截至|获[^,，。;；]{0,24}奖|"
    r"[0-9０-９]+(\.\d+)?(%|个|家|人|万|亿|元|次|项|所|处|例|台|名|张|份|条|户|床))"
)
# "问题导向", "剖析问题", "风险防控" name a method or a measure, not a shortcoming.
PROBLEM_CUE = re.compile(
    r"((?<!剖析|分析|找出|正视|回避|检视|解决)问题(?!导向)|短板|弱项|不足|难点|痛点|堵点|漏洞|薄弱|困难|滞后|不够|不强|不高|"
    r"不优|不平衡|不充分|压力|风险(?!防控|评估|监测|预警)|瓶颈|差距|矛盾|隐患|挑战|欠缺|缺乏|短缺|紧缺|青黄不接|烦心事|难题|不正之风|"
    r"乱象|暴露出)"
)
# Only these report a result outright; in a section whose title looks ahead, a figure or a
# done verb ("全面完成…任务", "增加4个院前急救站点") states a target instead.
STRONG_DONE = re.compile(r"(已|累计|截至|截止|先后|荣获|获评|被评为)")
PLAN_SECTION = re.compile(r"(下半年|下一步|今后|明年|重点工作|工作安排|工作打算|工作计划|工作思路|主要任务|部署|"
                          r"目标任务|新征程|新的一年|展望|\d{4}年工作|再发力|攻坚突破)")
DONE_SECTION = re.compile(r"(成绩|成效|回顾|上半年|亮点|成果|进展|取得|实现|突破|新篇章|交出)")
REPORT_PLAN = re.compile(r"(强调|要求|提出|部署|指出下一步|表示)[,，:：]")
NOT_CLAIM = re.compile(r"(参加会议|出席会议|主持会议|参加了会议|出席了|记者|通讯员|供图|摄)")


def cue_label(text: str) -> Label | None:
    """The label strong cue words give a piece of text, or None when they say nothing clear."""
    plan = bool(PLAN_CUE.search(text))
    done_words = [m.group(0) for m in DONE_CUE.finditer(text)]
    # a figure next to a strong plan cue is a target ("确保全年巡诊150万户次"), not a result
    done = any(not w[0].isdigit() for w in done_words) or (bool(done_words) and not plan)
    if plan and not done:
        return "plans"
    if done and not plan:
        return "achievements"
    return None


def section_label(heading: str | Sequence[str] | None, plan_titles: Collection[str] = ()) -> Label | None:
    """The tense a section title implies; for nested sections the nearest title that says one.

    ``plan_titles`` are titles the document as a whole marks as ahead (see later_year_titles).
    """
    titles = [heading] if isinstance(heading, str) else list(heading or ())
    for title in reversed(titles):
        if title in plan_titles or PLAN_SECTION.search(title):
            return "plans"
        if DONE_SECTION.search(title):
            return "achievements"
    return None


YEAR_TITLE = re.compile(r"^\s*(\d{4})\s*年")


def later_year_titles(titles: Iterable[str]) -> frozenset[str]:
    """Titles that open on the latest of several years: "2019年…实现新跨越" reviews, so
    "2020年…再上新台阶" after it looks ahead, though its words say neither."""
    years = {t: int(m.group(1)) for t in titles if (m := YEAR_TITLE.match(t))}
    if len(set(years.values())) < 2:
        return frozenset()
    latest = max(years.values())
    return frozenset(t for t, y in years.items() if y == latest)


def unit_label(unit_text: str, sentence_label: Label, section: Label | None = None) -> Label:
    """A unit inherits its sentence's label; a stated shortcoming is a problem wherever it is."""
    if sentence_label == "other" or FRAMING.search(unit_text):
        return "other"
    if PROBLEM_CUE.search(unit_text):
        return "problems"
    own = cue_label(unit_text)
    if own == "achievements" and section == "plans" and not STRONG_DONE.search(unit_text):
        return "plans"  # "全面完成7399名…救治任务" under "下半年重点工作" is a target
    if own is None and sentence_label == "achievements" and is_bare_directive(unit_text):
        return "other"
    return own or sentence_label


# "加强优势重点学科建设", "逐步提升基层医疗卫生机构服务能力": a directive verb and an abstract
# object. In a review it is a topic line or a slogan; the claim is the result that follows.
BARE_DIRECTIVE = re.compile(r"^\s*(全力|切实|逐步|不断|稳步|持续|进一步|积极|大力|扎实|着力)?"
                            r"(加强|提升|促进|强化|推动|提高|推进|发挥|坚持|聚焦|增强|优化|深化|完善)")


def is_bare_directive(unit_text: str) -> bool:
    """One clause, no figure, nothing named in quotes or 《》, opening on a directive verb."""
    return bool(BARE_DIRECTIVE.match(unit_text)) and not re.search(r"[\d“《,，;；]", unit_text)


# Verbs that act on a shortcoming: "补齐…短板", "破解…痛点", "集中解决…问题".
FIXES = re.compile(r"(补齐|补足|破解|解决|整治|消除|打通|攻破|找准|缓解|查处|整顿|治理|弥补|填补|化解|防范|堵塞|纠正|克服|突破)")


def unit_labels(unit_text: str, sentence_label: Label, section: Label | None = None) -> tuple[Label, ...]:
    """Every category a unit belongs to, none for "other".

    A measure that names the shortcoming it fixes ("补齐县域医疗卫生服务体系短板") is two
    claims: the measure (a plan or an achievement) and the problem that motivates it.
    """
    label = unit_label(unit_text, sentence_label, section)
    if label == "other":
        return ()
    if label == "problems" and sentence_label in ("plans", "achievements") and FIXES.search(unit_text):
        return ("problems", sentence_label)
    return (label,)


def paragraph_label(texts: list[str]) -> Label | None:
    """The tense most sentences of a paragraph state outright (a clear majority)."""
    votes = [cue_label(t) for t in texts]
    plans, done = votes.count("plans"), votes.count("achievements")
    if plans >= 2 * max(done, 1) - 1 and plans > done:
        return "plans"
    if done >= 2 * max(plans, 1) - 1 and done > plans:
        return "achievements"
    return None


# "人才是医疗服务质量的保证", "2020年是…决胜之年": a sentence that defines or characterises
# is commentary, unless what it characterises is a shortcoming ("…一直是…弱项").
COPULA = re.compile(r"^[^,，。]{2,30}?(?<![一二三四五六七八九十但还于总就凡要只若也都将更])是(?!否|指|在)")
# Units that frame a claim without being one: a purpose ("为切实提升…"), a speech lead that
# ends the clause ("这次重点工作推进会提出"), or a verdict on the meeting ("具有重大指导意义").
FRAMING = re.compile(
    r"^\s*为了?\s*(切实|全力|进一步|更好|加快|加强|提升|推动|确保|全面|有效|解决|从根本上|实现|促进|满足|适应)|"
    r"(提出|表示|指出|强调|认为|介绍|说|透露)[:：]?\s*$|"
    r"(重大意义|重要意义|指导意义|蓝图|新篇章|催人奋进|必经之路|深刻变革)"
)
NOT_CLAIM_START = re.compile(r"^(随着|而随着|正如|这是|这又是|这意味着|更值得|当然|在这样的|近日,一篇|文章|没有.{2,8}就没有)")


# "民之所盼,政之所向。", "山河书锦绣,再起新征程。": a couplet of two short phrases is a slogan.
COUPLET = re.compile(r"^\s*[\u4e00-\u9fff“”]{2,6}[,，][\u4e00-\u9fff“”]{2,6}[。!！]?\s*$")


def sentence_label(text: str, section: Label | None, model_label: Label | None, *, after_directive: bool,
                   para: Label | None = None) -> Label:
    """Decide a sentence's label, strongest signal first; the model only breaks ties.

    ``section`` is what the enclosing section titles say (section_label).
    """
    if (NOT_CLAIM.search(text) and len(text) < 200) or NOT_CLAIM_START.search(text) or COUPLET.match(text):
        return "other"
    if COPULA.search(text) and not PROBLEM_CUE.search(text):
        return "other"
    if cue := cue_label(text):
        if cue == "achievements" and section == "plans" and not STRONG_DONE.search(text):
            return "plans"
        return cue
    if after_directive or section == "plans":
        return "plans"  # "会议强调, ..." or a plan section: instructions follow
    if para:
        return para
    if section == "achievements":
        return section  # a title that reviews ("…实现新跨越") says more than the model's guess
    if model_label:
        return model_label
    if WEAK_PLAN_CUE.search(text):
        return "plans"
    return "achievements"


def needs_model(text: str, section: Label | None, *, after_directive: bool, para: Label | None) -> bool:
    """True when no deterministic signal decides the sentence."""
    first = sentence_label(text, section, "other", after_directive=after_directive, para=para)
    second = sentence_label(text, section, "plans", after_directive=after_directive, para=para)
    return first != second
