"""The pipeline's CPU work runs in a process pool, off the event loop.

- While a long report is cleaned, segmented and labelled, ``/healthz`` still answers at
  once: on the loop it would wait for the whole document.
- A pool digests exactly what the in-process pipeline digests (both strategies), keeps
  its worker processes from one document to the next and reads the labeller once per
  worker.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

import service
from service.api import create_app
from service.clean import clean
from service.config import Settings
from service.cpupool import start_pool
from service.pipeline import PrepareOptions, prepare, summarize, worker_status
from tests.api.conftest import ARTICLES, _CountingBackend, make_settings
from tests.api.serving import thread_server
from tests.doubles.fake_openai import FakeOpenAIServer

HEALTH_BOUND_S = 0.5  # generous: a few milliseconds when the loop is free
PREPARE_TARGET_S = 2.0  # CPU the long report costs: well past the bound if it ran on the loop


def long_report(chars: int) -> str:
    """The fixture reports one after another, every number shifted per copy so that the
    duplicate rules keep all of them (as bench/pipeline_overhead.py builds its article)."""
    seeds = ["\n\n".join(b.text for b in clean(p.read_text(encoding="utf-8")).blocks) for p in ARTICLES]
    parts, n, i = [], 0, 0
    while n < chars:
        text = re.sub(r"\d+", lambda m: str(int(m.group()) + i + 1), seeds[i % len(seeds)])
        parts.append(re.sub(r"(?<=[\u4e00-\u9fff])(?=。)", f"第{i}批", text))
        n += len(parts[-1])
        i += 1
    return "\n\n".join(parts)[:chars]


def report_costing(seconds: float) -> str:
    """A report whose preparation takes about ``seconds`` of CPU here (measured on a small
    one and scaled: the pipeline is linear), so the test holds on fast and slow machines."""
    sample = long_report(20_000)
    options = PrepareOptions("learned", 1200, 0.0, 10_000_000)
    prepare(sample, options)  # warm: regexes compiled, labeller loaded
    t = time.perf_counter()
    prepare(sample, options)
    per_char = (time.perf_counter() - t) / len(sample)
    return long_report(min(1_000_000, max(50_000, int(seconds / per_char))))


def test_healthz_answers_while_a_long_report_is_prepared(tmp_path: Path) -> None:
    text = report_costing(PREPARE_TARGET_S)
    with FakeOpenAIServer() as fake:
        # no model calls (assist margin 0): the request is all CPU
        settings = make_settings(fake, tmp_path, assist_margin=0.0, max_chars=2_000_000, no_cache=True)
        with thread_server(create_app(settings, cpu_workers=1)) as base:

            async def drive() -> tuple[httpx.Response, float, list[float]]:
                async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                    started = time.monotonic()
                    post = asyncio.create_task(client.post("/v1/summaries", json={"text": text}))
                    waits = []
                    while not post.done():
                        t = time.monotonic()
                        assert (await client.get("/healthz")).status_code == 200
                        waits.append(time.monotonic() - t)
                    return await post, time.monotonic() - started, waits

            res, took, waits = asyncio.run(drive())
        assert not fake.requests
    assert res.status_code == 200, res.text
    assert res.json()["doc"]["chars"] == len(text)
    assert max(waits) < HEALTH_BOUND_S, (
        f"/healthz waited {max(waits):.2f}s while a {len(text):,}-character report was prepared"
    )
    assert took > 2 * HEALTH_BOUND_S and len(waits) >= 5, f"{took:.2f}s, {len(waits)} probes: too short to tell"


def _digest(d: Any) -> dict[str, Any]:
    out = d.model_dump(mode="json")
    out["meta"].pop("seconds")
    return out


def test_workers_get_the_shipped_labeller_and_the_tokenizer_from_the_fork_server() -> None:
    """Read once by the fork server (``service.preload``), not again by each worker while the
    first documents wait: a worker of the shipped labeller reads no file at all."""
    pool = start_pool(2, None)
    try:
        pool.warm()
        statuses = {s["pid"]: s for s in (pool.submit(worker_status).result(timeout=60) for _ in range(6))}
        assert statuses and all(s["preloaded"] == 1 and s["labeller_loads"] == 0 for s in statuses.values())
        assert worker_status()["preloaded"] == 0  # this process read nothing from a fork server
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_a_pool_digests_as_in_process_keeps_its_workers_and_reads_the_labeller_once(tmp_path: Path) -> None:
    labeller = tmp_path / "labeller.json"
    shutil.copy(Path(service.__file__).parent / "data" / "labeller.json", labeller)
    texts = [p.read_text(encoding="utf-8") for p in ARTICLES[:2]]
    pool = start_pool(1, labeller)
    try:
        pool.warm()
        before = pool.submit(worker_status).result(timeout=60)
        assert before["labeller_loads"] >= 1  # the initializer read it

        async def compare() -> None:
            for strategy in ("learned", "context"):
                settings = Settings(backend="openai", no_cache=True, strategy=strategy, assist_margin=0.3,
                                    labeller=labeller)
                for text in texts:
                    inline = await summarize(text, _CountingBackend(), settings)  # type: ignore[arg-type]
                    pooled = await summarize(text, _CountingBackend(), settings, executor=pool)  # type: ignore[arg-type]
                    assert _digest(pooled) == _digest(inline)

        asyncio.run(compare())
        # the same process served all four documents, and read no labeller file again
        assert pool.submit(worker_status).result(timeout=60) == before
    finally:
        pool.shutdown()
