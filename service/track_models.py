"""The ``reportsum track`` contract: an earlier report's figured commitments and what the
later report says became of them.

Spans follow the digest's rule (``service.models``): half-open ``(start, end)`` offsets into
the input exactly as received, and ``evidence == text[start:end]`` on both sides. Every
figure in a track (``figures``, ``target``, ``reported``) is printed verbatim in the evidence
it belongs to: the comparison is done in code and never prints a number of its own.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.models import Span

Status = Literal["met", "not_met", "progress_reported", "not_reported"]
STATUSES: tuple[Status, ...] = ("met", "not_met", "progress_reported", "not_reported")


class Commitment(BaseModel):
    """One plan of the earlier report that carries a figure (evidence into the earlier text)."""

    evidence: str
    span: Span
    figures: list[str] = Field(default_factory=list)


class Statement(BaseModel):
    """One passage of the later report cited about a commitment (evidence into the later text)."""

    evidence: str
    span: Span
    figures: list[str] = Field(default_factory=list)
    score: float = 0.0  # retrieval similarity to the commitment (cosine, 0..1)


class TrackItem(BaseModel):
    commitment: Commitment
    status: Status
    target: str | None = None  # the commitment's figure compared, as printed there
    reported: str | None = None  # the later figure it was compared with, as printed there
    basis: str = ""  # how the status was reached, in words
    later: list[Statement] = Field(default_factory=list)


class TrackDoc(BaseModel):
    title: str | None = None
    chars: int
    source: str | None = None


class TrackMeta(BaseModel):
    strategy: str = "retrieval"  # "retrieval": figures compared, no model; "model": a model reads the candidates
    version: str  # track's version, and the prompt's with a model
    labeller: str = ""
    backend: str = ""
    model: str = ""
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    corrected: int = 0  # model statuses that contradicted the figures, corrected in code
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)


class Track(BaseModel):
    """What ``reportsum track EARLIER LATER`` returns."""

    earlier: TrackDoc
    later: TrackDoc
    items: list[TrackItem] = Field(default_factory=list)
    meta: TrackMeta

    def counts(self) -> dict[str, int]:
        return {s: sum(it.status == s for it in self.items) for s in STATUSES}
