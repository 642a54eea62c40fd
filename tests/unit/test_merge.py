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
