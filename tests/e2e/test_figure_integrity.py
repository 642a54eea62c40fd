"""Every development, silver and seed document: no unit begins or ends inside a number, every
number of a kept sentence lies whole inside one unit, no excluded block is a number or a piece
of a kept sentence (issue 23; ``python bench/figure_integrity.py -v`` lists any finding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import integrity
from service.clean import clean
from service.evaluate import read_article_text
from service.segment import segment

ROOT = Path(__file__).resolve().parents[2]
SETS = [ROOT / "fixtures/articles", ROOT / "fixtures/corpus/articles", ROOT / "fixtures/silver/articles"]
DOCS = [p for d in SETS for p in sorted(d.glob("*.txt"))]


def test_every_set_is_there():
    for d in SETS:
        assert any(d.glob("*.txt")), f"no documents in {d}"
    assert len(DOCS) >= 60


@pytest.mark.parametrize("path", DOCS, ids=[p.stem[:24] for p in DOCS])
def test_no_figure_is_cut_or_lost(path):
    raw = read_article_text(path)
    cleaned = clean(raw)
    report = integrity.check(raw, cleaned, segment(raw, cleaned.blocks))
    assert report.counts() == {"cut_units": 0, "lost_numbers": 0, "excluded_parts": 0}, \
        report.cut_units + report.lost_numbers + report.excluded_parts
