"""Figure integrity: no unit cuts a number, no number is lost between units (pure, no I/O).

An altered number is the worst defect a digest can have. Segmentation is where numbers
were cut ("85.2%" read as the enumerator "85." and the unit "2%…"; "PM\\n2.5\\n)" broken
over lines and the "2.5" line thrown away as chrome; an inline ``<span>25</span>%``
ending a block). These checks look at what the pipeline sees, before any label:

* ``cut_units``      a unit that begins or ends inside a number;
* ``lost_numbers``   a number in the visible text of a kept sentence that lies whole inside
                     no unit of that sentence;
* ``excluded_parts`` an excluded block that is a bare number, or a piece of a sentence whose
                     other parts are kept.

``bench/figure_integrity.py`` prints the counts over every development, silver and seed
document; ``tests/e2e/test_figure_integrity.py`` requires them to be 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.clean import CLOSERS, MASK, TERMINAL, Cleaned
from service.ground import _visible_after as _next_char
from service.ground import _visible_before as _prev_char
from service.ground import cuts_number
from service.segment import Structure, view_of

DIGITS = "0-9０-９"
# A number as printed: digits with decimal points (ASCII or full-width) and date dots inside.
NUMBER = re.compile(rf"[{DIGITS}]+(?:[.．][{DIGITS}]+)*")
_DIGIT = re.compile(rf"[{DIGITS}]")


@dataclass
class Report:
    cut_units: list[str] = field(default_factory=list)
    lost_numbers: list[str] = field(default_factory=list)
    excluded_parts: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"cut_units": len(self.cut_units), "lost_numbers": len(self.lost_numbers),
                "excluded_parts": len(self.excluded_parts)}


def check(raw: str, cleaned: Cleaned, structure: Structure) -> Report:
    view = view_of(raw, cleaned.blocks)
    report = Report()
    for s in structure.sentences + structure.tasks:
        for u in s.units:
            if why := cuts_number(view, u.start, u.end):
                report.cut_units.append(why)
        if not s.units or s in structure.tasks:
            continue
        for m in NUMBER.finditer(view, s.start, s.end):
            a, b = m.span()
            if _enumerator(view, a, b, s.start):
                continue
            if not any(u.start <= a and b <= u.end for u in s.units):
                report.lost_numbers.append(f"{m.group()!r} in {_visible(view[s.start:s.end])[:60]!r}")
    report.excluded_parts = _excluded_parts(raw, view, cleaned)
    return report


def _is_digit(ch: str) -> bool:
    return bool(ch) and bool(_DIGIT.match(ch))


def _enumerator(view: str, a: int, b: int, sentence_start: int) -> bool:
    """"1." / "1、" / "（1）" opening a clause number a list, they state no figure."""
    before = _prev_char(view, a) if a > sentence_start else ""
    after = _next_char(view, b)
    if before in "（(" and after in "）)":
        return True
    opens_clause = before in "" or before in "，,：:；;。 \n"
    return opens_clause and after in "、.．" and not _is_digit(_next_char(view, b + 1))


def _visible(s: str) -> str:
    return s.replace(MASK, "")


_BARE_NUMBER = re.compile(rf"^[\s{DIGITS}.．%％‰]+$")
_CONTINUATION = re.compile(rf"^[{re.escape(CLOSERS)}%％‰，,、。；;]")


def _excluded_parts(raw: str, view: str, cleaned: Cleaned) -> list[str]:
    """Excluded blocks that are bare numbers or the middle of a kept sentence."""
    out = []
    blocks = sorted(cleaned.blocks, key=lambda b: b.start)
    for e in cleaned.excluded:
        a, b = e.span
        text = raw[a:b].strip()
        if _BARE_NUMBER.match(text) and _DIGIT.search(text):
            out.append(f"bare number {text!r} excluded as {e.reason!r}")
            continue
        before = next((k for k in reversed(blocks) if k.end <= a), None)
        after = next((k for k in blocks if k.start >= b), None)
        if before is None or after is None:
            continue
        joined_before = "\n\n" not in raw[before.end:a] and before.text.rstrip(CLOSERS)[-1:] not in TERMINAL
        joined_after = "\n\n" not in raw[b:after.start] and bool(_CONTINUATION.match(_visible(after.text)))
        if joined_before and joined_after:
            out.append(f"{text[:30]!r} excluded as {e.reason!r} inside a kept sentence")
    return out
