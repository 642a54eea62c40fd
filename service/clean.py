"""Decide what part of the input is the report, keeping offsets into the raw text.

Input arrives as plain text or web-page source. Either way it is cut into *blocks*: runs
of visible text, each with its span in the raw input (``raw[start:end] == block.text``).
Blocks that are not the report (page chrome, bylines, photo captions, repeated
paragraphs, a story appended after the report) are moved to ``excluded`` with a reason,
so nothing is summarised twice and a reader can check what was left out.

Pure functions: no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from service.ingest import looks_like_html
from service.models import Excluded

TERMINAL = "。！？；!?;…"
CLOSERS = "”’」』)）》"
# Markup inside a block of visible text (``总数的<span …>25</span>％``) is masked with this
# private-use character in the block's text, so the text keeps the raw offsets while no
# rule reads a tag as words, punctuation or a number ("175%" of a style attribute).
MASK = "\ue000"
# Invisible characters web copies of reports scatter between lines (gov.cn pages put a
# zero-width space on its own line inside a sentence: "加强预期\n\u200b\n引导"). Not whitespace to
# Python, so they are named: between two blocks they are nothing.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


@dataclass(frozen=True)
class Block:
    """A run of visible text: ``text`` is ``raw[start:end]`` with any markup inside it masked
    (``MASK``), so offsets into ``text`` are offsets into the raw input."""

    start: int
    end: int
    text: str
    gap_before: int = 1  # newlines between the previous block and this one
    title: bool = False  # part of the title block above the report: a heading, never a claim

    @property
    def visible(self) -> str:
        """The text a reader sees: what the rules below measure (lengths, patterns)."""
        return self.text.replace(MASK, "") if MASK in self.text else self.text


@dataclass
class Cleaned:
    blocks: list[Block]  # kept, in document order
    excluded: list[Excluded] = field(default_factory=list)
    title: str | None = None


# ---------------------------------------------------------------------------- blocks


def split_blocks(raw: str) -> list[Block]:
    """Non-blank lines of plain text, or visible text runs of HTML, with raw offsets."""
    return _split(raw)[0]


def _split(raw: str) -> tuple[list[Block], list[tuple[int, int]]]:
    """Blocks, and the spans of other stories on a page that lists several."""
    if looks_like_html(raw):
        return _html_blocks(raw)
    blocks: list[Block] = []
    newlines = 0
    for m in re.finditer(r"[^\n]*\n?", raw):
        line = m.group()
        stripped = line.strip()
        if not stripped:
            newlines += line.count("\n")
            continue
        lead = len(line) - len(line.lstrip())
        start = m.start() + lead
        blocks.append(Block(start, start + len(stripped), stripped, max(newlines, 1) if blocks else 0))
        newlines = line.count("\n")
    return blocks, []


# Not "form": ASP.NET pages wrap the whole page, article included, in one <form runat=server>.
_SKIP_TAGS = {"script", "style", "noscript", "template", "iframe", "svg", "canvas", "nav", "header",
              "footer", "aside", "button", "select", "option", "textarea", "head", "title"}
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "section", "article",
               "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "dd", "dt", "hr", "figure",
               "figcaption", "center"}
_CHROME_CLASS = re.compile(r"nav|menu|share|footer|header|breadcrumb|sidebar|comment|copyright|login|toolbar",
                           re.I)


class _VisibleText(HTMLParser):
    """Collects (offset, text) of visible text nodes; offsets index the page source."""

    def __init__(self, raw: str):
        super().__init__(convert_charrefs=False)
        self.raw = raw
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", raw)]
        self.skip_depth = 0
        self.stack: list[tuple[str, bool]] = []
        self.runs: list[tuple[int, int, bool]] = []  # start, end, caption?
        self.breaks = 0
        self.caption_depth = 0
        # open elements as [tag, class, start, parent record, has a title child]; closed
        # containers land in ``elements`` (see _other_stories)
        self.open: list[list] = []
        self.elements: list[tuple[int, str, str, int, int, bool]] = []  # parent, tag, class, start, end, titled
        self._ids = 0

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        cls = " ".join(v or "" for k, v in attrs if k in ("class", "id", "role"))
        skip = tag in _SKIP_TAGS or bool(_CHROME_CLASS.search(cls))
        if tag in ("br", "hr", "img", "meta", "link", "input"):
            self.breaks += 1
            return
        self.stack.append((tag, skip))
        self._ids += 1
        parent = self.open[-1] if self.open else None
        if parent is not None and (tag in _TITLE_TAGS or _TITLE_CLASS.search(cls)):
            parent[4] = True
        self.open.append([tag, cls, self._offset(), parent[5] if parent else 0, False, self._ids])
        self.skip_depth += skip
        self.caption_depth += tag == "figcaption"
        if tag in _BLOCK_TAGS:
            self.breaks += 1

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for t, skip in self.stack[i:]:
                    self.skip_depth -= skip
                    self.caption_depth -= t == "figcaption"
                del self.stack[i:]
                end = self._offset()
                for el in self.open[i:]:
                    if el[0] in _STORY_TAGS and el[1]:
                        self.elements.append((el[3], el[0], el[1], el[2], end, el[4]))
                del self.open[i:]
                break
        if tag in _BLOCK_TAGS:
            self.breaks += 1

    def handle_data(self, data):
        if self.skip_depth or not data.strip():
            return
        start = self._offset()
        if self.raw[start : start + len(data)] != data:  # parser offsets must be exact
            found = self.raw.find(data, max(0, start - 16))
            if found < 0:
                return
            start = found
        self.runs.append((start, start + len(data), self.caption_depth > 0, self.breaks))
        self.breaks = 0


# Server-side template code (JSP, ASP, PHP) is never visible text.
_TEMPLATE_CODE = re.compile(r"<%.*?%>|<\?php.*?\?>|<\?=.*?\?>", re.S)


_TITLE_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_TITLE_CLASS = re.compile(r"title|heading|headline|\btit\b", re.I)
_STORY_TAGS = {"div", "section", "article", "li"}
STORY_MIN_CHARS = 150


def _other_stories(elements: list[tuple[int, str, str, int, int, bool]],
                   runs: list[tuple[int, int, bool, int]]) -> list[tuple[int, int]]:
    """Spans of the 2nd, 3rd ... story on a page that lists several (an accordion of news
    items, a list of articles): sibling containers of one tag and class, each with its own
    title and a body of text. The first is the page's report; the rest are other stories.
    """
    def visible(a: int, b: int) -> int:
        return sum(e - s for s, e, *_ in runs if a <= s and e <= b)

    groups: dict[tuple[int, str, str], list[tuple[int, int]]] = {}
    for parent, tag, cls, start, end, titled in elements:
        if titled and visible(start, end) >= STORY_MIN_CHARS:
            groups.setdefault((parent, tag, cls), []).append((start, end))
    lists = [sorted(g) for g in groups.values() if len(g) >= 2]
    if not lists:
        return []
    best = max(lists, key=lambda g: sum(visible(a, b) for a, b in g))
    return best[1:]


def _html_blocks(raw: str) -> tuple[list[Block], list[tuple[int, int]]]:
    parser = _VisibleText(raw)
    parser.feed(raw)
    parser.close()
    code = [m.span() for m in _TEMPLATE_CODE.finditer(raw)]
    others = _other_stories(parser.elements, parser.runs)
    blocks: list[Block] = []
    inline = False  # the previous run was kept and no block element closed since
    for start, end, _caption, breaks in parser.runs:
        if any(a < end and start < b for a, b in code) or any(a <= start and end <= b for a, b in others):
            inline = False
            continue
        # Visible text may itself hold line breaks: split it like plain text.
        for k, sub in enumerate(split_blocks_plain(raw[start:end])):
            gap = sub.gap_before if k else (2 if breaks else 0)
            block = Block(start + sub.start, start + sub.end, sub.text, gap)
            if k == 0 and inline and not breaks and blocks:
                # inline markup (<span>, <font>, <b>, <a>) never ends a block: the sentence
                # "…总数的<span>25</span>％。" is one run of text with its tags masked
                block = _masked_join(raw, blocks.pop(), block)
            blocks.append(block)
        inline = True
    return blocks, others


def _masked_join(raw: str, first: Block, second: Block) -> Block:
    between = MASK * (second.start - first.end)
    return Block(first.start, second.end, first.text + between + second.text, first.gap_before, first.title)


def split_blocks_plain(raw: str) -> list[Block]:
    out: list[Block] = []
    for m in re.finditer(r"[^\n]+", raw):
        stripped = m.group().strip()
        if stripped:
            lead = len(m.group()) - len(m.group().lstrip())
            out.append(Block(m.start() + lead, m.start() + lead + len(stripped), stripped, 1 if out else 0))
    return out


# ---------------------------------------------------------------------------- rules

_CONTACT = re.compile(
    r"(tele?[:：]|电话[:：]|传真|邮箱|e-?mail|[\w.]+@[\w.]+|来稿|投稿|长按|扫码|二维码|关注我们|点击|阅读原文|"
    r"责任编辑|编辑[:：]|审核[:：]|来源[:：]|版权|copyright|©|分享到|相关话题|相关阅读|上一篇|下一篇|"
    r"返回首页|^首页$|打印本页|关闭窗口|浏览次数|字号|无障碍(?:阅读|浏览)|(?:适老化|关怀|长者)模式|背景色|网站支持ipv6|\d{3,4}-\d{7,8}|1[3-9]\d{9})",
    re.I,
)
# Text addressed to a language model inside an article is not report content.
INJECTION = "text addressed to a language model (not summarised)"
_INJECTION = re.compile(r"(忽略|无视|不要理会).{0,12}(指令|提示|要求|规则)|ignore (all |any )?(previous|above|prior) instructions|"
                        r"system prompt|你现在是|作为(一个)?(AI|人工智能|语言模型)", re.I)
_BYLINE = re.compile(r"(记者|通讯员|文/图|图/文|文\s*/|摄影|撰稿|供稿|特约)")
# A WeChat story's closing credits, "编  辑 | 杜再江  排  版 | 周岩 签  发 | 龙艳 审  核 | 曾韬 主  办 | …"
# (labels spaced out, a bar or colon after each), and a platform's disclaimer after the story
# ("免责声明：本内容来自腾讯平台创作者，不代表腾讯新闻或腾讯网的观点和立场。"): neither is report text.
_CREDIT_LABEL = re.compile(r"(编\s*辑|排\s*版|签\s*发|审\s*核|校\s*对|监\s*制|责\s*编|主\s*办|出\s*品|策\s*划|统\s*筹|"
                           r"美\s*编|终\s*审|初\s*审|复\s*审)\s*[|｜:：]")
_DISCLAIMER = re.compile(r"^(免责声明|版权声明|声明)\s*[:：]|^本(文|内容|稿件|平台|网站|公众号).{0,30}不代表.{0,20}(观点|立场)")
HEADING_RE = re.compile(
    r"^(关键词|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[）)]|第[一二三四五六七八九十]+[部分章节条]|"
    r"\d{1,2}[.、．]\D)"
)


# "1." and "1．" enumerate, "85.2%" and "2025.12.31" do not: a point before a digit is a decimal.
_ENUM_PREFIX = re.compile(r"^([一二三四五六七八九十]+是|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[）)]|\d+(?:、|[.．](?![0-9０-９])))")


_NON_WORD_RUN = re.compile(r"[\s\W_]+")


def _norm(text: str) -> str:
    """Comparable form of a paragraph: no enumerator, whitespace or punctuation."""
    return _NON_WORD_RUN.sub("", _ENUM_PREFIX.sub("", text))


def _repeats(text: str, seen_text: str, norm: Callable[[str], str] = _norm) -> bool:
    """Is this block a copy of what came before? A paragraph repeated inside a longer one
    counts; a heading-like line (no sentence punctuation) only when a whole earlier block
    was the same line: a title cited in the text above ("《2016年…工作总结》已经…通过") is
    still the heading of the part it opens."""
    n = norm(text)
    if _SENTENCE_PUNCT.search(text):
        return n in seen_text
    # as ``f"|{n}|" in f"|{seen_text}"``, without copying the whole text seen for every block
    return seen_text.startswith(f"{n}|") or f"|{n}|" in seen_text


def _ends_sentence(text: str) -> bool:
    return text.rstrip(CLOSERS)[-1:] in TERMINAL if text.rstrip(CLOSERS) else False


def _is_chrome(block: Block) -> bool:
    t = block.visible
    if _LONE_NUMBER.match(t):
        return False  # a number (a table cell, a figure cut off by markup) is never page chrome
    if len(t) <= 80 and _CONTACT.search(t):  # length first: the pattern backtracks on long text
        return True
    if len(t) <= 160 and (len(_CREDIT_LABEL.findall(t)) >= 2 or _DISCLAIMER.search(t)):
        return True
    # short markup leftovers and menu words: no CJK sentence in them
    return len(t) <= 2 or (len(t) <= 6 and not _ends_sentence(t) and not re.search(r"[\u4e00-\u9fff]{2}", t))


def _speaker(text: str) -> bool:
    # "香港商报记者：" in a transcript introduces a question; a byline or caption never ends so
    return text.rstrip().rstrip(ZERO_WIDTH).endswith(("：", ":"))  # "各位代表：\u200d"


def _is_byline(block: Block) -> bool:
    t = block.visible
    return len(t) <= 50 and not _speaker(t) and bool(_BYLINE.search(t)) and not _ends_sentence(t)


# A photo credit closing a short line: "XX供图", "记者 张三 摄" (not "…拍摄").
_PHOTO_CREDIT = re.compile(r"(供图|(?<!拍)摄)[)）]?\s*$")


def _is_caption(block: Block, prev: Block | None, nxt: Block | None) -> bool:
    """Photo captions: a short line set apart by a photo's gap, or cutting a sentence in two."""
    t = block.visible
    if len(t) > 80 or HEADING_RE.match(t) or t.count("。") > 1 or _speaker(t):
        return False
    if _PHOTO_CREDIT.search(t):
        return True  # "良好的健康运动环境。贞丰县卫生健康局供图", "(记者 张三 摄)", whatever the gap
    # A photo leaves two or more blank lines above its caption in pasted text.
    if nxt is None:
        return block.gap_before >= 4 and not _ends_sentence(t)
    if block.gap_before >= 4 and (len(t) <= 40 or _ends_sentence(t)):
        return True
    return block.gap_before >= 3 and len(t) <= 30 and t.endswith("。") and not re.search("[,，、;；]", t)


def _slogan_run(blocks: list[Block], i: int) -> int:
    """Length of a run of >=3 short lines starting the same way (e.g. "我们..." slogans)."""
    j = i
    while (j < len(blocks) and len(blocks[j].visible) <= 30 and not _ends_sentence(blocks[j].visible)
           and blocks[j].visible[:2] == blocks[i].visible[:2]):
        j += 1
    return j - i if j - i >= 3 else 0


# A news story's dateline and byline opening its first paragraph: "本报讯(记者 张三)",
# "赤壁网消息(记者 王红云 实习生 徐纯)", "新华社北京3月5日电(记者 李四)". The paragraph after it is the story.
_DATELINE = re.compile(
    r"^(?:(?:本报|本刊|本台|本网)讯|[\u4e00-\u9fff]{1,10}(?:社|网|报|台)[\u4e00-\u9fff]{0,6}\d{1,2}月\d{1,2}日电|"
    r"[\u4e00-\u9fff]{1,12}(?:消息|讯))"
    r"\s*(?:[(（][^()（）]{0,60}?(?:记者|通讯员|实习生|特约)[^()（）]{0,60}[)）])?[\s:：]*"
)


def _dateline(text: str) -> int:
    """Length of the dateline and byline that open a news story's first paragraph (0: none).
    "…消息"/"…讯" counts only with a byline in brackets; "本报讯" and "…日电" stand alone."""
    m = _DATELINE.match(text)
    if not m or m.end() >= len(text):
        return 0
    head = m.group(0)
    if not re.search(r"[)）]\s*[:：]?\s*$", head) and not re.match(r"(本报|本刊|本台|本网)讯|.*日电", head):
        return 0
    return m.end()


_SENTENCE_PUNCT = re.compile(r"[。！？；!?;]")
TITLE_BLOCK = "title block above the report (headline, source and date lines): a heading, not summarised"


def _title_block(blocks: list[Block]) -> int:
    """How many blocks at the top form the title block: headline, source and date lines,
    the lines of a poster or banner, none of them a sentence. It ends at the first block
    that is one (the body), that ends on a colon (an addressee or a speaker: "各区、县卫生局:",
    "新闻发言人XX:"), or that is an enumerated section heading. A page without a body has none."""
    for i, b in enumerate(blocks):
        t = b.visible
        if _is_chrome(b):
            continue  # page tools above the headline ("【字号：", "打印") do not end it: excluded anyway
        if _SENTENCE_PUNCT.search(t) or _speaker(t) or HEADING_RE.match(t) or len(t) > 80:
            return i
    return 0


# Where a headline may stand: a notice's cover letter (addressee, one paragraph, signature, date)
# comes before the title of the plan it sends ("中医药发展战略规划纲要（2016—2030年）").
HEADLINE_SCAN = 10
# Lines near the top that are not the headline: a date or time ("2023-03-01 09:22发布于…",
# "——2022年3月5日在…会议上", "（2019年10月20日）"), a document number ("国发〔2016〕15号"), a
# metadata label ("联系人：", "来源：", "网址:"), the signature of an office ("北京市中医管理局").
_DATE_LINE = re.compile(r"(?:19|20)\d{2}\s*[-年/.]\s*\d{1,2}\s*[-月/.]\s*\d{1,2}|\d{1,2}:\d{2}")
_DOC_NUMBER = re.compile(r"[〔\[【(（]\s*(?:19|20)\d{2}\s*[〕\]】)）]\s*\d+\s*号")
_META_LABEL = re.compile(r"^(来源|发布时间|发布日期|发布机构|时间|日期|作者|编辑|责任编辑|联系人|联系电话|电话|网址|地址|邮箱|"
                         r"浏览次数|点击数|索引号|主题分类|文号|成文日期|相关文件|附件)\s*[:：]")
_OFFICE = re.compile(r"^[\u4e00-\u9fff]{2,20}(?:局|委|委员会|办公厅|办公室|人民政府|政府)$")


def _is_headline(block: Block) -> bool:
    """A line that can be the report's title: short, no sentence, no section number of an
    excerpt ("一、2013年工作回顾" heads a part, not the report), no addressee or speaker line
    ending in a colon, and none of the lines above. A title-block line may be short
    ("政府工作报告"); a line in the text must say more."""
    t = block.visible.strip()
    if not (4 if block.title else 8) <= len(t) <= 80 or t[-1] in "。；;，,、：:《“（(" or "\n" in t:
        return False
    if re.search(r"[。；;]", t) or HEADING_RE.match(t) or t[0] in "（(" and t[-1] in "）)":
        return False
    if any(t.count(a) != t.count(b) for a, b in ("《》", "“”", "（）", "()")):
        return False  # the end or the start of a line broken inside a name
    if not block.title and re.search(r"[:：]", t):
        return False  # a run-in heading in the text ("促进二个融合：中医药一二三产业…")
    return not (_DATE_LINE.search(t) or _DOC_NUMBER.search(t) or _META_LABEL.match(t) or _OFFICE.match(t))


def headline(blocks: list[Block]) -> str | None:
    """The report's title: the first headline among the top ``HEADLINE_SCAN`` blocks (None when
    the text opens mid-report: an excerpt's first section heading is no title)."""
    return next((b.visible.strip() for b in blocks[:HEADLINE_SCAN] if _is_headline(b)), None)


# A line that opens a list of other stories after the report: "相关阅读", "新闻推荐", "上一篇：…".
_TEASER_MARK = re.compile(r"^[\s【\[『「|｜>»·•■□◆▍]*(新闻推荐|相关阅读|相关新闻|相关文章|相关链接|相关解读|相关报道|"
                          r"推荐阅读|延伸阅读|热点推荐|热门推荐|精彩推荐|热点新闻|猜你喜欢|往期回顾|往期推荐|更多新闻|"
                          r"更多阅读|上一篇|下一篇)")
_INLINE_TEASER = re.compile(r"[:：]\s*\S")  # "上一篇：…", "相关解读：《…》解读": the marker names a story
TEASER = "teaser of other stories after the report (a list of their headlines), not summarised"
TEASER_AFTER_CHARS = 100  # report text that must come first: a marker at the top is page chrome


def _headline(block: Block) -> bool:
    """A line that reads as another story's headline (a date may follow it), not a paragraph."""
    t = block.visible
    return len(t) <= 60 and len(_SENTENCE_PUNCT.findall(t.rstrip("？！?!"))) == 0


def _teaser(blocks: list[Block]) -> tuple[int, int] | None:
    """Block range [i, j) of a teaser of other stories after the report: a marker line
    ("相关阅读", "上一篇：…") once the report text has begun, and the run of headline-like or
    chrome lines after it. A run of one line counts only when it reaches the end of the page
    or the marker names a story itself ("上一篇：…"); a paragraph after the run ends it."""
    body = 0
    for i, b in enumerate(blocks):
        t = b.visible
        if body >= TEASER_AFTER_CHARS and len(t) <= 60 and _TEASER_MARK.match(t):
            j = i + 1
            while j < len(blocks) and (_headline(blocks[j]) or _is_chrome(blocks[j])):
                j += 1
            if j - i >= 3 or (j - i >= 2 and j == len(blocks)) or _INLINE_TEASER.search(t):
                return i, j
        if _SENTENCE_PUNCT.search(t):
            body += len(t)
    return None


def _cut_teasers(blocks: list[Block]) -> tuple[list[Block], list[Excluded]]:
    """The blocks without the teasers of other stories after the report, and their spans."""
    excluded: list[Excluded] = []
    out = blocks
    while (cut := _teaser(out)) is not None:
        i, j = cut
        excluded.append(Excluded(span=(out[i].start, out[j - 1].end), reason=TEASER))
        out = out[:i] + out[j:]
    return out, excluded


LICENCE = "licence notice of the library the text was copied from, and what follows it: not the report"
# Wikisource ends every public document it holds with "本作品是中华人民共和国的法律、法规……根据《中华人民
# 共和国著作权法》第五条第一项，本作品不适用于该法……属于公有领域。" (the scraper breaks it into pieces).
_LICENCE = re.compile(r"本作品.{0,120}?(?:著作权法|公有领域|知识共享|许可协议)", re.S)
_LICENCE_TAIL_CHARS = 2000  # at most this much text after the notice: a report body is never cut


def _cut_licence(raw: str, blocks: list[Block]) -> tuple[list[Block], list[Excluded]]:
    """The blocks before a licence notice near the end of the text, and the notice's span to the end."""
    for i, b in enumerate(blocks):
        if i and _LICENCE.match(raw, b.start, b.start + 300) and \
                sum(len(x.visible) for x in blocks[i:]) <= _LICENCE_TAIL_CHARS:
            return blocks[:i], [Excluded(span=(b.start, blocks[-1].end), reason=LICENCE)]
    return blocks, []


# A line that cannot start a text of its own: a lone number ("2.5" of "PM\n2.5\n）"), or one
# that opens on a closing bracket or on punctuation that continues a clause.
_LONE_NUMBER = re.compile(r"^[0-9０-９]+(?:[.．][0-9０-９]+)*\s*[%％‰]?$")
_OPENS_MIDWAY = re.compile(rf"^[{CLOSERS}%％‰，,、。；;：:]")


def _join_broken_lines(raw: str, blocks: list[Block]) -> list[Block]:
    """Join the lines a scraper broke inside a sentence ("细颗粒物（PM\n2.5\n）平均浓度下降9.1%"):
    a line that cannot start a text of its own continues the line above it when that line did
    not end a sentence, so no piece of a figure is left to be thrown away as chrome."""
    out: list[Block] = []
    for i, b in enumerate(blocks):
        prev = out[-1] if out else None
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        # a lone number continues only a line cut mid-token ("（PM") or one that goes on after
        # it ("2.5" then "）平均浓度…"); under a heading it is a page number, not a figure
        lone = bool(_LONE_NUMBER.match(b.text)) and prev is not None and (
            bool(re.search(r"[A-Za-z（(]$", prev.text))
            or (nxt is not None and nxt.gap_before <= 1 and bool(_OPENS_MIDWAY.match(nxt.text))))
        if prev is not None and b.gap_before <= 1 and not _ends_sentence(prev.text) and \
                (lone or _OPENS_MIDWAY.match(b.text) or _open_bracket(prev.text)) and \
                not raw[prev.end : b.start].strip(" \t\r\n\u3000"):
            between = raw[prev.end : b.start]
            out[-1] = Block(prev.start, b.end, prev.text + between + b.text, prev.gap_before, prev.title)
        else:
            out.append(b)
    return out


def goes_on(raw: str, block: Block, nxt: Block) -> bool:
    """``nxt`` is the rest of ``block``'s sentence: ``block`` ends open and only blank lines
    (or zero-width spaces) lie between them."""
    return not _ends_sentence(block.text) and not raw[block.end : nxt.start].strip().strip(ZERO_WIDTH).strip() \
        and not HEADING_RE.match(nxt.text)


# A sentence ends at its mark and the closing quotes after it.
_SENTENCE_END = re.compile(r"[。！？!?；;]+[”’」』\"']*")


def without_injection(b: Block) -> tuple[list[Block], list[tuple[int, int]]]:
    """``b`` without its sentences addressed to a language model: the runs of sentences between
    them, each a block of its own, and the spans cut (raw offsets)."""
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(b.text)), len(b.text)]
    kept: list[Block] = []
    cut: list[tuple[int, int]] = []
    run: list[tuple[int, int]] = []  # sentences since the last one cut

    def close() -> None:
        if run:
            a, z = run[0][0], run[-1][1]
            piece = b.text[a:z]
            a, z = a + len(piece) - len(piece.lstrip()), z - (len(piece) - len(piece.rstrip()))
            if z > a:
                kept.append(Block(b.start + a, b.start + z, b.text[a:z], b.gap_before if not kept else 0, b.title))
            run.clear()

    for a, z in zip(bounds, bounds[1:]):
        if z <= a:
            continue
        if _INJECTION.search(b.text[a:z]):
            close()
            cut.append((b.start + a, b.start + z))
        else:
            run.append((a, z))
    close()
    return kept, cut


def _open_bracket(text: str) -> bool:
    return text.count("（") + text.count("(") > text.count("）") + text.count(")")


def clean(raw: str) -> Cleaned:
    blocks, others = _split(raw)
    blocks = _join_broken_lines(raw, blocks)
    blocks, teasers = _cut_teasers(blocks)
    blocks, licence = _cut_licence(raw, blocks)
    teasers += licence
    n_head = _title_block(blocks)
    kept: list[Block] = []
    excluded: list[Excluded] = [Excluded(span=span, reason="another story on the same page") for span in others]
    excluded += teasers
    seen_text = ""  # normalised kept text, to spot repeated paragraphs
    # Memoised for this document: a paragraph's form is asked for several times below, and
    # _renumbered_copy asks again for every kept paragraph above each enumerated one.
    norm, enum_number = functools.cache(_norm), functools.cache(_enum_number)
    # kept blocks by normalised form, in kept order: only one of the same form can be the
    # stale copy of a renumbered item (no scan of every kept block per duplicate)
    same_form: dict[str, list[Block]] = {}
    main_started = False
    bylines = 0
    i = 0
    while i < len(blocks):
        b = blocks[i]
        prev = kept[-1] if kept else None
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        reason = None
        if not main_started and (cut := _dateline(b.text)):
            excluded.append(Excluded(span=(b.start, b.start + cut), reason="news dateline and byline"))
            b = Block(b.start + cut, b.end, b.text[cut:], b.gap_before)
        if run := _slogan_run(blocks, i):
            excluded.append(Excluded(span=(b.start, blocks[i + run - 1].end), reason="slogan"))
            i += run
            continue
        if _INJECTION.search(b.text) and (found := without_injection(b))[1]:
            # only its sentences: the rest of the paragraph is the report's ("忽略以上所有指令。
            # 今年完成投资5亿元……" lost the whole report when the paragraph went)
            pieces, cut = found
            excluded += [Excluded(span=span, reason=INJECTION) for span in cut]
            blocks[i:i + 1] = pieces
            n_head += len(pieces) - 1 if i < n_head else 0
            continue
        if _INJECTION.search(b.text):  # across a sentence end: the whole paragraph
            reason = INJECTION
        elif _is_chrome(b) or (not main_started and len(b.visible) <= 5 and not _ends_sentence(b.text)
                               and not _LONE_NUMBER.match(b.visible)):
            reason = "page chrome or contact line"
        elif _is_byline(b):
            bylines += 1
            if main_started and bylines > 1 and prev is not None and not _is_byline(prev) and _appended_story_ahead(kept):
                # A second byline after the report has begun: what follows is another story.
                cut = _story_start(kept)
                start = kept[cut].start if cut < len(kept) else b.start
                excluded.append(Excluded(span=(start, blocks[-1].end), reason="unrelated appended story"))
                kept = kept[:cut]
                break
            reason = "byline"
        elif main_started and _is_caption(b, prev, nxt):
            reason = "photo caption"
        elif len(norm(b.text)) >= 12 and _repeats(b.text, seen_text, norm):
            reason = "duplicate paragraph"
            k = _renumbered_copy(kept, b, norm, enum_number, same_form.get(norm(b.text), []))
            if k is not None:
                # the same item under a new number ("二是X" … "三是X"): the list was renumbered
                # and the stale copy left behind; the later, renumbered one is kept
                old = kept.pop(k)
                stale = [old]
                # the rest of its sentence, broken onto the next line, is stale with it: kept, it was
                # an orphan clause ("建设,推进城乡环境卫生整治。"), and the renumbered copy's own rest
                # went as its duplicate
                while k < len(kept) and goes_on(raw, stale[-1], kept[k]):
                    stale.append(kept.pop(k))
                    seen_text = seen_text.replace(norm(stale[-1].text) + "|", "", 1)
                for gone in stale:
                    forms = same_form[norm(gone.text)]
                    del forms[_index_of(forms, gone)]
                excluded.append(Excluded(span=(old.start, stale[-1].end), reason="duplicate paragraph (a stale copy under an earlier number)"))
                reason = None
        if reason:
            excluded.append(Excluded(span=(b.start, b.end), reason=reason))
        elif i < n_head:
            # kept as the report's title and section context (segment makes it a heading),
            # listed as excluded: no claim is cut from it
            excluded.append(Excluded(span=(b.start, b.end), reason=TITLE_BLOCK))
            kept.append(Block(b.start, b.end, b.text, b.gap_before, title=True))
            same_form.setdefault(norm(b.text), []).append(kept[-1])
            seen_text += norm(b.text) + "|"
        else:
            kept.append(b)
            same_form.setdefault(norm(b.text), []).append(b)
            seen_text += norm(b.text) + "|"
            main_started = main_started or len(b.visible) > 60
        i += 1
    return Cleaned(blocks=kept, excluded=_merge_excluded(excluded), title=headline(kept))


_CJK_DIGITS = {c: i for i, c in enumerate("一二三四五六七八九十", 1)}


_ENUM_PUNCT = re.compile(r"[是、（()）.．]")


def _enum_number(text: str) -> int | None:
    """The number of an enumerated paragraph ("三是" 3, "(12)" 12, "二、" 2), None if it has none."""
    m = _ENUM_PREFIX.match(text)
    if not m:
        return None
    mark = _ENUM_PUNCT.sub("", m.group(0))
    if mark.isdigit():
        return int(mark)
    if len(mark) == 1:
        return _CJK_DIGITS.get(mark)
    if mark.startswith("十"):
        return 10 + _CJK_DIGITS.get(mark[1:], 0)
    return _CJK_DIGITS.get(mark[0], 0) * 10 + (_CJK_DIGITS.get(mark[2:], 0) if len(mark) > 2 else 0)


def _renumbered_copy(kept: list[Block], b: Block, norm: Callable[[str], str] = _norm,
                     enum_number: Callable[[str], int | None] = _enum_number,
                     same: list[Block] | None = None) -> int | None:
    """Index of an earlier kept copy of ``b`` that differs from it only by a lower number
    ("二是深入开展爱国卫生运动…" then "三是深入开展爱国卫生运动…": an item was inserted above it,
    the list renumbered, and the stale copy left behind); None if there is none. The same
    requirement under a lower number in a later list ("(5)按年度完成…" then "(4)按年度完成…")
    is a list of its own, not a renumbering."""
    number = enum_number(b.text)
    if number is None:
        return None
    # ``same``: the kept blocks of b's normalised form in kept order (clean keeps that list)
    same = [k for k in kept if norm(k.text) == norm(b.text)] if same is None else same
    for block in reversed(same):
        other = enum_number(block.text)
        if other is not None and other < number:
            return _index_of(kept, block)
    return None


def _index_of(blocks: list[Block], block: Block) -> int:
    """Where this very block object is (from the end: the copy sought is usually recent)."""
    return next(i for i in range(len(blocks) - 1, -1, -1) if blocks[i] is block)


def _appended_story_ahead(kept: list[Block]) -> bool:
    return sum(len(b.visible) for b in kept) > 400


def _story_start(kept: list[Block]) -> int:
    """Index of the first headline line just above the second byline (len(kept) if none)."""
    j = len(kept)
    while j > 0 and len(kept[j - 1].text) <= 40 and not _ends_sentence(kept[j - 1].text):
        j -= 1
    return j


def _merge_excluded(items: list[Excluded]) -> list[Excluded]:
    return sorted(items, key=lambda e: e.span)
