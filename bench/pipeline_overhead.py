"""Pipeline overhead: everything but waiting for the model.

    python bench/pipeline_overhead.py
    python bench/pipeline_overhead.py --profile    # and the top functions under cProfile

Runs the real pipeline with ``InstantBackend``, a test double that answers every label
request at once (so the time measured is cleaning, segmentation, chunking, cue labelling,
validation, grounding and merging), on the longest seed and on a synthetic
200,000-character article built from all five seeds (numbers varied so nothing is a
duplicate). Target: under 1 s for the 200,000-character article on 2 cores.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from service.backends.base import LLMRequest, LLMResponse
from service.config import Settings
from service.pipeline import summarize

ROOT = Path(__file__).resolve().parent.parent


class InstantBackend:
    """Test double: every answer is '计划' instantly; counts calls."""

    name = "instant-double"
    model = "none"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        return LLMResponse(content='{"label": "计划"}', prompt_tokens=1, completion_tokens=1)

    async def aclose(self) -> None:
        pass


def big_article(chars: int) -> str:
    from service.clean import clean

    # the report text of each seed (bylines and appended stories would end the report early)
    seeds = ["\n\n".join(b.text for b in clean(p.read_text(encoding="utf-8")).blocks)
             for p in sorted((ROOT / "fixtures/articles").glob("*.txt"))]
    parts, n, i = [], 0, 0
    while n < chars:
        # vary every number so the duplicate-paragraph rule does not shrink the text
        text = re.sub(r"\d+", lambda m: str(int(m.group()) + i + 1), seeds[i % len(seeds)])
        text = re.sub(r"(?<=[\u4e00-\u9fff])(?=。)", f"第{i}批", text)
        parts.append(text)
        n += len(text)
        i += 1
    return "\n\n".join(parts)[:chars]


async def _timed(text: str, backend: InstantBackend, settings: Settings, out: list) -> float:
    """Seconds of one ``summarize`` call, timed inside the event loop. Timing around
    ``asyncio.run`` on Python 3.11 also timed the runner's repr of its finished task (its
    SIGINT handler's check formats the task, result included): the whole digest, ~0.1 s for
    200,000 characters, spent by the runner and not by the pipeline (a caller that returns a
    digest from ``asyncio.run``, as the CLI's ``summarize_text`` does, still pays it). The
    digest goes out through ``out`` so the runner's task returns just the number."""
    t = time.perf_counter()
    out.append(await summarize(text, backend, settings))
    return time.perf_counter() - t


def measure(label: str, text: str, repeats: int = 3) -> None:
    settings = Settings(no_cache=True, max_chars=10_000_000)
    best, backend, digests = float("inf"), None, []
    for _ in range(repeats):
        backend = InstantBackend()
        best = min(best, asyncio.run(_timed(text, backend, settings, digests)))
    digest = digests[-1]
    items = sum(len(getattr(digest, c)) for c in ("achievements", "problems", "plans"))
    print(f"{label:<32} chars {len(text):>8,}  items {items:>5}  model calls {backend.calls:>5}  "
          f"overhead {best * 1000:8.1f} ms (best of {repeats})")


def profile(text: str, top: int = 25) -> None:
    """One run of the pipeline on ``text`` under cProfile: the functions with most own time."""
    import cProfile
    import pstats

    settings = Settings(no_cache=True, max_chars=10_000_000)
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(_timed(text, InstantBackend(), settings, []))
    prof.disable()
    stats = pstats.Stats(prof)
    print(f"cProfile total {stats.total_tt:.3f} s")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true", help="print the top functions (cProfile) on 200,000 chars")
    args = ap.parse_args()
    longest = max((ROOT / "fixtures/articles").glob("*.txt"), key=lambda p: len(p.read_text(encoding="utf-8")))
    measure(f"longest seed {longest.name[:3]}", longest.read_text(encoding="utf-8"))
    big = big_article(200_000)
    measure("synthetic 200,000 chars", big)
    if args.profile:
        profile(big)


if __name__ == "__main__":
    main()
