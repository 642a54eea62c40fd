"""The shortcuts that keep segmentation linear give exactly what the patterns they replace gave."""

from __future__ import annotations

import random
import re
from pathlib import Path

from service.clean import MASK, clean
from service.segment import (_BLANKS, _content_counter, _content_len, _lead_ws, _next_numbered,
                             _next_numbered_all, _trail_ws, paragraphs, view_of)

ROOT = Path(__file__).resolve().parents[2]
EVERY_CHARACTER = "".join(map(chr, range(0x110000)))


def test_content_characters_are_the_alphanumeric_ones_over_all_of_unicode() -> None:
    kept = re.sub(r"[\s\W_]", "", EVERY_CHARACTER)
    assert kept == "".join(filter(str.isalnum, EVERY_CHARACTER))


def test_blanks_are_the_whitespace_pattern_and_the_mask_over_all_of_unicode() -> None:
    assert set(_BLANKS) == set(re.findall(rf"[\s{MASK}]", EVERY_CHARACTER))


def test_blank_edges_measured_as_the_anchored_patterns_did() -> None:
    for s in ["", "  ", f" \u3000{MASK}要求\n{MASK} ", "会议指出", "\t\u00a0加强 建设\u2028", f"{MASK}"]:
        assert _lead_ws(s) == re.match(rf"^[\s{MASK}]*", s).end()
        assert _trail_ws(s) == len(s) - re.search(rf"[\s{MASK}]*$", s).start()


def _seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((ROOT / "fixtures/articles").glob("*.txt"))]


def test_content_counter_agrees_with_a_rescan_on_every_span() -> None:
    rng = random.Random(7)
    for raw in _seed_texts():
        start, end = 0, min(len(raw), 400)
        count = _content_counter(raw, start, end)
        for _ in range(300):
            a = rng.randint(start, end)
            b = rng.randint(a, end)
            assert count(a, b) == _content_len(raw[a:b])


def test_next_numbered_heading_in_one_pass_equals_a_scan_per_paragraph() -> None:
    for raw in _seed_texts():
        blocks = clean(raw).blocks
        paras = paragraphs(view_of(raw, blocks), blocks)
        assert _next_numbered_all(paras) == [_next_numbered(paras, i) for i in range(len(paras))]


def test_ocr_look_without_whitespace_is_never_ocr_and_with_it_is_the_gap_count() -> None:
    from service.segment import OCR_GAP, _looks_ocr

    samples = [line for raw in _seed_texts() for line in raw.splitlines()]
    samples += ["会议 指出 今年 完成 任务", "会议\u3000指出\u3000今年", "A B C D", "完成 12 项 工作 任务", ""]
    for text in samples:
        assert _looks_ocr(text) == (len(OCR_GAP.findall(text)) >= 3)
    assert _looks_ocr("会议 指出 今年 完成 任务")
