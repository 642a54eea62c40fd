"""The public output contract (field names are fixed; see README) and internal value types.

Every ``span`` is a half-open ``(start, end)`` pair of Python ``str`` offsets into the input
text exactly as received (after decoding): the contract promises
``evidence == text[start:end]``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["achievements", "problems", "plans"]
CATEGORIES: tuple[Category, ...] = ("achievements", "problems", "plans")
Span = tuple[int, int]


class Item(BaseModel):
    summary: str
    evidence: str
    span: Span
    figures: list[str] = Field(default_factory=list)


class DocInfo(BaseModel):
    title: str | None = None
    organization: str | None = None
    region: str | None = None
    period: str | None = None
    chars: int


class Excluded(BaseModel):
    span: Span
    reason: str


class Meta(BaseModel):
    backend: str
    model: str
    # "learned" (labeller, model for near ties) or "context" (model reads every chunk)
    strategy: str = "learned"
    prompt_version: str
    labeller: str = ""  # version (hash) of the learned labeller's parameter file
    chunks: int = 0
    failed_chunks: int = 0  # chunk calls that failed for good (their units: the labeller's labels)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)


class Digest(BaseModel):
    """One article's digest: the JSON every interface returns."""

    model_config = ConfigDict(extra="allow")

    doc: DocInfo
    overview: str
    achievements: list[Item] = Field(default_factory=list)
    problems: list[Item] = Field(default_factory=list)
    plans: list[Item] = Field(default_factory=list)
    excluded: list[Excluded] = Field(default_factory=list)
    meta: Meta

    def items(self) -> list[tuple[Category, Item]]:
        return [(c, it) for c in CATEGORIES for it in getattr(self, c)]
