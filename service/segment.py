"""Document structure: headings, sentences and claim-sized units, each with a raw span.

The quality measure (and users) want one item per claim: a predicate with its object and
figures, usually one or two comma clauses, median 24 characters. Sentences are too
coarse (at most 54% of gold claims can be matched by whole sentences), so sentences are
cut into comma clauses and clauses are glued back only where a clause cannot stand as a
claim on its own (a lead-in such as "会议指出", a fragment too short to carry a claim).

Pure functions: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import accumulate

from service.clean import CLOSERS, HEADING_RE, MASK, TERMINAL, Block, goes_on

SENTENCE_END = re.compile(rf"[{TERMINAL}]+[{CLOSERS}]*")
# Clause boundaries inside a sentence. "、" separates list members, not claims.
CLAUSE_BREAK = re.compile(r"[,，:：]")
# OCR text often prints a gap where a comma or full stop was; in such a sentence a gap
# between two Chinese characters is a clause break (short fragments are glued back later).
OCR_GAP = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
OCR_BREAK = re.compile(r"[,，:：]|(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")


_ANY_SPACE = re.compile(r"\s")


def _looks_ocr(text: str) -> bool:
    # a gap is whitespace: a sentence without any (most) skips the look-around scan
    return _ANY_SPACE.search(text) is not None and len(OCR_GAP.findall(text)) >= 3
# Lead-ins that report speech or set a time; they never carry a claim themselves.
LEAD_IN = re.compile(
    r"^(会议|大会|报告|他|她|我们|[\u4e00-\u9fff]{2,4})?(指出|强调|表示|提出|认为|要求|介绍|说|透露)$|"
    r"^(今年以来|近年来|一年来|上半年|下半年|目前|截至目前|截至\d+月(底|末)?|其中|同时|此外|另外|首先|其次|最后|"
    r"为此|对此|因此|总之|一是|二是|三是|四是|五是|六是|七是|八是|九是|十是|[\d—\-年月份]+)$"
)
# Who attended or chaired a meeting ("…各科室负责人,…医院院长参加会议。", "会议由…主持。") is the
# story's chrome, never a claim; a figure makes it one ("群众5000余人参加活动").
ATTENDANCE = re.compile(r"^(?!.*\d).*(参加|出席|列席)(了)?(本次|此次)?(会议|活动|仪式|发布会|座谈会)"
                        r"(并(讲话|致辞|作重要讲话))?[。！]?\s*$|^\s*会议由[^，,。]{1,40}主持[。]?\s*$")
# A clause that only compares the figure before it ("高出全省23.5个百分点", "同比增长37.1%",
# "分别占应救助人口的86.8%") belongs to the claim that states that figure.
COMPARISON_TAIL = re.compile(r"^\s*(高出|高于|低于|超过|超出|超额|分别占|占全|占比|同比|比上年|较上年|比去年|较去年|环比|位居|居全)")
# A clause that states what the clause before it achieves ("…,实现慢性病防、筛、治、管、康全过程服务",
# "…,确保年底80%以上的乡镇卫生院…达到标准化水平") completes that claim.
CONSEQUENCE = re.compile(r"^\s*(实现|形成|让|使|确保|为|助力|满足|从而|进而|带动)")
# Either of the two above: a clause that completes the claim before it (one match, not two).
JOINS_PREVIOUS = re.compile(rf"{COMPARISON_TAIL.pattern}|{CONSEQUENCE.pattern}")
# A clause that sets the frame for the one after it ("聚焦聚力农村医疗卫生,实施…攻坚突破",
# "以家庭医生签约为抓手,推进…") heads that claim.
FRAME_HEAD = re.compile(r"^\s*(聚焦|以|围绕|按照|针对|特别是|结合|立足|依托|通过|对照|根据|在)")
# A clause that opens on an action verb (after an adverb such as 进一步 or 扎实) states a task.
ACTION_START = re.compile(
    r"^\s*(进一步|持续|全面|深入|积极|大力|扎实|加快|切实|继续|着力|不断|全力|努力|重点|逐步|稳步|认真|严格|强力|纵深|攻坚)?"
    r"(深化|加快|推进|完善|加强|建设|突出|强化|提升|提高|推动|开展|实施|建立|健全|落实|做好|抓好|优化|扩大|规范|创新|"
    r"探索|打造|构建|培育|发展|举办|组织|召开|制定|出台|印发|启动|开通|新建|改造|引进|培养|设立|成立|组建|争取|完成|"
    r"推广|鼓励|引导|支持|巩固|保障|落细|压实|夯实|坚持|狠抓|整合|筹备|编制|配齐|拓展|遴选|选派|邀请|承办|发放|简化|"
    r"减少|取消|增加|新增|投入|下发)"
)
# "1." or "1．" before a clause enumerates it; "85.2%", "10.73万艘" and "5.5%左右" are figures:
# a point followed by a digit is a decimal point, never the end of an enumerator.
ENUM_LEAD = re.compile(r"^([一二三四五六七八九十]+是|[（(][一二三四五六七八九十\d]+[）)]|[一二三四五六七八九十]+、|\d+(?:、|[.．](?![0-9０-９])))")


@dataclass
class Unit:
    start: int
    end: int
    text: str
    # the words that end this unit's clause on the far side of a caption cut into its sentence
    # ("深耕医养" | 会议现场。 | "健康产业,"): read in its summary, never in its evidence
    tail: str = ""


@dataclass
class Sentence:
    start: int
    end: int
    text: str
    heading: str | None  # nearest heading above, the section's context
    units: list[Unit] = field(default_factory=list)
    index: int = 0
    para: int = 0  # paragraph number, for context that carries within a paragraph
    # Enclosing section titles, outermost first: an enumerated heading "(一)..." keeps the
    # section that introduced it ("下半年重点工作", or a lead sentence "...重点抓好以下工作").
    context: tuple[str, ...] = ()


@dataclass
class Structure:
    headings: list[Block]
    sentences: list[Sentence]
    # enumerated headings ("(一)筹备召开卫生与健康大会") with their section context: in a
    # plan section each one names a task
    tasks: list[Sentence] = field(default_factory=list)
    # the section path under each heading (parallel to ``headings``), outermost first: its
    # length is the heading's level
    paths: list[tuple[str, ...]] = field(default_factory=list)


TOPIC_MAX = 16  # characters of a paragraph-opening topic sentence ("健康促进成效显著。")
# a sentence that announces the list of tasks or points after it
LIST_INTRO = re.compile(r"(以下|如下|几个方面|几点|重点工作|主要任务|工作安排|[:：]\s*$)")
ENUM_HEADING = re.compile(r"^\s*([一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[）)]|\d{1,2}[.、．](?!\d))")


def is_heading(block: Block, raw: str | None = None) -> bool:
    """Is this block a title? ``raw``, the page it comes from, tells a line set in <h1>…<h6> or
    bold on a web page ("<strong>定点——确定北京中医药健康养老机构试点，探索…</strong>")."""
    t = block.text
    if is_lead(t):  # "一年来，我们做了以下主要工作：" announces what follows: a sentence, never a title
        return False
    if raw is not None and len(t) <= 60 and t.rstrip(CLOSERS)[-1:] not in TERMINAL + "，,、" and \
            not _ends_sentence_inside(t) and _emphasized(raw, block):
        return True
    if HEADING_RE.match(t) and len(t) <= 60 and t.count("。") <= 1 and not t.endswith("。"):
        # "一、在北京通养老助残卡中开通中医药养老服务支付功能，" breaks off a sentence
        return t.rstrip()[-1:] not in "，,、"
    # "群众的“烦心事”,就是改革攻坚的“紧要事”。7月15日,淄博市" ends a sentence and breaks
    # off the next: a paragraph cut by a line break, not a title
    return len(t) <= 40 and t.rstrip(CLOSERS)[-1:] not in TERMINAL + "，,、" and not _ends_sentence_inside(t) \
        and (_titled_clauses(t) or t.endswith(("：", ":")))  # a speaker's titles may hold a comma


# A whole line set in a heading or bold element: the tag opens right before it and closes right
# after it (inline <span>/<font>/<a> around the text aside).
_OPEN_EMPHASIS = re.compile(r"<(h[1-6]|strong|b)(\s[^>]*)?>\s*(?:<(?:span|font|a)\b[^>]*>\s*)*$", re.I)
_CLOSE_EMPHASIS = re.compile(r"^\s*(?:</(?:span|font|a)\s*>\s*)*</(h[1-6]|strong|b)\s*>", re.I)


def _emphasized(raw: str, block: Block) -> bool:
    return bool(_OPEN_EMPHASIS.search(raw[max(0, block.start - 300) : block.start])
                and _CLOSE_EMPHASIS.match(raw[block.end : block.end + 300]))


# A line ending in a colon that announces a list or reports speech: "一年来，我们做了以下主要工作：",
# "重点抓好八个方面工作：", "今年经济社会发展的主要预期目标是：", "会议强调，……：".
LEAD_WORDS = re.compile(r"(以下|如下|下列|几个方面|个方面|几点|主要工作|强调|指出|表示|要求|提出|认为|透露|是|为|有|包括|进行)"
                        r"[^，,。；;]{0,3}[:：]\s*$")
# A speaker or a label before a colon ("新闻发言人张毓辉：", "香港商报记者：", "附件：") titles what
# follows; so does an addressee ("各区卫生健康委：").
SPEAKER_ROLE = re.compile(r"(记者|发言人|主持|主任|厅长|局长|处长|科长|书记|委员|市长|省长|县长|区长|部长|院长|秘书长|"
                          r"代表|教授|专家|负责人|手记|巡视员|调研员|司长|主席|经理|董事长|校长|所长|站长|社长|医生|嘉宾)[\u4e00-\u9fff]{0,4}[:：]\s*$|^各")


def is_lead(text: str) -> bool:
    """A lead sentence: ends in a colon and states or announces something (a predicate), unlike a
    speaker's name, a label or an addressee."""
    t = text.strip()
    if not t.endswith(("：", ":")):
        return False
    body = _ENUM_MARK.sub("", t)
    if LEAD_WORDS.search(body):
        return True
    return not SPEAKER_ROLE.search(body) and (_content_len(body) > 10 or bool(re.search("[，,]", body)))


def _titled_clauses(text: str) -> bool:
    """An unnumbered title has no comma, or is a couplet of two like halves ("健康传播，无处不在",
    "聚焦重点再发力,真抓实干绘蓝图"); "经济增速是综合性指标，今年预期目标设定" is a sentence cut off
    by a line break."""
    parts = re.split(r"[，,]", text)
    if len(parts) == 1:
        return True
    return len(parts) == 2 and all(2 <= _content_len(p) <= 12 for p in parts) and \
        abs(_content_len(parts[0]) - _content_len(parts[1])) <= 1


def _ends_sentence_inside(text: str) -> bool:
    return bool(re.search(rf"[{TERMINAL}][{CLOSERS}]*\S", text.strip()))


def paragraphs(raw: str, blocks: list[Block], tails: dict[int, tuple[str, int]] | None = None) \
        -> list[tuple[Block, bool]]:
    """Join blocks broken mid-sentence ("...培育医\\n\\n养健康产业"); flag headings. A sentence
    cut by a caption or a headline keeps its halves apart (they lie between them): the words
    that end the cut clause go to ``tails``, by the offset where the first half ends, with the
    offset after them, where the second half's first unit opens."""
    out: list[tuple[Block, bool]] = []
    headline_until = -1  # blocks up to this index are a headline set into the sentence above them
    for i, b in enumerate(blocks):
        if b.title or i <= headline_until:  # the title block above the report (see clean), a headline
            out.append((b, True))
            continue
        if out and not out[-1][1] and (found := _headline_set_in(raw, out[-1][0], blocks, i)):
            k, cut = found
            _note_tail(tails, out[-1][0], blocks[k], cut)
            headline_until = k - 1
            out.append((b, True))
            continue
        if out and not out[-1][1] and _continues(raw, out[-1][0], b):
            prev = out[-1][0]
            out[-1] = (Block(prev.start, b.end, raw[prev.start : b.end], prev.gap_before), False)
            continue
        if out and not out[-1][1] and (cut := _cut_tail(raw, out[-1][0], b)):
            _note_tail(tails, out[-1][0], b, cut)
        out.append((b, is_heading(b, raw)))
    return out


def _note_tail(tails: dict[int, tuple[str, int]] | None, prev: Block, rest: Block, cut: int) -> None:
    """``rest``'s first ``cut`` characters end ``prev``'s last clause (see ``paragraphs``)."""
    if tails is not None:
        tails[prev.end - _trail_ws(prev.text)] = (rest.text[:cut].rstrip(_CLAUSE_MARKS), rest.start + cut)


# A newspaper's headline: a short line without punctuation ("主动担当 奋勇战疫")
_HEADLINE_MAX = 16
_PUNCTUATION = re.compile(r"[，,、；;。：:！？!?]")


def _headline_set_in(raw: str, prev: Block, blocks: list[Block], i: int) -> tuple[int, int] | None:
    """The index of the block that goes on from ``prev`` and how many of its characters end
    ``prev``'s clause (``_cut_tail``), when ``blocks[i]`` opens a headline of one or two lines
    set into ``prev``'s sentence; None when it does not. A newspaper page laid out
    in columns and read as text puts the next story's headline mid-sentence (seed 003: "…个体诊所等
    编外 卫" / 主动担当 奋勇战疫 / 疫情防控中展现新作为 / "生力量参与防控工作。 控制病毒传染…"): the headline
    heads what follows, and the words after it end the sentence it cut."""
    k = i
    while k < len(blocks) and k - i < 2 and not blocks[k].title and _is_headline(blocks[k]):
        k += 1
    cut = _cut_tail(raw, prev, blocks[k]) if i < k < len(blocks) else 0
    return (k, cut) if cut else None


def _is_headline(b: Block) -> bool:
    shown = b.visible.strip()
    return 0 < len(shown) <= _HEADLINE_MAX and not _PUNCTUATION.search(shown)


_CLAUSE_MARKS = "，,、；;。"
# The first words of a block, up to a clause mark: a cut sentence's end ("健康产业,", "作,")
_HEAD_WORDS = re.compile(rf"^[\u4e00-\u9fff]{{1,12}}[{_CLAUSE_MARKS}]")
_IDEOGRAPH = re.compile(r"[\u4e00-\u9fff]")


def _cut_tail(raw: str, prev: Block, b: Block) -> int:
    """How many characters of ``b`` end ``prev``'s last clause, 0 when ``b`` does not go on
    from it. A photo and its caption set into a news story cut a sentence, even a word, in two
    ("高度重视免疫规划工" | 济阳区人民医院…签约揭牌。 | "作,不断优化免疫服务模式"): ``prev`` breaks off
    inside a word, is a paragraph (long, or a sentence ended inside it), and text that is
    not the report lies between; ``b``'s first words, up to a clause mark, end the clause."""
    gap = raw[prev.end : b.start]
    shown = prev.visible.rstrip()
    if not _IDEOGRAPH.search(gap) or not _IDEOGRAPH.fullmatch(shown[-1:]) or is_heading(b, raw):
        return 0
    if len(shown) <= 40 and not _ends_sentence_inside(prev.text):
        return 0  # a title or a dateline above a byline is not half a sentence
    m = _HEAD_WORDS.match(b.text)
    return m.end() if m else 0


def _continues(raw: str, prev: Block, b: Block) -> bool:
    if not goes_on(raw, prev, b):
        return False
    # a line of zero-width spaces is how a web copy breaks a sentence ("今年预期目标设定\n\u200b\n为6%以上"):
    # the break is the page's, so even a short line before it goes on; a blank line alone may end a title
    zero_width_line = bool(raw[prev.end : b.start].strip())
    return zero_width_line or len(prev.text) > 40 or _ends_sentence_inside(prev.text)


def split_sentences(start: int, text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in SENTENCE_END.finditer(text):
        spans.append((pos, m.end()))
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    out = []
    for a, b in spans:
        piece = text[a:b]
        if piece.strip():  # the span without its blank edges (_lead_ws, _trail_ws), inline
            out.append((start + a + len(piece) - len(piece.lstrip(_BLANKS)), start + a + len(piece.rstrip(_BLANKS))))
    return out


_DIGIT = re.compile(r"[0-9０-９]")
_ANY_DIGIT = re.compile(r"\d")
# What the regex class [\s MASK] matches, as a str.strip argument: strip runs in C, where the
# anchored pattern was tried at every position of every clause (no whitespace code point is
# above U+3000; tests/unit/test_segment_speed.py checks both sets over all of Unicode).
_BLANKS = re.sub(r"\S", "", "".join(map(chr, range(0x3001)))) + MASK


def _lead_ws(s: str) -> int:
    """Leading whitespace and masked markup: a unit never begins or ends on a tag."""
    return len(s) - len(s.lstrip(_BLANKS))


def _trail_ws(s: str) -> int:
    return len(s) - len(s.rstrip(_BLANKS))


def visible(s: str) -> str:
    """Text as a reader sees it: the markup masked inside a block left out."""
    return s.replace(MASK, "")


def view_of(raw: str, blocks: list[Block]) -> str:
    """The input as segmentation reads it: ``raw`` with the markup inside each block masked.
    Same length as ``raw``, so every offset into it is an offset into the input."""
    masked = [b for b in blocks if MASK in b.text]
    if not masked:
        return raw
    parts, pos = [], 0
    for b in sorted(masked, key=lambda b: b.start):
        parts += [raw[pos : b.start], b.text]
        pos = b.end
    parts.append(raw[pos:])
    return "".join(parts)


def split_clauses(raw: str, start: int, end: int) -> list[tuple[int, int]]:
    text = raw[start:end]
    out, pos = [], 0
    breaks = OCR_BREAK if _looks_ocr(text) else CLAUSE_BREAK
    quoted = "“" in text or "《" in text  # without an opening mark no break is inside a quote
    for m in breaks.finditer(text):
        if quoted and _inside_quote(text, m.start()):
            continue
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, len(text)))
    if "、" in text:
        out = _split_figure_lists(text, out)
    spans = []
    for a, b in out:
        piece = text[a:b]
        a2 = a + len(piece) - len(piece.lstrip(_BLANKS))  # _lead_ws and _trail_ws, inline
        b2 = a + len(piece.rstrip(_BLANKS))
        # trailing sentence punctuation is not part of the claim
        while b2 > a2 and text[b2 - 1] in TERMINAL:
            b2 -= 1
        if b2 > a2:
            spans.append((start + a2, start + b2))
    return spans


# A number and at most four characters of its measure ("67家", "9.4万家", "5%左右", "0.3个百分点")
# closing a list member; "的" after it makes the number part of a noun phrase ("…2.5个百分点的增量"),
# and a Latin unit with words after it names a thing measured ("体重700g患儿": one patient, not a figure)
_FIGURE_AT_END = re.compile(r"[0-9０-９][0-9０-９.．]*(?:[^0-9０-９的a-zA-Z]{0,4}|[a-zA-Z]{1,3}[%％]?)$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LIST_MARK = re.compile("、")
# a member that only gives the change of the figure before it, its own figure right after the verb
_CHANGE_OF_FIGURE = re.compile(r"\s*(同比|年均|比上年|较上年)?(增长|下降|增加|减少|提高|降低|上升|回落)[0-9０-９]")
# "分别" (respectively) or a list of figures ("同比增加21%、29.5%"): one figure per member before it
_DISTRIBUTES = re.compile(r"分别|[0-9０-９][%％‰]?、[0-9０-９]")


def _split_figure_lists(text: str, clauses: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each clause's list of figures as its members (``_figure_list``), except a list whose
    figures the next clause distributes ("…2453人,分别占应救助人口的86.8%、88.5%"): one claim."""
    out = []
    for k, (a, b) in enumerate(clauses):
        distributed = k + 1 < len(clauses) and _DISTRIBUTES.search(text, *clauses[k + 1])
        out += [(a, b)] if distributed else _figure_list(text, a, b)
    return out


def _ends_on_figure(member: str) -> bool:
    """Does a list member state a figure of its own: two Chinese characters naming what is
    counted, then the figure at its end ("卓越级智能工厂67家", "5G工厂301家")?"""
    m = _FIGURE_AT_END.search(member)
    return m is not None and len(_CJK.findall(member, 0, m.start())) >= 2


def _figure_list(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """The members of a "、" list in clause ``text[a:b]`` when each states its own figure, else
    the clause whole.

    "入选国家领航级智能工厂2家、卓越级智能工厂67家、5G工厂301家" is three claims, as the reports'
    gold has them; "5万亿元、6万亿元两个台阶" and "30名全国国医大师、100名首都国医名师…为骨干的…"
    are one (a member does not end on its figure), and so is every list of names ("、" otherwise
    separates list members, not claims).
    """
    cuts = [m.start() for m in _LIST_MARK.finditer(text, a, b) if not _inside_quote(text, m.start())]
    if not cuts:
        return [(a, b)]
    members: list[tuple[int, int]] = []
    for x, y in zip([a] + [c + 1 for c in cuts], cuts + [b]):
        if not _ends_on_figure(text[x:y].strip()):
            return [(a, b)]
        if members and _CHANGE_OF_FIGURE.match(text, x):
            members[-1] = (members[-1][0], y)  # "达到5379亿元、增长18.5％": the change of the figure before
        else:
            members.append((x, y))
    return members


def _inside_quote(text: str, pos: int) -> bool:
    before = text[:pos]
    return before.count("“") > before.count("”") or before.count("《") > before.count("》")


_NON_CONTENT = re.compile(r"[\s\W_]")


def _content_len(s: str) -> int:
    return len(_NON_CONTENT.sub("", s))


def _content_counter(raw: str, start: int, end: int):
    """``count(a, b) == _content_len(raw[a:b])`` for start <= a <= b <= end, from one prefix sum:
    grouping measures the growing unit again after every clause. A content character is one
    the pattern keeps: exactly ``str.isalnum`` (the test checks it over all of Unicode)."""
    prefix = list(accumulate(map(str.isalnum, raw[start:end]), initial=0))
    return lambda a, b: prefix[b - start] - prefix[a - start]


def group_units(raw: str, clauses: list[tuple[int, int]], min_chars: int = 8, pair_max: int = 0) -> list[Unit]:
    """Glue clauses that cannot carry a claim alone onto their neighbour; drop lead-ins."""
    if not clauses:
        return []
    count = _content_counter(raw, clauses[0][0], clauses[-1][1])
    units: list[list[int]] = []
    pending_start: int | None = None
    for a, b in clauses:
        piece = raw[a:b]
        enum = ENUM_LEAD.match(piece)
        if enum and b - a > enum.end():
            a += enum.end()
            a += _lead_ws(raw[a:b])  # "6.</span>推动…": the markup after the number is not the claim's
            piece = raw[a:b]
        piece_start = a  # ``a`` may move back to a pending head below; ``piece`` does not
        if LEAD_IN.match(piece.strip()):
            if _DIGIT.search(piece) and (a, b) != clauses[-1] and pending_start is None:
                pending_start = a  # "2025年,", "截至6月底,": a date stays with the claim it dates
            continue  # "会议指出", "今年以来": context, not a claim
        if pending_start is not None:
            a, pending_start = pending_start, None
        if units and JOINS_PREVIOUS.match(piece):
            units[-1][1] = b  # "...达到56.5%,高出全省23.5个百分点": one claim with its comparison
            continue
        if FRAME_HEAD.match(piece) and (a, b) != clauses[-1]:
            pending_start = a  # "聚焦聚力疫情防控," heads the claim after it
            continue
        if count(piece_start, b) < min_chars:
            if units and count(units[-1][0], units[-1][1]) < 30:
                units[-1][1] = b  # a short tail belongs to the claim before it
            else:
                pending_start = a  # a short head belongs to the claim after it
            continue
        # two short clauses usually make one claim, unless each states its own figure or each
        # opens on its own action ("深化公立医院综合改革,加快分级诊疗制度建设": two tasks)
        # (a member of a list of figures is a claim of its own: clauses never break at "、" else)
        if pair_max and units and units[-1][2] == 1 and count(units[-1][0], b) <= pair_max and \
                "、" not in (raw[a - 1], raw[b : b + 1]) and not _two_claims(piece, raw[units[-1][0] : units[-1][1]]):
            units[-1][1] = b
            units[-1][2] += 1
            continue
        units.append([a, b, 1])
    if pending_start is not None:
        if units:
            units[-1][1] = clauses[-1][1]
        else:
            units.append([pending_start, clauses[-1][1], 1])
    return [Unit(a, b, raw[a:b].replace(MASK, "")) for a, b, _ in units if count(a, b) >= 4]  # visible()


def _two_claims(piece: str, prev: str) -> bool:
    """Two short clauses that each state a figure, or each open on an action. Asked only of
    a pair short enough to join (the patterns cost more than the length test)."""
    both_figures = bool(_ANY_DIGIT.search(piece)) and bool(_ANY_DIGIT.search(prev))
    return both_figures or (bool(ACTION_START.match(piece)) and bool(ACTION_START.match(prev)))


# Two adjacent short clauses of at most this many characters make one claim (unless they are
# two tasks or two figures). Measured over seeds + corpus (2026-11-25), perfect labels on the
# units (ceiling R/P): 0 → 0.94/0.90, 24 → 0.90/0.94, 48 → 0.78/0.97; learned labeller
# leave-one-document-out (stage 1): 0 → 0.77/0.76, 24 → 0.76/0.77. The seeds alone had
# favoured 48: their gold pairs clauses that the corpus gold, like most reports, keeps apart.
PAIR_MAX = 24


def segment(raw: str, blocks: list[Block], min_chars: int = 8, pair_max: int = PAIR_MAX) -> Structure:
    raw = view_of(raw, blocks)  # markup inside a block never reads as text
    headings: list[Block] = []
    paths: list[tuple[str, ...]] = []
    sentences: list[Sentence] = []
    tasks: list[Sentence] = []
    heading: str | None = None
    context: tuple[str, ...] = ()
    ranks: tuple[float, ...] = ()  # the heading rank of each entry of ``context``
    last_sentence: str | None = None  # the sentence that may introduce an enumerated list
    tails: dict[int, tuple[str, int]] = {}
    paras = paragraphs(raw, blocks, tails)
    resume = {at for _, at in tails.values()}  # a cut sentence's second half: its units open here
    upcoming = _next_numbered_all(paras)
    for para, (block, head) in enumerate(paras):
        if head:
            headings.append(block)
            context, ranks = _nest(context, ranks, visible(block.text), last_sentence, upcoming[para])
            paths.append(context)
            heading = visible(block.text)
            last_sentence = None
            if ENUM_HEADING.match(block.text):
                tasks.append(_heading_task(raw, block, context, len(sentences), para))
            continue
        spans = _glue_topic(raw, split_sentences(block.start, block.text))
        for a, b in spans:
            s = Sentence(a, b, visible(raw[a:b]), heading, index=len(sentences), para=para, context=context)
            clauses = split_clauses(raw, a, b)
            if resume and (at := next((r for r in resume if a <= r <= b), None)) is not None:
                clauses = _from(raw, clauses, at)  # the words before ``at`` end the clause above
            s.units = [] if ATTENDANCE.search(s.text) else group_units(raw, clauses, min_chars, pair_max)
            if s.units and s.units[-1].end in tails:
                s.units[-1].tail = tails[s.units[-1].end][0]
            sentences.append(s)
            last_sentence = s.text
    return Structure(headings=headings, sentences=sentences, tasks=tasks, paths=paths)


def _from(raw: str, clauses: list[tuple[int, int]], at: int) -> list[tuple[int, int]]:
    """The clauses from ``at`` on, one that holds ``at`` cut there (a short sentence glued to the
    next as its topic is one clause: "生力量参与防控工作。 控制病毒传染 疾控战士冲锋在前")."""
    out = []
    for x, y in clauses:
        if x < at < y:
            x = at + _lead_ws(raw[at:y])
        if x >= at and x < y:
            out.append((x, y))
    return out


def _glue_topic(raw: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join a paragraph's short opening topic sentence to the sentence after it.

    "公立医院综合改革进一步深化。调整充实市医改工作领导小组,..." states one claim: the
    topic names it, the next sentence gives its substance. Alone, the topic is a heading
    in disguise, not a claim of its own.
    """
    if len(spans) < 2 or not _is_topic(raw[spans[0][0] : spans[0][1]]) or _starts_anew(raw, spans[1]):
        return spans
    return [(spans[0][0], spans[1][1]), *spans[2:]]


def _is_topic(sentence: str) -> bool:
    # a full stop, not ";": "曲阜被评为…;兖州…" is a list of claims, not a topic and its detail
    return _content_len(sentence) <= TOPIC_MAX and sentence.endswith("。") and not re.search(r"\d", sentence) \
        and not CLAUSE_BREAK.search(sentence.rstrip(TERMINAL))


def _starts_anew(raw: str, span: tuple[int, int]) -> bool:
    """A sentence opening on a lead-in ("会议强调") or an enumerator ("六是") starts something new;
    so does a list of who attended (``ATTENDANCE``): a topic glued to it would be dropped with it."""
    first_clause = CLAUSE_BREAK.split(raw[span[0] : span[1]], maxsplit=1)[0].strip()
    return bool(LEAD_IN.match(first_clause) or ENUM_LEAD.match(first_clause)) or \
        bool(ATTENDANCE.search(visible(raw[span[0] : span[1]])))


def _family(title: str) -> str | None:
    """Which numbering an enumerated heading uses: "(一)", "一、" or "1."; None if plain."""
    m = ENUM_HEADING.match(title)
    if not m:
        return None
    mark = m.group(1)
    return "paren" if mark[0] in "（(" else "digit" if mark[0].isdigit() else "cjk"


_CJK_NUM = "一二三四五六七八九十百零〇"
# Numbering schemes of headings, highest rank first (as official documents number them,
# GB/T 9704): 第一部分 > 第一章 > 第一节 > 第一条 > 【标题】 > 一、 > （一） > 1. > （1） > ①.
SCHEMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("part", re.compile(rf"^\s*第[{_CJK_NUM}\d]+(?:部分|编)")),
    ("chapter", re.compile(rf"^\s*第[{_CJK_NUM}\d]+章")),
    ("section", re.compile(rf"^\s*第[{_CJK_NUM}\d]+节")),
    ("article", re.compile(rf"^\s*第[{_CJK_NUM}\d]+条")),
    ("bracket", re.compile(r"^\s*【[^】]{1,40}】")),
    ("cjk", re.compile(rf"^\s*[{_CJK_NUM}]+(?:、|[.．](?![\d{_CJK_NUM}]))")),
    ("paren", re.compile(rf"^\s*[（(][{_CJK_NUM}]+[）)]")),
    ("digit", re.compile(r"^\s*\d{1,2}(?:、|[.．](?!\d))")),
    ("paren_digit", re.compile(r"^\s*[（(]\d{1,2}[）)]")),
    ("circled", re.compile(r"^\s*[①-⑳]")),
)
_ENUM_MARK = re.compile("|".join(p.pattern for _, p in SCHEMES[5:]))


def heading_scheme(title: str) -> str | None:
    """The numbering scheme of a heading ("cjk" for "一、", "paren" for "（一）"...); None if plain."""
    return next((name for name, pattern in SCHEMES if pattern.match(title)), None)


def heading_rank(title: str) -> int:
    """1 for the highest numbering scheme (第一部分) ... len(SCHEMES); 0 for a plain title."""
    return next((i + 1 for i, (_, pattern) in enumerate(SCHEMES) if pattern.match(title)), 0)


def _ordinal(title: str) -> int | None:
    """The number of a numbered heading: 1 for "一、", "（一）", "1.", "第一章", "①"."""
    m = next((p.match(title) for _, p in SCHEMES if p.match(title)), None)
    if m is None:
        return None
    mark = re.sub(r"[^\d{_CJK_NUM}①-⑳]".replace("{_CJK_NUM}", _CJK_NUM), "", m.group(0))
    if not mark:
        return None
    if "①" <= mark[0] <= "⑳":  # before isdigit(), which "①" passes
        return ord(mark[0]) - ord("①") + 1
    if mark.isdigit():
        return int(mark)
    digits = {c: i for i, c in enumerate("零一二三四五六七八九", 0)} | {"〇": 0}
    if mark == "十":
        return 10
    if mark.startswith("十"):
        return 10 + digits.get(mark[1], 0)
    if "十" in mark:
        tens, _, ones = mark.partition("十")
        return digits.get(tens, 0) * 10 + (digits.get(ones, 0) if ones else 0)
    return digits.get(mark[0])


def _nest(context: tuple[str, ...], ranks: tuple[float, ...], title: str, intro: str | None,
          upcoming: str | None = None) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The section path under a new heading (outermost first), and the rank of each entry.

    A plain title starts a new path. A numbered one closes every open part of a lower rank
    ("二、2009年工作总体部署" closes the review's "（三）…"), then replaces its sibling of the
    same scheme, or opens a list inside the current part. A list that starts ("（一）", "1.")
    right after a lead sentence that announced it ("……重点抓好以下工作：") keeps that sentence in
    its path, ranked just above the list, so the list's next sibling keeps it and a higher
    part closes it. A plain title inside a numbering that goes on after it (a box "专栏1 …"
    in "二、重点任务" before "三、…", a list of names between "（一）" and "（二）") is a sub-part of
    the open part, not a new section.
    """
    rank = heading_rank(title)
    if rank == 0 and ranks and max(ranks) >= 1:
        if BOX.match(title):  # an inset of the open numbered part; it closes an earlier box
            k = _open_box(context)
            context, ranks = (context[:k], ranks[:k]) if k is not None else (context, ranks)
            return (*context, title), (*ranks, int(ranks[-1]) + 0.25)
        if (k := _open_box(context)) is not None:  # a title inside the box: one of its items
            return (*context[:k + 1], title), (*ranks[:k + 1], ranks[k] + 0.125)
    if rank == 0:
        if not (context and upcoming and _goes_on(context, ranks, upcoming)):
            return (title,), (0,)
        if ranks[-1] % 1 == 0.25:  # the plain sub-part before it ends here
            context, ranks = context[:-1], ranks[:-1]
        return (*context, title), (*ranks, ranks[-1] + 0.25)
    path, ranks_ = list(context), list(ranks)
    while ranks_ and ranks_[-1] > rank:
        path.pop()
        ranks_.pop()
    announced = bool(intro and LIST_INTRO.search(intro)) and _ordinal(title) == 1
    if ranks_ and ranks_[-1] == rank:
        path.pop()
        ranks_.pop()
        if announced and ranks_ and ranks_[-1] == rank - 0.5:  # a new list under its own lead
            path.pop()
            ranks_.pop()
    if announced:
        path.append(intro)
        ranks_.append(rank - 0.5)
    return (*path, title), (*ranks_, rank)


# A box of a plan or policy ("专栏1　中医养生保健服务建设项目", a table of projects inside "二、重点任务"):
# its titles belong to the part it sits in. Read as plain titles of their own, they and the
# part's text after them (to the next numbered heading) lost the part's path.
BOX = re.compile(r"^\s*专栏\s*[0-9０-９一二三四五六七八九十]+")


def _open_box(context: tuple[str, ...]) -> int | None:
    """Where in the path an open box is (None: no box is open)."""
    return next((i for i in range(len(context) - 1, -1, -1) if BOX.match(context[i])), None)


def _goes_on(context: tuple[str, ...], ranks: tuple[float, ...], upcoming: str) -> bool:
    """Does ``upcoming`` continue the numbering of an open part ("三、" after an open "二、")?"""
    rank, number = heading_rank(upcoming), _ordinal(upcoming)
    return number is not None and any(r == rank and _ordinal(t) == number - 1 for t, r in zip(context, ranks))


def _next_numbered(paras: list[tuple[Block, bool]], i: int) -> str | None:
    """The next numbered heading after paragraph ``i`` (None if there is none)."""
    return next((b.text for b, head in paras[i + 1:] if head and heading_rank(b.text)), None)


def _next_numbered_all(paras: list[tuple[Block, bool]]) -> list[str | None]:
    """``_next_numbered(paras, i)`` for every ``i`` in one backward pass (a scan per heading
    was quadratic in the paragraphs of a long report)."""
    out: list[str | None] = [None] * len(paras)
    following = None
    for i in range(len(paras) - 1, -1, -1):
        out[i] = following
        block, head = paras[i]
        if head and heading_rank(block.text):
            following = block.text
    return out


def _heading_task(raw: str, block: Block, context: tuple[str, ...], index: int, para: int) -> Sentence:
    """An enumerated heading as a one-unit sentence, without its "(二)"; its context is its parents'."""
    body = ENUM_HEADING.match(block.text)
    start = block.start + (body.end() if body else 0)
    text = raw[start : block.end].strip()
    start = raw.index(text, start) if text else start
    end = start + len(text)
    text = visible(text)
    s = Sentence(start, end, text, visible(block.text), index=index, para=para, context=context[:-1])
    s.units = [Unit(start, end, text)] if _content_len(text) >= 6 else []
    return s
