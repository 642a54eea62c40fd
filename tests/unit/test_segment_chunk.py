import pytest

from service.chunk import chunk, count_tokens
from service.clean import Block, clean
from service.segment import _cut_tail, segment
from tests.conftest import SEEDS


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
@pytest.mark.parametrize("budget", [60, 400, 1200])
def test_chunks_respect_budget_and_never_split_a_sentence(path, budget):
    raw = path.read_text(encoding="utf-8")
    sentences = segment(raw, clean(raw).blocks).sentences
    chunks = chunk(sentences, budget)
    flat = [s for c in chunks for s in c.sentences]
    assert flat == sentences  # every sentence in exactly one chunk, in order
    for c in chunks:
        assert c.tokens == sum(count_tokens(s.text) for s in c.sentences)
        assert c.tokens <= budget or len(c.sentences) == 1
        assert all(s.heading == c.heading for s in c.sentences)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_kept_text_is_covered_by_sentences(path):
    raw = path.read_text(encoding="utf-8")
    cleaned = clean(raw)
    structure = segment(raw, cleaned.blocks)
    covered = set()
    for s in structure.sentences:
        assert raw[s.start : s.end] == s.text
        covered.update(range(s.start, s.end))
    for h in structure.headings:
        covered.update(range(h.start, h.end))
    for b in cleaned.blocks:
        missing = [i for i in range(b.start, b.end) if i not in covered and not raw[i].isspace()]
        assert not missing, raw[b.start : b.end]


def test_one_claim_per_unit():
    raw = "加快推进医养结合。全市已建成医养结合机构8个,完成投资1.7亿元;在建13个,总投资19.4亿元。"
    from service.clean import Block

    structure = segment(raw, [Block(0, len(raw), raw)])
    units = [u.text for s in structure.sentences for u in s.units]
    assert any("8个" in u and "13个" not in u for u in units)
    assert any("13个" in u and "8个" not in u for u in units)


def test_tiktoken_runs_offline():
    assert count_tokens("济宁市卫生健康委召开全市卫生健康工作推进会议") > 10


def test_two_figures_stay_two_claims():
    from service.clean import Block

    raw = "上半年,全县新建村卫生室12所,家庭医生签约率达到78.5%。"
    units = [u.text for s in segment(raw, [Block(0, len(raw), raw)]).sentences for u in s.units]
    assert units == ["全县新建村卫生室12所", "家庭医生签约率达到78.5%"]


def _units(raw: str) -> list[str]:
    from service.clean import Block

    return [u.text for s in segment(raw, [Block(0, len(raw), raw)]).sentences for u in s.units]


def test_a_list_whose_members_each_state_a_figure_is_a_list_of_claims():
    # c12 (Jiangsu, 2026): the provincial gold has each of the three factories as its own item
    assert _units("入选国家领航级智能工厂2家、卓越级智能工厂67家、5G工厂301家，均居全国第一。") == [
        "入选国家领航级智能工厂2家", "卓越级智能工厂67家", "5G工厂301家，均居全国第一"]
    # one claim: a member that does not end on its figure, a member without what it counts,
    # a number inside a noun phrase, a quoted name
    for one in ("经济总量连跨5万亿元、6万亿元两个台阶。", "全年接待游客和过夜游客分别增长8%、8.4%。",
                "打造以30名全国国医大师、100名首都国医名师为骨干的中医药人才队伍。",
                "开展“建成示范村3个、示范乡镇5个”创建活动。",
                "成功抢救孕25周、体重700g患儿。"):  # c44: a Latin unit with words after it names the patient
        assert _units(one) == [one.rstrip("。")], one
    # a member is a claim of its own: it does not pair with the short clause before it (c13)
    assert _units("加强基础设施建设，力争全年完成交通投资2300亿元、能源投资2100亿元。") == [
        "加强基础设施建设", "力争全年完成交通投资2300亿元", "能源投资2100亿元"]
    # a member that only gives the change of the figure before it stays with that figure (s07)
    assert _units("全省进出口总值创历史新高，达到5379亿元、增长18.5％、居全国第8位。") == [
        "全省进出口总值创历史新高", "达到5379亿元、增长18.5％、居全国第8位"]
    assert _units("新增国家级专精特新企业32家、增长15%，省级创新平台156个、增长20%。") == [
        "新增国家级专精特新企业32家、增长15%", "省级创新平台156个、增长20%"]
    assert _units("新建乡镇卫生院12所、增长3%、村卫生室48所、增长5%。") == [
        "新建乡镇卫生院12所、增长3%", "村卫生室48所、增长5%"]
    # seed 001: the clause after the list gives each member its share ("分别", or a list of
    # figures): the list and that clause are one claim
    for one in ("分类救治贫困人口6419人、慢病签约2453人,分别占应救助人口的86.8%、88.5%。",
                "认定奖励扶助对象3.89万人、计生家庭特别扶助对象2559人,同比增加21%、29.5%。"):
        assert _units(one) == [one.rstrip("。")], one


def test_who_attended_a_meeting_is_no_claim():
    # seed 000 closes on the attendance list; its six clauses were read as plans held out
    assert _units("全市卫生健康工作推进会议召开。济宁市卫生健康委副县级及以上领导、各科室负责人,"
                  "各县市区卫生健康局局长、办公室主任,兖矿新里程医院院长参加会议。") == ["全市卫生健康工作推进会议召开"]
    assert _units("会议对下一步工作进行了再部署,确保圆满完成年度任务目标。委属各单位党政主要负责人参加会议。") == [
        "会议对下一步工作进行了再部署,确保圆满完成年度任务目标"]
    assert _units("会议由市卫生健康委党组书记、主任王某主持。") == []
    # a figure makes it a claim: how many took part is a result
    assert _units("组织义诊活动20场,群众5000余人参加活动。") == ["组织义诊活动20场", "群众5000余人参加活动"]


def test_a_unit_never_opens_on_the_markup_after_its_number():
    # c31 (a State Council page as HTML source): "6.</span>推动…" lost its number, kept the tag
    raw = ('<div><p><span style="x">6.</span>推动“互联网<span style="x">+</span>”中医医疗。'
           '大力发展中医远程医疗、移动医疗等新型医疗服务模式。</p></div>')
    cleaned = clean(raw)
    units = [(u.start, u.text) for s in segment(raw, cleaned.blocks).sentences for u in s.units]
    assert units[0][1].startswith("推动“互联网+”中医医疗") and raw[units[0][0]:].startswith("推动")


def test_a_comparison_stays_with_the_figure_it_compares():
    units = _units("上半年全市卫生监督覆盖率达到56.5%,高出全省23.5个百分点。全市共出生8.3万人,同比增长37.1%。")
    assert units == ["上半年全市卫生监督覆盖率达到56.5%,高出全省23.5个百分点", "全市共出生8.3万人,同比增长37.1%"]


def test_a_clause_stating_what_the_one_before_achieves_completes_it():
    units = _units("加强基层慢性病医防融合门诊建设,实现慢性病防、筛、治、管、康全过程服务。"
                   "新建标准化村卫生室42所,改造提升乡镇卫生院8家。")
    assert units == ["加强基层慢性病医防融合门诊建设,实现慢性病防、筛、治、管、康全过程服务",
                     "新建标准化村卫生室42所", "改造提升乡镇卫生院8家"]


def test_two_short_clauses_make_one_claim_unless_each_is_a_task():
    assert _units("进一步提升医疗服务能力,医院管理持续改进。") == ["进一步提升医疗服务能力,医院管理持续改进"]
    assert _units("深化公立医院综合改革,加快分级诊疗制度建设。") == ["深化公立医院综合改革", "加快分级诊疗制度建设"]


def test_a_framing_clause_heads_the_claim_after_it():
    # longer than two paired short clauses may be: only the framing rule joins them
    text = "聚焦聚力农村医疗卫生,实施基层医疗卫生机构服务能力提升项目攻坚突破和乡村医生队伍建设三年行动计划"
    assert _units(text + "。") == [text]


def test_an_opening_topic_sentence_joins_the_detail_after_it():
    units = _units("公立医院综合改革进一步深化。调整充实市医改工作领导小组,全部建立法人治理结构。")
    assert units[0].startswith("公立医院综合改革进一步深化。调整充实市医改工作领导小组")
    assert "公立医院综合改革进一步深化" not in units


@pytest.mark.parametrize("raw", [
    "曲阜被评为全省首批“健康促进市”;兖州、邹城被纳入创建试点。",  # a list item, not a topic
    "会议分析了当前面临的问题。会议强调,要坚持问题导向。",  # the next sentence reports speech
    "强力整治出生人口性别比。六是家庭发展支持体系进一步健全。",  # the next sentence is a new enumerated point
    "全县新建村卫生室12所。家庭医生签约率达到78.5%。",  # a figure makes it a claim of its own
])
def test_what_is_not_a_topic_sentence_stays_apart(raw):
    assert len(_units(raw)) == 2


def _structure(text: str):
    from service.clean import clean as _clean

    return segment(text, _clean(text).blocks)


def test_an_enumerated_list_keeps_the_section_that_announced_it():
    text = ("上半年工作回顾\n\n全市新建村卫生室12所。\n\n"
            "会议强调下半年的重点工作。\n\n(一)筹备召开卫生与健康大会\n\n对照通知精神抓好落实。\n\n"
            "(二)纵深推进医改工作\n\n全面取消药品加成。\n")
    st = _structure(text)
    by_text = {s.text: s for s in st.sentences}
    assert by_text["全市新建村卫生室12所。"].context == ("上半年工作回顾",)
    assert by_text["对照通知精神抓好落实。"].context == (
        "上半年工作回顾", "会议强调下半年的重点工作。", "(一)筹备召开卫生与健康大会")
    # the second item replaces its sibling instead of nesting under it
    assert by_text["全面取消药品加成。"].context[-1] == "(二)纵深推进医改工作"
    assert len(by_text["全面取消药品加成。"].context) == 3
    assert [t.text for t in st.tasks] == ["筹备召开卫生与健康大会", "纵深推进医改工作"]
    assert all(text[t.start : t.end] == t.text for t in st.tasks)


def test_a_line_that_ends_one_sentence_and_breaks_off_the_next_is_not_a_heading():
    s = _structure("群众的“烦心事”,就是改革攻坚的“紧要事”。7月15日,淄博市\n\n卫生健康委召开优化营商环境动员部署会议,"
                   "在全市卫生健康系统正式启动专项活动。")
    assert s.headings == []
    assert [x.text for x in s.sentences][-1].startswith("7月15日,淄博市\n\n卫生健康委召开")


def test_a_line_of_zero_width_spaces_inside_a_sentence_does_not_break_it():
    # a gov.cn copy of the 2021 report: the growth target's sentence broken by a line holding U+200B
    raw = ("今年发展主要预期目标是：城镇新增就业1100万人以上，城镇调查失业率5.5%左右。\n\n"
           "经济增速是综合性指标，今年预期目标设定\n\u200b\n为6%以上，考虑了经济运行恢复情况。\n\n"
           "实施更加积极的就业政策。城镇新增\n\u200b\n就业预期目标比去年多100万人。\n\n")
    s = _structure(raw)
    assert s.headings == []
    texts = [x.text for x in s.sentences]
    assert any(t.startswith("经济增速是综合性指标，今年预期目标设定") and "为6%以上" in t for t in texts)
    assert any("城镇新增\n\u200b\n就业预期目标比去年多100万人" in t for t in texts)
    # a blank line alone after a short open line still ends it (a title, a caption)
    lines = "实施更加积极的就业政策，稳定就业总体形势。\n\n今年预期目标设定\n\n为6%以上，考虑了经济运行恢复情况。"
    assert "为6%以上，考虑了经济运行恢复情况。" in [x.text for x in _structure(lines).sentences]


def test_a_plain_heading_starts_a_new_section():
    st = _structure("(一)筹备召开大会\n\n抓好落实。\n\n明年工作打算\n\n加快建设。\n")
    assert st.sentences[-1].context == ("明年工作打算",)


def _chunk_by_counting(sentences, budget):
    """The packing as it was: every sentence counted, sentence by sentence."""
    out: list[list] = []
    heading, tokens = object(), 0
    for s in sentences:
        n = count_tokens(s.text)
        if not out or heading != s.heading or tokens + n > budget:
            out.append([])
            heading, tokens = s.heading, 0
        out[-1].append(s)
        tokens += n
    return out


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
@pytest.mark.parametrize("budget", [1, 30, 60, 150, 400, 1200, 5000])
def test_chunks_are_the_ones_counting_every_sentence_gives(path, budget):
    # chunk() counts only where the byte bound cannot decide: the chunks must not change
    raw = path.read_text(encoding="utf-8")
    sentences = segment(raw, clean(raw).blocks).sentences
    chunks = chunk(sentences, budget)
    assert [c.sentences for c in chunks] == _chunk_by_counting(sentences, budget)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_repeated_and_odd_sentences_chunk_as_when_counted():
    from service.segment import Sentence

    texts = ["全市新建村卫生室12所。", "abc def " * 20, "全市新建村卫生室12所。", "\ud800孤立代理项。",
             "<|endoftext|>特殊标记按普通文本计。", "", "😀" * 30, "全市新建村卫生室12所。"] * 3
    sentences = [Sentence(i, i + 1, t, "一节" if i < 12 else "二节", index=i, para=0, context=())
                 for i, t in enumerate(texts)]
    for budget in (1, 10, 25, 40, 80, 200):
        chunks = chunk(sentences, budget)
        assert [c.sentences for c in chunks] == _chunk_by_counting(sentences, budget)
        for c in chunks:
            assert c.tokens == sum(count_tokens(s.text) for s in c.sentences)


def test_count_tokens_reads_special_token_text_as_plain_text():
    from service.chunk import _encoding

    text = "报告<|endoftext|>结束<|fim_prefix|>"
    assert count_tokens(text) == len(_encoding().encode(text, disallowed_special=())) > 5


# A news photo's caption set into a sentence, as in seed 000 and seed 002 (pasted web text: the
# photo leaves blank lines above its caption).
_CUT = ("8月20日上午,全市卫生健康工作推进会议召开,会议对下一步工作进行再部署、再督促。深入开展卫生监督执法“蓝盾行动”。"
        "强力推进新旧动能转换,深耕医养\n\n\n\n会议现场。\n\n健康产业,深化医养结合示范先行市(县)建设,强力推进“互联网+医疗健康”。\n")


def test_a_caption_cut_into_a_sentence_ends_the_clause_before_it_and_opens_nothing():
    cleaned = clean(_CUT)
    assert [(_CUT[a:b], why) for (a, b), why in ((e.span, e.reason) for e in cleaned.excluded)] == [
        ("会议现场。", "photo caption")]
    units = [u for s in segment(_CUT, cleaned.blocks).sentences for u in s.units]
    cut = next(u for u in units if u.text.endswith("深耕医养"))
    assert cut.tail == "健康产业"
    # the words after the caption end the clause before it: no unit opens on them, none holds the caption
    assert [u.text for u in units if u.start > cut.end][0] == "深化医养结合示范先行市(县)建设"
    assert not any("会议现场" in u.text or u.text.startswith("健康产业") for u in units)
    assert sum(bool(u.tail) for u in units) == 1


def test_a_word_cut_by_a_caption_is_read_whole_and_a_title_above_a_byline_is_no_half_sentence():
    word = ("全区扎实推进家庭医生签约服务,重点人群签约率达到80%,群众满意度持续提升。扎实推进免疫规划工作,深化医防协同。"
            "高度重视免疫规划工\n\n\n\n"
            "济阳区人民医院与“北京名医专家团队”签约揭牌。\n\n作,不断优化免疫服务模式,加强规范预防接种管理。\n")
    units = [u for s in _structure(word).sentences for u in s.units]
    assert [(u.text, u.tail) for u in units if u.tail] == [("高度重视免疫规划工", "作")]
    assert not any(u.text.startswith("作") for u in units)
    # a short line with no sentence ended inside it (an account line, a dateline) is not half a
    # sentence, even when what follows it opens on a few words and a comma
    raw = "发布于贵州省卫生健康委员会官方账号\n\n+关注 健康贵州\n\n健康是需求,健康是责任。"
    after = raw.index("健康是需求")
    assert _cut_tail(raw, Block(0, 17, raw[:17]), Block(after, len(raw), raw[after:])) == 0
    longer = "健康是需求。" + raw
    assert _cut_tail(longer, Block(0, 23, longer[:23]), Block(after + 6, len(longer), longer[after + 6:])) == len("健康是需求,")


def test_a_headline_set_into_a_sentence_heads_what_follows_and_the_words_after_it_end_the_sentence():
    # seed 003, a newspaper page read as text: the next story's two-line headline sits mid-sentence
    raw = ("2019年卫生健康事业实现新突破\n\n各基层医疗卫生机构医务人员积极开展卡点监测排查,宣传防控政策和防护知识。"
           "动员近700名民营医院、门诊部、个体诊所等编外卫\n\n主动担当 奋勇战疫\n\n疫情防控中展现新作为\n\n"
           "生力量参与防控工作。 控制病毒传染 疾控战士冲锋在前。市疾控中心累计检测6050多份核酸样本。\n")
    st = _structure(raw)
    assert [h.text for h in st.headings] == ["2019年卫生健康事业实现新突破", "主动担当 奋勇战疫", "疫情防控中展现新作为"]
    units = [(u.text, u.tail, s.context[-1]) for s in st.sentences for u in s.units]
    assert ("动员近700名民营医院、门诊部、个体诊所等编外卫", "生力量参与防控工作", "2019年卫生健康事业实现新突破") in units
    # the words after the headline open no unit; the clause glued after them does, under the headline
    assert [u[0] for u in units if u[2] == "疫情防控中展现新作为"] == ["控制病毒传染 疾控战士冲锋在前",
                                                              "市疾控中心累计检测6050多份核酸样本"]
    assert not any("主动担当" in u[0] or "生力量" in u[0] for u in units)
