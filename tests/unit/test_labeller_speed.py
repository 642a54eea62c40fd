"""The labeller's array shortcuts answer exactly what the plain loops answer."""

from __future__ import annotations

import numpy as np

from service.labeller import LABELS, Labeller, Vectorizer, Vocabulary


def _labeller(second_threshold: float, min_prob: float, pairs: tuple[frozenset[str], ...]) -> Labeller:
    vocab = Vocabulary(np.array([1, 2, 3], dtype=np.int64), np.ones(3), 1.0)
    return Labeller(LABELS, Vectorizer({"u": vocab}, ()), np.zeros((4, 3)), np.zeros(4),
                    second_threshold=second_threshold, min_prob=min_prob, second_pairs=pairs)


def _decide_by_loop(m: Labeller, proba: np.ndarray) -> list[tuple[str, ...]]:
    """Row by row, as the labeller decided before its table lookup."""
    out = []
    for p in proba:
        order = np.argsort(-p, kind="stable")
        top, second = int(order[0]), int(order[1])
        if p[top] < m.min_prob:
            out.append(())
            continue
        cats = [m.labels[top]]
        if p[second] >= m.second_threshold and m._pair_allowed(m.labels[top], m.labels[second]):
            cats.append(m.labels[second])
        out.append(tuple(c for c in cats if c != "other"))
    return out


def test_decide_by_table_equals_the_row_by_row_loop() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(4) * 0.7, size=2000)
    proba[:50] = 0.25  # four-way ties: the stable order decides
    proba[50:100] = [0.4, 0.4, 0.1, 0.1]
    pairs = (frozenset(("achievements", "problems")), frozenset(("plans", "problems")))
    for threshold, min_prob, allowed in [(1.0, 0.0, ()), (0.3, 0.0, pairs), (0.2, 0.45, ()), (0.35, 0.3, pairs)]:
        m = _labeller(threshold, min_prob, allowed)
        assert m.decide(proba) == _decide_by_loop(m, proba)
    assert m.decide(np.zeros((0, 4))) == []


def test_hash_table_columns_equal_a_dictionary_lookup() -> None:
    rng = np.random.default_rng(5)
    keys = np.unique(rng.integers(1, 1 << 62, 5000))
    vocab = Vocabulary(keys, np.ones(len(keys)), 1.0)
    asked = np.concatenate([rng.choice(keys, 20000), rng.integers(1, 1 << 62, 20000), keys[:3]])
    where = {int(k): i for i, k in enumerate(keys)}
    assert vocab.columns(asked).tolist() == [where.get(int(k), -1) for k in asked]
    empty = Vocabulary(np.zeros(0, dtype=np.int64), np.zeros(0), 1.0)
    assert empty.columns(asked[:5]).tolist() == [-1] * 5


def test_unit_ref_init_stores_every_field_in_order_and_stays_frozen() -> None:
    import dataclasses

    import pytest

    from service.features import UnitRef

    values = (3, 9, "完成", "全年完成", 2, ("工作回顾",), True, 1, "工作")
    u = UnitRef(*values)
    assert list(u.__dict__) == [f.name for f in dataclasses.fields(UnitRef)]
    assert dataclasses.astuple(u) == values
    assert u == UnitRef(**dict(zip(u.__dict__, values))) and hash(u) == hash(UnitRef(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.start = 4  # type: ignore[misc]
    assert UnitRef(*values[:-1]).tail == ""  # a unit no caption cut has no tail
