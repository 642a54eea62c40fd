"""ground's shortcuts answer what the plain formulas answered, on every span and pair tried."""

from __future__ import annotations

import random
import re
from pathlib import Path

from service.ground import (_POINTS, _digit, _visible_after, _visible_before, cuts_number, figures,
                            summarize_evidence, summary_is_faithful)

ROOT = Path(__file__).resolve().parents[2]
MASK = "\ue000"


def _faithful_by_scan(summary: str, evidence: str) -> bool:
    squashed = re.sub(r"\s+", "", evidence)
    return (all(n in evidence for n in re.findall(r"\d+(?:\.\d+)?", summary))
            and all(re.sub(r"\s+", "", f) in squashed for f in figures(summary)))


def _cuts_by_reading_all_four(text: str, start: int, end: int) -> str | None:
    first, last = _visible_after(text, start), _visible_before(text, end)
    before, after = _visible_before(text, start), _visible_after(text, end)
    if _digit(first) or (first and first in _POINTS):
        if _digit(before) or (before and before in _POINTS and _digit(_visible_before(text, start - 1))):
            return f"begins inside a number: …{text[max(0, start - 6):start]}|{text[start:start + 6]}…"
    if _digit(last) or (last and last in _POINTS):
        if _digit(after) or (after and after in _POINTS and _digit(_visible_after(text, end + 1))):
            return f"ends inside a number: …{text[max(0, end - 6):end]}|{text[end:end + 6]}…"
    return None


TRICKY = "增长12 %，完成3万余人次。覆盖率85.2％" + MASK + "3，下降9.1%。达到1 2个。计划2025.12.31前完成"


def test_summary_check_equals_the_figure_scan() -> None:
    rng = random.Random(11)
    seed = (ROOT / "fixtures/articles").glob("*.txt").__next__().read_text(encoding="utf-8")
    texts = [TRICKY, seed[:3000]]
    for text in texts:
        for _ in range(1500):
            a = rng.randrange(len(text))
            evidence = text[a:a + rng.randint(0, 60)]
            b = rng.randrange(len(text))
            other = text[b:b + rng.randint(0, 40)]
            i = rng.randint(0, len(evidence))
            piece = evidence[i:rng.randint(i, len(evidence))]
            for summary in (summarize_evidence(evidence), other, other + "。", evidence.replace("1", "7"),
                            summarize_evidence(evidence)[:-1] + " 1%。", "", piece, piece + "。",
                            piece.replace(" ", "") + "。", "。" + piece):
                assert summary_is_faithful(summary, evidence) == _faithful_by_scan(summary, evidence)


def test_number_cut_check_equals_reading_all_four_neighbours() -> None:
    seed = sorted((ROOT / "fixtures/articles").glob("*.txt"))[0].read_text(encoding="utf-8")[:400]
    for text in (TRICKY, "." + MASK + "5" + MASK + ".7" + MASK, seed):
        for start in range(len(text) + 1):
            for end in range(start, len(text) + 1):
                assert cuts_number(text, start, end) == _cuts_by_reading_all_four(text, start, end)
