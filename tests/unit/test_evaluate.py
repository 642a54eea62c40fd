"""Scoring rules of ``reportsum eval`` (service/evaluate.py) on hand-built cases; no model."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import random
import sys
from pathlib import Path

import pytest

from service.evaluate import (
    ArticleScore,
    CategoryScore,
    Gold,
    figure_faults,
    flipped_parts,
    grade,
    load_gold,
    locate_gold,
    max_matching,
    micro,
    run_eval,
    spans_match,
    standard_errors,
)
from service.models import CATEGORIES, Digest, DocInfo, Item, Meta

ROOT = Path(__file__).resolve().parents[2]
ARTICLES = ROOT / "fixtures" / "articles"
GOLD = ROOT / "fixtures" / "gold"


def _load_check_matching():
    spec = importlib.util.spec_from_file_location("check_matching", ROOT / "bench" / "check_matching.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["check_matching"] = mod
    spec.loader.exec_module(mod)
    return mod


check_matching = _load_check_matching()


# ---------------------------------------------------------------------------- helpers

def gold_of(text: str, noise: list[str] = (), **cats: list[str]) -> Gold:
    """Gold whose items are the given evidence strings (summary = evidence)."""
    for ev in [e for lst in cats.values() for e in lst]:
        assert ev in text, ev
    return Gold.model_validate({
        "doc": "t.txt",
        **{c: [{"summary": e, "evidence": e, "figures": []} for e in cats.get(c, [])] for c in CATEGORIES},
        "noise": list(noise),
    })


def item(text: str, start: int, end: int, summary: str = "", figures=(), evidence: str | None = None) -> dict:
    ev = text[start:end] if evidence is None else evidence
    return {"summary": summary or "摘要", "evidence": ev, "span": [start, end], "figures": list(figures)}


def item_of(text: str, evidence: str, **kw) -> dict:
    s = text.index(evidence)
    return item(text, s, s + len(evidence), **kw)


def digest(**cats: list[dict]) -> dict:
    return {
        "doc": {"chars": 0}, "overview": "",
        **{c: cats.get(c, []) for c in CATEGORIES},
        "excluded": [],
        "meta": {"backend": "test", "model": "m", "prompt_version": "v", "llm_calls": 3,
                 "prompt_tokens": 100, "completion_tokens": 20, "seconds": 1.5},
    }


A = "全年完成投资12亿元"          # 10 chars
B = "新建社区卫生服务站5家"        # 11 chars
P = "明年将建成3所医院"            # 9 chars
TEXT = f"前言。{A},{B}。问题是人手不足。{P}。"


# ---------------------------------------------------------------------------- matching rule

def test_one_long_item_covering_two_gold_claims_counts_once():
    gold = gold_of(TEXT, achievements=[A, B])
    long_item = item_of(TEXT, f"{A},{B}")
    s = grade(TEXT, digest(achievements=[long_item]), gold)
    # The item overlaps each gold claim by all of the gold claim (>= half of the shorter span),
    # so it is adjacent to both, but one-to-one matching gives it one.
    assert s.per_category["achievements"].matched == 1
    assert s.recall == 0.5 and s.precision == 1.0
    # Two items, one per claim, get both.
    two = [item_of(TEXT, A), item_of(TEXT, B)]
    s2 = grade(TEXT, digest(achievements=two), gold)
    assert (s2.recall, s2.precision) == (1.0, 1.0)


def test_overlap_threshold_is_exactly_half_of_the_shorter_span():
    assert spans_match((0, 10), (5, 25))        # overlap 5, shorter 10: exactly half
    assert not spans_match((0, 10), (6, 25))    # overlap 4 < 5
    assert spans_match((0, 9), (4, 30))         # overlap 5, shorter 9: 10 >= 9
    assert not spans_match((0, 9), (5, 30))     # overlap 4: 8 < 9
    assert not spans_match((0, 10), (10, 20))   # touching is no overlap
    assert not spans_match((3, 3), (0, 10))     # an empty span never matches

    text = "甲" * 5 + "一二三四五六七八九十" + "乙" * 30
    gold = gold_of(text, achievements=["一二三四五六七八九十"])      # span (5, 15)
    at_half = item(text, 10, 30)                                     # overlap 5 of 10
    below = item(text, 11, 30)                                       # overlap 4
    assert grade(text, digest(achievements=[at_half]), gold).recall == 1.0
    assert grade(text, digest(achievements=[below]), gold).recall == 0.0


def test_category_mismatch_is_not_a_match_and_is_counted_as_wrong_category():
    gold = gold_of(TEXT, achievements=[A], plans=[P])
    d = digest(plans=[item_of(TEXT, A), item_of(TEXT, P)])
    s = grade(TEXT, d, gold)
    assert s.per_category["achievements"].matched == 0
    assert s.per_category["plans"].matched == 1
    assert s.recall == 0.5 and s.precision == 0.5
    assert s.wrong_category == 1
    assert s.located_matched == 2 and s.located_recall == 1.0


def test_wrong_category_is_one_to_one():
    gold = gold_of(TEXT, achievements=[A])
    d = digest(plans=[item_of(TEXT, A)], problems=[item_of(TEXT, A)])
    s = grade(TEXT, d, gold)
    assert s.wrong_category == 1


def test_items_drawn_from_noise_are_counted():
    noise = "附:另一则新闻,某医院开展义诊活动"
    text = TEXT + "\n" + noise + "。共服务群众300人次。"
    gold = gold_of(text, noise=[noise], achievements=[A])
    d = digest(achievements=[item_of(text, A), item_of(text, "某医院开展义诊活动。共服务群众300人次")])
    s = grade(text, d, gold)
    assert s.noise_items == 1
    assert s.precision == 0.5


def test_contract_violation_is_counted():
    gold = gold_of(TEXT, achievements=[A])
    good = item_of(TEXT, A)
    shifted = dict(good, evidence=A[1:] + "。")            # evidence != text[span]
    bad_span = dict(good, span=[5, 2])                      # malformed span
    out_of_range = dict(good, span=[0, len(TEXT) + 5])
    s = grade(TEXT, digest(achievements=[shifted, bad_span, out_of_range]), gold)
    assert s.violations == 3
    assert grade(TEXT, digest(achievements=[good]), gold).violations == 0


def test_figure_faults_are_counted():
    gold = gold_of(TEXT, achievements=[A])
    ok = item_of(TEXT, A, summary="完成投资12亿元", figures=["12亿元"])
    assert grade(TEXT, digest(achievements=[ok]), gold).figure_faults == 0
    wrong_fig = item_of(TEXT, A, summary="完成投资", figures=["13亿元"])
    drifted = item_of(TEXT, A, summary="完成投资1.2亿元", figures=["12亿元"])
    s = grade(TEXT, digest(achievements=[wrong_fig, drifted]), gold)
    assert s.figure_faults == 2


def test_figure_check_details():
    assert figure_faults("增长87%", "同比增长87%", ["87%"]) == []
    assert len(figure_faults("增长85%", "同比增长87%", ["87%"])) == 1
    assert figure_faults("共20余例", "已开展二十余例", []) == []          # Chinese numeral in evidence
    assert figure_faults("投入5万元", "投入五万元", []) == []
    assert figure_faults("1,200人", "培训1200人", []) == []               # thousands separator
    assert figure_faults("达到81.7%", "达到81.7%", []) == []              # full-width digits/percent
    assert len(figure_faults("增长7个", "增长70个", [])) == 1              # 7 is not 70
    assert len(figure_faults("增长5%", "增长5个", [])) == 1                # 5% is not 5
    assert len(figure_faults("", "增长5个", [""])) == 1                    # empty figure


def test_duplicates_are_counted():
    gold = gold_of(TEXT, achievements=[A])
    a = item_of(TEXT, A)
    s = TEXT.index(A)
    nearly = item(TEXT, s, s + len(A) + 1)                  # overlap 10 of shorter 10
    other = item_of(TEXT, B)
    assert grade(TEXT, digest(achievements=[a, a, nearly, other]), gold).duplicates == 2
    # Same span in different categories is not a duplicate (it is a category question).
    assert grade(TEXT, digest(achievements=[a], plans=[a]), gold).duplicates == 0
    # The same sentence taken from a repeated paragraph is a duplicate too.
    text = TEXT + "\n" + A
    second = item(text, text.rindex(A), text.rindex(A) + len(A))
    assert grade(text, digest(achievements=[item_of(text, A), second]), gold_of(text, achievements=[A])).duplicates == 1


def test_meta_counts_are_reported():
    s = grade(TEXT, digest(), gold_of(TEXT, achievements=[A]))
    assert (s.llm_calls, s.prompt_tokens, s.completion_tokens, s.seconds) == (3, 100, 20, 1.5)
    assert s.recall == 0.0 and s.precision is None


def test_digest_model_is_accepted():
    gold = gold_of(TEXT, achievements=[A])
    s0 = TEXT.index(A)
    d = Digest(doc=DocInfo(chars=len(TEXT)), overview="", meta=Meta(backend="b", model="m", prompt_version="v"),
               achievements=[Item(summary="完成投资12亿元", evidence=A, span=(s0, s0 + len(A)), figures=["12亿元"])])
    s = grade(TEXT, d, gold)
    assert (s.recall, s.precision, s.violations, s.figure_faults) == (1.0, 1.0, 0, 0)


# ---------------------------------------------------------------------------- locating gold

def test_repeated_evidence_prefers_occurrence_outside_noise():
    caption = "图为会议现场,全年完成投资12亿元"
    text = caption + "。\n正文:" + A + "。"
    gold = gold_of(text, noise=[caption], achievements=[A])
    loc = locate_gold(text, gold)
    assert loc.items[0].span == (text.rindex(A), text.rindex(A) + len(A))


def test_repeated_noise_string_marks_the_later_copy_of_a_repeated_paragraph():
    para = "强力推进全面从严治党,抓医药购销和行医办医中不正之风整治"
    text = "前言。" + para + "。\n参会人员名单。\n" + para + "。\n结束。"
    gold = gold_of(text, noise=[para[10:]], plans=["抓医药购销和行医办医中不正之风整治"])
    loc = locate_gold(text, gold)
    first, second = text.index(para), text.rindex(para)
    assert loc.noise_spans == [(second + 10, second + len(para))]
    assert loc.items[0].span[0] == first + 11
    # A repeated caption that no gold evidence touches is noise everywhere.
    text2 = "会议现场。甲" + TEXT + "会议现场。乙"
    loc2 = locate_gold(text2, gold_of(text2, noise=["会议现场。"], achievements=[A]))
    assert len(loc2.noise_spans) == 2


def test_unlocatable_gold_is_counted_not_fatal():
    gold = Gold.model_validate({"achievements": [{"summary": "x", "evidence": A}, {"summary": "y", "evidence": "不存在的证据文本"}],
                                "noise": ["也不存在的噪声文本"]})
    s = grade(TEXT, digest(achievements=[item_of(TEXT, A)]), gold)
    assert s.gold_unlocated == 1 and s.noise_unlocated == 1
    assert s.per_category["achievements"].gold == 1 and s.recall == 1.0


def test_crlf_text_still_locates_gold():
    text = "第一行\r\n全年完成投资\r\n12亿元。"
    gold = Gold.model_validate({"achievements": [{"summary": "x", "evidence": "全年完成投资\n12亿元"}]})
    loc = locate_gold(text, gold)
    s, e = loc.items[0].span
    assert text[s:e] == "全年完成投资\r\n12亿元"


# ---------------------------------------------------------------------------- micro

def _score(name: str, gold: int, items: int, matched: int) -> ArticleScore:
    s = ArticleScore(name=name)
    s.per_category["achievements"] = CategoryScore(gold=gold, items=items, matched=matched)
    return s


def test_micro_pools_counts_instead_of_averaging_ratios():
    a = _score("a", gold=1, items=1, matched=1)   # recall 1.0, precision 1.0
    b = _score("b", gold=3, items=9, matched=0)   # recall 0.0, precision 0.0
    b.per_category["plans"] = CategoryScore(gold=4, items=2, matched=2)
    m = micro([a, b])
    assert m["recall"] == pytest.approx(3 / 8)      # mean of ratios would be (1 + 2/7) / 2
    assert m["precision"] == pytest.approx(3 / 12)
    assert m["per_category"]["achievements"]["recall"] == pytest.approx(1 / 4)
    assert m["per_category"]["plans"] == {"gold": 4, "items": 2, "matched": 2, "recall": 0.5, "precision": 1.0}
    assert m["per_category"]["problems"]["recall"] is None
    assert (m["gold"], m["items"], m["matched"]) == (8, 12, 3)



def test_standard_errors_are_binomial_over_claims_and_items():
    m = micro([_score("a", gold=40, items=50, matched=30), _score("b", gold=0, items=0, matched=0)])
    r_se, p_se = standard_errors(m)
    assert r_se == pytest.approx(math.sqrt(0.75 * 0.25 / 40))
    assert p_se == pytest.approx(math.sqrt(0.6 * 0.4 / 50))
    assert standard_errors(micro([_score("c", gold=0, items=0, matched=0)])) == (None, None)

# ---------------------------------------------------------------------------- independent matcher

def _random_spans(rng: random.Random, n: int, length: int = 300):
    out = []
    for _ in range(n):
        s = rng.randrange(length)
        out.append((s, s + rng.choice([1, 3, 8, 12, 24, 24, 45, 80, 150])))
    return out


def test_scipy_matching_agrees_with_independent_kuhn():
    rng = random.Random(20240607)
    for _ in range(400):
        left = _random_spans(rng, rng.randrange(0, 30))
        right = _random_spans(rng, rng.randrange(0, 30))
        if left and rng.random() < 0.2:
            left[0] = None
        pairs = max_matching(left, right)
        assert len(pairs) == check_matching.kuhn_matching(left, right)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        assert all(spans_match(left[i], right[j]) for i, j in pairs)


def test_independent_hits_rule_agrees():
    rng = random.Random(7)
    for _ in range(5000):
        a, b = _random_spans(rng, 2, 60)
        assert spans_match(a, b) == check_matching.hits(a, b)


# ---------------------------------------------------------------------------- driver on the seeds

def gold_echo_summarizer(gold_dir: Path = GOLD):
    """Test double for the pipeline: a digest made of the gold items themselves, located."""

    def summarize_file(path: Path) -> Digest:
        text = path.read_bytes().decode("utf-8")
        loc = locate_gold(text, load_gold(gold_dir / f"{path.stem}.json"))
        cats = {c: [] for c in CATEGORIES}
        for g in loc.items:
            s, e = g.span
            cats[g.category].append(Item(summary=g.summary, evidence=text[s:e], span=(s, e), figures=list(g.figures)))
        return Digest(doc=DocInfo(chars=len(text)), overview="", **cats,
                      meta=Meta(backend="gold-echo", model="gold", prompt_version="-", llm_calls=0))

    return summarize_file


class _Settings:
    quiet = True


def test_gold_echo_scores_one_on_every_seed(tmp_path, capsys):
    buf = io.StringIO()
    rc = run_eval(ARTICLES, GOLD, _Settings(), as_json=True, save=tmp_path / "digests",
                  summarize_file=gold_echo_summarizer(), out=buf)
    assert rc == 0
    report = json.loads(buf.getvalue())
    assert len(report["articles"]) == 5
    for art in report["articles"]:
        assert (art["recall"], art["precision"], art["located_recall"]) == (1.0, 1.0, 1.0), art["article"]
        assert art["gold_unlocated"] == 0 and art["noise_unlocated"] == 0
        assert art["wrong_category"] == art["noise_items"] == art["violations"] == 0
        assert art["figure_faults"] == art["duplicates"] == 0
    assert report["micro"]["recall"] == 1.0 and report["micro"]["precision"] == 1.0
    assert sorted(p.name for p in (tmp_path / "digests").iterdir()) == sorted(p.name for p in GOLD.glob("*.json"))

    # The independent checker reads the saved digests and agrees.
    assert check_matching.main(["--digests", str(tmp_path / "digests"), "--gold", str(GOLD),
                                "--articles", str(ARTICLES)]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == "micro recall 1.00 precision 1.00"


def test_table_output_skips_and_failures(tmp_path):
    arts = tmp_path / "articles"
    arts.mkdir()
    for p in sorted(ARTICLES.glob("*.txt"))[:2]:
        (arts / p.name).write_bytes(p.read_bytes())
    (arts / "no_gold.md").write_text("无标注文章", encoding="utf-8")
    broken = sorted(ARTICLES.glob("*.txt"))[1].stem
    echo = gold_echo_summarizer()

    def flaky(path: Path) -> Digest:
        if path.stem == broken:
            raise RuntimeError("endpoint down")
        return echo(path)

    buf = io.StringIO()
    rc = run_eval(arts, GOLD, _Settings(), as_json=False, save=None, summarize_file=flaky, out=buf)
    out = buf.getvalue().splitlines()
    assert rc == 1
    assert any(line.startswith("MICRO") for line in out)
    assert any("skipped no_gold.md" in line for line in out)
    assert any(f"failed  {broken}: RuntimeError: endpoint down" in line for line in out)
    # The failed article's gold still counts: micro recall < 1, precision 1.
    first_gold = load_gold(GOLD / f"{sorted(ARTICLES.glob('*.txt'))[0].stem}.json")
    second_gold = load_gold(GOLD / f"{broken}.json")
    n1 = sum(len(getattr(first_gold, c)) for c in CATEGORIES)
    n2 = sum(len(getattr(second_gold, c)) for c in CATEGORIES)
    assert out[-1] == f"micro recall {n1 / (n1 + n2):.2f} precision 1.00"


def test_no_pairs_is_an_error_exit(tmp_path):
    buf = io.StringIO()
    assert run_eval(tmp_path, GOLD, _Settings(), as_json=False, save=None,
                    summarize_file=gold_echo_summarizer(), out=buf) == 1
    assert buf.getvalue().splitlines()[-1] == "micro recall n/a precision n/a"


def test_an_overview_number_the_report_does_not_print_is_a_fault():
    from service.evaluate import overview_faults

    text = "全年新增床位1,200张，覆盖率达到95.5%。"
    assert overview_faults(text, "新增床位1200张，覆盖率95.5%。") == []
    assert overview_faults(text, "新增床位1300张，覆盖率95%。") == [
        "overview number '1300' not in the report", "overview number '95%' not in the report"]


def test_a_part_read_against_its_heading_is_flagged_and_a_mixed_one_is_not():
    """``flipped_parts``: issue 25's "no single feature may flip a whole part against its
    heading", measured on a labeller's decisions."""
    problems, plans = ("二、存在问题",), ("三、下一步工作",)
    parts = [(problems, "problem")] * 6 + [(plans, "plan")] * 6 + [(("前言",), None)] * 6
    flipped_all = [("plans",)] * 5 + [("problems",)] + [("plans",)] * 6 + [("achievements",)] * 6
    assert flipped_parts(parts, flipped_all) == [("二、存在问题", "problem", 6, 0.17)]
    # two in six is a mixed part, not a flipped one; four emitted units are too few to say
    assert flipped_parts(parts, [("plans",)] * 4 + [("problems",)] * 2 + [("plans",)] * 12) == []
    assert flipped_parts(parts, [()] * 2 + [("plans",)] * 4 + [("plans",)] * 12) == []
    # a unit with two categories counts for its part when one of them is the part's
    assert flipped_parts(parts, [("plans", "problems")] * 6 + [("plans",)] * 12) == []
