"""The whole pipeline on the five seed articles, offline, from recorded local-model output.

These run the real CLI in a subprocess (``reportsum summarize --backend replay``), so
argument parsing, decoding, cleaning, segmentation, the openai SDK path (through the
replay transport), validation, merge and rendering all run as in production.

Snapshots: ``tests/e2e/snapshots/<article>.json``. After re-recording, regenerate with
    UPDATE_SNAPSHOTS=1 pytest tests/e2e
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ARTICLES, GOLD, ROOT, SEEDS

SNAPSHOTS = Path(__file__).parent / "snapshots"
CATS = ("achievements", "problems", "plans")


def run_cli(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    # as the recordings were made (fixtures/README.md); module-scoped fixtures run before
    # the autouse environment fixture, so say it here
    full_env.setdefault("REPORTSUM_ASSIST_MARGIN", "0.2")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "service", *args], input=stdin, capture_output=True,
                          env=full_env, cwd=ROOT, timeout=120)


def summarize(path: Path | str, *extra: str, **kw) -> dict:
    proc = run_cli("summarize", "--backend", "replay", "--no-cache", "-q", str(path), *extra, **kw)
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def stable(digest: dict) -> dict:
    """The digest without what legitimately changes run to run (timing)."""
    d = json.loads(json.dumps(digest))
    d["meta"].pop("seconds")
    return d


@pytest.fixture(scope="module")
def digests() -> dict[str, dict]:
    return {p.stem: summarize(p) for p in SEEDS}


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_contract_holds(path, digests):
    text = path.read_text(encoding="utf-8")
    d = digests[path.stem]
    assert set(d) >= {"doc", "overview", "achievements", "problems", "plans", "excluded", "meta"}
    assert d["doc"]["chars"] == len(text)
    assert d["meta"]["backend"] == "replay" and d["meta"]["chunks"] > 0
    assert d["meta"]["prompt_version"].startswith("classify-")
    # usage is reported, not invented: tokens only when the model was asked
    assert (d["meta"]["llm_calls"] > 0) == (d["meta"]["prompt_tokens"] > 0)
    excluded = [tuple(e["span"]) for e in d["excluded"]]
    total = 0
    for cat in CATS:
        for item in d[cat]:
            total += 1
            start, end = item["span"]
            assert text[start:end] == item["evidence"]
            for fig in item["figures"]:
                assert fig in item["evidence"]
            for number in re.findall(r"\d+(?:\.\d+)?", item["summary"]):
                assert number in item["evidence"]
            assert not any(s < end and start < e for s, e in excluded), item  # nothing excluded is summarised
    assert total >= 10


def test_recorded_model_answers_are_used(digests):
    # at --assist-margin 0.2 the shipped labeller's near ties on the seeds make 32 recorded calls
    # (20 before the selection moved the "other" bias back to 1.0 with a second category, 19 before
    # seed 000's attendance list was dropped, 33 before figure lists were split and the selection
    # moved the "other" bias from 1.0 to 0.5,
    # 34 before the announced-work stretch, 37 before the problem stretch, 22 before the year-ahead
    # stretch, 64 before its fits converged): each must replay
    assert sum(d["meta"]["llm_calls"] for d in digests.values()) >= 15


def test_appended_story_and_duplicates_not_summarised(digests):
    d = digests["000_e74761c77b6d2746"]
    evidences = [it["evidence"] for c in CATS for it in d[c]]
    assert not any("耳鼻" in e or "李晓瑜" in e for e in evidences)
    # a repeated paragraph is reported once: one span per text, though a span may stand in
    # two categories (a measure and the problem it fixes)
    span_of: dict[str, set] = {}
    for c in CATS:
        for it in d[c]:
            span_of.setdefault(re.sub(r"\W", "", it["evidence"]), set()).add(tuple(it["span"]))
        per_cat = [re.sub(r"\W", "", it["evidence"]) for it in d[c]]
        assert len(per_cat) == len(set(per_cat))
    assert all(len(spans) == 1 for spans in span_of.values())
    assert any(e["reason"] == "unrelated appended story" for e in d["excluded"])


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem[:3])
def test_snapshot(path, digests):
    snap = SNAPSHOTS / f"{path.stem}.json"
    got = stable(digests[path.stem])
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snap.write_text(json.dumps(got, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert got == json.loads(snap.read_text(encoding="utf-8"))


def test_gb18030_and_bom_copies_give_the_same_digest(tmp_path, digests):
    seed = SEEDS[1]
    text = seed.read_text(encoding="utf-8")
    gb = tmp_path / "gb.txt"
    gb.write_bytes(text.encode("gb18030"))
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    want = stable(digests[seed.stem])
    for copy in (gb, bom):
        got = stable(summarize(copy))
        assert {c: got[c] for c in CATS} == {c: want[c] for c in CATS}


def test_stdin_and_markdown():
    proc = run_cli("summarize", "--backend", "replay", "--no-cache", "-q", "--format", "md", "-",
                   stdin=SEEDS[0].read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    md = proc.stdout.decode()
    assert md.startswith("# 聚焦重点再发力") and "## 成绩" in md and "## 下一步计划" in md


@pytest.mark.parametrize("content, why", [(b"", "empty"), (b"\x00\x01binary\x00" * 20, "binary")])
def test_bad_file_clear_error_nothing_written(tmp_path, content, why):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    out = tmp_path / "out.json"
    proc = run_cli("summarize", "--backend", "replay", str(bad), "-o", str(out))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "bad.txt" in err and why in err and "Traceback" not in err
    assert not out.exists()


def test_prompt_edit_makes_replay_fail_loudly(tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    with (prompts / "classify.md").open("a", encoding="utf-8") as f:
        f.write("\n请特别注意数字。\n")
    seed = SEEDS[1]  # an article whose digest needs the model
    proc = run_cli("summarize", "--backend", "replay", "--no-cache", "-q", str(seed),
                   env={"REPORTSUM_PROMPTS": str(prompts)})
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "reportsum summarize --record" in err and seed.name in err and "Traceback" not in err


def test_eval_on_replay_matches_stored_metrics():
    proc = run_cli("eval", str(ARTICLES), "--gold", str(GOLD), "--backend", "replay", "--no-cache", "--json", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    micro = json.loads(proc.stdout)["micro"]
    expected_file = Path(__file__).parent / "expected_eval.json"
    got = {k: micro[k] for k in ("recall", "precision", "located_recall", "violations", "figure_faults",
                                 "noise_items", "duplicates")}
    if os.environ.get("UPDATE_SNAPSHOTS"):
        expected_file.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(expected_file.read_text())
    assert got["violations"] == 0 and got["figure_faults"] == 0


def test_batch_on_replay(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("batch", str(ARTICLES), "-o", str(out), "--backend", "replay", "--format", "json,md,csv", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    index = [json.loads(line) for line in (out / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(e["file"] for e in index) == sorted(p.name for p in SEEDS)
    assert all(e["status"] == "done" for e in index)
    for p in SEEDS:
        assert (out / f"{p.name}.json").exists() or (out / f"{p.stem}.json").exists()
    assert (out / "items.csv").read_bytes().startswith(b"\xef\xbb\xbf")
