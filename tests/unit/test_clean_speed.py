"""clean's index of kept blocks by form finds the stale copy a scan of every kept block found."""

from __future__ import annotations

import itertools

from service.clean import Block, _norm, _renumbered_copy


def test_stale_copy_found_through_the_form_index_equals_the_full_scan() -> None:
    item = "深入开展爱国卫生运动,推动工作内容从环境卫生治理向全面社会健康管理转变。"
    other = "全面加强公立医院传染病救治能力建设,鼓励更多高水平医务人员从事传染病防治工作。"
    marks = ["一是", "二是", "三是", "(2)", "(5)", "", "四、"]
    texts = [m + t for m, t in itertools.product(marks, (item, other))]
    kept = [Block(i * 100, i * 100 + len(t), t) for i, t in enumerate(texts)]
    for t in texts + ["五是" + item, "(3)" + other, "一是" + other]:
        b = Block(10_000, 10_000 + len(t), t)
        same = [k for k in kept if _norm(k.text) == _norm(t)]
        assert _renumbered_copy(kept, b, same=same) == _renumbered_copy(kept, b)
    # "五是" is 5: the last kept copy under a lower number is "四、" ("(5)" is not lower)
    assert _renumbered_copy(kept, Block(0, 0, "五是" + item)) == texts.index("四、" + item)
