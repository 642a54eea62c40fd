"""``run_batch`` end to end: the openai backend against the loopback fake server.

A tmp folder of small articles (pieces of the fixture reports, one of them GB18030, plus an
empty file and a binary file) goes through the real pipeline; the fake server counts every
HTTP request, so "a rerun makes zero model calls" is measured on the wire.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.backends.openai import OpenAIBackend
from service.batch import INDEX_NAME, iter_articles, output_path, parse_shard, read_index, run_batch, shard_of
from service.config import PROJECT_ROOT, Settings
from service.errors import ConfigError
from tests.doubles.fake_openai import FakeOpenAIServer, status

ARTICLES = sorted((PROJECT_ROOT / "fixtures" / "articles").glob("*.txt"))


def piece(path: Path, start: int = 0, size: int = 700) -> str:
    """A few whole paragraphs of a fixture article (small, so each article costs few calls)."""
    paras = [p for p in path.read_text(encoding="utf-8").split("\n") if p.strip()]
    out, n = [], 0
    for p in paras[start:]:
        out.append(p)
        n += len(p)
        if n >= size:
            break
    return "\n\n".join(out) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "reports"
    (src / "jining" / "2020").mkdir(parents=True)
    (src / "other").mkdir()
    (src / ".hidden").mkdir()
    (src / "a.txt").write_text(piece(ARTICLES[0], 2), encoding="utf-8")
    (src / "jining" / "2020" / "b.md").write_text(piece(ARTICLES[1], 3), encoding="utf-8")
    (src / "jining" / "c.txt").write_text(piece(ARTICLES[2], 2), encoding="utf-8")
    (src / "other" / "gbk.txt").write_bytes(piece(ARTICLES[3], 2).encode("gb18030"))
    html = "<html><head><title>报告</title></head><body><p>" + piece(ARTICLES[4], 2).replace("\n\n", "</p><p>") + "</p></body></html>"
    (src / "other" / "d.html").write_text(html, encoding="utf-8")
    (src / "empty.txt").write_bytes(b"")
    (src / "other" / "binary.md").write_bytes(bytes(range(256)) * 8)
    (src / "notes.pdf").write_bytes(b"%PDF-1.4 not an input")  # not an input suffix
    (src / ".hidden" / "x.txt").write_text("隐藏文件不处理", encoding="utf-8")
    (src / ".draft.txt").write_text("隐藏文件不处理", encoding="utf-8")
    return src


GOOD = {"a.txt", "jining/2020/b.md", "jining/c.txt", "other/gbk.txt", "other/d.html"}
BAD = {"empty.txt", "other/binary.md"}


@pytest.fixture
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def settings_for(server: FakeOpenAIServer, tmp_path: Path, **overrides) -> Settings:
    values = dict(
        backend="openai", openai_base_url=server.base_url, openai_api_key="test-key", model="fake-model",
        concurrency=4, timeout=5.0, max_retries=2, cache=tmp_path / "cache" / "digests.sqlite3", quiet=True,
        assist_margin=1.0,  # every unit goes to the model: each article costs calls whatever the labeller says
        strategy="learned",  # one call per unit asked: the counts these tests check
    )
    values.update(overrides)
    return Settings(**values)


def batch(src: Path, out: Path, settings: Settings, formats=("json",), shard=None) -> int:
    return run_batch(src, out, settings, formats=set(formats), shard=shard, show_progress=False)


def test_outputs_mirror_the_folder_and_the_index_covers_every_article(corpus, server, tmp_path):
    out = tmp_path / "out"
    rc = batch(corpus, out, settings_for(server, tmp_path), formats=("json", "md", "csv"))
    assert rc == 1  # the empty and the binary file failed
    assert len(server.requests) == sum(e["llm_calls"] for e in read_index(out / INDEX_NAME).values()) > 0

    index = read_index(out / INDEX_NAME)
    assert set(index) == GOOD | BAD
    lines = (out / INDEX_NAME).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["file"] for x in lines] == sorted(GOOD | BAD)
    for rel in GOOD:
        e = index[rel]
        assert e["status"] == "done", e
        assert e["error"] is None and not e["cached"]
        assert (e["llm_calls"] > 0) == (e["tokens"] > 0)  # cues may decide a small piece alone
        assert {"achievements", "problems", "plans", "seconds", "prompt_tokens", "completion_tokens"} <= set(e)
        obj = json.loads(output_path(out, rel, "json").read_text(encoding="utf-8"))
        assert {"doc", "overview", "achievements", "problems", "plans", "excluded", "meta"} <= set(obj)
        assert obj["reportsum"]["file"] == rel and len(obj["reportsum"]["content_sha256"]) == 64
        from service.ingest import read_bytes

        text = read_bytes((corpus / rel).read_bytes(), rel)
        for cat in ("achievements", "problems", "plans"):
            assert e[cat] == len(obj[cat])
            for item in obj[cat]:
                assert text[item["span"][0] : item["span"][1]] == item["evidence"]
        assert output_path(out, rel, "md").read_text(encoding="utf-8").strip()
    assert "empty" in index["empty.txt"]["error"]
    assert "binary" in index["other/binary.md"]["error"]
    for rel in BAD:
        assert index[rel]["status"] == "failed" and not output_path(out, rel, "json").exists()
    # nothing but outputs, the index, the csv and the lock: no temp files left behind
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {f"{r}.json" for r in GOOD} | {f"{r}.md" for r in GOOD} | {INDEX_NAME, "items.csv", ".reportsum.lock"}

    raw = (out / "items.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    header = raw.decode("utf-8-sig").splitlines()[0]
    assert header == "file,category,summary,figures,evidence,start,end"
    assert len(rows) == sum(index[r][c] for r in GOOD for c in ("achievements", "problems", "plans"))
    assert {r["file"] for r in rows} <= GOOD


def test_rerun_makes_zero_model_calls_and_the_cache_serves_renamed_copies(corpus, server, tmp_path):
    out = tmp_path / "out"
    settings = settings_for(server, tmp_path)
    batch(corpus, out, settings)
    first = read_index(out / INDEX_NAME)

    server.requests.clear()
    t0 = time.monotonic()
    assert batch(corpus, out, settings, formats=("json", "csv")) == 1
    assert time.monotonic() - t0 < 10
    assert server.requests == []
    index = read_index(out / INDEX_NAME)
    assert {r for r, e in index.items() if e["status"] == "skipped"} == GOOD
    assert {r for r, e in index.items() if e["status"] == "failed"} == BAD
    for rel in GOOD:  # counts survive a resume
        assert index[rel]["achievements"] == first[rel]["achievements"] and index[rel]["tokens"] == 0
    assert (out / "items.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    # the same articles under other names, into another folder: served by the digest cache
    copies = tmp_path / "copies"
    for i, rel in enumerate(sorted(GOOD)):
        (copies / f"dir{i}").mkdir(parents=True)
        shutil.copy(corpus / rel, copies / f"dir{i}" / f"copy{i}{Path(rel).suffix}")
    assert batch(copies, tmp_path / "out2", settings) == 0
    assert server.requests == []
    index2 = read_index(tmp_path / "out2" / INDEX_NAME)
    assert all(e["status"] == "done" and e["cached"] and e["llm_calls"] == 0 for e in index2.values())

    # --no-cache bypasses the cache (but resume still applies to existing outputs)
    assert batch(copies, tmp_path / "out3", settings.model_copy(update={"no_cache": True})) == 0
    assert len(server.requests) > 0

    # a changed article is redone, the others are skipped
    server.requests.clear()
    (corpus / "a.txt").write_text(piece(ARTICLES[0], 6), encoding="utf-8")
    batch(corpus, out, settings)
    index = read_index(out / INDEX_NAME)
    assert index["a.txt"]["status"] == "done" and not index["a.txt"]["cached"]
    assert {r for r, e in index.items() if e["status"] == "skipped"} == GOOD - {"a.txt"}
    assert len(server.requests) == index["a.txt"]["llm_calls"]


def test_failed_articles_are_recorded_and_a_rerun_retries_only_them(corpus, server, tmp_path):
    out = tmp_path / "out"
    settings = settings_for(server, tmp_path, max_retries=0, concurrency=1, no_cache=True)
    server.script(status(500))  # with max_retries=0 the first call fails for good
    assert batch(corpus, out, settings) == 1
    index = read_index(out / INDEX_NAME)
    failed = {r for r, e in index.items() if e["status"] == "failed"} - BAD
    assert len(failed) == 1
    (rel,) = failed
    assert "InternalServerError" in index[rel]["error"] or "500" in index[rel]["error"]
    assert {r for r, e in index.items() if e["status"] == "done"} == GOOD - failed

    server.requests.clear()
    assert batch(corpus, out, settings) == 1  # the bad files still fail
    index = read_index(out / INDEX_NAME)
    assert index[rel]["status"] == "done"
    assert {r for r, e in index.items() if e["status"] == "skipped"} == GOOD - failed
    assert len(server.requests) == index[rel]["llm_calls"]


def test_concurrency_is_one_global_limit_across_articles_and_chunks(corpus, server, tmp_path, monkeypatch):
    server.latency = 0.05
    inflight, peak = [0], [0]
    original = OpenAIBackend.complete

    async def counting(self, request):
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        try:
            return await original(self, request)
        finally:
            inflight[0] -= 1

    monkeypatch.setattr(OpenAIBackend, "complete", counting)
    batch(corpus, tmp_path / "out", settings_for(server, tmp_path, concurrency=3, no_cache=True))
    assert peak[0] == 3


def test_shards_partition_the_folder_disjointly_and_merge_into_one_index(corpus, server, tmp_path):
    out = tmp_path / "out"
    settings = settings_for(server, tmp_path, no_cache=True)
    everything = {rel for _, rel in iter_articles(corpus)}
    assert everything == GOOD | BAD
    parts = []
    for k in (1, 2, 3):
        batch(corpus, out, settings, formats=("json", "csv"), shard=(k, 3))
        part = read_index(out / f"index-{k}-of-3.jsonl")
        assert set(part) == {r for r in everything if shard_of(r, 3) == k}
        parts.append(set(part))
    assert sum(len(p) for p in parts) == len(everything) and set().union(*parts) == everything
    merged = read_index(out / INDEX_NAME)
    assert set(merged) == everything
    assert {r for r, e in merged.items() if e["status"] == "done"} == GOOD
    # a shard rerun skips its own articles and leaves the merged index complete
    server.requests.clear()
    batch(corpus, out, settings, shard=(2, 3))
    assert server.requests == [] and set(read_index(out / INDEX_NAME)) == everything


def test_shard_spec():
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/3", "4/3", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    rels = [f"dir{i // 10}/f{i}.txt" for i in range(300)]
    counts = [sum(shard_of(r, 4) == k for r in rels) for k in (1, 2, 3, 4)]
    assert sum(counts) == 300 and min(counts) > 40
    assert [shard_of(r, 4) for r in rels] == [shard_of(r, 4) for r in rels]


def test_output_folder_inside_the_input_folder_is_not_read_back(corpus, server, tmp_path):
    out = corpus / "digests"
    settings = settings_for(server, tmp_path)
    batch(corpus, out, settings, formats=("json", "md"))
    batch(corpus, out, settings, formats=("json", "md"))
    assert set(read_index(out / INDEX_NAME)) == GOOD | BAD


CHILD = """
import sys
from pathlib import Path
from service.batch import run_batch
from service.config import Settings
s = Settings(backend="openai", openai_base_url=sys.argv[3], openai_api_key="k", model="fake-model",
             concurrency=2, no_cache=True, quiet=False, assist_margin=1.0,
             strategy="learned")
print("started", flush=True)
sys.exit(run_batch(Path(sys.argv[1]), Path(sys.argv[2]), s, formats={"json"}, shard=None, show_progress=True))
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_what_finished(server, tmp_path, sig, code):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(40):
        (src / f"r{i:02}.txt").write_text(piece(ARTICLES[i % 5], 2 + i % 3, 300) + f"第{i}篇。\n", encoding="utf-8")
    server.latency = 0.1
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    # ^C reaches a batch in the foreground: a test run started in the background ("pytest &" in a
    # script) has SIGINT ignored, which the child would inherit and rightly keep
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(src), str(out), server.base_url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list(out.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, output
    assert "interrupted" in output
    index = read_index(out / INDEX_NAME)
    assert 0 < len(index) < 40
    done = {p.name[: -len(".json")] for p in out.glob("r*.txt.json")}
    assert {r for r, e in index.items() if e["status"] == "done"} <= done
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for p in out.glob("r*.txt.json"):
        json.loads(p.read_text(encoding="utf-8"))  # every output is whole
