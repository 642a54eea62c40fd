"""Summaries that stand on their own (pure functions, no I/O).

A claim unit is a clause, and a clause often has no subject: ``达到5379亿元、增长18.5％``,
``9880万人领取养老金``. Two things make its summary readable on its own:

* ``addition_problem``: a model summary may be longer than its evidence when what it adds
  comes from the unit's own context (its sentence, paragraph, neighbouring units, section
  path), e.g. ``进出口总值达到5379亿元、增长18.5％`` whose subject the sentence names; never a
  number the evidence lacks, never another unit's claim. What it adds from nowhere is named,
  and the caller shows the evidence instead (and counts it).
* ``with_subject``: without a model, a unit with no subject of its own gets the one its
  sentence names before it, copied, never a digit, evidence and span unchanged. A unit that
  opens on a quantity, a state or a role, or is a bare count (``又增产291亿斤``, ``主要用于…``,
  ``由…担任召集人``, ``基本建成511万套``) gets the noun phrase the nearest clause opens on (up
  to its verb, adverb or figure; adverbial clauses passed over), or what an action there is done
  on (``建立…联席会议``), with the measure a passed clause names (``…参保人数``); a pair of
  figures gets both subjects before it. A clause of doing gets an organisation its sentence
  opens on (``市中医局科教处``, never the reporter, ``我局``); a list sharing its first clause's
  verb gets that verb (``支持…``); a clause after a bare period (``近三年，``) gets the period.
  Topics of units that have a subject of their own are not carried: the capable reader agreed
  with a third of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.features import UnitRef
from service.ground import numbers_in, summarize_evidence, summary_is_faithful
from service.models import Item

_WORD_CHAR = re.compile(r"[\u4e00-\u9fff0-9A-Za-z]")
# Closed-class words a reader adds to make a clause a sentence; they state no fact, so they
# need no source: particles, prepositions, conjunctions, "dummy" verbs (进行/开展/予以 ...),
# references back (上述/这一/该). Never a negation (不/未/没/无), never a figure.
FUNCTION_CHARS = frozenset("的地得了着和与及并或为是在对将把由于以从向其之所等时可也都即则而中")
LIGHT_WORDS = re.compile(r"进行|开展|实施|予以|加以|给予|包括|作为|成为|起到|发挥|上述|这一|该|各项|"
                         r"相关|有关|工作|作用|方面|情况下|分别")
# Units whose own words must mostly survive: a "summary" that keeps under half of its
# evidence's bigrams is a summary of something else (the old MIN_SHARED_WORDS, turned round).
MIN_EVIDENCE_KEPT = 0.5
# An addition holding most of another unit's words is that unit's claim; one holding its subject
# ("中央财政赤字" of "中央财政赤字1.12万亿元", 5 of its 10 bigrams) is not.
OTHER_UNIT_SHARE = 0.8
NEIGHBOURS = 2  # units on each side that count as the unit's context
ABBREVIATION_GAP = 5  # 新农保 for 新型农村社会养老保险: characters between the kept ones
# A reader may drop what sits between two characters of a context word ("市中医局" for "我局"
# under "北京市中医药…", "新扶贫标准" for "新的国家扶贫标准"): one character left uncovered
# that the unit or its context holds is such a seam. Never a negation: that reverses a claim.
NEGATIONS = frozenset("不未没无非否勿莫别")


@dataclass(frozen=True)
class UnitContext:
    """What a reader of one unit has in view besides the unit: where additions may come from."""

    sentence: str = ""
    paragraph: tuple[str, ...] = ()  # the sentences of the unit's paragraph
    neighbours: tuple[str, ...] = ()  # the units just before and after it
    section: tuple[str, ...] = ()  # the section titles above it, outermost first

    def texts(self) -> list[str]:
        return [self.sentence, *self.paragraph, *self.neighbours, *self.section]


def unit_context(units: Sequence[UnitRef], i: int, neighbours: int = NEIGHBOURS) -> UnitContext:
    """The context of ``units[i]`` in its document (units in document order)."""
    u = units[i]
    near = [units[j].text for j in range(max(0, i - neighbours), min(len(units), i + neighbours + 1)) if j != i]
    lo, hi = i, i
    while lo > 0 and units[lo - 1].para == u.para:
        lo -= 1
    while hi + 1 < len(units) and units[hi + 1].para == u.para:
        hi += 1
    paragraph = tuple(dict.fromkeys(units[j].sentence_text for j in range(lo, hi + 1)))
    return UnitContext(u.sentence_text, paragraph, tuple(near), tuple(u.context))


# ---------------------------------------------------------------- additions (model summaries)


def _chars(text: str) -> str:
    return "".join(_WORD_CHAR.findall(text))


def _bigrams(text: str) -> set[str]:
    s = _chars(text)
    return {s[k:k + 2] for k in range(len(s) - 1)}


def _runs_outside(summary: str, known: set[str]) -> list[str]:
    """Maximal runs of the summary's characters that no known bigram covers. A character at
    the seam between a copied subject and the evidence ("国家助学贷款|惠及") is covered from
    one side, so only words that come from nowhere stay."""
    s, runs, cur = _chars(summary), [], ""
    for k, ch in enumerate(s):
        if (k > 0 and s[k - 1:k + 1] in known) or s[k:k + 2] in known:
            if cur:
                runs.append(cur)
            cur = ""
        else:
            cur += ch
    return [*runs, cur] if cur else runs


def _abbreviates(run: str, texts: Sequence[str]) -> bool:
    """A contraction of a context word: 新农保 for 新型农村社会养老保险 (characters kept in order)."""
    if len(run) < 2:
        return False
    pattern = re.compile(f"[\u4e00-\u9fff]{{0,{ABBREVIATION_GAP}}}".join(map(re.escape, run)))
    return any(pattern.search(_chars(t)) for t in texts)


def words_from_nowhere(summary: str, evidence: str, context: UnitContext) -> list[str]:
    """What the summary adds that neither its evidence nor its context holds (light words
    and contractions of context words excepted); [] when every addition has a source."""
    texts = context.texts()
    known = _bigrams(evidence).union(*(_bigrams(t) for t in texts))
    seen = set(_chars(evidence)).union(*(_chars(t) for t in texts))
    out = []
    for run in _runs_outside(summary, known):
        rest = "".join(ch for ch in LIGHT_WORDS.sub("", run) if ch not in FUNCTION_CHARS)
        if rest and not _abbreviates(run, texts) and not _seam(rest, seen):
            out.append(run)
    return out


def _seam(rest: str, seen: set[str]) -> bool:
    """A single character of the unit or its context whose bigrams were cut (see NEGATIONS)."""
    return len(rest) == 1 and rest in seen and rest not in NEGATIONS


def stray_numbers(summary: str, evidence: str) -> list[str]:
    """Numbers of the summary that are not numbers of the evidence (token for token: the
    "12" of "2008年12月" is no number of "12320"), and figures whose wording changed."""
    wanted = set(numbers_in(evidence))
    stray = [n for n in numbers_in(summary) if n not in wanted]
    return stray or ([] if summary_is_faithful(summary, evidence) else ["a figure changed"])


def evidence_kept(summary: str, evidence: str) -> float:
    """Share of the evidence's bigrams that the summary keeps (1.0 for an empty evidence)."""
    own = _bigrams(evidence)
    return len(own & _bigrams(summary)) / len(own) if own else 1.0


def addition_problem(summary: str, evidence: str, context: UnitContext) -> str | None:
    """Why a summary longer than its evidence cannot stand for it, or None when it can: every
    number in it is a number of the evidence, it keeps most of the evidence's words, what it
    adds comes from the unit's context, and what it adds is not another unit's claim."""
    stray = stray_numbers(summary, evidence)
    if stray:
        return f"a number not in the evidence: {'、'.join(stray)}"
    if evidence_kept(summary, evidence) < MIN_EVIDENCE_KEPT:
        return "keeps under half of the evidence's words"
    nowhere = words_from_nowhere(summary, evidence, context)
    if nowhere:
        return f"adds words from outside the unit's context: {'、'.join(nowhere)}"
    own = _bigrams(evidence)
    added = _bigrams(summary) - own
    for other in context.neighbours:
        theirs = _bigrams(other) - own
        if len(theirs) >= 4 and len(theirs & added) / len(theirs) >= OTHER_UNIT_SHARE:
            return f"adds another unit's claim: {other}"
    return None


# ---------------------------------------------------------------- subjects (no model)

# What states a quantity. A subject is carried only into a clause that opens on one
# ("达到5379亿元", "又增产291亿斤", "总里程达8667公里"): a clause that opens on an action verb
# ("推动…", "降低交通物流成本…") has the reporting government as its agent, and one that opens
# on a figure ("9个国家区域医疗中心开诊运营") names what it counts itself; capable readers add
# no subject to either.
_LEVEL = r"达到|达|超(?=[0-9０-９万千百亿])|增长|增至|增产|减产|下降|上升|惠及|占|超过|突破|位居|跃居|跨过|扩大到|缩小至|缩小到|翻番"
# these take an object too: a figure must follow at once ("增加5232亿元", not "提高劳动报酬…").
# Verbs of doing followed by a figure ("完成1679个…", "建成5G基站…") are left out: in a list
# of counts each clause names what it counts.
_CHANGE = r"增加|减少|提高|降低|提升|净增|净减"
# what the thing named before is spent on or shows ("主要用于…", "呈现…", "较“十三五”末净增…")
_USE = r"主要用于|专项用于|用于|呈现|较“"
_ADVERBS = (r"(?:去年|今年|全年|当年|人均|年均|又|再|还|也|均|都|已|已经|分别|首次|连续[0-9一二三四五六七八九十两]+年|实际|"
            r"五年|基本|"
            r"总计|累计|合计|共计|比上年|较上年|同比)*")
_MEASURE = r"总里程|总量|总数|总额|总规模|覆盖面|覆盖率|参保人数|救助人数|单产|占比|收入比|增速"
PREDICATE_START = re.compile(
    rf"^\s*{_ADVERBS}"
    rf"(?:(?:{_LEVEL})|(?:{_CHANGE})(?=约?[0-9０-９])|(?:{_USE})|"
    # what is measured of something the sentence named before: 总里程, 总数, 参保人数, 单产
    rf"(?:{_MEASURE})(?=[0-9达为超突增下提居占接扩缩]))"
)
MEASURE_START = re.compile(rf"^\s*{_ADVERBS}(?P<measure>{_MEASURE})(?=[0-9达为超突增下提居占接扩缩])")
# A measure that ends a subject ("高速公路|通车里程", "粮食|总产", "中央政府投资|总额"): a unit that
# names its own measure ("总里程达…") or uses the thing ("主要用于…") speaks of the thing itself.
_MEASURE_TAIL = re.compile(r"(?:人均收入|总产量|总产|产量|通车里程|运营里程|里程|总额|总量|总规模|规模|总数|人数|试点城市)$")
# "由" names who takes a role or acts for the thing named before ("由市政府分管领导担任召集人", "由财政部
# 代理发行"); "由企业年检制度改为年报公示制度" or "由中央代地方发债4000亿元" state their own content, and
# the clause before them names no subject of theirs.
_BY_AGENT = r"由(?!于)(?=[^，,。；;]{1,20}?(?:担任|负责|牵头|承担|主持|组织|统筹|审核|代理|管理|组成|召集))"
# A clause that opens on what its subject is, does as an organ or undergoes: a role, a standing,
# a comparison ("负责…", "由市政府分管领导担任召集人", "成为…", "是2010年的2.2倍", "经得起…").
_STATE = (rf"负责|{_BY_AGENT}|创(?=历史|新高|有)|(?<=已)形成|成为|是|包括|经得起|难以|名列|被|给|全面接受|有(?=鲜明|明显|较|很)|用在|"
          r"重点支持|重点用于")
STATE_START = re.compile(rf"^\s*(?:并|同时|还|也|又|均|都|已|已经|正在|正|仍|多次|再次|必须|需|应|不断|持续)*(?:{_STATE})")
# A count with nothing after its figure ("基本建成511万套", "每人每年1500元"): it counts what the
# sentence named before (a count naming its noun, "完成1679个行政村…", stays as it is).
BARE_COUNT = re.compile(r"^\s*(?:基本|累计|共|已|全部|每人每年|每年|平均)*(?:建成|完成|竣工|投产)?约?[0-9０-９][0-9０-９.．]*"
                        r"(?:多|余)?[万亿千百]*[\u4e00-\u9fff%％]?$")
# Where a subject ends: at its figure, at its verb of level or change, or at an adverb,
# preposition or modal before its verb ("粮食总产量|在上年…基础上", "城镇居民基本医疗保险试点城市|
# 由上年的88个", "南水北调中线一期工程|正式通水", "各区政府|要建立", "新动能|对稳就业…").
_SUBJECT_END = re.compile(
    rf"[0-9０-９]|[在由又再已每]|从(?!业)|比上年|较上年|同比|年均|人均(?=[0-9０-９增提减达超])|连续|首次|持续|稳定在|稳步|"
    rf"稳居|居全|居世界|居首|居第|居前|{_LEVEL}|{_CHANGE}|创(?!新)|"
    r"负责|充分|正式|必须|(?<![主重需纲摘])要(?!素)|(?<!特别)(?<!或)是|不断|加快|实现|(?<!首)都|合计|累计|共计|总计|"
    r"取得|形成|正在|正处|处在|处于|日益|明显|显著|大幅|逐步|有序|成为|(?<![为作])为(?=[全各本])|连跨|连创|频繁|相继|"
    r"陆续|先后|根据|按照|依据|围绕|积极|大力|努力|认真|切实|全力|着力|主动"
)
# A clause that opens on what the reporter did names no subject of a count ("加强…", "我们…").
_NOT_A_SUBJECT = re.compile(
    r"^(?:我们|我省|我市|我区|我县|我局|这|此|该|其|每|要|将|并|把|对|为|以|在|通过|按照|围绕|坚持|全面|持续|不断|积极|大力|加快|提出|"
    r"深入|扎实|着力|努力|切实|进一步|推动|推进|促进|加强|强化|完善|深化|提升|实施|开展|落实|建立|健全|发挥|"
    r"做好|抓好|支持|鼓励|引导|打造|构建|培育|发展|组织|启动|出台|制定|印发|召开|举办)"
)
# An action on a thing ("建立…联席会议", "深化资源性产品价格和环保收费改革", "连续第7年提高企业退休人员
# 基本养老金"): a clause after it that opens on a state or a quantity speaks of that thing.
_ACTION_ON = re.compile(
    r"^(?:(?:全面|大力|扎实|积极|进一步|深入|着力|切实|稳步|认真|继续|连续第?[0-9０-９一二三四五六七八九十]+年|"
    r"毫不放松地|从[^，]{1,6}?(?:开始|起)|拟|连续几年)*)(?:推进|推动|深化|加强|强化|完善|建立|健全|落实好|落实|"
    r"优化|提高|扩大|实施|开展|启动|出台|制定|支持|发行|提出)(?P<object>.+)$"
)
# A list number or a dash that opens a clause is no part of its subject ("（一）", "三是", "1.", "——").
_ENUMERATOR = re.compile(r"^(?:[（(][一二三四五六七八九十0-9０-９]+[)）]|[一二三四五六七八九十]+是|[0-9０-９]+[.．、]|——)+")
# A clause that sets a time, a manner or a condition names no one: the one before it may
# ("经过多年努力", "扣除价格因素", "一年来", "9月份后").
_ADVERBIAL = re.compile(r"^(?:经过|通过|随着|为了|按照|根据|扣除|当|自)[^，]{0,12}$|^[^，]{1,8}(?:后|来|时|以来|期间)$")
# A time, a scope or a verb of doing before what is counted: "今年", "全省", "新开工保障性安居工程740万套".
_CLAUSE_HEAD = re.compile(
    r"^(?:其中|同时|此外|另外|目前|今年|去年|全年|当年|上半年|下半年|全省|全市|全区|全县|全国)*"
    r"(?:(?:新开工|新建|新增|开工|建成|投入|完成|开通|发行|实际使用)(?=[^0-9０-９]*[0-9０-９]))?"
)
# A clause of doing ("研究制定…", "结合实际制定…", "组织设计培训内容") has an agent: the reporting
# government when none is named, else the organisation its sentence opens on (ORGAN).
DOING = re.compile(
    r"^\s*(?:并|同时|还|也|要|需|应|可以|可|积极|认真|努力|切实|及时|统一)*(?:对(?=[^，]{1,20}?(?:进行|开展|实施|给予))|研究|制定|采用|委托|组织|做好|确定|监督|指导|开展|推进|推动|"
    r"落实|建立|加强|完善|审核|担任|协调|报送|发布|提供|实施|争取|开设|设计|承担|配合|督促|统筹|搭建|结合|负责|"
    r"编制|拟定|对接|做到|利用|邀请|组建)"
)
ORGAN = re.compile(r"(?:(?<![布格结大全当])局|委|处|办|办公室|委员会|会议|协会|学会|中心|团队|小组|政府|部门|机构|单位|组织方|各区|各地|"
                   r"各省|各市|各县|各级)$")
# An organisation an action founds acts in the clauses after it ("建立…联席会议，由…担任召集人").
_FOUNDING = re.compile(r"^[\u4e00-\u9fff]{0,6}?(?:建立|成立|组建|设立)")
_COUNTED = re.compile(r"[0-9０-９][0-9０-９.．]*(?:多|余)?[万亿千百]*[个项条家所座套户名批类种件部]([\u4e00-\u9fff]{2,10})$")
# "…专家组成专家团队": what a clause ends on founding is an organisation that acts after it.
_FOUNDED = re.compile(r"(?:组成|组建|成立|设立)([\u4e00-\u9fff]{2,12})$")
# "A为B": A takes the role B (an organisation), and B is what acts in the clauses after it.
_ROLE = re.compile(r"^[\u4e00-\u9fff]{2,14}?为([\u4e00-\u9fff]{4,14})$")
MIN_SUBJECT, MAX_SUBJECT = 2, 14
_CLAUSE_SPLIT = re.compile(r"[,，;；:：]")
_STOP = re.compile(r"[。！？!?]")


def subject_of(before: str, unit: str = "", organ: bool = False) -> str | None:
    """What the nearest clause before a unit speaks of: its opening noun phrase, ended by its
    figure, its verb or an adverb before its verb; or what an action in it is done on. Clauses
    that are themselves subjectless ("又增产291亿斤") or adverbial ("经过多年努力") pass the
    question on to the clause before them (a measure one of them opens on, "参保人数增加…",
    goes with the subject). With ``organ``, only an organisation that acts is sought (see
    ``ORGAN``), over the clauses of doing before it. None when there is no such subject; it
    never holds a digit."""
    clauses = [c for c in _CLAUSE_SPLIT.split(_STOP.split(before)[-1]) if c.strip()]
    measure = ""
    for clause in reversed(clauses):
        clause = _ENUMERATOR.sub("", re.sub(r"\s+", "", clause))
        if opens_without_subject(clause) or _ADVERBIAL.match(clause) or (organ and DOING.match(clause)
                                                                          and not _ACTION_ON.match(clause)):
            m = MEASURE_START.match(clause)
            measure = measure or (m.group("measure") if m else "")
            continue
        head = _CLAUSE_HEAD.sub("", clause, count=1)
        if action := _ACTION_ON.match(head):
            noun = _object_of(action.group("object"))
            if organ and not (ORGAN.search(noun) and _FOUNDING.match(head)):
                continue  # a sibling action ("搭建线上培训平台"): its agent is named before it
        elif (founded := _FOUNDED.search(head)) and ORGAN.search(founded.group(1)):
            noun = founded.group(1)
        elif (role := _ROLE.match(head)) and ORGAN.search(role.group(1)):
            noun = role.group(1)  # "北京市朝阳区中医协会为全市培训项目办公室": the role acts
        else:
            m = _SUBJECT_END.search(head)
            if organ and (_NOT_A_SUBJECT.match(head) or (m is not None and m.start() == 0)):
                continue  # "积极进取、挖掘潜力": a clause of doing, its organ is named further back
            if m is None or _NOT_A_SUBJECT.match(head):
                return None
            noun = head[:m.start()]
        noun = _noun(_with_measure(noun, unit, measure))
        return noun if noun and (not organ or ORGAN.search(noun)) else None
    return None


# Two figures for two things named before ("城镇居民人均可支配收入…元，农村居民人均纯收入…元，实际增长
# 9.8%和8.5%"): both things are the subject.
_PAIR = re.compile(r"分别|[0-9０-９][%％‰]?(?:和|与)[0-9０-９]")


def pair_subject(before: str, unit: str) -> str | None:
    """The two subjects of the two clauses before a unit whose figures go one to each of them."""
    if not _PAIR.search(unit):
        return None
    clauses = [c for c in _CLAUSE_SPLIT.split(_STOP.split(before)[-1]) if c.strip() and not _ADVERBIAL.match(c.strip())]
    if len(clauses) < 2 or not all(re.search(r"[0-9０-９]", c) for c in clauses[-2:]):
        return None
    first, second = (subject_of(c, unit) for c in clauses[-2:])
    return f"{first}和{second}" if first and second and first != second else None


# A list that shares the verb its first clause opens on ("支持包头打造精品钢材基地，鄂尔多斯打造…，赤峰
# 打造…"): each later clause is a short name and the same second verb, without the first one.
_LEAD_VERB = re.compile(r"^(?:支持|推动|鼓励|引导|帮助|推进)")
_SECOND_VERB = re.compile(r"^[\u4e00-\u9fff、]{2,8}?(打造|建设|建成|创建|发展|培育|争创|建立)")


def shared_verb(before: str, unit: str) -> str | None:
    """The verb a list's first clause opens on, when every clause after it, the unit too, has its shape."""
    clauses = [c for c in _CLAUSE_SPLIT.split(_STOP.split(before)[-1]) if c.strip()]
    unit = re.sub(r"\s+", "", unit)
    own = _SECOND_VERB.match(unit)
    if own is None or DOING.match(unit) or _NOT_A_SUBJECT.match(unit) or _LEAD_VERB.match(unit):
        return None
    for clause in reversed(clauses):
        clause = _ENUMERATOR.sub("", re.sub(r"\s+", "", clause))
        verb = _LEAD_VERB.match(clause)
        theirs = _SECOND_VERB.match(clause[verb.end():] if verb else clause)
        if theirs is None or theirs.group(1) != own.group(1):
            return None
        if verb:
            return verb.group()
    return None


# A period said as a clause of its own just before the unit ("近三年，中央和地方投入105亿元") is the
# unit's frame: the unit is read with it. ("一年来，…" is left out: the capable reader dropped it
# 11 times in 14 on the silver documents.)
_PERIOD = re.compile(r"^(?:今年|去年|近[两三五]年|过去一年|过去五年|今后五年|“十[一二三四五六七八九]五”时期)$")


def period_before(before: str) -> str | None:
    clauses = [c for c in _CLAUSE_SPLIT.split(_STOP.split(before)[-1]) if c.strip()]
    last = re.sub(r"\s+", "", clauses[-1]) if clauses else ""
    return last if _PERIOD.match(last) else None


def _with_measure(noun: str, unit: str, measure: str) -> str:
    """The thing measured, with the measure the skipped clauses named unless the unit names its own."""
    own = MEASURE_START.match(unit) or re.match(rf"^\s*{_ADVERBS}(?:{_USE}|{_STATE})", unit)
    if own or measure:
        noun = _MEASURE_TAIL.sub("", noun) or noun
    return noun + measure if measure and not own else noun


def _object_of(rest: str) -> str:
    """What an action is done on, without the system or programme it is named as ("城乡居民最低
    生活保障|制度建设"); nothing when a figure cuts it (its noun comes after the figure)."""
    if re.search(r"[0-9０-９]", rest):  # "出台…等10项民生政策": what is counted, if the count ends it
        counted = _COUNTED.search(rest)
        return counted.group(1) if counted else ""
    return re.sub(r"(?<=..)(?:制度建设|制度|建设|试点|政策|工作)$", "", rest)


# A subject cut off inside a name or a coordination is no subject: "PM" of "PM2.5年均浓度" (the
# figure belongs to the name), "婴儿死亡率和" of "婴儿死亡率和5岁以下儿童死亡率" (the second thing
# holds a figure the evidence lacks). Either would make the summary say something else.
_CUT_OFF = re.compile(r"(?:[A-Za-zＡ-Ｚａ-ｚ]|(?<![总平温共缓调])和|(?<!参)与|(?<!普)及|或|、)$")


def _noun(noun: str) -> str | None:
    noun = re.sub(r"^(?:各类|各种|所有|全省|全市|全区|全县|本市|本区)", "", noun.lstrip("、"))
    # a verb of deciding or asking inside ("国务院同意地方发行…") makes it a clause, not a name
    ok = (MIN_SUBJECT <= len(noun) <= MAX_SUBJECT and not re.search(r"[0-9０-９]|同意|决定|要求|批准|认为", noun)
          and _balanced(noun) and not _NOT_A_SUBJECT.match(noun) and not _CUT_OFF.search(noun))
    return noun if ok else None


def _balanced(text: str) -> bool:
    """No quote or bracket opened and not closed (or closed and not opened): a whole phrase."""
    return all(text.count(a) == text.count(b) for a, b in ("“”", "《》", "（）", "()"))


def opens_without_subject(unit: str) -> bool:
    """Does the unit open on its predicate: a quantity, with no subject of its own? (Carrying
    a subject into every clause that is neither led by a figure nor by an action verb was
    measured too: twice the recall, and 4% of the subjects carried agreed with a capable
    reader's summary, against half for these.) A unit that opens on a state or a role, or is
    a bare count, has none either."""
    unit = re.sub(r"\s+", "", unit)
    return bool(PREDICATE_START.match(unit) or STATE_START.match(unit) or BARE_COUNT.match(unit))


def carry_subject(summary: str, unit: str, sentence: str) -> str:
    """``summary`` (the unit's tidied evidence) led by the subject of its sentence when the
    unit opens on its predicate or a figure; else ``summary`` unchanged. The subject never
    holds a number, and the result is checked as every summary is."""
    at = sentence.find(unit.strip())
    if at <= 0:
        return summary
    if opens_without_subject(unit):
        subject = pair_subject(sentence[:at], unit) or subject_of(sentence[:at], unit) or (
            subject_of(sentence[:at], unit, organ=True) if DOING.match(unit) else None)
    elif DOING.match(unit):
        subject = subject_of(sentence[:at], unit, organ=True)
    else:
        subject = shared_verb(sentence[:at], unit) or period_before(sentence[:at])
    if subject is None or subject in summary:
        return summary
    out = subject + summary
    return out if summary_is_faithful(out, unit) and not stray_numbers(out, unit) else summary


def with_subject(unit: str, sentence: str) -> str:
    """The unit's summary without a model: its tidied evidence, led by the subject of its
    sentence when the unit opens on its predicate or a figure (``达到5379亿元、增长18.5％``
    after ``全省进出口总值创历史新高`` -> ``进出口总值达到5379亿元、增长18.5％。``)."""
    return carry_subject(summarize_evidence(unit), unit, sentence)


def subject_carried(item: Item, unit: UnitRef) -> Item:
    """The learned strategy's item with the subject carried into its summary (evidence and span
    stay the unit's)."""
    summary = carry_subject(item.summary, unit.text, unit.sentence_text)
    return item if summary == item.summary else item.model_copy(update={"summary": summary})


def tail_completed(item: Item, unit: UnitRef) -> Item:
    """The item of a clause that a caption cut in two with its summary read to the clause's end
    ("强力推进新旧动能转换,深耕医养" + "健康产业" -> "强力推进新旧动能转换,深耕医养健康产业。"); evidence
    and span stay the unit's, on this side of the caption. A tail is words without a figure
    (segment._HEAD_WORDS), so the summary still holds no number its evidence lacks."""
    if not unit.tail or item.span[1] != unit.end or not item.summary.endswith("。"):
        return item
    summary = item.summary[:-1] + unit.tail + "。"
    return item.model_copy(update={"summary": summary}) if summary_is_faithful(summary, item.evidence) else item


__all__ = ["UnitContext", "addition_problem", "carry_subject", "evidence_kept", "stray_numbers", "subject_carried",
           "subject_of", "tail_completed", "unit_context", "with_subject", "words_from_nowhere"]
