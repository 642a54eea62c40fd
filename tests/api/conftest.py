"""Shared by the API tests (the root conftest already clears OPENAI_*/REPORTSUM_*)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
    }
    values.update(overrides)
    return Settings(**values)
