"""service.merge.dedupe: a repeated paragraph is reported once; one span may serve two categories."""

from service.merge import dedupe
from service.models import Item


def _item(evidence: str, start: int) -> Item:
    return Item(summary=evidence, evidence=evidence, span=(start, start + len(evidence)), figures=[])


def test_a_repeated_paragraph_is_reported_once():
    items = {"achievements": [], "problems": [],
             "plans": [_item("深入开展爱国卫生运动", 10), _item("深入开展爱国卫生运动", 500)]}
    out, dropped = dedupe(items)
    assert [it.span for it in out["plans"]] == [(10, 20)]
    assert dropped == 1


def test_the_same_span_in_two_categories_is_kept_in_both():
    fix = "补齐县域医疗卫生服务体系“短板”"
    items = {"achievements": [], "problems": [_item(fix, 40)], "plans": [_item(fix, 40)]}
    out, dropped = dedupe(items)
    assert len(out["problems"]) == len(out["plans"]) == 1
    assert dropped == 0


def test_first_mentions_keeps_what_dedupe_keeps_in_its_order():
    # assemble learns the survivors from spans and evidence before it builds any item
    from service.merge import first_mentions

    items = {"achievements": [_item("全市新建村卫生室12所", 90), _item("深入开展爱国卫生运动", 10)],
             "problems": [_item("深入 开展爱国卫生运动。", 300), _item("短板", 40)],
             "plans": [_item("短板", 40), _item("深入开展爱国卫生运动", 10), _item("全市新建村卫生室12所", 700)]}
    kept, dropped = first_mentions({c: [(it.span, it.evidence, it) for it in items[c]] for c in items})
    assert (kept, dropped) == dedupe(items)
    assert [it.span for it in kept["achievements"]] == [(10, 20), (90, 101)]  # by span, not as given
    assert kept["problems"] == [items["problems"][1]] and dropped == 2
