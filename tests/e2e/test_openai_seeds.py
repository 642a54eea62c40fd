"""All five seeds through the openai backend: the real SDK over HTTP to a loopback
test double (FakeOpenAIServer), with a 429 and a broken reply thrown in.

The double's labels are canned, so this checks the contract and the plumbing (retries,
repair, honest meta), not quality.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from service.backends import make_backend
from service.config import Settings
from service.pipeline import summarize
from tests.conftest import SEEDS
from tests.doubles.fake_openai import FakeOpenAIServer, malformed, ok, status


def through(server: FakeOpenAIServer, text: str, name: str, **overrides):
    """``summarize`` through the openai backend to ``server`` (overrides: Settings fields)."""
    fields = dict(backend="openai", openai_base_url=server.base_url, openai_api_key="sk-test",
                  model="test-model", no_cache=True, timeout=5)
    settings = Settings(**(fields | overrides))

    async def run():
        backend = make_backend(settings)
        try:
            return await summarize(text, backend, settings, source=name)
        finally:
            await backend.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_seed_through_an_openai_compatible_endpoint(path):
    text = path.read_text(encoding="utf-8")
    with FakeOpenAIServer() as server:
        server.script(status(429, retry_after="0"), malformed(), ok('{"label": "成绩"}'))
        digest = through(server, text, path.name)
        requests = len(server.requests)
    meta = digest.meta
    assert meta.backend == "openai" and meta.model == "test-model" and meta.chunks > 0
    assert meta.llm_calls == requests  # every HTTP request counted, retries and repairs included
    if requests:
        assert meta.prompt_tokens > 0 and meta.completion_tokens > 0
    for _, item in digest.items():
        assert text[item.span[0] : item.span[1]] == item.evidence
        assert all(f in item.evidence for f in item.figures)


DEV_SET = [*SEEDS, *sorted((SEEDS[0].parent.parent / "corpus" / "articles").glob("*.txt"))]


@pytest.mark.parametrize("path", DEV_SET, ids=lambda p: p.stem[:3])
def test_context_strategy_on_every_dev_document_one_call_per_chunk_plus_the_overview(path):
    """`reportsum summarize --backend openai` (strategy auto) on each seed and corpus document,
    against the loopback double whose model answers every numbered unit."""
    from service.evaluate import grade, load_gold
    from tests.doubles import context_replies

    text = path.read_text(encoding="utf-8")
    with FakeOpenAIServer(responder=context_replies.reply) as server:
        digest = through(server, text, path.name, strategy="auto")
        requests = len(server.requests)
    meta = digest.meta
    assert meta.strategy == "context" and meta.chunks >= 1
    assert meta.llm_calls == requests == meta.chunks + 1
    assert not [w for w in meta.warnings if "collapsed" not in w]  # every unit decided by the model
    gold_path = path.parent.parent / "gold" / f"{path.stem}.json"
    score = grade(text, digest.model_dump(mode="json"), load_gold(gold_path), name=path.stem)
    assert score.violations == 0 and score.figure_faults == 0
    for number in re.findall(r"\d+(?:\.\d+)?", digest.overview):
        assert number in text
