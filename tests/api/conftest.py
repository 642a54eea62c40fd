"""Shared by the API tests (the root conftest already clears OPENAI_*/REPORTSUM_*)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.config import PROJECT_ROOT, Settings
from tests.doubles.fake_openai import FakeOpenAIServer

ARTICLES = sorted((PROJECT_ROOT / "fixtures" / "articles").glob("*.txt"))
TOKEN = "s3cret-token"


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def make_settings(fake: FakeOpenAIServer, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "backend": "openai",
        "openai_base_url": fake.base_url,
        "openai_api_key": "sk-test",
        "model": "fake-model",
        "max_retries": 0,
        "timeout": 10.0,
        "cache": tmp_path / "cache.sqlite3",
        "db": tmp_path / "jobs.sqlite3",
        "quiet": True,
        # every unit goes to the model, so every request waits on it (latency, queues, errors)
        "assist_margin": 1.0,
        "strategy": "learned",
    }
    values.update(overrides)
    return Settings(**values)


def short_text(i: int) -> str:
    """A one-sentence article (distinct per ``i``)."""
    return f"医疗服务能力持续提升（{i}）。"


class _CountingBackend:
    """Answers every request with a minimal valid reply and counts them."""

    name, model = "count", "count"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: Any) -> Any:
        from service.backends.base import LLMResponse
        from tests.doubles.fake_openai import minimal_instance

        self.calls += 1
        return LLMResponse(content=json.dumps(minimal_instance(request.json_schema), ensure_ascii=False))

    async def aclose(self) -> None:
        pass


@functools.cache
def model_calls(text: str) -> int:
    """How many model calls the pipeline makes for ``text`` (the cues decide the rest)."""
    from service.pipeline import summarize

    backend = _CountingBackend()
    settings = Settings(backend="openai", no_cache=True, assist_margin=1.0,
                        strategy="learned")  # as make_settings and clean_env
    asyncio.run(summarize(text, backend, settings))  # type: ignore[arg-type]
    return backend.calls


@functools.cache
def text_needing_model(short: bool = True) -> str:
    """An article the pipeline must ask the model about: error paths and the cache's
    "zero model calls" need one. Which one depends on the pipeline's cues, so it is found,
    not hard-coded."""
    candidates = [short_text(0)] if short else []
    candidates += [p.read_text(encoding="utf-8") for p in ARTICLES]
    for text in candidates:
        if model_calls(text) > 0:
            return text
    raise AssertionError("no fixture article makes the pipeline call the model")
