import pytest

from service.chunk import chunk, count_tokens
from service.clean import clean
from service.segment import segment
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
