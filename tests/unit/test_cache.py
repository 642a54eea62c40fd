"""The SQLite digest cache: keys, round trip, WAL, several processes, bypass."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import sys
import types
from pathlib import Path

import pytest

from service.cache import DigestCache, digest_key, summarize_cached
from service.config import Settings
from service.models import Digest, DocInfo, Item, Meta


def make_digest(text: str = "今年完成投资1.7亿元。", model: str = "m") -> Digest:
    return Digest(
        doc=DocInfo(chars=len(text)),
        overview="概述",
        achievements=[Item(summary="完成投资1.7亿元", evidence=text[:10], span=(0, 10), figures=["1.7亿元"])],
        meta=Meta(backend="fake", model=model, prompt_version="p1", llm_calls=3, prompt_tokens=10),
    )


BASE = dict(model="m", backend="openai", prompt_version="p1", options={"chunk_tokens": 1200})


def test_key_depends_on_everything_that_determines_the_digest():
    k = digest_key("正文", **BASE)
    assert k == digest_key("正文", **BASE) and len(k) == 64
    assert k != digest_key("正文。", **BASE)
    for field, value in [("model", "m2"), ("backend", "replay"), ("prompt_version", "p2"), ("options", {"chunk_tokens": 800})]:
        assert k != digest_key("正文", **{**BASE, field: value}), field


def test_round_trip_and_wal(tmp_path: Path):
    path = tmp_path / "sub" / "c.sqlite3"
    with DigestCache(path) as cache:
        assert cache.get("k") is None
        d = make_digest()
        cache.put("k", d)
        assert cache.get("k") == d
        cache.put("k", d)  # idempotent
        assert len(cache) == 1
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert DigestCache(path).get("k") == d  # persisted


def _writer(path: str, worker: int, n: int) -> None:
    cache = DigestCache(path)
    for i in range(n):
        cache.put(f"{worker}-{i}", make_digest(model=f"w{worker}"))
        assert cache.get(f"{worker}-{(i * 7) % (i + 1)}") is not None
    cache.close()


def test_several_processes_write_one_cache(tmp_path: Path):
    path = str(tmp_path / "c.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(DigestCache(path)) == 160


class FakeBackend:
    name = "fake"
    model = "m"

    async def aclose(self) -> None:
        pass


@pytest.fixture
def stub_pipeline(monkeypatch):
    calls: list[str] = []

    async def summarize(text, backend, settings, *, source=None, progress=None, limiter=None):
        calls.append(source)
        return make_digest(text)

    monkeypatch.setitem(sys.modules, "service.pipeline", types.SimpleNamespace(summarize=summarize))
    monkeypatch.setitem(sys.modules, "service.prompts", types.SimpleNamespace(PROMPT_VERSION="p1"))
    return calls


def test_summarize_cached_serves_identical_text_under_any_name(tmp_path: Path, stub_pipeline):
    settings = Settings(cache=tmp_path / "c.sqlite3")
    cache = DigestCache(settings.cache)
    text = "今年完成投资1.7亿元。下一步要加强监管。"
    d1, hit1 = asyncio.run(summarize_cached(text, FakeBackend(), settings, cache=cache, source="a.txt"))
    d2, hit2 = asyncio.run(summarize_cached(text, FakeBackend(), settings, cache=cache, source="b.txt"))
    assert (hit1, hit2) == (False, True) and d1 == d2 and stub_pipeline == ["a.txt"]
    # a different chunk budget is a different digest
    other = Settings(cache=settings.cache, chunk_tokens=600)
    _, hit3 = asyncio.run(summarize_cached(text, FakeBackend(), other, cache=cache, source="c.txt"))
    assert hit3 is False and stub_pipeline == ["a.txt", "c.txt"]


def test_no_cache_bypasses_reads_and_writes(tmp_path: Path, stub_pipeline):
    settings = Settings(cache=tmp_path / "c.sqlite3", no_cache=True)
    cache = DigestCache(settings.cache)
    for _ in range(2):
        _, hit = asyncio.run(summarize_cached("正文内容", FakeBackend(), settings, cache=cache))
        assert hit is False
    assert len(cache) == 0 and len(stub_pipeline) == 2
    _, hit = asyncio.run(summarize_cached("正文内容", FakeBackend(), Settings(), cache=None))
    assert hit is False


def test_unusable_cache_does_not_fail_the_summary(tmp_path: Path, stub_pipeline):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = Settings(cache=blocker / "c.sqlite3")  # parent is a file: cannot be created
    cache = DigestCache(settings.cache)
    with pytest.raises(OSError):
        cache.get("k")
    d, hit = asyncio.run(summarize_cached("正文内容", FakeBackend(), settings, cache=cache))
    assert hit is False and d.meta.model == "m"
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    d, hit = asyncio.run(summarize_cached("正文内容", FakeBackend(), Settings(cache=bad), cache=DigestCache(bad)))
    assert hit is False and d.meta.model == "m"


def test_a_labeller_file_names_the_key_without_being_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every article and request takes a digest key; with ``--labeller`` its version came from
    loading the whole file (~0.1 s each time). It comes from the file's bytes now, and a
    changed file is another version."""
    from service import labeller
    from service.cache import digest_options

    path = tmp_path / "labeller.json"
    path.write_text(labeller.dumps(labeller.shipped()), encoding="utf-8")
    version = labeller.load(path).version

    def parsed(*args, **kwargs):
        raise AssertionError("the labeller file was parsed for a cache key")

    monkeypatch.setattr(labeller.Labeller, "from_json", parsed)
    settings = Settings(labeller=path)
    assert digest_options(settings)["labeller"] == digest_options(settings)["labeller"] == version
    assert digest_options(Settings())["labeller"] == labeller.shipped().version
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert digest_options(settings)["labeller"] != version

